"""Contract tests run over every registered fusion (tiny sizes, CPU)."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.testing import assert_close

from scenesense.config import ComponentConfig
from scenesense.fusions import FUSIONS
from scenesense.layers.pooling import masked_mean
from scenesense.models.builders import build_fusion
from scenesense.types import EncoderOutput, FusionOutput

B = 3
DIMS = {"audio": 6, "text": 8, "vision": 8}
LENGTHS = {"text": (4, 2, 3), "vision": (5, 5, 1)}  # max lengths 4 and 5
NUM_CLASSES = 3
MODALITY_SETS = {"bimodal": ("text", "vision"), "trimodal": ("audio", "text", "vision")}
VARIANTS = {  # modes with their own path
    "amw[temporal]": ("amw", {"mode": "temporal", "segments": 3}),
    **{f"tmt[{mode}]": ("tmt", {"amw": mode, "dim": 16, "head_dim": 4}) for mode in ("static", "sample", "temporal")},
}
CASES = [pytest.param(n, s, id=f"{n}-{s}") for n in [*FUSIONS.names(), *VARIANTS] for s in MODALITY_SETS]


def _fusion(name: str, modalities: tuple[str, ...]):
    torch.manual_seed(0)
    name, extra = VARIANTS.get(name, (name, {}))
    accepted = inspect.signature(FUSIONS.get(name)).parameters
    params = {k: v for k, v in {"num_heads": 2, "dropout": 0.0}.items() if k in accepted} | extra
    dims = {m: DIMS[m] for m in modalities}
    seqs = [m for m in modalities if m in LENGTHS]
    return build_fusion(ComponentConfig(name, params), dims, seqs, NUM_CLASSES).eval()


def _encoded(modalities: tuple[str, ...], seed: int = 0) -> dict[str, EncoderOutput]:
    """Encoder-like outputs: zero padded sequences, masks and masked-mean pooled vectors."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in modalities:
        if m not in LENGTHS:
            out[m] = EncoderOutput(None, torch.randn(B, DIMS[m], generator=g), None)
            continue
        lengths = torch.tensor(LENGTHS[m])
        mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        seq = torch.randn(B, mask.shape[1], DIMS[m], generator=g) * mask.unsqueeze(-1)
        out[m] = EncoderOutput(seq, masked_mean(seq, mask), mask)
    return out


def _absent(out: EncoderOutput, row: int) -> EncoderOutput:
    """The same output with modality absent for ``row`` (as the classifier hides it)."""
    pooled = out.pooled.clone()
    pooled[row] = 0
    if out.sequence is None:
        return EncoderOutput(None, pooled, None)
    seq, mask = out.sequence.clone(), out.mask.clone()
    seq[row], mask[row] = 0, False
    return EncoderOutput(seq, pooled, mask)


@pytest.mark.parametrize(("name", "modality_set"), CASES)
def test_shapes_out_dim_and_no_nan(name, modality_set):
    fusion = _fusion(name, MODALITY_SETS[modality_set])
    out = fusion(_encoded(MODALITY_SETS[modality_set]))
    assert isinstance(out, FusionOutput)
    assert fusion.level in ("pooled", "sequence", "decision")
    assert out.fused.shape == (B, fusion.out_dim)
    assert torch.isfinite(out.fused).all()
    for weights in (out.attention or {}).values():
        assert weights.shape[0] == B
        assert torch.isfinite(weights).all()


@pytest.mark.parametrize(("name", "modality_set"), CASES)
def test_gradients_reach_every_parameter_and_modality(name, modality_set):
    modalities = MODALITY_SETS[modality_set]
    fusion = _fusion(name, modalities).train()
    encoded = _encoded(modalities)
    leaves = {
        m: [t.requires_grad_() for t in (out.sequence, out.pooled) if t is not None]
        for m, out in encoded.items()
    }
    fused = fusion(encoded).fused
    (fused * torch.randn_like(fused)).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    for m, tensors in leaves.items():  # every modality influences the fused vector
        assert any(t.grad is not None and t.grad.abs().sum() > 0 for t in tensors), m


@pytest.mark.parametrize(("name", "modality_set"), CASES)
def test_invariant_to_input_dict_order(name, modality_set):
    modalities = MODALITY_SETS[modality_set]
    fusion = _fusion(name, modalities)
    encoded = _encoded(modalities)
    reordered = {m: encoded[m] for m in reversed(modalities)}
    assert list(reordered) != list(encoded)
    assert torch.equal(fusion(encoded).fused, fusion(reordered).fused)


@pytest.mark.parametrize(("name", "modality_set"), CASES)
def test_masked_steps_are_irrelevant(name, modality_set):
    modalities = MODALITY_SETS[modality_set]
    fusion = _fusion(name, modalities)
    encoded = _encoded(modalities)
    noisy = dict(encoded)
    for m in LENGTHS:
        seq, pooled, mask, _ = encoded[m]
        noisy[m] = EncoderOutput(
            torch.where(mask.unsqueeze(-1), seq, 1e3 * torch.randn_like(seq)), pooled, mask
        )
    assert_close(fusion(encoded).fused, fusion(noisy).fused)


@pytest.mark.parametrize(("name", "modality_set"), CASES)
def test_missing_or_unexpected_modality_raises(name, modality_set):
    modalities = MODALITY_SETS[modality_set]
    fusion = _fusion(name, modalities)
    encoded = _encoded(modalities)
    del encoded["text"]
    with pytest.raises((KeyError, ValueError), match="'text'"):
        fusion(encoded)
    if "audio" not in modalities:
        with pytest.raises(ValueError, match="audio"):
            fusion({**_encoded(modalities), **_encoded(("audio",))})


@pytest.mark.parametrize(("name", "modality_set"), CASES)
@pytest.mark.parametrize("absent", ["text", "vision"])
def test_rows_with_an_absent_modality_are_finite(name, modality_set, absent):
    modalities = MODALITY_SETS[modality_set]
    fusion = _fusion(name, modalities)
    encoded = _encoded(modalities)
    encoded[absent] = _absent(encoded[absent], row=0)
    fused = fusion(encoded).fused
    assert torch.isfinite(fused).all()
    if fused.requires_grad:
        fused.sum().backward()
        for p in fusion.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()
