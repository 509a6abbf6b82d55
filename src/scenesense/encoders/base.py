"""The modality encoder contract and shared input validation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.registry import Registry
from scenesense.types import EncoderOutput

MAX_SEQUENCE_STEPS = 4096
"""Longest sequence (padded ``T``) a sequence encoder accepts. Self-attention memory grows with
``T^2`` (4096 steps, 4 heads: 268 MB per item and layer in float32), so a longer input is refused
with a ValueError instead of exhausting the memory. 4096 steps are 41 s of 10 ms audio frames;
extraction keeps features below it (``max_frames`` pools LLD sequences, ``scenesense predict``
cuts long media into windows)."""


def validate_sequence_input(x: Tensor, mask: Tensor | None, in_dim: int) -> Tensor:
    """Check a sequence input and return its mask as booleans.

    Args:
        x: ``[B, T, in_dim]`` sequence.
        mask: ``[B, T]`` True = real step, or ``None`` (every step real).
        in_dim: expected feature size.

    Returns:
        ``[B, T]`` bool mask.

    Raises:
        ValueError: if ``x`` is not a ``[B, T, in_dim]`` sequence, is longer than
            `MAX_SEQUENCE_STEPS` or the mask does not match it.
    """
    if x.dim() != 3:
        raise ValueError(
            f"this encoder takes sequences [B, T, {in_dim}] but got shape {tuple(x.shape)}; "
            "use a vector encoder (e.g. 'linear') for [B, D] features"
        )
    if x.shape[-1] != in_dim:
        raise ValueError(f"expected feature size {in_dim}, got input of shape {tuple(x.shape)}")
    if x.shape[1] > MAX_SEQUENCE_STEPS:
        raise ValueError(
            f"sequence of {x.shape[1]} steps is longer than the {MAX_SEQUENCE_STEPS} a sequence encoder "
            "accepts (attention memory grows with the square of the length); pool the features "
            "(e.g. max_frames of the LLD extractors) or cut long media into windows"
        )
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match input [B, T] = {tuple(x.shape[:2])}")
    return mask if mask.dtype == torch.bool else mask != 0


def validate_vector_input(x: Tensor, in_dim: int) -> None:
    """Check a vector input.

    Args:
        x: ``[B, in_dim]`` vectors.
        in_dim: expected feature size.

    Raises:
        ValueError: if ``x`` is not ``[B, in_dim]``.
    """
    if x.dim() != 2:
        raise ValueError(
            f"this encoder takes vectors [B, {in_dim}] but got shape {tuple(x.shape)}; "
            "use a sequence encoder (e.g. 'transformer') for [B, T, D] features"
        )
    if x.shape[-1] != in_dim:
        raise ValueError(f"expected feature size {in_dim}, got input of shape {tuple(x.shape)}")


class ModalityEncoder(nn.Module, ABC):
    """Encodes one modality's features into a sequence and/or a pooled vector.

    Subclasses set the class attribute ``input_kind`` (``"sequence"`` for ``[B, T, D]``
    inputs, ``"vector"`` for ``[B, D]``), set ``self.out_dim`` in ``__init__`` and register
    themselves in `ENCODERS`. They never assume a modality.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]]
    out_dim: int

    @abstractmethod
    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode a batch.

        Args:
            x: ``[B, T, D]`` (sequence encoders) or ``[B, D]`` (vector encoders).
            mask: ``[B, T]`` booleans, True = real step; ignored by vector encoders.

        Returns:
            `scenesense.types.EncoderOutput` with ``pooled`` ``[B, out_dim]``.
        """


ENCODERS: Registry[type[ModalityEncoder]] = Registry("encoder")
"""Every encoder class by name; `scenesense.encoders` imports each module that registers one."""
