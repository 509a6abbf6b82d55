"""Sinusoidal positional encoding ("Attention Is All You Need"), computed on the fly."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(
    length: int,
    dim: int,
    *,
    base: float = 10000.0,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Sinusoidal position table.

    Even channels hold ``sin(pos / base^(2i / dim))``, odd channels the matching cosine.
    There is no maximum length: the table is computed for exactly ``length`` positions.

    Args:
        length: number of positions ``T`` (>= 0).
        dim: number of channels ``D`` (>= 1; odd sizes drop the last cosine channel).
        base: wavelength base.
        device: device of the result.
        dtype: dtype of the result.

    Returns:
        ``[T, D]`` table.

    Raises:
        ValueError: if ``length`` is negative or ``dim`` is not positive.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    position = torch.arange(length, device=device, dtype=torch.float64).unsqueeze(1)  # [T, 1]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float64) * (-math.log(base) / dim)
    )  # [ceil(D / 2)]
    angles = position * freq  # [T, ceil(D / 2)]
    table = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1)  # [T, 2 * ceil(D / 2)]
    return table[:, :dim].to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds a sinusoidal position table to a ``[B, T, D]`` sequence (no parameters, no max length).

    Args:
        dim: channel size ``D`` of the sequences it is applied to.
        base: wavelength base.
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.base = base

    def forward(self, x: Tensor) -> Tensor:
        """Add positions.

        Args:
            x: ``[B, T, D]`` sequence.

        Returns:
            ``[B, T, D]`` ``x`` plus the position table.

        Raises:
            ValueError: if ``x`` is not ``[B, T, dim]``.
        """
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape [B, T, {self.dim}], got {tuple(x.shape)}")
        table = sinusoidal_positions(x.shape[1], self.dim, base=self.base, device=x.device, dtype=x.dtype)
        return x + table.unsqueeze(0)  # [1, T, D] broadcast over the batch

    def extra_repr(self) -> str:  # noqa: D102
        return f"dim={self.dim}, base={self.base}"
