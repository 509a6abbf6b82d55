"""TMT: masks, hidden modalities, AMW inside, the auxiliary losses against the published formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions.tmt import AUX_LOSS_WEIGHTS, TMTFusion
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput
from tests.layers.test_regularizers import _decorrelation_numpy, _mmd_numpy

DIMS = {"audio": 5, "text": 6, "vision": 4}
LENGTHS = {"audio": (4, 2, 3, 1), "text": (3, 3, 1, 2)}  # vision is a vector


def _fusion(**kwargs) -> TMTFusion:
    torch.manual_seed(0)
    params = {"dim": 16, "num_heads": 2, "head_dim": 4, "mlp_dim": 8, "mutual_mlp_dim": 8, "dropout": 0.0,
              "input_dropout": 0.0, "embedding_dropout": 0.0} | kwargs
    return TMTFusion(DIMS, sequence_modalities=["audio", "text"], **params).eval()


def _encoded(seed: int = 0, lengths=LENGTHS) -> dict[str, EncoderOutput]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m, lens in lengths.items():
        mask = torch.arange(max(lens)).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)
        seq = torch.randn(len(lens), mask.shape[1], DIMS[m], generator=g) * mask.unsqueeze(-1)
        out[m] = EncoderOutput(seq, masked_mean(seq, mask), mask)
    out["vision"] = EncoderOutput(None, torch.randn(4, DIMS["vision"], generator=g), None)
    return out


def _with_padding_noise(encoded: dict[str, EncoderOutput]) -> dict[str, EncoderOutput]:
    noisy = dict(encoded)
    for m in LENGTHS:
        seq, pooled, mask, present = encoded[m]
        noisy[m] = EncoderOutput(torch.where(mask.unsqueeze(-1), seq, 100.0), pooled, mask, present)
    return noisy


def test_published_sizes_by_default():
    fusion = TMTFusion(DIMS, sequence_modalities=["audio", "text"])
    assert fusion.out_dim == 128 and fusion.n_shared == 6 and fusion.n_specific == 2
    assert fusion.tokens.shape == (6 + 3 * 2, 128)
    assert fusion.aux_loss_weights == AUX_LOSS_WEIGHTS == {"orthogonality": 0.01, "similarity": 1.0}


def test_padded_values_change_nothing_when_masked_and_something_when_not():
    encoded = _encoded()
    masked, unmasked = _fusion(), _fusion(mask=False)
    out, noisy = masked(encoded), masked(_with_padding_noise(encoded))
    assert_close(out.fused, noisy.fused)
    for name in out.aux_losses:
        assert_close(out.aux_losses[name], noisy.aux_losses[name])
    # the published behaviour: padding is zero-filled and attended to, so what sits there matters
    plain, plain_noisy = unmasked(encoded), unmasked(_with_padding_noise(encoded))
    assert not torch.allclose(plain.fused, plain_noisy.fused)
    assert not torch.allclose(plain.fused, out.fused)


def test_each_row_equals_the_row_computed_alone_at_its_true_length():
    fusion = _fusion(amw="sample")
    encoded = _encoded()
    fused = fusion(encoded).fused
    for row in range(4):
        alone = {m: EncoderOutput(encoded[m].sequence[row : row + 1, : LENGTHS[m][row]],
                                  encoded[m].pooled[row : row + 1], None) for m in LENGTHS}
        alone["vision"] = EncoderOutput(None, encoded["vision"].pooled[row : row + 1], None)
        assert_close(fusion(alone).fused, fused[row : row + 1])


def test_a_hidden_vector_modality_is_masked_out_not_zero_filled():
    fusion = _fusion(amw="static")
    encoded = _encoded()
    hidden = torch.tensor([True, False, True, True])
    flagged = dict(encoded, vision=EncoderOutput(None, encoded["vision"].pooled, None, hidden))
    changed = encoded["vision"].pooled.clone()
    changed[1] = 50.0
    other = dict(encoded, vision=EncoderOutput(None, changed, None, hidden))
    out = fusion(flagged)
    assert_close(out.fused, fusion(other).fused)  # the hidden row's values are never read
    assert float(out.modality_weights["vision"][1].detach().abs().max()) == 0.0  # and it gets no AMW weight
    assert_close(out.modality_weights["audio"][1] + out.modality_weights["text"][1], torch.ones(16))
    # without the flag the same zero vector would be a real token
    zeroed = encoded["vision"].pooled.clone()
    zeroed[1] = 0.0
    filled = fusion(dict(encoded, vision=EncoderOutput(None, zeroed, None))).fused
    assert not torch.allclose(filled[1], out.fused[1])


def test_rows_without_any_present_modality_are_finite():
    fusion = _fusion(amw="temporal")
    encoded = _encoded()
    none = torch.zeros(4, dtype=torch.bool)
    hidden = {m: EncoderOutput(o.sequence, o.pooled, o.mask, none) for m, o in encoded.items()}
    out = fusion(hidden)
    assert torch.isfinite(out.fused).all()
    assert all(torch.isfinite(v) for v in out.aux_losses.values())


@pytest.mark.parametrize("amw", ["static", "sample", "temporal"])
def test_amw_weights_sum_to_one_over_modalities(amw):
    fusion = _fusion(amw=amw)
    weights = fusion(_encoded()).modality_weights
    assert set(weights) == set(DIMS)
    total = sum(weights.values())
    assert_close(total, torch.ones_like(total))
    if amw == "static":  # zero logits at the start: uniform
        assert_close(weights["audio"], torch.full((4, 16), 1 / 3))


def test_temporal_amw_weights_each_specific_token_separately():
    fusion = _fusion(amw="temporal")
    seen = {}
    fusion.amw_scorers["audio"].register_forward_hook(lambda mod, inp, out: seen.setdefault("in", inp[0]))
    fusion(_encoded())
    assert seen["in"].shape == (4, 2, 16)  # [B, P, d]: one logit row per token, not per sample


def test_without_amw_there_are_no_weights():
    assert _fusion().forward(_encoded()).modality_weights is None


def test_aux_losses_equal_the_published_formulas_on_the_tokens():
    fusion = _fusion()
    captured: dict[str, torch.Tensor] = {}
    fusion.disentangle.register_forward_hook(lambda mod, inp, out: captured.setdefault("x", out))
    for m in DIMS:
        fusion.projections[m].register_forward_hook(lambda mod, inp, out, m=m: captured.setdefault(m, out))
    encoded = _encoded(lengths={"audio": (3, 3, 3, 3), "text": (2, 2, 2, 2)})  # unpadded, as the published code
    aux = fusion(encoded).aux_losses
    x = captured["x"].detach().double().numpy()
    invariant = x[:, :6].mean(axis=1)
    specific = {m: x[:, 6 + 2 * i : 8 + 2 * i].mean(axis=1) for i, m in enumerate(sorted(DIMS))}
    pairs = [("audio", "text"), ("audio", "vision"), ("text", "vision")]
    orth = (np.mean([_decorrelation_numpy(invariant, specific[m]) for m in DIMS])
            + np.mean([_decorrelation_numpy(specific[a], specific[b]) for a, b in pairs]))
    sim = np.mean([_mmd_numpy(captured[m].detach().double().numpy().mean(axis=1), specific[m]) for m in DIMS])
    assert float(aux["orthogonality"].detach()) == pytest.approx(orth, rel=1e-4)
    assert float(aux["similarity"].detach()) == pytest.approx(sim, rel=1e-4)


def test_aux_losses_train_the_tokens():
    fusion = _fusion().train()
    aux = fusion(_encoded()).aux_losses
    (aux["orthogonality"] + aux["similarity"]).backward()
    assert fusion.tokens.grad is not None and fusion.tokens.grad.abs().sum() > 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"amw": "dynamic"}, "amw must be one of"),
    ({"shared_tokens": 0}, "shared_tokens"),
    ({"dropout": 1.0}, "dropout"),
    ({"sequence_modalities": ["audio", "face"]}, "not among"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TMTFusion(DIMS, **({"sequence_modalities": ["audio"]} | kwargs))


def test_one_modality_is_refused():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        TMTFusion({"audio": 4})
