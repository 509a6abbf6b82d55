"""Pooling over the time axis that honours padding masks."""

from __future__ import annotations

import torch
from torch import Tensor


def _validate_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Return ``mask`` as a bool tensor after checking it matches ``x`` ``[B, T, D]``."""
    if x.dim() != 3:
        raise ValueError(f"expected x of shape [B, T, D], got {tuple(x.shape)}")
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match x shape [B, T] = {tuple(x.shape[:2])}"
        )
    return mask if mask.dtype == torch.bool else mask != 0


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Average the real steps of each row.

    Padded steps are never read (even NaN or inf there does not leak), and a row with no
    real step gives a zero vector, never NaN.

    Args:
        x: ``[B, T, D]`` sequence.
        mask: ``[B, T]`` booleans, True = real step; ``None`` means every step is real.

    Returns:
        ``[B, D]`` mean over the real steps of each row (zeros for rows without any).

    Raises:
        ValueError: if the shapes of ``x`` and ``mask`` disagree.
    """
    if mask is None:
        if x.dim() != 3:
            raise ValueError(f"expected x of shape [B, T, D], got {tuple(x.shape)}")
        return x.mean(dim=1)
    mask = _validate_mask(x, mask)
    keep = mask.unsqueeze(-1)  # [B, T, 1]
    total = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)  # [B, D]
    count = keep.sum(dim=1).clamp_min(1).to(x.dtype)  # [B, 1]
    return total / count
