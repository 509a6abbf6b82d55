"""Fusion per utterance, context across utterances: the dialogue-level classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from scenesense.data.dialogues import single_layout
from scenesense.models.classifier import MultimodalClassifier
from scenesense.models.standardize import FeatureStandardizer
from scenesense.types import DialogueLayout, ModelOutput


def to_dialogues(flat: Tensor, layout: DialogueLayout) -> Tensor:
    """Rows ``[N, D]`` -> dialogues ``[G, L, D]`` (zeros at padding slots)."""
    index = layout.index.clamp(min=0)  # [G, L]
    out = flat[index.reshape(-1)].view(*index.shape, flat.shape[-1])
    return out * layout.mask.unsqueeze(-1).to(out.dtype)


def to_rows(dialogues: Tensor, layout: DialogueLayout, n: int) -> Tensor:
    """Dialogues ``[G, L, D]`` -> rows ``[N, D]`` (row ``layout.index[g, k]`` gets slot ``(g, k)``)."""
    out = dialogues.new_zeros(n, dialogues.shape[-1])
    return out.index_put((layout.index[layout.mask],), dialogues[layout.mask])


class ContextualClassifier(nn.Module):
    """``head(context(fusion_per_utterance(...)))``: a `MultimodalClassifier` with dialogue context.

    Each utterance is encoded and fused alone (`MultimodalClassifier.encode`); the context
    model then reads the fused vectors of each dialogue and the utterance model's head classifies
    each context-aware vector.

    Args:
        utterance: the per-utterance model (its head is the classifier head).
        context: a `scenesense.models.context.CONTEXTS` model, ``[G, L, D] -> [G, L, D]`` with
            ``D = utterance.fusion.out_dim``.
    """

    def __init__(self, utterance: MultimodalClassifier, context: nn.Module) -> None:
        super().__init__()
        self.utterance = utterance
        self.context = context
        self.modalities = utterance.modalities

    @property
    def standardizer(self) -> FeatureStandardizer | None:
        """The utterance model's input standardiser."""
        return self.utterance.standardizer

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        present: Mapping[str, Tensor] | None = None,
        dialogues: DialogueLayout | None = None,
    ) -> ModelOutput:
        """Classify the ``N`` utterances of a batch of whole dialogues.

        Args:
            inputs: as `MultimodalClassifier.forward`, one row per utterance.
            masks: as `MultimodalClassifier.forward`, one row per utterance.
            present: as `MultimodalClassifier.forward`, one row per utterance.
            dialogues: where each row sits in its dialogue (``None``: every utterance alone, i.e.
                no context, which is what a batch of unrelated utterances means).

        Returns:
            `scenesense.types.ModelOutput`; ``fused`` is the context-aware ``[N, D]``.
        """
        fused = self.utterance.encode(inputs, masks, present)
        n = fused.fused.shape[0]
        layout = dialogues if dialogues is not None else single_layout(n)
        layout = DialogueLayout(*(t.to(fused.fused.device) for t in layout))
        if int(layout.mask.sum()) != n:
            raise ValueError(f"the dialogue layout places {int(layout.mask.sum())} utterances, the batch has {n}")
        context = to_rows(self.context(to_dialogues(fused.fused, layout), layout), layout, n)
        return ModelOutput(
            logits=self.utterance.head(context),
            fused=context,
            modality_weights=fused.modality_weights,
            attention=fused.attention,
            aux_losses=dict(fused.aux_losses or {}),
        )

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The utterance model's optimiser groups, plus the context model in a default group."""
        return [*self.utterance.parameter_groups(),
                {"params": list(self.context.parameters()), "lr_scale": 1.0, "frozen_epochs": 0}]

    def aux_loss_weights(self) -> dict[str, float]:
        """The utterance model's default weights of its auxiliary losses
        (`MultimodalClassifier.aux_loss_weights`)."""
        return self.utterance.aux_loss_weights()
