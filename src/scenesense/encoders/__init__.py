"""Modality encoders; importing any module of this package fills `ENCODERS` with all of them."""

from __future__ import annotations

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_sequence_input, validate_vector_input
from scenesense.encoders.hf import HFEncoder
from scenesense.encoders.identity import IdentitySequenceEncoder, IdentityVectorEncoder
from scenesense.encoders.linear import LinearVectorEncoder, MLPVectorEncoder
from scenesense.encoders.minilm import MiniLMEncoder
from scenesense.encoders.transformer import TransformerSequenceEncoder

__all__ = [
    "ENCODERS",
    "HFEncoder",
    "IdentitySequenceEncoder",
    "IdentityVectorEncoder",
    "LinearVectorEncoder",
    "MLPVectorEncoder",
    "MiniLMEncoder",
    "ModalityEncoder",
    "TransformerSequenceEncoder",
    "validate_sequence_input",
    "validate_vector_input",
]
