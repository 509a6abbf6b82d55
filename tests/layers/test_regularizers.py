"""TMT's regularisers against direct NumPy computations of the published formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scenesense.layers.regularizers import decorrelation_loss, mmd_loss


def _decorrelation_numpy(x1: np.ndarray, x2: np.ndarray) -> float:
    """Centre over the batch, divide each row by (its L2 norm + 1e-6), mean of squared entries of X1^T X2."""
    a = x1 - x1.mean(axis=0, keepdims=True)
    b = x2 - x2.mean(axis=0, keepdims=True)
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-6)
    b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-6)
    return float(np.mean((a.T @ b) ** 2))


def _mmd_numpy(x: np.ndarray, y: np.ndarray, kernels: int = 5, mul: float = 2.0) -> float:
    """Sum of Gaussian kernels, bandwidths around the mean off-diagonal squared distance; mean(XX + YY - XY - YX)."""
    z = np.concatenate([x, y])
    n = len(z)
    d = ((z[None, :, :] - z[:, None, :]) ** 2).sum(-1)
    bandwidth = d.sum() / (n * n - n) / mul ** (kernels // 2)
    k = sum(np.exp(-d / (bandwidth * mul**i)) for i in range(kernels))
    b = len(x)
    return float(np.mean(k[:b, :b] + k[b:, b:] - k[:b, b:] - k[b:, :b]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decorrelation_matches_the_published_formula(seed):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(7, 5)), rng.normal(size=(7, 3)) + rng.normal(size=(7, 1))
    got = decorrelation_loss(torch.tensor(x1), torch.tensor(x2))
    assert float(got) == pytest.approx(_decorrelation_numpy(x1, x2), rel=1e-12)


def test_decorrelation_is_zero_for_orthogonal_centred_features_and_one_for_identical_rows():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = torch.tensor([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])  # feature 1 of y = feature 2 of x
    assert float(decorrelation_loss(x[:2], torch.tensor([[0.0], [0.0]]))) == 0.0
    # X1n^T X2n = [[0, 2], [2, 0]] (unit rows): mean of squares 2
    assert float(decorrelation_loss(x, y)) == pytest.approx(2.0, rel=1e-5)


def test_decorrelation_treats_the_row_norm_as_a_constant():
    torch.manual_seed(0)
    x1, x2 = torch.randn(6, 4, requires_grad=True), torch.randn(6, 3)
    decorrelation_loss(x1, x2).backward()
    centred = x1.detach() - x1.detach().mean(dim=0, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True) + 1e-6  # a constant
    leaf = x1.detach().clone().requires_grad_()
    c2 = x2 - x2.mean(dim=0, keepdim=True)
    c2 = c2 / (c2.norm(dim=1, keepdim=True) + 1e-6)
    (((leaf - leaf.mean(dim=0, keepdim=True)) / norm).t() @ c2).pow(2).mean().backward()
    torch.testing.assert_close(x1.grad, leaf.grad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mmd_matches_the_published_formula(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) + 0.5
    assert float(mmd_loss(torch.tensor(x), torch.tensor(y))) == pytest.approx(_mmd_numpy(x, y), rel=1e-12)


def test_mmd_of_a_sample_with_itself_is_zero_and_grows_with_a_shift():
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    assert abs(float(mmd_loss(x, x.clone()))) < 1e-12
    assert float(mmd_loss(x, x + 0.5)) < float(mmd_loss(x, x + 2.0))


def test_degenerate_inputs_give_zero_not_nan():
    assert float(mmd_loss(torch.zeros(0, 3), torch.randn(2, 3))) == 0.0
    assert float(mmd_loss(torch.ones(3, 2), torch.ones(3, 2))) == 0.0  # every point the same
    assert float(decorrelation_loss(torch.zeros(0, 3), torch.zeros(0, 2))) == 0.0
    assert float(decorrelation_loss(torch.randn(1, 3), torch.randn(1, 2))) == 0.0  # one row centres to 0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[N, d1\]"):
        decorrelation_loss(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        mmd_loss(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="kernels"):
        mmd_loss(torch.zeros(3, 2), torch.zeros(3, 2), kernels=0)
    with pytest.raises(ValueError, match="same N"):
        mmd_loss(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(3, dtype=torch.bool))


def test_a_mask_leaves_rows_out_exactly_as_selecting_them():
    torch.manual_seed(0)
    x1, x2, y = torch.randn(7, 4), torch.randn(7, 3), torch.randn(7, 4) + 1
    mask = torch.tensor([True, False, True, True, False, True, True])
    assert_close = torch.testing.assert_close
    assert_close(decorrelation_loss(x1, x2, mask), decorrelation_loss(x1[mask], x2[mask]))
    assert_close(mmd_loss(x1, y, mask), mmd_loss(x1[mask], y[mask]))
    none = torch.zeros(7, dtype=torch.bool)
    assert float(decorrelation_loss(x1, x2, none)) == 0.0 and float(mmd_loss(x1, y, none)) == 0.0
    one = torch.arange(7) == 2
    assert float(mmd_loss(x1, y, one)) == pytest.approx(float(mmd_loss(x1[one], y[one])))


def test_gradients_do_not_reach_rows_left_out():
    x1 = torch.randn(5, 3, requires_grad=True)
    y = torch.randn(5, 3)
    mask = torch.tensor([True, True, False, True, True])
    (decorrelation_loss(x1, y, mask) + mmd_loss(x1, y, mask)).backward()
    assert float(x1.grad[2].abs().sum()) == 0.0 and float(x1.grad.abs().sum()) > 0
