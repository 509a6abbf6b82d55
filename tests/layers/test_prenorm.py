"""PreNormTransformer: one layer against a direct computation, masks, cross-attention."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.layers.prenorm import PreNormTransformer


def _direct_layer(block: PreNormTransformer, x, source, allowed):
    """One layer written out: separate LayerNorms for q, k, v, softmax(q k^T / sqrt(dh)), FFN with GELU."""
    att, ff = block.attention[0], block.feedforward[0]
    h, dh = att.heads, att.head_dim
    q = att.to_q(att.norm_q(x)).view(x.shape[0], -1, h, dh).transpose(1, 2)
    k = att.to_k(att.norm_k(source)).view(x.shape[0], -1, h, dh).transpose(1, 2)
    v = att.to_v(att.norm_v(source)).view(x.shape[0], -1, h, dh).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
    scores = scores.masked_fill(~allowed[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], h * dh)
    x = x + att.out(out)
    norm, lin1, _, _, lin2, _ = ff
    return x + lin2(torch.nn.functional.gelu(lin1(norm(x))))


def test_one_layer_matches_the_direct_computation_with_cross_attention_and_a_mask():
    torch.manual_seed(0)
    block = PreNormTransformer(dim=6, depth=1, heads=2, head_dim=5, mlp_dim=7, dropout=0.0).eval()
    x, source = torch.randn(2, 3, 6), torch.randn(2, 4, 6)
    allowed = torch.tensor([[True, True, False, False], [True, True, True, True]])
    assert_close(block(x, source, allowed), _direct_layer(block, x, source, allowed))
    assert_close(block(x), _direct_layer(block, x, x, torch.ones(2, 3, dtype=torch.bool)))


def test_keys_that_may_not_be_attended_to_change_nothing():
    torch.manual_seed(0)
    block = PreNormTransformer(dim=8, depth=2, heads=2, head_dim=4, mlp_dim=16, dropout=0.0).eval()
    x, source = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    allowed = torch.tensor([[True, True, True, False, False], [True] * 5])
    noisy = source.clone()
    noisy[0, 3:] = 1e4
    assert_close(block(x, source, allowed), block(x, noisy, allowed))
    assert not torch.allclose(block(x, source), block(x, noisy))  # without the mask they matter


@pytest.mark.parametrize(("name", "value"), [("depth", 0), ("heads", 0), ("head_dim", 1.5), ("mlp_dim", True)])
def test_bad_sizes_are_refused(name, value):
    sizes = {"dim": 4, "depth": 1, "heads": 1, "head_dim": 4, "mlp_dim": 4} | {name: value}
    with pytest.raises(ValueError, match=name):
        PreNormTransformer(**sizes, dropout=0.0)


def test_dropout_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        PreNormTransformer(4, 1, 1, 4, 4, dropout=1.0)
