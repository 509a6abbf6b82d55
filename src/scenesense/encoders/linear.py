"""Encoders for utterance-level feature vectors ``[B, D]`` (e.g. the Scene Sense audio features)."""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import Tensor, nn

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_vector_input
from scenesense.layers.mlp import MLP
from scenesense.types import EncoderOutput


class _VectorEncoder(ModalityEncoder):
    """A network ``net`` applied to ``[B, in_dim]`` vectors; subclasses build ``net``."""

    input_kind: ClassVar[Literal["sequence", "vector"]] = "vector"
    net: nn.Module

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode vectors.

        Args:
            x: ``[B, in_dim]`` features.
            mask: ignored (vectors have no steps).

        Returns:
            ``EncoderOutput(sequence=None, pooled [B, out_dim], mask=None)``.

        Raises:
            ValueError: if ``x`` is not ``[B, in_dim]``.
        """
        validate_vector_input(x, self.in_dim)
        return EncoderOutput(sequence=None, pooled=self.net(x), mask=None)


@ENCODERS.register("linear")
class LinearVectorEncoder(_VectorEncoder):
    """``Dropout(Linear(x))``: the paper's audio encoder (1611 -> 512).

    Args:
        in_dim: input feature size ``D``.
        out_dim: output size.
        dropout: dropout on the output.
    """

    def __init__(self, in_dim: int, out_dim: int = 512, dropout: float = 0.0) -> None:
        super().__init__(in_dim, out_dim)
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.Dropout(dropout))


@ENCODERS.register("mlp")
class MLPVectorEncoder(_VectorEncoder):
    """``Linear -> ReLU -> Dropout -> Linear`` on feature vectors.

    Args:
        in_dim: input feature size ``D``.
        out_dim: output size.
        hidden_dim: hidden layer size.
        dropout: dropout after the hidden activation.
    """

    def __init__(self, in_dim: int, out_dim: int = 512, hidden_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__(in_dim, out_dim)
        self.net = MLP(in_dim, out_dim, hidden_dims=(hidden_dim,), dropout=dropout)
