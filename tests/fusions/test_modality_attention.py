from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions.modality_attention import ModalityAttentionFusion
from scenesense.types import EncoderOutput


def _identity(fusion: ModalityAttentionFusion) -> ModalityAttentionFusion:
    """One head, d = 2, identity query/key/value/output projections, zero biases."""
    with torch.no_grad():
        fusion.attention.in_proj_weight.copy_(torch.cat([torch.eye(2)] * 3))
        fusion.attention.in_proj_bias.zero_()
        fusion.attention.out_proj.weight.copy_(torch.eye(2))
        fusion.attention.out_proj.bias.zero_()
    return fusion.eval()


def test_exact_attention_across_two_modalities():
    fusion = _identity(ModalityAttentionFusion({"audio": 2, "text": 2}, sequence_modalities=["text"]))
    a, t = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])
    encoded = {"audio": EncoderOutput(None, a.unsqueeze(0), None),
               "text": EncoderOutput(torch.zeros(1, 1, 2), t.unsqueeze(0), torch.tensor([[True]]))}
    out = fusion(encoded)
    # scores q.k / sqrt(2): audio row (a.a, a.t) = (1, 1); text row (t.a, t.t) = (1, 2)
    s = 1 / math.sqrt(2)
    w_text = torch.softmax(torch.tensor([s, 2 * s]), dim=0)
    expected_audio = 0.5 * a + 0.5 * t
    expected_text = w_text[0] * a + w_text[1] * t
    assert_close(out.fused, torch.cat([expected_audio, expected_text]).unsqueeze(0))
    assert_close(out.attention["modalities"], torch.stack([torch.tensor([0.5, 0.5]), w_text]).unsqueeze(0))
    assert fusion.out_dim == 4


def test_a_missing_sequence_modality_is_not_attended_to():
    fusion = _identity(ModalityAttentionFusion({"audio": 2, "text": 2}, sequence_modalities=["text"]))
    encoded = {"audio": EncoderOutput(None, torch.tensor([[1.0, 0.0]]), None),
               "text": EncoderOutput(torch.zeros(1, 1, 2), torch.tensor([[5.0, 5.0]]), torch.tensor([[False]]))}
    out = fusion(encoded)
    assert_close(out.attention["modalities"][0, :, 1], torch.zeros(2))  # no query looks at text
    assert_close(out.fused[0, :2], torch.tensor([1.0, 0.0]))


def test_projection_and_errors():
    fusion = ModalityAttentionFusion({"audio": 3, "text": 5}, num_heads=1)
    assert isinstance(fusion.project["audio"], torch.nn.Linear) and fusion.out_dim == 10
    with pytest.raises(ValueError, match=">= 2 modalities"):
        ModalityAttentionFusion({"audio": 2})
    with pytest.raises(ValueError, match="does not divide"):
        ModalityAttentionFusion({"audio": 3, "text": 3}, num_heads=2)
    with pytest.raises(ValueError, match="not among"):
        ModalityAttentionFusion({"audio": 2, "text": 2}, sequence_modalities=["vision"])
