from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions import FUSIONS
from scenesense.fusions.cross_attention import CrossAttentionFusion, ResidualCrossAttentionFusion
from scenesense.types import EncoderOutput

S = math.sqrt(2) * math.log(3)  # text query; its score against key (1, 0) is S / sqrt(2) = ln 3


def _identity(fusion):
    """One head of width 2 with identity q/k/v/out projections in both directions."""
    with torch.no_grad():
        for block in fusion.blocks.values():
            block.attention.in_proj_weight.copy_(torch.eye(2).repeat(3, 1))
            block.attention.in_proj_bias.zero_()
            block.attention.out_proj.weight.copy_(torch.eye(2))
            block.attention.out_proj.bias.zero_()
            if block.norm is not None:
                block.norm.eps = 0.0  # LayerNorm of a 2-vector (a, b) is then (sign(a-b), -sign(a-b))
    return fusion.eval()


def _encoded():
    # text: one real step (S, 0) and a padded step; vision: (1, 0), (0, 2) and a padded step
    text = torch.tensor([[[S, 0.0], [9.0, 9.0]]])
    vision = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [7.0, -7.0]]])
    audio = torch.tensor([[0.5, -0.5, 4.0]])
    return {
        "text": EncoderOutput(text, text[:, 0], torch.tensor([[True, False]])),
        "vision": EncoderOutput(vision, vision[:, :2].mean(1), torch.tensor([[True, True, False]])),
        "audio": EncoderOutput(None, audio, None),
    }


def test_exact_bidirectional_cross_attention():
    fusion = _identity(
        CrossAttentionFusion({"text": 2, "vision": 2, "audio": 3}, ["text", "vision"], num_heads=1)
    )
    assert fusion.out_dim == 2 + 2 + 3
    out = fusion(_encoded())
    # text -> vision: scores (ln3, 0) -> weights (3/4, 1/4); attended = 3/4 (1, 0) + 1/4 (0, 2) = (0.75, 0.5)
    # vision -> text: one real text key, weight 1 -> both vision steps = (S, 0); mean (S, 0)
    # fused (sorted): audio (0.5, -0.5, 4), text (0.75, 0.5), vision (S, 0)
    assert_close(out.fused, torch.tensor([[0.5, -0.5, 4.0, 0.75, 0.5, S, 0.0]]))
    assert_close(out.attention["text->vision"], torch.tensor([[[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]]]))
    assert_close(out.attention["vision->text"], torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]]))


def test_exact_residual_adds_the_query_stream():
    fusion = _identity(
        ResidualCrossAttentionFusion({"text": 2, "vision": 2}, ["vision", "text"], num_heads=1)
    )
    encoded = _encoded()
    del encoded["audio"]
    out = fusion(encoded)
    # text: LN((0.75 + S, 0.5)) = (1, -1)
    # vision step 1: LN((S, 0) + (1, 0)) = (1, -1); step 2: LN((S, 0) + (0, 2)) = (-1, 1) since S < 2
    # mean (0, 0). Adding the text stream instead (published bug) would give (1, -1) for both steps.
    assert_close(out.fused, torch.tensor([[1.0, -1.0, 0.0, 0.0]]))


def test_three_sequence_modalities_attend_to_all_others():
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(
        {"audio": 4, "text": 4, "vision": 4}, ["audio", "text", "vision"], num_heads=2
    )
    masks = {
        "audio": torch.tensor([[True, False]]),
        "text": torch.tensor([[True, True, True]]),
        "vision": torch.tensor([[True, True, False, False]]),
    }
    encoded = {
        m: EncoderOutput(torch.randn(1, k.shape[1], 4), torch.zeros(1, 4), k) for m, k in masks.items()
    }
    out = fusion(encoded)
    assert out.fused.shape == (1, 12)
    assert sorted(out.attention) == [
        "audio->text",
        "audio->vision",
        "text->audio",
        "text->vision",
        "vision->audio",
        "vision->text",
    ]
    # one joint softmax over both other modalities: the slices of a real query row sum to 1 together
    joint = out.attention["text->audio"].sum(-1) + out.attention["text->vision"].sum(-1)
    assert_close(joint, torch.ones(1, 3))
    assert out.attention["text->vision"].shape == (1, 3, 4)


def test_projects_when_sizes_differ():
    fusion = CrossAttentionFusion({"text": 3, "vision": 4}, ["text", "vision"], num_heads=2)
    assert fusion.dim == 4
    assert fusion.out_dim == 8
    assert isinstance(fusion.projections["vision"], torch.nn.Identity)
    assert fusion.projections["text"].in_features == 3


