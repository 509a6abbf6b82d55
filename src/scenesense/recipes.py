"""Named recipes: configuration deltas over the defaults, one per model of a paper.

Each recipe is a mapping merged over :class:`scenesense.config.ExperimentConfig` defaults (and
under ``--set`` overrides). ``scenesense list recipes`` prints them.
"""

from __future__ import annotations

from typing import Any

from scenesense.registry import RECIPES


def _recipe(name: str, description: str, delta: dict[str, Any]) -> None:
    RECIPES.register(name)({"description": description, "delta": delta})


# The five Scene Sense variants (Ray, Nabar, Abid): Tables 3-4 of the paper. As in the paper,
# modality dropout (p = 0.5) is used by the concatenation models only.
_recipe(
    "concat",
    "Scene Sense baseline: per-modality encoders, concatenation, MLP head",
    {"model": {"fusion": {"name": "concat"}, "use_residual": False}},
)
_recipe(
    "hadamard",
    "Scene Sense Hadamard fusion: element-wise product of the encoders' modality vectors",
    {"model": {"fusion": {"name": "hadamard", "use_projection": False}, "use_residual": False,
               "modality_dropout": 0.0}},
)
_recipe(
    "cross_attention",
    "Scene Sense bidirectional cross-attention between sequence modalities (audio as a vector branch)",
    {"model": {"fusion": {"name": "cross_attention"}, "use_residual": False, "modality_dropout": 0.0}},
)
_recipe(
    "residual",
    "Scene Sense residual variant: outer residual around each encoder, concatenation",
    {"model": {"fusion": {"name": "concat"}, "use_residual": True}},
)
_recipe(
    "residual_cross_attention",
    "Scene Sense residual + cross-attention: residual encoders and residual cross-attention",
    {"model": {"fusion": {"name": "residual_cross_attention"}, "use_residual": True,
               "modality_dropout": 0.0}},
)

SCENE_SENSE_RECIPES: tuple[str, ...] = (
    "concat",
    "hadamard",
    "cross_attention",
    "residual",
    "residual_cross_attention",
)


def recipe_delta(name: str) -> dict[str, Any]:
    """The config delta of recipe ``name`` (``KeyError`` lists the valid names)."""
    return RECIPES.get(name)["delta"]
