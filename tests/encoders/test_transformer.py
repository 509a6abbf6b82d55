from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.encoders.transformer import TransformerSequenceEncoder
from scenesense.layers.pooling import masked_mean


def _encoder(**kwargs) -> TransformerSequenceEncoder:
    torch.manual_seed(0)
    base = {"in_dim": 6, "out_dim": 8, "num_layers": 1, "num_heads": 2, "dim_feedforward": 16, "dropout": 0.0}
    return TransformerSequenceEncoder(**{**base, **kwargs}).eval()


def _hidden(enc: TransformerSequenceEncoder, x, mask):
    return enc.encoder(enc.positional(enc.input_proj(x)), src_key_padding_mask=~mask)


def test_heads_must_divide_a_given_d_model():
    with pytest.raises(ValueError, match="d_model 10 is not divisible by num_heads 4"):
        TransformerSequenceEncoder(300, d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="d_model must be >= 1, got 0"):
        TransformerSequenceEncoder(300, d_model=0, num_heads=4)


def test_the_default_width_is_the_input_size_rounded_up_to_the_heads():
    assert TransformerSequenceEncoder(384, num_heads=4).d_model == 384  # the paper's width, no projection
    assert isinstance(TransformerSequenceEncoder(384, num_heads=4).input_proj, torch.nn.Identity)
    enc = TransformerSequenceEncoder(25, out_dim=8, num_heads=4, num_layers=1)  # eGeMAPS LLDs
    assert enc.d_model == 28 and (enc.input_proj.in_features, enc.input_proj.out_features) == (25, 28)
    assert enc(torch.randn(2, 5, 25)).pooled.shape == (2, 8)
    assert TransformerSequenceEncoder(300, num_heads=7).d_model == 301


def test_input_projection_only_when_d_model_differs():
    assert isinstance(_encoder().input_proj, torch.nn.Identity)
    proj = _encoder(d_model=4).input_proj
    assert (proj.in_features, proj.out_features) == (6, 4)


def test_plain_pooled_is_projection_of_masked_mean():
    enc = _encoder()
    x, mask = torch.randn(2, 4, 6), torch.tensor([[True, True, True, False], [True, False, False, False]])
    h = _hidden(enc, x, mask)
    assert_close(enc(x, mask).pooled, enc.out_proj(masked_mean(h, mask)), atol=1e-5, rtol=1e-5)


def test_residual_formula():
    enc = _encoder(use_residual=True)
    x, mask = torch.randn(2, 4, 6), torch.tensor([[True, True, True, False], [True, True, False, False]])
    h = _hidden(enc, x, mask)
    expected_pooled = enc.norm(enc.out_proj(masked_mean(h, mask)) + enc.residual_proj(masked_mean(x, mask)))
    expected_seq = enc.norm(enc.out_proj(h) + enc.residual_proj(x)) * mask.unsqueeze(-1)
    out = enc(x, mask)
    assert_close(out.pooled, expected_pooled, atol=1e-5, rtol=1e-5)
    assert_close(out.sequence, expected_seq, atol=1e-5, rtol=1e-5)


def test_positions_matter():
    # without positional encoding a transformer + mean pooling is invariant to step order
    enc = _encoder()
    x = torch.randn(1, 5, 6)
    assert not torch.allclose(enc(x).pooled, enc(x.flip(1)).pooled, atol=1e-4)


@pytest.mark.parametrize("use_residual", [False, True])
def test_last_pooling_is_the_last_real_step(use_residual: bool):
    enc = _encoder(pooling="last", use_residual=use_residual)
    x, mask = torch.randn(3, 4, 6), torch.tensor([[True, True, True, False], [True, False, False, False],
                                                   [False, False, False, False]])
    out = enc(x, mask)
    assert_close(out.pooled[0], out.sequence[0, 2])
    assert_close(out.pooled[1], out.sequence[1, 0])
    assert_close(out.pooled[2], torch.zeros(8))  # no real step: zeros
    # the same sample without any padding gives the same final state
    assert_close(enc(x[:1, :3]).pooled, out.pooled[:1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.pooled[0], _encoder(use_residual=use_residual)(x, mask).pooled[0])


def test_unknown_pooling():
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'last', got 'max'"):
        _encoder(pooling="max")


def test_a_sequence_longer_than_the_bound_is_refused_before_attention(monkeypatch):
    """No O(T^2) attention matrix past MAX_SEQUENCE_STEPS: a ValueError naming the bound instead."""
    from scenesense.encoders.base import MAX_SEQUENCE_STEPS

    enc = _encoder()
    at_bound = enc(torch.zeros(1, MAX_SEQUENCE_STEPS, 6))
    assert at_bound.sequence.shape == (1, MAX_SEQUENCE_STEPS, 8)
    with pytest.raises(ValueError, match=f"sequence of {MAX_SEQUENCE_STEPS + 1} steps is longer than the "
                                         f"{MAX_SEQUENCE_STEPS} a sequence encoder accepts"):
        enc(torch.zeros(1, MAX_SEQUENCE_STEPS + 1, 6))
    monkeypatch.setattr("scenesense.encoders.base.MAX_SEQUENCE_STEPS", 10)  # the bound is read when called
    with pytest.raises(ValueError, match="sequence of 11 steps is longer than the 10"):
        enc(torch.zeros(2, 11, 6), torch.ones(2, 11, dtype=torch.bool))
