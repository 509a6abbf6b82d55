"""modality_softmax: the AMW normalisation over the modality axis."""

from __future__ import annotations

import math

import pytest
import torch

from scenesense.layers.modality_weighting import modality_softmax


def test_hand_computed_softmax_over_modalities_per_feature() -> None:
    logits = torch.tensor([[[0.0, 1.0], [math.log(3.0), 1.0]]])  # [B=1, M=2, d=2]
    weights = modality_softmax(logits)
    assert torch.allclose(weights, torch.tensor([[[0.25, 0.5], [0.75, 0.5]]]))


def test_absent_modality_gets_zero_and_the_others_share() -> None:
    logits = torch.zeros(2, 3, 4, 5)  # [B, M, S, d]: per step
    present = torch.tensor([[True, False, True], [False, False, False]])
    weights = modality_softmax(logits, present)
    assert torch.equal(weights[0, 1], torch.zeros(4, 5))
    assert torch.allclose(weights[0, 0], torch.full((4, 5), 0.5))
    assert torch.allclose(weights[1], torch.full((3, 4, 5), 1 / 3))  # none present: all used
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, 4, 5))


def test_present_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"present must be \[B, M\]"):
        modality_softmax(torch.zeros(2, 3, 4), torch.ones(2, 2, dtype=torch.bool))
