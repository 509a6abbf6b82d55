from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.layers.pooling import masked_mean


def test_masked_mean_exact_values():
    x = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]]
    )  # [2, 3, 2]
    mask = torch.tensor([[True, True, False], [True, False, True]])
    # row 0: mean of (1,2),(3,4) = (2,3); row 1: mean of (5,6),(9,10) = (7,8)
    assert_close(masked_mean(x, mask), torch.tensor([[2.0, 3.0], [7.0, 8.0]]))


def test_masked_mean_empty_row_is_zero_and_padding_never_leaks():
    x = torch.tensor(
        [[[float("nan"), float("inf")], [1.0, 1.0]], [[2.0, 4.0], [float("-inf"), float("nan")]]]
    )
    mask = torch.tensor([[False, False], [True, False]])
    out = masked_mean(x, mask)
    assert_close(out, torch.tensor([[0.0, 0.0], [2.0, 4.0]]))


def test_masked_mean_none_mask_and_int_mask():
    x = torch.arange(12, dtype=torch.float32).view(2, 3, 2)
    assert_close(masked_mean(x), x.mean(dim=1))
    assert_close(masked_mean(x, torch.tensor([[1, 0, 0], [0, 0, 1]])), torch.stack([x[0, 0], x[1, 2]]))


def test_masked_mean_gradient_only_reaches_real_steps():
    x = torch.randn(1, 3, 2, requires_grad=True)
    masked_mean(x, torch.tensor([[True, False, True]])).sum().backward()
    assert_close(x.grad, torch.tensor([[[0.5, 0.5], [0.0, 0.0], [0.5, 0.5]]]))


def test_masked_mean_shape_errors():
    with pytest.raises(ValueError, match=r"mask shape \(2, 4\)"):
        masked_mean(torch.zeros(2, 3, 1), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
        masked_mean(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))
