"""Representation regularisers of disentangling models (TMT): decorrelation and multi-kernel MMD."""

from __future__ import annotations

import torch
from torch import Tensor


def _row_weights(mask: Tensor | None, x: Tensor) -> Tensor:
    """``[N, 1]`` float weights: 1 for the rows ``mask`` ``[N]`` selects (all without a mask), else 0."""
    if mask is None:
        return torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    if mask.shape != x.shape[:1]:
        raise ValueError(f"mask must be [N] = [{x.shape[0]}], got {list(mask.shape)}")
    return mask.to(x.dtype).unsqueeze(1)


def decorrelation_loss(x1: Tensor, x2: Tensor, mask: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """How correlated two sets of per-sample vectors are, as TMT's orthogonality loss.

    Over the rows ``mask`` selects, each input is centred over the batch, each row divided by its
    L2 norm (the norm is treated as a constant, no gradient flows through it; ``eps`` is added to
    it), and the result is the mean of the squared entries of ``X1^T X2`` ``[d1, d2]``. It is 0 when
    every feature of one set is uncorrelated with every feature of the other. Unselected rows are
    left out exactly as if they were not there (no data-dependent shapes, so the model exports).

    Args:
        x1: ``[N, d1]``.
        x2: ``[N, d2]``, the same ``N`` samples.
        mask: ``[N]`` booleans, True = the row takes part (``None``: every row).
        eps: added to each row norm.

    Returns:
        Scalar tensor (0 when fewer than 2 rows take part).

    Raises:
        ValueError: if the inputs are not 2-D with the same ``N``, or the mask is not ``[N]``.
    """
    if x1.dim() != 2 or x2.dim() != 2 or x1.shape[0] != x2.shape[0]:
        raise ValueError(f"expected [N, d1] and [N, d2], got {tuple(x1.shape)} and {tuple(x2.shape)}")
    w = _row_weights(mask, x1)  # [N, 1]
    count = w.sum().clamp_min(1.0)
    normed = []
    for x in (x1, x2):
        centred = (x - (x * w).sum(dim=0, keepdim=True) / count) * w  # unselected rows: 0
        norm = centred.norm(p=2, dim=1, keepdim=True).detach()  # [N, 1]
        normed.append(centred / (norm + eps))
    return (normed[0].t() @ normed[1]).pow(2).mean()


def mmd_loss(x: Tensor, y: Tensor, mask: Tensor | None = None, kernels: int = 5,
             multiplier: float = 2.0) -> Tensor:
    """Maximum mean discrepancy between two samples under a sum of Gaussian kernels.

    With ``Z = [x; y]`` (``n = N + M`` rows) and pairwise squared distances ``D``, the middle
    bandwidth is the mean off-diagonal distance ``sum(D) / (n^2 - n)`` (a constant, no gradient);
    the ``kernels`` bandwidths are it times ``multiplier^(i - kernels // 2)``, and
    ``K = sum_i exp(-D / bandwidth_i)``. The loss is ``mean(K_xx) + mean(K_yy) - 2 mean(K_xy)``
    (for ``N = M`` exactly ``mean(K_xx + K_yy - K_xy - K_yx)``, TMT's similarity loss). With a
    ``mask`` (paired samples, ``N = M``), only the selected rows of both take part, exactly as if
    the others were not there.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        mask: ``[N]`` booleans selecting rows of both ``x`` and ``y`` (needs ``N = M``; ``None``: all).
        kernels: number of Gaussian kernels (>= 1).
        multiplier: ratio between neighbouring bandwidths (> 0).

    Returns:
        Scalar tensor (0 when a sample is empty or every point coincides).

    Raises:
        ValueError: if the inputs are not 2-D with the same ``d`` (and ``N = M`` with a mask), or a
            kernel setting is invalid.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected [N, d] and [M, d], got {tuple(x.shape)} and {tuple(y.shape)}")
    if kernels < 1 or not multiplier > 0:
        raise ValueError(f"need kernels >= 1 and multiplier > 0, got {kernels} and {multiplier}")
    if mask is not None and x.shape[0] != y.shape[0]:
        raise ValueError(f"a mask pairs the rows of x and y, so they need the same N, got {x.shape[0]} and {y.shape[0]}")
    n_x = x.shape[0]
    if n_x == 0 or y.shape[0] == 0:
        return x.new_zeros(())
    wx, wy = _row_weights(mask, x)[:, 0], _row_weights(mask, y)[:, 0]
    w = torch.cat([wx, wy])  # [n]
    z = torch.cat([x, y], dim=0)  # [n, d]
    distances = (z.unsqueeze(0) - z.unsqueeze(1)).pow(2).sum(dim=-1)  # [n, n]
    pairs = w.unsqueeze(0) * w.unsqueeze(1)  # [n, n]: 1 where both rows take part
    taken = w.sum()
    middle = (distances.detach() * pairs).sum() / (taken * taken - taken).clamp_min(1.0)
    valid = middle > 0  # False: every point the same, or fewer than 2 points
    low = torch.where(valid, middle, torch.ones_like(middle)) / multiplier ** (kernels // 2)
    k = sum(torch.exp(-distances / (low * multiplier**i)) for i in range(kernels))
    assert isinstance(k, Tensor)
    nx, ny = wx.sum().clamp_min(1.0), wy.sum().clamp_min(1.0)
    xx = (k[:n_x, :n_x] * pairs[:n_x, :n_x]).sum() / (nx * nx)
    yy = (k[n_x:, n_x:] * pairs[n_x:, n_x:]).sum() / (ny * ny)
    xy = (k[:n_x, n_x:] * pairs[:n_x, n_x:]).sum() / (nx * ny)
    return torch.where(valid, xx + yy - 2 * xy, torch.zeros_like(middle))
