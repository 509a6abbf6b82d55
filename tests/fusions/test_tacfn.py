from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.config import ComponentConfig
from scenesense.fusions import FUSIONS
from scenesense.fusions.tacfn import TACFNFusion, align_steps
from scenesense.models.builders import build_fusion
from scenesense.types import EncoderOutput

C = math.sqrt(math.sqrt(2) * math.log(3))  # text step (C, 0) scores itself C^2 / sqrt(2) = ln 3
Y = (0.5, -1.0)  # the vision vector


def _softmax2(a: float, b: float) -> tuple[float, float]:
    ea, eb = math.exp(a), math.exp(b)
    return ea / (ea + eb), eb / (ea + eb)


def _identity(fusion: TACFNFusion) -> TACFNFusion:
    """Identity q/k/v/out projections, selectors and block projections, zero biases."""
    with torch.no_grad():
        for module in fusion.modules():
            if isinstance(module, torch.nn.MultiheadAttention):
                module.in_proj_weight.copy_(torch.eye(2).repeat(3, 1))
                module.in_proj_bias.zero_()
                module.out_proj.weight.copy_(torch.eye(2))
                module.out_proj.bias.zero_()
            elif isinstance(module, torch.nn.Linear) and module.in_features == 2:
                module.weight.copy_(torch.eye(2))
                module.bias.zero_()
    return fusion.eval()


def _fusion(**switches: bool) -> TACFNFusion:
    """The pooled (``temporal=False``) fusion of a text sequence and a vision vector."""
    return _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"], num_heads=1, temporal=False, **switches))


def _encoded() -> dict[str, EncoderOutput]:
    # text: real steps (C, 0), (0, 0) and a padded step (9, 9); pooled = mean of the real steps
    text = torch.tensor([[[C, 0.0], [0.0, 0.0], [9.0, 9.0]]])
    return {
        "text": EncoderOutput(text, torch.tensor([[C / 2, 0.0]]), torch.tensor([[True, True, False]])),
        "vision": EncoderOutput(None, torch.tensor([Y]), None),
    }


def _expected(selected_text: float, residual: bool) -> tuple[list[float], list[float], list[float]]:
    """Hand formula with identity projections: fused, w_text, w_vision."""
    x_text, x_vision = (C / 2, 0.0), Y
    w_text = _softmax2(math.tanh(x_text[0] + Y[0]), math.tanh(x_text[1] + Y[1]))  # source vision: Y
    w_vision = _softmax2(math.tanh(Y[0] + selected_text), math.tanh(Y[1] + 0.0))  # source text
    keep = 1.0 if residual else 0.0
    fused = [w * x + keep * x for w, x in zip(w_text, x_text)] + [
        w * x + keep * x for w, x in zip(w_vision, x_vision)
    ]
    return fused, list(w_text), list(w_vision)


def test_exact_fusion_with_self_attention_and_residual():
    fusion = _fusion()
    assert fusion.out_dim == 4
    out = fusion(_encoded())
    # text self-attention: query (C, 0) -> weights (3/4, 1/4) -> (3C/4, 0); query (0, 0) -> (1/2, 1/2)
    # -> (C/2, 0); masked mean over the 2 real steps = (5C/8, 0). The padded (9, 9) is never read.
    fused, w_text, w_vision = _expected(5 * C / 8, residual=True)
    assert_close(out.fused, torch.tensor([fused]))
    assert_close(out.modality_weights["text"], torch.tensor([w_text]))
    assert_close(out.modality_weights["vision"], torch.tensor([w_vision]))
    assert_close(
        out.attention["text->text"], torch.tensor([[[0.75, 0.25, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]])
    )
    assert sorted(out.attention) == ["text->text"]


def test_exact_without_self_attention_uses_the_pooled_source():
    out = _fusion(self_attention=False)(_encoded())
    fused, _, w_vision = _expected(C / 2, residual=True)
    assert_close(out.fused, torch.tensor([fused]))
    assert_close(out.modality_weights["vision"], torch.tensor([w_vision]))
    assert out.attention is None
    assert not torch.allclose(out.fused, _fusion()(_encoded()).fused)


def test_exact_without_residual():
    out = _fusion(residual=False)(_encoded())
    fused, _, _ = _expected(5 * C / 8, residual=False)
    assert_close(out.fused, torch.tensor([fused]))
    assert not torch.allclose(out.fused, _fusion()(_encoded()).fused)


def _step_weights(target: tuple[float, float], source: tuple[float, float]) -> tuple[float, float]:
    return _softmax2(math.tanh(target[0] + source[0]), math.tanh(target[1] + source[1]))


def _pooled_steps(steps: list[tuple[float, float]], sources: list[tuple[float, float]],
                  residual: bool = True) -> tuple[list[float], list[float]]:
    """Hand formula of one temporal target: mean over steps of ``w * x (+ x)`` and of ``w``."""
    ys, ws = [], []
    for x, a in zip(steps, sources, strict=True):
        w = _step_weights(x, a)
        ys.append([wi * xi + (xi if residual else 0.0) for wi, xi in zip(w, x)])
        ws.append(w)
    return [sum(c) / len(ys) for c in zip(*ys)], [sum(c) / len(ws) for c in zip(*ws)]


def test_exact_temporal_aligns_steps_by_relative_time():
    fusion = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text", "vision"], self_attention=False,
                                   weight_axis="features"))
    assert fusion.temporal  # the default
    text = [(C, 0.0), (0.0, 0.0)]  # + one padded step
    vision = [(1.0, 0.0), (0.0, 1.0), (0.5, -1.0), (-1.0, 0.5)]  # + one padded step
    seq_t = torch.tensor([[*text, (9.0, 9.0)]])
    seq_v = torch.tensor([[*vision, (7.0, 7.0)]])
    encoded = {
        "text": EncoderOutput(seq_t, torch.zeros(1, 2), torch.tensor([[True, True, False]])),
        "vision": EncoderOutput(seq_v, torch.zeros(1, 2), torch.tensor([[True, True, True, True, False]])),
    }
    out = fusion(encoded)
    # text step i sits at (i + 0.5) / 2 and reads vision step floor(4 (i + 0.5) / 2) = 1, 3;
    # vision step k sits at (k + 0.5) / 4 and reads text step floor(2 (k + 0.5) / 4) = 0, 0, 1, 1
    y_text, w_text = _pooled_steps(text, [vision[1], vision[3]])
    y_vision, w_vision = _pooled_steps(vision, [text[0], text[0], text[1], text[1]])
    assert_close(out.fused, torch.tensor([y_text + y_vision]))
    assert_close(out.modality_weights["text"], torch.tensor([w_text]))
    assert_close(out.modality_weights["vision"], torch.tensor([w_vision]))
    # the pooled mode sees only the (zero) pooled vectors: a different answer
    pooled = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text", "vision"], self_attention=False,
                                   temporal=False))(encoded)
    assert_close(pooled.fused, torch.zeros(1, 4))


