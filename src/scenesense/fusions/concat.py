"""Concatenation of pooled modality vectors (the Scene Sense baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch

from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.types import EncoderOutput, FusionOutput


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """``fused = [pooled_m for m in sorted(modalities)]`` concatenated; ``out_dim = sum(D_m)``.

    Args:
        modality_dims: encoder output size per modality.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(self, modality_dims: Mapping[str, int]) -> None:
        super().__init__(modality_dims)
        self.out_dim = sum(self.modality_dims.values())

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Concatenate pooled vectors in sorted modality order.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``.

        Returns:
            ``FusionOutput(fused [B, sum D_m])``.

        Raises:
            ValueError: if a modality is missing or unexpected.
        """
        self.check_encoded(encoded)
        return FusionOutput(fused=torch.cat([encoded[m].pooled for m in self.modalities], dim=-1))
