"""Adaptive Modality Weighting's normalisation: a softmax over the modality axis, per feature."""

from __future__ import annotations

import torch
from torch import Tensor


def modality_softmax(logits: Tensor, present: Tensor | None = None) -> Tensor:
    """Weights that sum to 1 over the modalities, separately for every other index.

    Absent modalities are left out of their row's softmax (weight 0), so the present ones share
    the weight; a row with no modality present uses every modality (its inputs are all hidden,
    so what it weights is zero anyway).

    Args:
        logits: ``[B, M, ..., d]`` scores; axis 1 is the modality axis (e.g. ``[B, M, d]`` per
            sample, ``[B, M, S, d]`` per step or token).
        present: ``[B, M]`` booleans, False = modality absent for that row (``None``: all present).

    Returns:
        ``[B, M, ..., d]`` weights, each ``[b, :, ...]`` slice summing to 1.
    """
    if present is None:
        return torch.softmax(logits, dim=1)
    if present.shape != logits.shape[:2]:
        raise ValueError(f"present must be [B, M] = {list(logits.shape[:2])}, got {list(present.shape)}")
    keep = present | ~present.any(dim=1, keepdim=True)  # a row with none present: keep all
    keep = keep.view(*keep.shape, *([1] * (logits.dim() - 2)))  # [B, M, 1, ..., 1]
    return torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=1)
