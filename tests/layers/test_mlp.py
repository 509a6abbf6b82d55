from __future__ import annotations

import pytest
import torch
from torch import nn

from scenesense.layers.mlp import MLP


def test_head_structure_matches_paper():
    mlp = MLP(1024, 7, hidden_dims=(256,), dropout=0.2)
    kinds = [type(m) for m in mlp.net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (mlp.net[0].in_features, mlp.net[0].out_features, mlp.net[3].out_features) == (1024, 256, 7)
    assert mlp.net[2].p == 0.2


def test_no_hidden_is_one_linear_and_norm_option():
    assert [type(m) for m in MLP(4, 3).net] == [nn.Linear]
    kinds = [type(m) for m in MLP(4, 3, hidden_dims=(5, 6), activation="gelu", norm=True).net]
    assert kinds == [nn.Linear, nn.GELU, nn.LayerNorm, nn.Dropout] * 2 + [nn.Linear]


def test_forward_shape():
    assert MLP(4, 3, hidden_dims=(8,))(torch.randn(2, 5, 4)).shape == (2, 5, 3)


def test_errors():
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        MLP(4, 3, activation="swishy")
    with pytest.raises(ValueError, match=r"\[4, 0, 3\]"):
        MLP(4, 3, hidden_dims=(0,))
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 3, dropout=1.0)
