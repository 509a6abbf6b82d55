from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from scenesense.fusions import FUSIONS
from scenesense.fusions.amw import AdaptiveModalityWeightingFusion
from scenesense.types import EncoderOutput


def _pooled(rows):
    return EncoderOutput(None, torch.tensor(rows), None)


def _sequence(rows, present):
    """A one-step sequence modality whose mask row is False where ``present`` is False."""
    pooled = torch.tensor(rows)
    mask = torch.tensor(present).unsqueeze(-1)  # [B, 1]
    return EncoderOutput(pooled.unsqueeze(1) * mask.unsqueeze(-1), pooled * mask, mask)


def test_registered_as_amw():
    assert FUSIONS.get("amw") is AdaptiveModalityWeightingFusion


def test_exact_static_weights_and_fused_values():
    fusion = AdaptiveModalityWeightingFusion({"text": 2, "vision": 2}, mode="static")
    assert len(list(fusion.parameters())) == 1  # only the [M, d] logits: equal sizes, no projection
    with torch.no_grad():  # rows in sorted order: text, vision
        fusion.logits.copy_(torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]]))
    out = fusion({"vision": _pooled([[6.0, -4.0]]), "text": _pooled([[2.0, 4.0]])})
    # dim 0: softmax(0, 0) = (1/2, 1/2); dim 1: softmax(ln 3, 0) = (3/4, 1/4)
    assert_close(out.modality_weights["text"], torch.tensor([[0.5, 0.75]]))
    assert_close(out.modality_weights["vision"], torch.tensor([[0.5, 0.25]]))
    # fused = (0.5*2 + 0.5*6, 0.75*4 + 0.25*-4) = (4, 2)
    assert_close(out.fused, torch.tensor([[4.0, 2.0]]))


def test_exact_sample_weights():
    fusion = AdaptiveModalityWeightingFusion({"text": 1, "vision": 1}, mode="sample")
    with torch.no_grad():  # logit_text = x_text, logit_vision = 0
        fusion.scorers["text"].weight.fill_(1.0)
        fusion.scorers["text"].bias.zero_()
        fusion.scorers["vision"].weight.zero_()
        fusion.scorers["vision"].bias.zero_()
    out = fusion({"text": _pooled([[0.0], [math.log(3.0)]]), "vision": _pooled([[2.0], [2.0]])})
    # row 0: softmax(0, 0) = (1/2, 1/2); row 1: softmax(ln 3, 0) = (3/4, 1/4)
    assert_close(out.modality_weights["text"], torch.tensor([[0.5], [0.75]]))
    assert_close(out.fused, torch.tensor([[1.0], [0.75 * math.log(3.0) + 0.5]]))


@pytest.mark.parametrize("mode", ["static", "sample"])
def test_weights_sum_to_one_and_sample_mode_varies(mode):
    torch.manual_seed(0)
    fusion = AdaptiveModalityWeightingFusion({"audio": 6, "text": 8, "vision": 8}, mode=mode)
    assert fusion.out_dim == 6
    encoded = {m: _pooled(torch.randn(5, d).tolist()) for m, d in fusion.modality_dims.items()}
    out = fusion(encoded)
    weights = torch.stack(list(out.modality_weights.values()))  # [M, B, d]
    assert weights.shape == (3, 5, 6)
    assert_close(weights.sum(dim=0), torch.ones(5, 6))
    assert (weights > 0).all()
    spread = (weights - weights[:, :1]).abs().max().item()  # difference between samples
    if mode == "static":
        assert spread == 0.0
    else:
        assert spread > 1e-3


@pytest.mark.parametrize("mode", ["static", "sample"])
def test_missing_sequence_modality_is_left_out_of_the_softmax(mode):
    torch.manual_seed(0)
    fusion = AdaptiveModalityWeightingFusion({"audio": 2, "text": 2, "vision": 2}, mode=mode)
    encoded = {
        "audio": _pooled([[1.0, 2.0], [3.0, 4.0]]),  # vector: cannot be detected as missing
        "text": _sequence([[5.0, 6.0], [7.0, 8.0]], present=[True, False]),
        "vision": _sequence([[1.0, -1.0], [2.0, -2.0]], present=[True, True]),
    }
    out = fusion(encoded)
    w = out.modality_weights
    assert_close(w["text"][1], torch.zeros(2))
    assert (w["text"][0] > 0).all()
    assert_close(w["audio"] + w["vision"] + w["text"], torch.ones(2, 2))
    row1 = w["audio"][1] * torch.tensor([3.0, 4.0]) + w["vision"][1] * torch.tensor([2.0, -2.0])
    assert_close(out.fused[1], row1)


