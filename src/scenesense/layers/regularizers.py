"""Representation regularisers of disentangling models (TMT): decorrelation and multi-kernel MMD."""

from __future__ import annotations

import torch
from torch import Tensor


def decorrelation_loss(x1: Tensor, x2: Tensor, eps: float = 1e-6) -> Tensor:
    """How correlated two sets of per-sample vectors are, as TMT's orthogonality loss.

    Each input is centred over the batch, each row divided by its L2 norm (the norm is treated as
    a constant, no gradient flows through it; ``eps`` is added to it), and the result is the mean
    of the squared entries of ``X1^T X2`` ``[d1, d2]``. It is 0 when every feature of one set is
    uncorrelated with every feature of the other.

    Args:
        x1: ``[N, d1]``.
        x2: ``[N, d2]``, the same ``N`` samples.
        eps: added to each row norm.

    Returns:
        Scalar tensor (0 for ``N = 0``).

    Raises:
        ValueError: if the inputs are not 2-D with the same ``N``.
    """
    if x1.dim() != 2 or x2.dim() != 2 or x1.shape[0] != x2.shape[0]:
        raise ValueError(f"expected [N, d1] and [N, d2], got {tuple(x1.shape)} and {tuple(x2.shape)}")
    if x1.shape[0] == 0:
        return x1.new_zeros(())
    normed = []
    for x in (x1, x2):
        centred = x - x.mean(dim=0, keepdim=True)
        norm = centred.norm(p=2, dim=1, keepdim=True).detach()  # [N, 1]
        normed.append(centred / (norm + eps))
    return (normed[0].t() @ normed[1]).pow(2).mean()


def mmd_loss(x: Tensor, y: Tensor, kernels: int = 5, multiplier: float = 2.0) -> Tensor:
    """Maximum mean discrepancy between two samples under a sum of Gaussian kernels.

    With ``Z = [x; y]`` (``n = N + M`` rows) and pairwise squared distances ``D``, the middle
    bandwidth is the mean off-diagonal distance ``sum(D) / (n^2 - n)`` (a constant, no gradient);
    the ``kernels`` bandwidths are it times ``multiplier^(i - kernels // 2)``, and
    ``K = sum_i exp(-D / bandwidth_i)``. The loss is ``mean(K_xx) + mean(K_yy) - 2 mean(K_xy)``
    (for ``N = M`` exactly ``mean(K_xx + K_yy - K_xy - K_yx)``, TMT's similarity loss).

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        kernels: number of Gaussian kernels (>= 1).
        multiplier: ratio between neighbouring bandwidths (> 0).

    Returns:
        Scalar tensor (0 when a sample is empty or every point coincides).

    Raises:
        ValueError: if the inputs are not 2-D with the same ``d``, or a kernel setting is invalid.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected [N, d] and [M, d], got {tuple(x.shape)} and {tuple(y.shape)}")
    if kernels < 1 or not multiplier > 0:
        raise ValueError(f"need kernels >= 1 and multiplier > 0, got {kernels} and {multiplier}")
    n_x, n = x.shape[0], x.shape[0] + y.shape[0]
    if x.shape[0] == 0 or y.shape[0] == 0:
        return x.new_zeros(())
    z = torch.cat([x, y], dim=0)  # [n, d]
    distances = (z.unsqueeze(0) - z.unsqueeze(1)).pow(2).sum(dim=-1)  # [n, n]
    middle = distances.detach().sum() / (n * n - n)
    if not middle > 0:  # every point the same (or n = 1): no discrepancy
        return x.new_zeros(())
    low = middle / multiplier ** (kernels // 2)
    k = sum(torch.exp(-distances / (low * multiplier**i)) for i in range(kernels))
    assert isinstance(k, Tensor)
    return k[:n_x, :n_x].mean() + k[n_x:, n_x:].mean() - 2 * k[:n_x, n_x:].mean()
