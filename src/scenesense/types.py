"""Core contracts shared by every layer of the package.

Modalities are *named*: every modality-wise value is a ``dict[str, ...]`` keyed by a name from
`MODALITIES` and iterated in sorted order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple, NotRequired, TypedDict

import numpy as np

if TYPE_CHECKING:  # annotations only: importing the types must not load torch
    from torch import Tensor

Modality = Literal["audio", "text", "vision"]
MODALITIES: tuple[str, ...] = ("audio", "text", "vision")


def validate_modality(name: str) -> str:
    """Return ``name`` if it is a known modality, else raise ``ValueError``."""
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; expected one of {list(MODALITIES)}")
    return name


class Sample(TypedDict):
    """One utterance as returned by a dataset.

    Fields:
        id: unique utterance key, e.g. ``"dia3_utt1"``.
        dialogue_id: dialogue key (``""`` when the data has none).
        position: position of the utterance in its dialogue (``-1`` when unknown).
        speaker: speaker name (``""`` when unknown).
        inputs: per modality a ``[T, D]`` sequence (true length ``T``) or a ``[D]`` vector.
        present: per modality, False where the modality is missing for this sample.
        label: class id, or a float for regression.
    """

    id: str
    dialogue_id: str
    position: int
    speaker: str
    inputs: dict[str, np.ndarray]
    present: dict[str, bool]
    label: int | float


class Batch(TypedDict):
    """A padded batch, as built by `scenesense.data.collate.collate`.

    Fields:
        ids: ``B`` utterance keys.
        inputs: per modality ``[B, T, D]`` (zero padded) or ``[B, D]``.
        masks: per *sequence* modality ``[B, T]`` booleans, True = real step. A sample whose
            modality is missing has an all-False row.
        present: per modality ``[B]`` booleans, False = modality missing for that sample.
        label: ``[B]`` class ids (long) or regression targets (float).
        dialogues: only in batches of whole dialogues (`scenesense.data.dialogues`): where
            each row sits in its dialogue.
    """

    ids: list[str]
    inputs: dict[str, Tensor]
    masks: dict[str, Tensor]
    present: dict[str, Tensor]
    label: Tensor
    dialogues: NotRequired[DialogueLayout]


class EncoderOutput(NamedTuple):
    """What a modality encoder returns.

    Fields:
        sequence: ``[B, T, D]`` per-step features (``None`` for vector encoders).
        pooled: ``[B, D]`` utterance-level features (masked pooling over real steps).
        mask: ``[B, T]`` booleans, True = real step (``None`` for vector encoders).
        present: ``[B]`` booleans, False where the classifier hid the modality (missing for the
            sample or dropped by modality dropout; ``None``: not known, e.g. straight from an
            encoder). The only way a fusion can tell a hidden *vector* modality from a zero vector.
    """

    sequence: Tensor | None
    pooled: Tensor
    mask: Tensor | None
    present: Tensor | None = None


class FusionOutput(NamedTuple):
    """What a fusion module returns.

    Fields:
        fused: ``[B, out_dim]`` fused representation.
        modality_weights: per modality ``[B]`` or ``[B, D]`` weights, where the fusion has them.
        attention: named attention maps ``[B, T_query, T_key]`` (averaged over heads), where the
            fusion has them, e.g. ``{"text->vision": ...}``.
        aux_losses: named unweighted scalar regularisers, where the fusion has them (e.g. TMT's
            ``{"orthogonality": ..., "similarity": ...}``); the trainer weights and adds them.
    """

    fused: Tensor
    modality_weights: dict[str, Tensor] | None = None
    attention: dict[str, Tensor] | None = None
    aux_losses: dict[str, Tensor] | None = None


class ModelOutput(NamedTuple):
    """What `scenesense.models.classifier.MultimodalClassifier` returns.

    Fields:
        logits: ``[B, C]`` class scores (``[B, 1]`` for regression).
        fused: ``[B, D]`` fused representation.
        modality_weights: passed through from the fusion.
        attention: passed through from the fusion.
        aux_losses: named unweighted scalar loss terms (passed through from the fusion); the
            trainer adds them to the task loss with their weights (``trainer.aux_loss_weights``).
    """

    logits: Tensor
    fused: Tensor
    modality_weights: dict[str, Tensor] | None
    attention: dict[str, Tensor] | None
    aux_losses: dict[str, Tensor]


class DialogueLayout(NamedTuple):
    """Where the utterances of a flat batch sit in their dialogues (``G`` dialogues, ``L`` slots).

    Fields:
        index: ``[G, L]`` long, the batch row of each slot, in dialogue order (``-1`` = padding).
        mask: ``[G, L]`` bool, True = a real utterance.
        position: ``[G, L]`` long, the utterance's position in its dialogue (0 at padding).
        speaker: ``[G, L]`` long, the speaker's vocabulary id (0 = unknown speaker, or padding).
        turn_speaker: ``[G, L]`` long, the speaker's index within the dialogue in order of first
            appearance, so that unseen speakers are still told apart (``-1`` = unnamed or padding).
    """

    index: Tensor
    mask: Tensor
    position: Tensor
    speaker: Tensor
    turn_speaker: Tensor
