from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.layers.attention import CrossAttentionBlock, relative_times, unmask_empty_rows


def _identity_block(use_residual: bool = False) -> CrossAttentionBlock:
    """One head of width 2 whose q/k/v/out projections are identities."""
    block = CrossAttentionBlock(2, num_heads=1, use_residual=use_residual).eval()
    with torch.no_grad():
        block.attention.in_proj_weight.copy_(torch.eye(2).repeat(3, 1))
        block.attention.in_proj_bias.zero_()
        block.attention.out_proj.weight.copy_(torch.eye(2))
        block.attention.out_proj.bias.zero_()
    return block


def test_unmask_empty_rows():
    mask = torch.tensor([[False, True, False], [False, False, False]])
    assert unmask_empty_rows(mask).tolist() == [[False, True, False], [True, False, False]]


def test_exact_single_head_attention():
    block = _identity_block()
    # score = q.k / sqrt(2); q = (sqrt2*ln3, 0) -> scores (ln3, 0) vs keys (1,0),(0,2) -> softmax (3/4, 1/4)
    query = torch.tensor([[[math.sqrt(2) * math.log(3), 0.0]]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [50.0, -50.0]]])
    key_mask = torch.tensor([[True, True, False]])
    out, weights = block(query, keys, key_mask)
    assert_close(weights, torch.tensor([[[0.75, 0.25, 0.0]]]))
    # 3/4 * (1, 0) + 1/4 * (0, 2)
    assert_close(out, torch.tensor([[[0.75, 0.5]]]))


def test_exact_residual_adds_query_then_layernorm():
    block = _identity_block(use_residual=True)
    block.norm.eps = 0.0  # LayerNorm of a 2-vector (a, b) is then (sign(a-b), -sign(a-b))
    query = torch.tensor([[[0.0, 3.0]]])
    keys = torch.tensor([[[1.0, 0.0]]])  # single key: attended = (1, 0); + query = (1, 3)
    out, _ = block(query, keys)
    assert_close(out, torch.tensor([[[-1.0, 1.0]]]))


@pytest.mark.parametrize("use_residual", [False, True])
def test_row_without_keys_gives_zero_attention_and_no_nan(use_residual):
    torch.manual_seed(0)
    block = CrossAttentionBlock(4, num_heads=2, use_residual=use_residual).eval()
    query = torch.randn(2, 3, 4)
    key_mask = torch.tensor([[True, False], [False, False]])
    out, weights = block(query, torch.randn(2, 2, 4), key_mask)
    assert torch.isfinite(out).all()
    assert (weights[1] == 0).all()
    expected = torch.nn.functional.layer_norm(query[1], (4,)) if use_residual else torch.zeros(3, 4)
    assert_close(out[1], expected, atol=1e-5, rtol=1e-5)
    assert_close(weights[0].sum(-1), torch.ones(3))


def test_padded_keys_and_queries_do_not_matter():
    torch.manual_seed(0)
    block = CrossAttentionBlock(4, num_heads=2, use_residual=True).eval()
    query, keys = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    key_mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, False]])
    query_mask = torch.tensor([[True, True, False], [True, True, True]])
    out, weights = block(query, keys, key_mask, query_mask)
    noisy_keys = torch.where(key_mask.unsqueeze(-1), keys, torch.full_like(keys, float("inf")))
    noisy_query = torch.where(query_mask.unsqueeze(-1), query, torch.full_like(query, 1e6))
    out2, weights2 = block(noisy_query, noisy_keys, key_mask, query_mask)
    assert_close(out, out2)
    assert_close(weights, weights2)
    assert (out[0, 2] == 0).all()
    assert (weights[:, :, -1] == 0).all()


def test_errors():
    with pytest.raises(ValueError, match="dimension 6 is not divisible by num_heads 4"):
        CrossAttentionBlock(6, num_heads=4)
    block = CrossAttentionBlock(4, num_heads=2)
    with pytest.raises(ValueError, match=r"key_value must have shape \[B, T, 4\]"):
        block(torch.zeros(1, 2, 4), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="key_mask shape"):
        block(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), torch.ones(1, 3, dtype=torch.bool))


def test_relative_times_are_fractions_of_the_true_length():
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    expected = torch.tensor([[0.25, 0.75, 1.25, 1.75], [0.125, 0.375, 0.625, 0.875]])
    torch.testing.assert_close(relative_times(mask), expected)


def test_time_bias_aligns_equal_moments():
    torch.manual_seed(0)
    block = CrossAttentionBlock(4, 2, time_bias=1000.0)
    query, key = torch.randn(1, 3, 4), torch.randn(1, 6, 4)  # key stream at twice the rate
    qmask, kmask = torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)
    _, weights = block(query, key, kmask, qmask, query_times=relative_times(qmask),
                       key_times=relative_times(kmask))
    # query times 1/6, 3/6, 5/6; key times 1/12, 3/12, ...: each query sits between keys 2i and 2i+1
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(3))
    pairs = weights[0].reshape(3, 3, 2).sum(-1)  # mass on the two keys of each query's moment
    torch.testing.assert_close(pairs, torch.eye(3), atol=1e-3, rtol=0)


def test_time_bias_needs_times():
    block = CrossAttentionBlock(4, 2, time_bias=1.0)
    with pytest.raises(ValueError, match="query_times"):
        block(torch.randn(1, 3, 4), torch.randn(1, 3, 4))


def test_feedforward_sublayer_is_applied_per_step():
    torch.manual_seed(0)
    block = CrossAttentionBlock(4, 2, use_residual=True, dim_feedforward=8)
    query, key = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    out, _ = block(query, key)
    plain = CrossAttentionBlock(4, 2, use_residual=True)
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if k.startswith(("attention", "norm"))})
    base, _ = plain(query, key)
    torch.testing.assert_close(out, block.ff_norm(base + block.feedforward(base)))
