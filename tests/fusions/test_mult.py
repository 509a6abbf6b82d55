from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions import FUSIONS
from scenesense.fusions.mult import MulTFusion, _last_real_step
from scenesense.layers.pooling import masked_mean
from scenesense.layers.positional import sinusoidal_positions
from scenesense.types import EncoderOutput

R10 = math.sqrt(10)


def _inert(fusion: MulTFusion) -> MulTFusion:
    """Identity projections; every attention uniform over real keys with identity values; zero FFNs.

    Query/key projections are zero, so all scores are 0 and each query weighs its real keys
    equally; value and output projections are identities. LayerNorms keep weight 1 and bias 0,
    with eps 0: LN of a 2-vector (a, b) is then (sign(a - b), -sign(a - b)).
    """
    with torch.no_grad():
        for projection in fusion.projections.values():
            projection.weight.copy_(torch.eye(2))
        for module in fusion.modules():
            if isinstance(module, torch.nn.MultiheadAttention):
                width = module.embed_dim
                module.in_proj_weight.copy_(torch.cat([torch.zeros(2 * width, width), torch.eye(width)]))
                module.in_proj_bias.zero_()
                module.out_proj.weight.copy_(torch.eye(width))
                module.out_proj.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.eps = 0.0
        for stack in [*fusion.cross.values(), *fusion.self_attention.values()]:
            for layer in stack.layers:
                for p in layer.feedforward.parameters():
                    p.zero_()
    return fusion.eval()


def _hand_encoded() -> dict[str, EncoderOutput]:
    """Streams after projection + positions ("base"); the inputs subtract the positions.

    audio (vector, 1 step): (1, 0); text: (3, 0), (0, 1) + 1 pad; vision: (1, 0), (0, .5), (0, 3) + 1 pad.
    """
    def steps(base: list[list[float]], pads: int) -> torch.Tensor:
        real = torch.tensor(base) - sinusoidal_positions(len(base), 2)
        return torch.cat([real, torch.full((pads, 2), 9.0)]).unsqueeze(0)  # [1, T, 2]

    text, vision = steps([[3.0, 0.0], [0.0, 1.0]], 1), steps([[1.0, 0.0], [0.0, 0.5], [0.0, 3.0]], 1)
    audio = steps([[1.0, 0.0]], 0)[:, 0]  # [1, 2] = (1, 0) - position 0 (0, 1)
    return {
        "audio": EncoderOutput(None, audio, None),
        "text": EncoderOutput(text, text[:, 0], torch.tensor([[True, True, False]])),
        "vision": EncoderOutput(vision, vision[:, 0], torch.tensor([[True, True, True, False]])),
    }


def _hand_fusion(pooling: str) -> MulTFusion:
    dims = {"audio": 2, "text": 2, "vision": 2}
    return _inert(MulTFusion(dims, ["text", "vision"], num_heads=1, num_layers=1, self_layers=1,
                             pooling=pooling))


