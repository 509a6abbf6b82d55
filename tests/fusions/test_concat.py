from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.fusions.concat import ConcatFusion
from scenesense.types import EncoderOutput


def _pooled(values):
    return EncoderOutput(None, torch.tensor([values]), None)


def test_exact_sorted_concatenation():
    fusion = ConcatFusion({"vision": 2, "text": 1, "audio": 2})
    assert fusion.out_dim == 5
    out = fusion({"vision": _pooled([4.0, 5.0]), "text": _pooled([3.0]), "audio": _pooled([1.0, 2.0])})
    # sorted: audio (1, 2), text (3), vision (4, 5)
    assert_close(out.fused, torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    assert out.modality_weights is None
    assert out.attention is None


def test_single_modality_and_errors():
    assert ConcatFusion({"text": 3}).out_dim == 3
    with pytest.raises(ValueError, match="at least one modality"):
        ConcatFusion({})
    with pytest.raises(ValueError, match="'text' must be a positive int, got 0"):
        ConcatFusion({"text": 0})
    with pytest.raises(ValueError, match="'audio' has pooled size 3, expected 2"):
        ConcatFusion({"audio": 2})({"audio": _pooled([1.0, 2.0, 3.0])})
