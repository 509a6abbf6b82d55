"""Identity encoders: the features as they are, for fusions that project and encode themselves (TMT)."""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import Tensor

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_sequence_input, validate_vector_input
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput


@ENCODERS.register("identity")
class IdentitySequenceEncoder(ModalityEncoder):
    """Passes a sequence through unchanged; ``pooled`` is the mean over its real steps.

    ``out_dim`` is the feature size ``in_dim`` (``model.out_dim`` does not apply).

    Args:
        in_dim: feature size ``D``.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """``EncoderOutput(sequence=x [B, T, D], pooled=masked mean [B, D], mask [B, T])``.

        Raises:
            ValueError: if ``x`` is not ``[B, T, in_dim]`` or the mask does not match it.
        """
        real = validate_sequence_input(x, mask, self.in_dim)
        return EncoderOutput(sequence=x, pooled=masked_mean(x, real), mask=real)


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
