"""Unregistered building blocks shared by encoders and fusions."""

from __future__ import annotations

from scenesense.layers.attention import CrossAttentionBlock, unmask_empty_rows, validate_heads
from scenesense.layers.mlp import MLP
from scenesense.layers.modality_weighting import modality_softmax
from scenesense.layers.pooling import masked_mean, segment_means
from scenesense.layers.positional import SinusoidalPositionalEncoding, sinusoidal_positions

__all__ = [
    "MLP",
    "CrossAttentionBlock",
    "SinusoidalPositionalEncoding",
    "masked_mean",
    "modality_softmax",
    "segment_means",
    "sinusoidal_positions",
    "unmask_empty_rows",
    "validate_heads",
]
