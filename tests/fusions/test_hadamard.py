from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions.hadamard import HadamardFusion
from scenesense.types import EncoderOutput


def _pooled(values):
    return EncoderOutput(None, torch.tensor([values]), None)


def _set(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))


def test_exact_product_over_all_three_modalities():
    fusion = HadamardFusion({"audio": 2, "text": 2, "vision": 2})
    _set(fusion.projections["text"], [[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])
    _set(fusion.projections["vision"], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    _set(fusion.projections["audio"], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    out = fusion({"text": _pooled([1.0, 2.0]), "vision": _pooled([3.0, -1.0]), "audio": _pooled([2.0, 0.5])})
    # text -> (1, 2*2+1) = (1, 5); vision -> (3, -1); audio -> (2, 0.5)
    # product (1*3*2, 5*-1*0.5) = (6, -2.5); keeping only the last pair (published code) would give (3, -5)
    assert_close(out.fused, torch.tensor([[6.0, -2.5]]))


def test_dims_and_paper_mode_without_projection():
    assert HadamardFusion({"text": 8, "audio": 6}).out_dim == 6  # default: smallest modality size
    assert HadamardFusion({"text": 8, "audio": 6}, dim=4).out_dim == 4
    fusion = HadamardFusion({"text": 2, "vision": 2}, use_projection=False)
    assert len(list(fusion.parameters())) == 0
    out = fusion({"text": _pooled([2.0, 3.0]), "vision": _pooled([4.0, -1.0])})
    assert_close(out.fused, torch.tensor([[8.0, -3.0]]))


def test_errors():
    with pytest.raises(ValueError, match=r"at least 2 modalities, got \['text'\]"):
        HadamardFusion({"text": 4})
    with pytest.raises(ValueError, match="equal modality sizes"):
        HadamardFusion({"text": 4, "audio": 3}, use_projection=False)