def test_exact_temporal_with_self_attention_and_a_vector_source():
    fusion = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"], weight_axis="features"))
    out = fusion(_encoded())
    # text target, step by step, with the vision vector Y broadcast as the source
    y_text, w_text = _pooled_steps([(C, 0.0), (0.0, 0.0)], [Y, Y])
    # vision target (a vector) with the pooled text selection (5C/8, 0), as in the pooled mode
    fused, _, w_vision = _expected(5 * C / 8, residual=True)
    assert_close(out.fused, torch.tensor([y_text + fused[2:]]))
    assert_close(out.modality_weights["text"], torch.tensor([w_text]))
    assert_close(out.modality_weights["vision"], torch.tensor([w_vision]))
    no_residual = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"], residual=False,
                                        weight_axis="features"))(_encoded())
    assert_close(no_residual.fused[0, :2], torch.tensor(_pooled_steps([(C, 0.0), (0.0, 0.0)], [Y, Y],
                                                                      residual=False)[0]))


def test_exact_time_axis_weights_the_target_steps():
    fusion = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"]))
    assert fusion.weight_axis == "time"  # the default
    out = fusion(_encoded())
    # text steps x_0 = (C, 0), x_1 = (0, 0) (the padded (9, 9) is never read); source: the vision
    # vector Y at both steps; per feature j a softmax over the 2 steps of tanh(x_i[j] + Y[j])
    steps = [(C, 0.0), (0.0, 0.0)]
    w = [_softmax2(math.tanh(steps[0][j] + Y[j]), math.tanh(steps[1][j] + Y[j])) for j in range(2)]
    y_text = [w[j][0] * steps[0][j] + w[j][1] * steps[1][j] + (steps[0][j] + steps[1][j]) / 2 for j in range(2)]
    fused, _, w_vision = _expected(5 * C / 8, residual=True)  # the vision vector: as in the pooled mode
    assert_close(out.fused, torch.tensor([y_text + fused[2:]]))
    assert sorted(out.modality_weights) == ["vision"]
    assert_close(out.modality_weights["vision"], torch.tensor([w_vision]))
    step_weights = [(w[0][i] + w[1][i]) / 2 for i in range(2)]
    assert_close(out.attention["text:steps"], torch.tensor([[[*step_weights, 0.0]]]))
    no_residual = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"], residual=False))(_encoded())
    assert_close(no_residual.fused[0, :2], torch.tensor([y - (a + b) / 2 for y, a, b in
                                                         zip(y_text, steps[0], steps[1])]))


def test_align_steps_identity_for_equal_lengths_and_zeros_for_an_absent_source():
    source = torch.arange(12.0).view(2, 3, 2)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    aligned = align_steps(source, mask, torch.tensor([[True, True, True], [True, True, False]]))
    assert_close(aligned[0], source[0])
    assert_close(aligned[1], torch.zeros(3, 2))


