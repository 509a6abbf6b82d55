from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.layers.pooling import masked_mean, segment_means


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


NAN = float("nan")


def test_segment_means_exact_values_with_padding():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, NAN], [1.0, NAN, 3.0, 7.0, NAN, NAN]]).unsqueeze(-1)
    mask = torch.tensor([[True] * 5 + [False], [True, False, True, True, False, False]])
    # row 0 (L=5), K=2: steps 0..1 and 2..4; K=3: steps 0..0, 1..2, 3..4
    # row 1 (L=3, real steps 1, 3, 7 at positions 0, 2, 3), K=2: (1), (3, 7); K=3: (1), (3), (7)
    assert_close(segment_means(x, mask, 2), torch.tensor([[[1.5], [4.0]], [[1.0], [5.0]]]))
    assert_close(segment_means(x, mask, 3), torch.tensor([[[1.0], [2.5], [4.5]], [[1.0], [3.0], [7.0]]]))


def test_segment_means_short_rows_repeat_steps_and_empty_rows_are_zero():
    x = torch.tensor([[10.0, 20.0, NAN], [5.0, NAN, NAN], [NAN, NAN, NAN]]).unsqueeze(-1)  # [3, 3, 1]
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    # row 0 (L=2 < K=3): segments 0..-1 (empty -> step 0), 0..0, 1..1; row 1 (L=1): step 0 in each
    expected = torch.tensor([[10.0, 10.0, 20.0], [5.0, 5.0, 5.0], [0.0, 0.0, 0.0]]).unsqueeze(-1)
    assert_close(segment_means(x, mask, 3), expected)
    assert_close(segment_means(x, mask, 5)[0, :, 0], torch.tensor([10.0, 10.0, 10.0, 20.0, 20.0]))


def test_segment_means_with_one_segment_per_step_is_the_sequence():
    x = torch.randn(2, 4, 3)
    assert_close(segment_means(x, None, 4), x)
    assert_close(segment_means(x, torch.ones(2, 4, dtype=torch.int64), 4), x)
    assert_close(segment_means(x, None, 1), masked_mean(x).unsqueeze(1))


def test_segment_means_gradient_only_reaches_real_steps():
    x = torch.randn(1, 4, 2, requires_grad=True)
    segment_means(x, torch.tensor([[True, False, True, True]]), 2).sum().backward()
    # L=3, K=2: segment 0 = step 0 (weight 1), segment 1 = steps at positions 2, 3 (weight 1/2 each)
    assert_close(x.grad[0, :, 0], torch.tensor([1.0, 0.0, 0.5, 0.5]))


def test_segment_means_errors():
    with pytest.raises(ValueError, match=r"mask shape \(2, 4\)"):
        segment_means(torch.zeros(2, 3, 1), torch.ones(2, 4, dtype=torch.bool), 2)
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
        segment_means(torch.zeros(2, 3), None, 2)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="segments must be an int >= 1"):
            segment_means(torch.zeros(2, 3, 1), None, bad)