def test_errors():
    with pytest.raises(
        ValueError, match=r"at least 2 sequence modalities, got \['text'\] \(vector modalities: \['audio'\]\)"
    ):
        CrossAttentionFusion({"text": 4, "audio": 4}, ["text"])
    with pytest.raises(ValueError, match=r"\['video'\] are not among"):
        CrossAttentionFusion({"text": 4, "vision": 4}, ["text", "video"])
    with pytest.raises(ValueError, match="dimension 6 is not divisible by num_heads 4"):
        CrossAttentionFusion({"text": 6, "vision": 6}, ["text", "vision"], num_heads=4)
    fusion = CrossAttentionFusion({"text": 2, "vision": 2}, ["text", "vision"], num_heads=1)
    encoded = _encoded()
    del encoded["audio"]
    encoded["vision"] = EncoderOutput(None, encoded["vision"].pooled, None)
    with pytest.raises(ValueError, match="needs a sequence for modality 'vision'"):
        fusion(encoded)


def test_time_prior_and_feedforward_options_train_end_to_end():
    torch.manual_seed(0)
    fusion = FUSIONS.create("residual_cross_attention", modality_dims={"text": 8, "vision": 8},
                            sequence_modalities=["text", "vision"], num_heads=2, dim_feedforward=16,
                            time_bias=5.0)
    text_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    encoded = {"text": EncoderOutput(torch.randn(2, 5, 8), torch.randn(2, 8), text_mask),
               "vision": EncoderOutput(torch.randn(2, 7, 8), torch.randn(2, 8), torch.ones(2, 7, dtype=torch.bool))}
    out = fusion(encoded)
    assert out.fused.shape == (2, fusion.out_dim) and torch.isfinite(out.fused).all()
    out.fused.sum().backward()
    slopes = [p for n, p in fusion.named_parameters() if n.endswith("log_time_slope")]
    assert len(slopes) == 2 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in slopes)


def test_exact_vector_token_attends_to_the_sequence():
    # audio is a per-clip vector; with vector_tokens it is a one-step sequence in both directions
    fusion = _identity(
        CrossAttentionFusion({"audio": 2, "vision": 2}, ["vision"], num_heads=1, vector_tokens=True)
    )
    assert fusion.token_modalities == ("audio", "vision")
    assert fusion.out_dim == 2 + 2
    vision = _encoded()["vision"]
    audio = torch.tensor([[S, 0.0]])
    out = fusion({"audio": EncoderOutput(None, audio, None), "vision": vision})
    # audio -> vision: scores (ln3, 0) over the 2 real steps -> (3/4, 1/4); attended (0.75, 0.5)
    # vision -> audio: one key, weight 1 -> each real vision step gets (S, 0); mean (S, 0)
    assert_close(out.fused, torch.tensor([[0.75, 0.5, S, 0.0]]))
    assert_close(out.attention["audio->vision"], torch.tensor([[[0.75, 0.25, 0.0]]]))
    assert_close(out.attention["vision->audio"], torch.tensor([[[1.0], [1.0], [0.0]]]))


def test_vector_tokens_out_dim_and_default_unchanged():
    dims = {"text": 2, "vision": 2, "audio": 3}
    plain = CrossAttentionFusion(dims, ["text", "vision"], num_heads=1)
    assert plain.token_modalities == ("text", "vision") and plain.out_dim == 2 + 2 + 3
    tokens = ResidualCrossAttentionFusion(dims, ["text", "vision"], num_heads=1, vector_tokens=True)
    assert tokens.dim == 3  # the largest size among all attending modalities
    assert tokens.out_dim == 3 * 3
    assert isinstance(tokens.projections["audio"], torch.nn.Identity)
    assert tokens.projections["text"].in_features == 2
    torch.manual_seed(0)
    text_mask = torch.tensor([[True, True, False], [True, False, False]])
    encoded = {
        "audio": EncoderOutput(None, torch.randn(2, 3), None),
        "text": EncoderOutput(torch.randn(2, 3, 2), torch.randn(2, 2), text_mask),
        "vision": EncoderOutput(torch.randn(2, 4, 2), torch.randn(2, 2), torch.ones(2, 4, dtype=torch.bool)),
    }
    out = tokens(encoded)
    assert out.fused.shape == (2, 9) and torch.isfinite(out.fused).all()
    assert out.attention["audio->text"].shape == (2, 1, 3)
    assert out.attention["text->audio"].shape == (2, 3, 1)
    # the audio token's one softmax spans the text and vision steps
    joint = out.attention["audio->text"].sum(-1) + out.attention["audio->vision"].sum(-1)
    assert_close(joint, torch.ones(2, 1))


def test_vector_tokens_error_messages():
    with pytest.raises(ValueError, match=r"\(vector modalities: \['audio'\]\); set vector_tokens=true"):
        CrossAttentionFusion({"text": 4, "audio": 4}, ["text"])
    for sequences in (["text"], []):
        fusion = CrossAttentionFusion({"text": 4, "audio": 4}, sequences, num_heads=2, vector_tokens=True)
        assert fusion.out_dim == 8
    with pytest.raises(ValueError, match=r"needs at least 2 modalities, got \['text'\]"):
        CrossAttentionFusion({"text": 4}, ["text"], vector_tokens=True)
    # no hint without vector modalities
    with pytest.raises(ValueError, match=r"got \['text'\] \(vector modalities: \[\]\)$"):
        CrossAttentionFusion({"text": 4}, ["text"])
