"""Fusion strategies; importing any module of this package fills `FUSIONS` with all of them."""

from __future__ import annotations

from scenesense.fusions.amw import AdaptiveModalityWeightingFusion
from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.fusions.concat import ConcatFusion
from scenesense.fusions.cross_attention import CrossAttentionFusion, ResidualCrossAttentionFusion
from scenesense.fusions.hadamard import HadamardFusion
from scenesense.fusions.late import LateFusion
from scenesense.fusions.modality_attention import ModalityAttentionFusion
from scenesense.fusions.mult import MulTFusion
from scenesense.fusions.tacfn import TACFNFusion
from scenesense.fusions.tmt import TMTFusion

__all__ = [
    "FUSIONS",
    "AdaptiveModalityWeightingFusion",
    "ConcatFusion",
    "CrossAttentionFusion",
    "Fusion",
    "HadamardFusion",
    "LateFusion",
    "ModalityAttentionFusion",
    "MulTFusion",
    "ResidualCrossAttentionFusion",
    "TACFNFusion",
    "TMTFusion",
]