def test_exact_hand_computed_case():
    fusion = _hand_fusion("last")
    assert fusion.dim == 2 and fusion.out_dim == 3 * 2 * 2
    out = fusion(_hand_encoded())
    # Write sigma(v) = sign(v0 - v1), so LN(v) = (sigma, -sigma). Sources, LN'd and averaged over
    # their real steps, give (k, -k) with k = mean sigma: audio k = 1 (one step, 1 - 0 > 0);
    # text sigmas (+, -) -> k = 0; vision sigmas (+, -, -) -> k = -1/3.
    # Cross layer s -> t: z = base_t + (k_s, -k_s), FFN 0, final LN -> (sign(d + 2 k_s), -...) with
    # d = base_t0 - base_t1 per target step:
    #   audio  (d = 1):             from text +, from vision 1 - 2/3 > 0 -> +
    #   text   (d = 3, -1):         from audio (5, 1) -> (+, +); from vision (7/3, -5/3) -> (+, -)
    #   vision (d = 1, -.5, -3):    from audio (3, 1.5, -1) -> (+, +, -); from text (+, -, -)
    # Self stage on h = (s1, -s1, s2, -s2) (sorted sources): LN(h) = h (mean 0, variance 1);
    # uniform attention adds the mean of h over the target's real steps; FFN 0; final LN.
    #   audio:  h = (1, -1, 1, -1); h + h -> LN -> (1, -1, 1, -1)
    #   text:   mean (1, -1, 0, 0); last h (1, -1, -1, 1) -> (2, -2, -1, 1), variance 5/2
    #           -> (4, -4, -2, 2) / sqrt(10)
    #   vision: mean (1/3, -1/3, -1/3, 1/3); last h (-1, 1, -1, 1) -> (-2/3, 2/3, -4/3, 4/3),
    #           variance 10/9 -> (-2, 2, -4, 4) / sqrt(10)
    expected = torch.tensor([[1.0, -1.0, 1.0, -1.0, 4 / R10, -4 / R10, -2 / R10, 2 / R10,
                              -2 / R10, 2 / R10, -4 / R10, 4 / R10]])
    assert_close(out.fused, expected)
    # uniform over real keys, zero rows at padded queries and zero columns at padded keys
    third, half = 1 / 3, 1 / 2
    assert_close(out.attention["text->vision"],
                 torch.tensor([[[third, third, third, 0.0], [third, third, third, 0.0], [0.0] * 4]]))
    assert_close(out.attention["vision->text"], torch.tensor([[[half, half, 0.0]] * 3 + [[0.0] * 3]]))
    assert_close(out.attention["audio->text"], torch.tensor([[[half, half, 0.0]]]))
    assert_close(out.attention["text->audio"], torch.tensor([[[1.0], [1.0], [0.0]]]))
    assert sorted(out.attention) == ["audio->text", "audio->vision", "text->audio", "text->vision",
                                     "vision->audio", "vision->text"]


def test_exact_mean_pooling():
    out = _hand_fusion("mean")(_hand_encoded())
    # as above, but the final LN of every real step is averaged:
    #   text:   h + mean: (2, -2, 1, -1) and (2, -2, -1, 1), both variance 5/2
    #           -> (4, -4, 2, -2) / sqrt(10) and (4, -4, -2, 2) / sqrt(10); mean (4, -4, 0, 0) / sqrt(10)
    #   vision: h + mean: (4/3, -4/3, 2/3, -2/3) (variance 10/9) -> (4, -4, 2, -2) / sqrt(10);
    #           (4/3, -4/3, -4/3, 4/3) (variance 16/9) -> (1, -1, -1, 1);
    #           (-2/3, 2/3, -4/3, 4/3) -> (-2, 2, -4, 4) / sqrt(10);
    #           mean (v, -v, -v, v) with v = (1 + 2 / sqrt(10)) / 3
    v = (1 + 2 / R10) / 3
    expected = torch.tensor([[1.0, -1.0, 1.0, -1.0, 4 / R10, -4 / R10, 0.0, 0.0, v, -v, -v, v]])
    assert_close(out.fused, expected)


# ---------------------------------------------------------------- random instances

def _random_encoded(lengths: dict[str, tuple[int, ...]], dims: dict[str, int], seed: int = 0,
                    vectors: tuple[str, ...] = ()) -> dict[str, EncoderOutput]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m, d in dims.items():
        if m in vectors:
            out[m] = EncoderOutput(None, torch.randn(len(next(iter(lengths.values()))), d, generator=g), None)
            continue
        lens = torch.tensor(lengths[m])
        mask = torch.arange(int(lens.max())).unsqueeze(0) < lens.unsqueeze(1)  # [B, T]
        seq = torch.randn(len(lens), mask.shape[1], d, generator=g) * mask.unsqueeze(-1)
        out[m] = EncoderOutput(seq, masked_mean(seq, mask), mask)
    return out