@pytest.mark.parametrize("projection", ["auto", "always"])
def test_sample_mode_gradients_reach_every_parameter_and_modality(projection):
    torch.manual_seed(0)
    fusion = AdaptiveModalityWeightingFusion({"audio": 6, "text": 8}, mode="sample", projection=projection)
    pooled = {"audio": torch.randn(3, 6, requires_grad=True), "text": torch.randn(3, 8, requires_grad=True)}
    fused = fusion({m: EncoderOutput(None, x, None) for m, x in pooled.items()}).fused
    (fused * torch.randn_like(fused)).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for m, x in pooled.items():
        assert x.grad.abs().sum() > 0, m


def test_every_modality_detected_missing_falls_back_to_all():
    fusion = AdaptiveModalityWeightingFusion({"text": 2, "vision": 2})
    encoded = {
        "text": _sequence([[5.0, 6.0]], present=[False]),
        "vision": _sequence([[1.0, -1.0]], present=[False]),
    }
    out = fusion(encoded)
    assert_close(out.modality_weights["text"], torch.full((1, 2), 0.5))
    assert_close(out.fused, torch.zeros(1, 2))


def test_projection_options_and_errors():
    always = AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}, projection="always")
    assert isinstance(always.projections["text"], nn.Linear)
    assert not isinstance(
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}).projections["text"], nn.Linear
    )
    assert AdaptiveModalityWeightingFusion({"text": 8, "audio": 6}, dim=4).out_dim == 4
    with pytest.raises(ValueError, match="equal modality sizes"):
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 3}, projection="never")
    with pytest.raises(ValueError, match=r"at least 2 modalities, got \['text'\]"):
        AdaptiveModalityWeightingFusion({"text": 4})
    with pytest.raises(ValueError, match="mode must be one of"):
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}, mode="dynamic")
    with pytest.raises(ValueError, match="projection must be one of"):
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}, projection="sometimes")
    with pytest.raises(ValueError, match="dim must be a positive int"):
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}, dim=0)


