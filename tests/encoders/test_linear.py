from __future__ import annotations

import torch
from torch.testing import assert_close

from scenesense.encoders.linear import LinearVectorEncoder, MLPVectorEncoder


def test_linear_encoder_exact():
    enc = LinearVectorEncoder(2, out_dim=3)
    with torch.no_grad():
        enc.net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        enc.net[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    out = enc(torch.tensor([[2.0, 5.0]]))
    # (2, 5+1, 2-5)
    assert_close(out.pooled, torch.tensor([[2.0, 6.0, -3.0]]))
    assert out.sequence is None
    assert out.mask is None


def test_mlp_encoder_structure():
    enc = MLPVectorEncoder(5, out_dim=4, hidden_dim=7)
    assert enc.out_dim == 4
    assert enc.net.net[0].out_features == 7
    assert enc(torch.randn(2, 5)).pooled.shape == (2, 4)
