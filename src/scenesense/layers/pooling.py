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


def segment_means(x: Tensor, mask: Tensor | None, segments: int) -> Tensor:
    """Split each row's real steps into ``segments`` contiguous parts by relative position and
    average each part.

    Real steps are numbered ``0 .. L-1`` in order (padding is skipped wherever it sits). Segment
    ``k`` of ``K = segments`` covers steps ``floor(k*L/K) .. floor((k+1)*L/K) - 1``, so the parts
    are near-equal and two sequences of different lengths are cut at the same fractions of their
    length. A row shorter than ``K`` (``L < K``) would leave some segments empty: such a segment
    takes the single step ``floor(k*L/K)`` instead, so every segment of a row with a real step
    holds at least one and steps repeat (a one-step row gives that step in every segment). With
    ``L = K`` segment ``k`` is exactly step ``k``. Padded steps are never read (NaN or inf there
    does not leak), and a row without any real step gives zero vectors.

    Args:
        x: ``[B, T, D]`` sequence.
        mask: ``[B, T]`` booleans, True = real step; ``None`` means every step is real.
        segments: number of segments ``K`` (int >= 1).

    Returns:
        ``[B, K, D]`` mean of each segment's real steps (zeros for rows without any).

    Raises:
        ValueError: if the shapes of ``x`` and ``mask`` disagree or ``segments`` is not an int >= 1.
    """
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"segments must be an int >= 1, got {segments!r}")
    if mask is None:
        if x.dim() != 3:
            raise ValueError(f"expected x of shape [B, T, D], got {tuple(x.shape)}")
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    mask = _validate_mask(x, mask)
    rank = (mask.cumsum(dim=1) - 1).unsqueeze(1)  # [B, 1, T] index of each real step
    length = mask.sum(dim=1, keepdim=True)  # [B, 1]
    k = torch.arange(segments, device=x.device).unsqueeze(0)  # [1, K]
    start = (k * length // segments).unsqueeze(-1)  # [B, K, 1]
    end = ((k + 1) * length // segments).unsqueeze(-1)  # [B, K, 1]
    inside = (rank >= start) & ((rank < end) | (rank == start))  # [B, K, T]; empty -> step `start`
    member = (inside & mask.unsqueeze(1)).to(x.dtype)  # [B, K, T]
    clean = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    count = member.sum(dim=-1, keepdim=True).clamp_min(1)  # [B, K, 1]
    return torch.bmm(member, clean) / count