@pytest.mark.parametrize(("mode", "bound"), [("static", 0.1), ("sample", 0.3)])
def test_training_learns_to_down_weight_a_noise_modality(mode, bound):
    torch.manual_seed(0)
    d, n = 8, 256
    labels = torch.randint(0, 2, (n,))
    text = 0.5 * (2.0 * labels.float() - 1.0).unsqueeze(1) + 0.5 * torch.randn(n, d)  # informative
    audio = 3.0 * torch.randn(n, d)  # pure noise, same size
    encoded = {"audio": EncoderOutput(None, audio, None), "text": EncoderOutput(None, text, None)}
    fusion = AdaptiveModalityWeightingFusion({"audio": d, "text": d}, mode=mode)
    head = nn.Linear(d, 2)
    optimizer = torch.optim.Adam([*fusion.parameters(), *head.parameters()], lr=0.05)
    start = fusion(encoded).modality_weights["audio"].mean().item()
    for _ in range(150):
        loss = nn.functional.cross_entropy(head(fusion(encoded).fused), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        noise_weight = fusion(encoded).modality_weights["audio"].mean().item()
    # measured (seed 0, 150 Adam steps): static 0.500 -> 0.036, sample 0.490 -> 0.176 mean weight on
    # the noise modality (sample mode over seeds 0-3 ended at 0.18-0.33; static at 0.03-0.04)
    assert start > 0.45
    assert noise_weight < bound, noise_weight


NAN = float("nan")


def _padded(rows, lengths, pad=NAN):
    """A sequence modality ``[B, T, D]`` from per-row step lists, padded with ``pad`` after ``lengths``."""
    x = torch.tensor(rows)
    mask = torch.arange(x.shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [B, T]
    seq = torch.where(mask.unsqueeze(-1), x, torch.full_like(x, pad))
    pooled = torch.stack([x[i, :n].mean(dim=0) if n else torch.zeros(x.shape[-1])
                          for i, n in enumerate(lengths)])
    return EncoderOutput(seq, pooled, mask)


def _temporal(dims, sequences, segments, seed=0, **kwargs):
    torch.manual_seed(seed)
    return AdaptiveModalityWeightingFusion(dims, mode="temporal", segments=segments,
                                           sequence_modalities=sequences, **kwargs)


def test_exact_temporal_weights_and_fused_values():
    fusion = _temporal({"text": 1, "vision": 1}, ["text"], segments=2)
    assert not any(isinstance(p, nn.Linear) for p in fusion.projections.values())  # equal sizes
    with torch.no_grad():  # logit_text = segment value, logit_vision = 0
        fusion.scorers["text"].weight.fill_(1.0)
        fusion.scorers["text"].bias.zero_()
        fusion.scorers["vision"].weight.zero_()
        fusion.scorers["vision"].bias.zero_()
    encoded = {"text": _padded([[[0.0], [math.log(3.0)], [0.0]]], [2]), "vision": _pooled([[2.0]])}
    # text's 2 real steps -> segments (0), (ln 3); vision's vector 2 in both segments
    # segment 0: softmax(0, 0) = (1/2, 1/2), fused_0 = 0.5*0 + 0.5*2 = 1
    # segment 1: softmax(ln 3, 0) = (3/4, 1/4), fused_1 = 0.75*ln 3 + 0.25*2
    out = fusion(encoded)
    assert_close(fusion.segment_weights(encoded)["text"], torch.tensor([[[0.5], [0.75]]]))
    assert_close(out.modality_weights["text"], torch.tensor([[0.625]]))
    assert_close(out.modality_weights["vision"], torch.tensor([[0.375]]))
    assert_close(out.fused, torch.tensor([[(1.0 + 0.75 * math.log(3.0) + 0.5) / 2]]))


def test_aligned_temporal_weights_are_per_time_step():
    fusion = _temporal({"audio": 6, "text": 8, "vision": 5}, ["audio", "text"], segments=5)
    x = {"audio": torch.randn(2, 5, 6), "text": torch.randn(2, 5, 8)}
    v = torch.randn(2, 5)
    encoded = {m: EncoderOutput(s, s.mean(dim=1), torch.ones(2, 5, dtype=torch.bool)) for m, s in x.items()}
    encoded["vision"] = EncoderOutput(None, v, None)
    h = {m: fusion.projections[m](s) for m, s in x.items()}  # [B, T, d] per step
    h["vision"] = fusion.projections["vision"](v).unsqueeze(1).expand(-1, 5, -1)
    logits = torch.stack([fusion.scorers[m](h[m]) for m in ("audio", "text", "vision")])  # [M, B, T, d]
    weights = torch.softmax(logits, dim=0)
    fused = (weights * torch.stack([h[m] for m in ("audio", "text", "vision")])).sum(dim=0).mean(dim=1)
    per_step = fusion.segment_weights(encoded)
    out = fusion(encoded)
    for i, m in enumerate(("audio", "text", "vision")):
        assert_close(per_step[m], weights[i])
        assert_close(out.modality_weights[m], weights[i].mean(dim=1))
    assert_close(out.fused, fused)
    assert (weights - weights[:, :, :1]).abs().max() > 1e-3  # the weights do change over time


def test_temporal_padding_changes_nothing():
    fusion = _temporal({"audio": 3, "text": 4}, ["audio", "text"], segments=3)
    audio, text = torch.randn(2, 7, 3), torch.randn(2, 4, 4)
    lengths = {"audio": [7, 2], "text": [4, 3]}
    outs = []
    for pad in (NAN, 0.0, 1e6):
        encoded = {"audio": _padded(audio.tolist(), lengths["audio"], pad),
                   "text": _padded(text.tolist(), lengths["text"], pad)}
        outs.append(fusion(encoded))
    for out in outs[1:]:
        assert_close(out.fused, outs[0].fused)
    assert torch.isfinite(outs[0].fused).all()
    alone = fusion({"audio": _padded(audio[1:, :2].tolist(), [2]),
                    "text": _padded(text[1:, :3].tolist(), [3])})
    assert_close(outs[0].fused[1:], alone.fused)  # row 1 as if it had never been padded
    assert_close(outs[0].modality_weights["audio"][1:], alone.modality_weights["audio"])


def test_temporal_missing_modality_is_excluded():
    fusion = _temporal({"audio": 2, "text": 2, "vision": 2}, ["text", "vision"], segments=2)
    encoded = {
        "audio": _pooled([[1.0, 2.0], [3.0, 4.0]]),
        "text": _padded([[[5.0, 6.0], [7.0, 8.0]], [[0.0, 0.0], [0.0, 0.0]]], [2, 0]),  # absent in row 1
        "vision": _padded([[[1.0, -1.0], [2.0, -2.0]], [[3.0, -3.0], [4.0, -4.0]]], [2, 2]),
    }
    per_segment = fusion.segment_weights(encoded)
    assert_close(per_segment["text"][1], torch.zeros(2, 2))
    assert (per_segment["text"][0] > 0).all()
    assert_close(sum(per_segment.values()), torch.ones(2, 2, 2))
    out = fusion(encoded)
    vision = torch.tensor([[3.0, -3.0], [4.0, -4.0]])  # row 1's two segments
    row1 = per_segment["audio"][1] * torch.tensor([3.0, 4.0]) + per_segment["vision"][1] * vision  # [K, d]
    row1 = row1.mean(dim=0)
    assert_close(out.fused[1], row1)
    assert torch.isfinite(out.fused).all()


def test_temporal_gradients_reach_every_parameter_and_modality():
    fusion = _temporal({"audio": 6, "text": 8, "vision": 4}, ["audio", "text"], segments=4)
    audio = torch.randn(3, 9, 6, requires_grad=True)
    text = torch.randn(3, 5, 8, requires_grad=True)
    vision = torch.randn(3, 4, requires_grad=True)
    mask_a = torch.arange(9).unsqueeze(0) < torch.tensor([[9], [3], [1]])
    mask_t = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [0], [2]])  # text absent in row 1
    encoded = {"audio": EncoderOutput(torch.where(mask_a.unsqueeze(-1), audio, NAN), audio.mean(1), mask_a),
               "text": EncoderOutput(torch.where(mask_t.unsqueeze(-1), text, NAN), text.mean(1), mask_t),
               "vision": EncoderOutput(None, vision, None)}
    fused = fusion(encoded).fused
    assert torch.isfinite(fused).all()
    (fused * torch.randn_like(fused)).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    for x in (audio, text, vision):
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert (audio.grad[1, 3:] == 0).all() and (text.grad[1] == 0).all()  # padding and an absent row