DIMS = {"text": 4, "vision": 6}
LENGTHS = {"text": (4, 2, 3), "vision": (5, 5, 1)}


def _random_fusion(**kwargs) -> MulTFusion:
    torch.manual_seed(0)
    kwargs = {"num_heads": 2, **kwargs}
    return MulTFusion(kwargs.pop("modality_dims", DIMS), kwargs.pop("sequence_modalities", list(DIMS)),
                      **kwargs).eval()


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padded_steps_never_influence_real_outputs(pooling):
    fusion = _random_fusion(pooling=pooling)
    encoded = _random_encoded(LENGTHS, DIMS)
    noisy = {}
    for m, (seq, pooled, mask, _) in encoded.items():
        extra = torch.full((seq.shape[0], 2, seq.shape[2]), float("nan"))  # two more padded steps, NaN
        seq = torch.cat([torch.where(mask.unsqueeze(-1), seq, 1e3), extra], dim=1)
        mask = torch.cat([mask, torch.zeros(mask.shape[0], 2, dtype=torch.bool)], dim=1)
        noisy[m] = EncoderOutput(seq, pooled, mask)
    out, out_noisy = fusion(encoded), fusion(noisy)
    assert_close(out.fused, out_noisy.fused)
    assert_close(out_noisy.attention["text->vision"][:, :4, :5], out.attention["text->vision"])


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_each_row_equals_its_unpadded_slice(pooling):
    # padded keys are masked: a row computed alone at its true lengths gives the same vector
    fusion = _random_fusion(pooling=pooling)
    encoded = _random_encoded(LENGTHS, DIMS)
    fused = fusion(encoded).fused
    for row in range(3):
        alone = {}
        for m, (seq, pooled, _, _) in encoded.items():
            length = LENGTHS[m][row]
            alone[m] = EncoderOutput(seq[row : row + 1, :length], pooled[row : row + 1], None)
        assert_close(fusion(alone).fused, fused[row : row + 1])


def test_last_real_step_helper():
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).view(3, 2, 2).transpose(0, 1)  # [B=2, T=3, 2]
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert_close(_last_real_step(x, mask), torch.stack([x[0, 1], torch.zeros(2)]))
    # not only prefix masks: the last True step is taken
    assert_close(_last_real_step(x, torch.tensor([[True, False, True], [False, True, False]])),
                 torch.stack([x[0, 2], x[1, 1]]))


def test_absent_modality_row_is_finite_and_a_zero_target():
    fusion = _random_fusion().train()
    encoded = _random_encoded(LENGTHS, DIMS)
    seq, pooled, mask, _ = encoded["text"]
    mask = mask.clone()
    mask[0] = False
    encoded["text"] = EncoderOutput(seq * mask.unsqueeze(-1), pooled, mask)
    out = fusion(encoded)
    assert torch.isfinite(out.fused).all()
    dim = fusion.dim
    assert torch.equal(out.fused[0, :dim], torch.zeros(dim))  # text, the absent target, is sorted first
    assert out.fused[0, dim:].abs().sum() > 0  # vision still sees its own steps
    assert torch.equal(out.attention["vision->text"][0], torch.zeros(5, 4))
    assert torch.equal(out.attention["text->vision"][0], torch.zeros(4, 5))
    out.fused.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters() if p.grad is not None)


def test_vector_modality_is_a_one_step_sequence():
    dims = {"audio": 3, **DIMS}
    vec = _random_fusion(modality_dims=dims, sequence_modalities=["text", "vision"])
    seq = _random_fusion(modality_dims=dims, sequence_modalities=["audio", "text", "vision"])
    seq.load_state_dict(vec.state_dict())
    encoded = _random_encoded(LENGTHS, dims, vectors=("audio",))
    as_sequence = dict(encoded)
    pooled = encoded["audio"].pooled
    as_sequence["audio"] = EncoderOutput(pooled.unsqueeze(1), pooled, torch.ones(3, 1, dtype=torch.bool))
    out = vec(encoded)
    assert vec.out_dim == 3 * 2 * 6
    assert out.fused.shape == (3, 36)
    assert_close(out.fused, seq(as_sequence).fused)
    assert out.attention["text->audio"].shape == (3, 4, 1)
    assert out.attention["audio->vision"].shape == (3, 1, 5)


