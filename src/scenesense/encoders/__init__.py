"""Modality encoders; importing this package registers them in ``ENCODERS``."""

from __future__ import annotations

from scenesense.encoders.base import ModalityEncoder, validate_sequence_input, validate_vector_input
from scenesense.encoders.linear import LinearVectorEncoder, MLPVectorEncoder
from scenesense.encoders.minilm import MiniLMEncoder
from scenesense.encoders.transformer import TransformerSequenceEncoder

__all__ = [
    "LinearVectorEncoder",
    "MLPVectorEncoder",
    "MiniLMEncoder",
    "ModalityEncoder",
    "TransformerSequenceEncoder",
    "validate_sequence_input",
    "validate_vector_input",
]
