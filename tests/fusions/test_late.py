from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions.late import LateFusion
from scenesense.types import EncoderOutput


def _fusion(mode: str) -> LateFusion:
    """Three modalities, 3 classes, each classifier's logits = its 3-d input (identity weights)."""
    fusion = LateFusion({"audio": 3, "text": 3, "vision": 3}, num_classes=3, sequence_modalities=["text"], mode=mode)
    with torch.no_grad():
        for layer in fusion.classifiers.values():
            layer.weight.copy_(torch.eye(3))
            layer.bias.zero_()
    return fusion.eval()


def _encoded(text_present: bool = True) -> dict[str, EncoderOutput]:
    ln2, ln3 = math.log(2.0), math.log(3.0)
    mask = torch.tensor([[text_present, False]])
    return {"audio": EncoderOutput(None, torch.tensor([[ln2, 0.0, 0.0]]), None),   # p = (1/2, 1/4, 1/4)
            "text": EncoderOutput(torch.zeros(1, 2, 3), torch.tensor([[0.0, ln3, 0.0]]), mask),  # (1/5, 3/5, 1/5)
            "vision": EncoderOutput(None, torch.tensor([[0.0, ln3, 0.0]]), None)}  # (1/5, 3/5, 1/5)


def test_average_by_hand():
    out = _fusion("average")(_encoded())
    mean = torch.tensor([[(1 / 2 + 2 / 5) / 3, (1 / 4 + 6 / 5) / 3, (1 / 4 + 2 / 5) / 3]])
    assert_close(out.fused.exp(), mean)
    assert out.modality_weights is None


def test_vote_by_hand_and_a_missing_modality_leaves_both():
    fusion = _fusion("vote")
    # votes: audio -> 0, text -> 1, vision -> 1: class 1 wins 2 to 1
    mean = torch.tensor([(1 / 2 + 2 / 5) / 3, (1 / 4 + 6 / 5) / 3, (1 / 4 + 2 / 5) / 3])
    assert_close(fusion(_encoded()).fused.exp(), ((torch.tensor([1.0, 2.0, 0.0]) + mean) / 4).unsqueeze(0))
    # text missing (mask all False): audio and vision tie 1-1; mean (0.35, 0.425, 0.225) breaks it for class 1
    out = fusion(_encoded(text_present=False))
    mean = torch.tensor([(1 / 2 + 1 / 5) / 2, (1 / 4 + 3 / 5) / 2, (1 / 4 + 1 / 5) / 2])
    assert_close(out.fused.exp(), ((torch.tensor([1.0, 1.0, 0.0]) + mean) / 3).unsqueeze(0))
    assert int(out.fused.argmax()) == 1


def test_vote_trains_on_the_average_and_differs_from_it_in_eval():
    fusion = _fusion("vote")
    fusion.train()
    assert_close(fusion(_encoded()).fused, _fusion("average")(_encoded()).fused)
    fusion.eval()
    assert not torch.allclose(fusion(_encoded()).fused, _fusion("average")(_encoded()).fused)


def test_majority_beats_one_confident_modality():
    """Average follows the one confident modality; the vote follows the two mildly agreeing ones."""
    fusion_avg, fusion_vote = _fusion("average"), _fusion("vote")
    encoded = {"audio": EncoderOutput(None, torch.tensor([[9.0, 0.0, 0.0]]), None),
               "text": EncoderOutput(torch.zeros(1, 1, 3), torch.tensor([[0.0, 0.2, 0.0]]), torch.tensor([[True]])),
               "vision": EncoderOutput(None, torch.tensor([[0.0, 0.2, 0.0]]), None)}
    assert int(fusion_avg(encoded).fused.argmax()) == 0
    assert int(fusion_vote(encoded).fused.argmax()) == 1


def test_errors():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        LateFusion({"audio": 2, "text": 2}, num_classes=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        LateFusion({"audio": 2, "text": 2}, num_classes=3, mode="max")
    with pytest.raises(ValueError, match="not among"):
        LateFusion({"audio": 2, "text": 2}, num_classes=3, sequence_modalities=["vision"])
