from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from scenesense.layers.positional import SinusoidalPositionalEncoding, sinusoidal_positions


def test_table_exact_values():
    table = sinusoidal_positions(3, 4)
    # channel pairs use frequencies 1 and 10000^(-2/4) = 0.01
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ]
    )
    assert_close(table, expected)


def test_odd_dim_drops_last_cosine():
    table = sinusoidal_positions(2, 3)
    assert table.shape == (2, 3)
    # third channel: frequency 10000^(-2/3)
    assert_close(table[1, 2], torch.tensor(math.sin(10000 ** (-2 / 3))))


def test_module_adds_table_for_any_length():
    pe = SinusoidalPositionalEncoding(6)
    x = torch.randn(2, 5000, 6)  # no max-length limit
    assert_close(pe(x) - x, sinusoidal_positions(5000, 6).expand(2, -1, -1))


def test_errors():
    with pytest.raises(ValueError, match=r"\[B, T, 6\]"):
        SinusoidalPositionalEncoding(6)(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="dim must be >= 1"):
        SinusoidalPositionalEncoding(0)
    with pytest.raises(ValueError, match="length must be >= 0"):
        sinusoidal_positions(-1, 2)
