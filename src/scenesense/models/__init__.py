"""The architecture (encode -> fuse -> head), modality dropout and the builders."""

from __future__ import annotations

from scenesense.models.builders import build_encoder, build_fusion, build_model
from scenesense.models.classifier import MultimodalClassifier
from scenesense.models.modality_dropout import ModalityDropout

__all__ = [
    "ModalityDropout",
    "MultimodalClassifier",
    "build_encoder",
    "build_fusion",
    "build_model",
]
