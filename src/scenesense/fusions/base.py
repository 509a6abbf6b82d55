"""The fusion contract: combine per-modality encoder outputs into one vector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.registry import Registry
from scenesense.types import EncoderOutput, FusionOutput


def _validate_modality_dims(owner: str, modality_dims: Mapping[str, int]) -> dict[str, int]:
    """Return ``modality_dims`` sorted by modality after checking every size is a positive int."""
    if not modality_dims:
        raise ValueError(f"{owner} needs at least one modality, got none")
    for modality, dim in modality_dims.items():
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"{owner}: size of modality {modality!r} must be a positive int, got {dim!r}")
    return {m: modality_dims[m] for m in sorted(modality_dims)}


def sequence_and_mask(owner: str, modality: str, out: EncoderOutput, dim: int) -> tuple[Tensor, Tensor]:
    """``(sequence [B, T, D], bool mask [B, T])`` of one encoder output; all steps real without a mask.

    Raises:
        ValueError: the encoder gave no sequence, or one of the wrong shape (``owner`` names the fusion).
    """
    if out.sequence is None:
        raise ValueError(f"{owner} fusion needs a sequence for modality {modality!r}, but its encoder gave none")
    if out.sequence.dim() != 3 or out.sequence.shape[-1] != dim:
        raise ValueError(f"modality {modality!r}: expected sequence [B, T, {dim}], got {tuple(out.sequence.shape)}")
    if out.mask is None:
        return out.sequence, torch.ones(out.sequence.shape[:2], dtype=torch.bool, device=out.sequence.device)
    return out.sequence, out.mask if out.mask.dtype == torch.bool else out.mask != 0


def steps_or_token(owner: str, modality: str, out: EncoderOutput, dim: int,
                   is_sequence: bool) -> tuple[Tensor, Tensor]:
    """A sequence modality's ``(sequence [B, T, D], mask [B, T])``, or a vector modality's pooled
    vector as one always-real step ``([B, 1, D], [B, 1])``."""
    if is_sequence:
        return sequence_and_mask(owner, modality, out, dim)
    pooled = out.pooled.unsqueeze(1)  # [B, 1, D]
    return pooled, torch.ones(pooled.shape[:2], dtype=torch.bool, device=pooled.device)


class Fusion(nn.Module, ABC):
    """Fuses ``dict[modality, EncoderOutput]`` into ``FusionOutput.fused [B, out_dim]``.

    Subclasses set the class attribute ``level`` (what they read: ``"pooled"`` vectors,
    ``"sequence"`` outputs with masks, or ``"decision"`` for per-modality heads), take
    ``modality_dims`` (each encoder's ``out_dim``) as their first constructor argument, set
    ``self.out_dim`` and iterate modalities in sorted order. A fusion that returns auxiliary
    losses (``FusionOutput.aux_losses``) may declare their default weights in a dict attribute
    ``aux_loss_weights`` (the trainer uses 1 for a term without one).

    Args:
        modality_dims: encoder output size per modality.

    Raises:
        ValueError: if ``modality_dims`` is empty or holds a non-positive size.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]]
    out_dim: int

    def __init__(self, modality_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.modality_dims = _validate_modality_dims(type(self).__name__, modality_dims)
        self.modalities: tuple[str, ...] = tuple(self.modality_dims)  # sorted

    def check_encoded(self, encoded: Mapping[str, EncoderOutput]) -> None:
        """Check ``encoded`` holds exactly this fusion's modalities with the declared sizes.

        Args:
            encoded: per modality an `scenesense.types.EncoderOutput`.

        Raises:
            ValueError: naming a missing or unexpected modality, or a pooled size mismatch.
        """
        name = type(self).__name__
        for modality in self.modalities:
            if modality not in encoded:
                raise ValueError(f"{name} needs modality {modality!r} but got only {sorted(encoded)}")
            size = encoded[modality].pooled.shape[-1]
            if size != self.modality_dims[modality]:
                expected = self.modality_dims[modality]
                raise ValueError(f"{name}: modality {modality!r} has pooled size {size}, expected {expected}")
        extra = sorted(set(encoded) - set(self.modalities))
        if extra:
            raise ValueError(f"{name} was built for {list(self.modalities)} but also got {extra}")

    @abstractmethod
    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Fuse the encoder outputs.

        Args:
            encoded: per modality an `scenesense.types.EncoderOutput` (``pooled``
                ``[B, D_m]``; ``sequence`` ``[B, T_m, D_m]`` and ``mask`` ``[B, T_m]`` for sequences).

        Returns:
            `scenesense.types.FusionOutput` with ``fused`` ``[B, out_dim]``.
        """


FUSIONS: Registry[type[Fusion]] = Registry("fusion")
"""Every fusion class by name; `scenesense.fusions` imports each module that registers one."""