def test_without_block_is_plain_concatenation():
    fusion = TACFNFusion({"vision": 2, "text": 2}, ["text"], block=False)
    assert list(fusion.parameters()) == []
    out = fusion(_encoded())
    assert_close(out.fused, torch.tensor([[C / 2, 0.0, Y[0], Y[1]]]))  # sorted: text, vision
    assert out.modality_weights is None and out.attention is None


@pytest.mark.parametrize("temporal", [False, True])
def test_padded_steps_do_not_change_the_output(temporal: bool):
    fusion = _identity(TACFNFusion({"vision": 2, "text": 2}, ["text"], temporal=temporal))
    encoded = _encoded()
    noisy = dict(encoded)
    seq, pooled, mask, _ = encoded["text"]
    noisy["text"] = EncoderOutput(torch.where(mask.unsqueeze(-1), seq, torch.tensor(1e4)), pooled, mask)
    assert_close(fusion(encoded).fused, fusion(noisy).fused)


def _random_trimodal(seed: int = 0) -> dict[str, EncoderOutput]:
    g = torch.Generator().manual_seed(seed)
    masks = {"text": torch.tensor([[True, True, False], [True, True, True]]),
             "vision": torch.tensor([[True, True, False], [False, False, False]])}  # absent for row 1
    encoded = {"audio": EncoderOutput(None, torch.randn(2, 3, generator=g), None)}
    for m, mask in masks.items():
        seq = torch.randn(2, mask.shape[1], 4, generator=g) * mask.unsqueeze(-1)
        encoded[m] = EncoderOutput(seq, seq.sum(1) / mask.sum(1, keepdim=True).clamp_min(1), mask)
    return encoded


@pytest.mark.parametrize("weight_axis", ["features", "time"])
def test_three_modalities_shapes_weights_and_gradients(weight_axis: str):
    torch.manual_seed(0)
    fusion = FUSIONS.create(
        "tacfn", modality_dims={"text": 4, "vision": 4, "audio": 3},
        sequence_modalities=["vision", "text"], num_heads=2, weight_axis=weight_axis,
    )
    encoded = _random_trimodal()
    for out in encoded.values():
        for t in (out.sequence, out.pooled):
            if t is not None:
                t.requires_grad_()
    out = fusion(encoded)
    assert fusion.out_dim == 11 and out.fused.shape == (2, 11) and torch.isfinite(out.fused).all()
    shapes = {"audio": (2, 3), "text": (2, 4), "vision": (2, 4)}
    if weight_axis == "time":  # sequence targets: step weights, summing to 1 over the real steps
        shapes = {"audio": (2, 3)}
        assert_close(out.attention["text:steps"].sum(-1), torch.ones(2, 1))
        assert_close(out.attention["vision:steps"].sum(-1), torch.tensor([[1.0], [0.0]]))
        assert_close(out.attention["vision:steps"][:, 0, 2], torch.zeros(2))  # padded step
    assert {m: tuple(w.shape) for m, w in out.modality_weights.items()} == shapes
    for m, w in out.modality_weights.items():  # steps' weights averaged; absent vision row: none
        assert_close(w.sum(-1), torch.tensor([1.0, 0.0 if m == "vision" else 1.0]))
    assert {k for k in out.attention if "->" in k} == {"text->text", "vision->vision"}
    assert out.attention["text->text"].shape == (2, 3, 3)
    assert_close(out.attention["vision->vision"][1], torch.zeros(3, 3))  # absent row: no map
    assert_close(out.fused[1, 7:], torch.zeros(4))  # absent target: zeros
    out.fused.pow(2).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    for m, o in encoded.items():
        grads = [t.grad for t in (o.sequence, o.pooled) if t is not None and t.grad is not None]
        assert any(g.abs().sum() > 0 for g in grads), m


def test_built_from_config_with_switches():
    fusion = build_fusion(
        ComponentConfig("tacfn", {"self_attention": False, "residual": False}),
        {"text": 4, "audio": 2}, ["text"], 3,
    )
    assert isinstance(fusion, TACFNFusion) and not fusion.self_attention and not fusion.residual
    assert len(fusion.selectors) == 0 and fusion.out_dim == 6


def test_errors():
    with pytest.raises(ValueError, match=r"at least 2 modalities, got \['text'\]"):
        TACFNFusion({"text": 4}, ["text"])
    with pytest.raises(ValueError, match=r"\['video'\] are not among"):
        TACFNFusion({"text": 4, "vision": 4}, ["text", "video"])
    with pytest.raises(ValueError, match="weight_axis must be 'features' or 'time', got 'steps'"):
        TACFNFusion({"text": 4, "vision": 4}, ["text"], weight_axis="steps")
    with pytest.raises(ValueError, match="dimension 6 is not divisible by num_heads 4"):
        TACFNFusion({"text": 6, "vision": 4}, ["text"], num_heads=4)
    fusion = TACFNFusion({"text": 2, "vision": 2}, ["text"])
    encoded = _encoded()
    encoded["text"] = EncoderOutput(None, encoded["text"].pooled, None)
    with pytest.raises(ValueError, match="needs a sequence for modality 'text'"):
        fusion(encoded)
