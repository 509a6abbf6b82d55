"""Hadamard (element-wise product) fusion over any number of modalities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from torch import nn

from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.types import EncoderOutput, FusionOutput


def _resolve_dim(modality_dims: Mapping[str, int], dim: int | None, use_projection: bool) -> int:
    if len(modality_dims) < 2:
        raise ValueError(f"hadamard fusion needs at least 2 modalities, got {sorted(modality_dims)}")
    if not use_projection:
        sizes = set(modality_dims.values())
        if len(sizes) != 1 or (dim is not None and dim not in sizes):
            raise ValueError(
                f"hadamard fusion without projection needs equal modality sizes (and dim), got "
                f"{dict(modality_dims)} and dim={dim}"
            )
        return sizes.pop()
    resolved = min(modality_dims.values()) if dim is None else dim
    if resolved < 1:
        raise ValueError(f"hadamard fusion: dim must be >= 1, got {resolved}")
    return resolved


@FUSIONS.register("hadamard")
class HadamardFusion(Fusion):
    """``fused = prod_m W_m pooled_m + b_m`` element-wise over ALL modalities (sorted order).

    The published Scene Sense code kept only the last pair when three modalities were enabled;
    this product runs over every modality (>= 2).

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        dim: common size of the projections (``None``: the smallest modality size, i.e. 512
            with the paper's encoders).
        use_projection: project each modality with its own Linear; ``False`` multiplies the
            pooled vectors directly (the paper), which needs equal sizes.

    Raises:
        ValueError: with fewer than 2 modalities, or unequal sizes without projection.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(
        self, modality_dims: Mapping[str, int], dim: int | None = None, use_projection: bool = True
    ) -> None:
        super().__init__(modality_dims)
        self.out_dim = _resolve_dim(self.modality_dims, dim, use_projection)
        self.projections = nn.ModuleDict(
            {
                m: nn.Linear(d, self.out_dim) if use_projection else nn.Identity()
                for m, d in self.modality_dims.items()
            }
        )

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Multiply the projected pooled vectors element-wise.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``.

        Returns:
            ``FusionOutput(fused [B, dim])``.

        Raises:
            ValueError: if a modality is missing or unexpected.
        """
        self.check_encoded(encoded)
        projected = [self.projections[m](encoded[m].pooled) for m in self.modalities]  # each [B, dim]
        fused = projected[0]
        for factor in projected[1:]:
            fused = fused * factor
        return FusionOutput(fused=fused)
