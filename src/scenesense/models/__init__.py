"""The architecture (encode -> fuse -> head), context models (`CONTEXTS`), dropout, builders."""

from __future__ import annotations

from scenesense.models.builders import build_encoder, build_fusion, build_model
from scenesense.models.classifier import MultimodalClassifier
from scenesense.models.context import CONTEXTS, DialogueTransformer
from scenesense.models.modality_dropout import ModalityDropout

__all__ = [
    "CONTEXTS",
    "DialogueTransformer",
    "ModalityDropout",
    "MultimodalClassifier",
    "build_encoder",
    "build_fusion",
    "build_model",
]