def test_temporal_is_invariant_to_input_dict_order():
    fusion = _temporal({"audio": 3, "text": 4}, ["text", "audio"], segments=2)
    encoded = {"audio": _padded(torch.randn(2, 3, 3).tolist(), [3, 1]),
               "text": _padded(torch.randn(2, 5, 4).tolist(), [2, 5])}
    reordered = {"text": encoded["text"], "audio": encoded["audio"]}
    assert torch.equal(fusion(encoded).fused, fusion(reordered).fused)


def test_new_arguments_leave_static_and_sample_modes_unchanged():
    for mode in ("static", "sample"):
        torch.manual_seed(0)
        old = AdaptiveModalityWeightingFusion({"audio": 6, "text": 8}, mode=mode)
        torch.manual_seed(0)
        new = AdaptiveModalityWeightingFusion({"audio": 6, "text": 8}, mode=mode, segments=3,
                                              sequence_modalities=["text"])
        assert new.load_state_dict(old.state_dict()) is not None  # same names: checkpoints load
        encoded = {"audio": _pooled(torch.randn(2, 6).tolist()),
                   "text": _padded(torch.randn(2, 3, 8).tolist(), [3, 1])}
        assert torch.equal(old(encoded).fused, new(encoded).fused)


def test_temporal_errors():
    with pytest.raises(ValueError, match="segments must be an int >= 1"):
        _temporal({"text": 4, "audio": 4}, ["text"], segments=0)
    with pytest.raises(ValueError, match=r"sequence modalities \['vision'\] are not among"):
        _temporal({"text": 4, "audio": 4}, ["vision"], segments=2)
    with pytest.raises(TypeError, match="list of names"):
        _temporal({"text": 4, "audio": 4}, "text", segments=2)
    with pytest.raises(ValueError, match="needs at least one sequence modality"):
        _temporal({"text": 4, "audio": 4}, [], segments=2)
    with pytest.raises(ValueError, match="segment_weights needs mode='temporal'"):
        AdaptiveModalityWeightingFusion({"text": 4, "audio": 4}).segment_weights({})
    fusion = _temporal({"text": 4, "audio": 4}, ["text"], segments=2)
    with pytest.raises(ValueError, match="needs a sequence for modality 'text'"):
        fusion({"text": _pooled([[1.0] * 4]), "audio": _pooled([[1.0] * 4])})
