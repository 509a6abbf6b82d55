"""Identity encoders: the features as they are, for fusions that project and encode themselves (TMT)."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_sequence_input, validate_vector_input
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput


@ENCODERS.register("identity")
class IdentitySequenceEncoder(ModalityEncoder):
    """Passes a sequence through (padded steps set to 0); ``pooled`` is the mean over its real steps.

    ``out_dim`` is the feature size ``in_dim`` (``model.out_dim`` does not apply).

    Args:
        in_dim: feature size ``D``.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """``EncoderOutput(sequence=x [B, T, D] with zeros at padding, pooled=masked mean [B, D], mask [B, T])``.

        Raises:
            ValueError: if ``x`` is not ``[B, T, in_dim]`` or the mask does not match it.
        """
        real = validate_sequence_input(x, mask, self.in_dim)
        steps = torch.where(real.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        return EncoderOutput(sequence=steps, pooled=masked_mean(steps, real), mask=real)


@ENCODERS.register("identity_vector")
class IdentityVectorEncoder(ModalityEncoder):
    """Passes a feature vector through unchanged (``out_dim = in_dim``).

    Args:
        in_dim: feature size ``D``.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "vector"

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """``EncoderOutput(sequence=None, pooled=x [B, D], mask=None)``.

        Raises:
            ValueError: if ``x`` is not ``[B, in_dim]``.
        """
        validate_vector_input(x, self.in_dim)
        return EncoderOutput(sequence=None, pooled=x, mask=None)