def test_attention_maps_shapes_and_rows_sum_to_one_over_real_keys():
    fusion = _random_fusion(num_heads=3, dim=6)
    encoded = _random_encoded(LENGTHS, DIMS)
    out = fusion(encoded)
    masks = {m: o.mask for m, o in encoded.items()}
    for q, k in (("text", "vision"), ("vision", "text")):
        weights = out.attention[f"{q}->{k}"]
        assert weights.shape == (3, masks[q].shape[1], masks[k].shape[1])
        real_keys = weights * masks[k].unsqueeze(1)
        assert torch.equal(real_keys, weights)  # padded keys get nothing
        assert_close(weights.sum(-1), masks[q].to(torch.float32))  # 1 per real query, 0 per padded one


def test_out_dim_projections_and_registry():
    fusion = FUSIONS.create("mult", modality_dims={"vision": 4, "audio": 3, "text": 5},
                            sequence_modalities=["text"])
    assert isinstance(fusion, MulTFusion) and fusion.level == "sequence"
    assert fusion.dim == 5 and fusion.out_dim == 3 * 2 * 5
    assert sorted(fusion.cross) == ["audio_to_text", "audio_to_vision", "text_to_audio", "text_to_vision",
                                    "vision_to_audio", "vision_to_text"]
    assert fusion.self_attention["text"].layers[0].feedforward[0].out_features == 2 * 4 * 5
    assert MulTFusion({"text": 4, "vision": 6}, ["text"], dim=8, num_heads=2).out_dim == 2 * 1 * 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modality_dims": {"text": 4}}, r"at least 2 modalities, got \['text'\]"),
        ({"sequence_modalities": "text"}, "must be a list of names"),
        ({"sequence_modalities": ["text", "video"]}, r"\['video'\] are not among"),
        ({"dim": 0}, "dim must be an int >= 1, got 0"),
        ({"dim": True}, "dim must be an int >= 1, got True"),
        ({"modality_dims": {"text": 6, "vision": 6}, "num_heads": 4}, "6 is not divisible by num_heads 4"),
        ({"num_heads": 0}, "num_heads must be >= 1"),
        ({"num_layers": 0}, "num_layers must be an int >= 1, got 0"),
        ({"self_layers": -1}, "self_layers must be an int >= 0, got -1"),
        ({"dim_feedforward": 0}, "dim_feedforward must be an int >= 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"attn_dropout": -0.1}, r"attn_dropout must be in \[0, 1\)"),
        ({"pooling": "max"}, r"pooling must be one of \['last', 'mean'\], got 'max'"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _random_fusion(**kwargs)


def test_missing_sequence_raises():
    fusion = _random_fusion()
    encoded = _random_encoded(LENGTHS, DIMS)
    encoded["vision"] = EncoderOutput(None, encoded["vision"].pooled, None)
    with pytest.raises(ValueError, match="needs a sequence for modality 'vision'"):
        fusion(encoded)


@pytest.mark.parametrize(("pooling", "self_layers"), [("last", 2), ("mean", 0)])
def test_gradients_reach_every_parameter(pooling, self_layers):
    dims = {"audio": 3, **DIMS}
    fusion = _random_fusion(modality_dims=dims, sequence_modalities=["text", "vision"], pooling=pooling,
                            num_layers=2, self_layers=self_layers, dropout=0.1, attn_dropout=0.1).train()
    fused = fusion(_random_encoded(LENGTHS, dims, vectors=("audio",))).fused
    (fused * torch.randn_like(fused)).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
