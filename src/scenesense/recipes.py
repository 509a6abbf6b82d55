"""Named recipes (configuration deltas over the defaults, one per model of a paper) and
`resolve_config`, which checks a merged configuration against every registry.

Each recipe is a mapping merged over `scenesense.config.ExperimentConfig` defaults (and
under ``--set`` overrides). ``scenesense list recipes`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scenesense.config import ConfigError, ExperimentConfig, build_config
from scenesense.datasets.sources import DATASETS
from scenesense.encoders import ENCODERS
from scenesense.extraction import EXTRACTORS
from scenesense.fusions import FUSIONS
from scenesense.models import CONTEXTS
from scenesense.registry import Registry
from scenesense.training import LOSSES


@dataclass(frozen=True)
class Recipe:
    """A named configuration delta: ``delta`` is merged over the defaults (under ``--set``)."""

    description: str  # one line, shown by ``scenesense list recipes``
    delta: dict[str, Any]  # nested config mapping, e.g. {"model": {"fusion": {"name": "concat"}}}


RECIPES: Registry[Recipe] = Registry("recipe")
"""Every recipe by name, all registered below."""


def _recipe(name: str, description: str, delta: dict[str, Any]) -> None:
    RECIPES.register(name)(Recipe(description, delta))


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

# TACFN (Liu, Fu, Wang, Zheng; arXiv 2505.06536): adaptive cross-modal blocks in both directions,
# intra-modal self-attention on the source, fusion weight vector, residual, then concatenation.
_recipe(
    "tacfn",
    "TACFN: self-attention selection, tanh-softmax fusion weight vector, residual, both directions",
    {"model": {"fusion": {"name": "tacfn", "self_attention": True, "residual": True, "temporal": True,
                          "weight_axis": "time"},
               "use_residual": False, "modality_dropout": 0.0}},
)

# Early vs late vs attention fusion for 3-class sentiment on CMU-MOSEI (arXiv 2501.08085): each
# modality is linearly projected, encoded by a transformer and represented by its final hidden state.
_FINAL_STATE = {"name": "transformer", "pooling": "last"}
_recipe(
    "mosei_early",
    "Early fusion (arXiv 2501.08085): concatenation of the encoders' final hidden states, MLP head",
    {"model": {"sequence_encoder": _FINAL_STATE, "fusion": {"name": "concat"}, "use_residual": False,
               "modality_dropout": 0.0}},
)
_recipe(
    "mosei_late",
    "Late fusion (arXiv 2501.08085): one classifier per modality, majority vote (ties: higher mean probability)",
    {"model": {"sequence_encoder": _FINAL_STATE, "fusion": {"name": "late", "mode": "vote"},
               "use_residual": False, "modality_dropout": 0.0}},
)
_recipe(
    "mosei_attention",
    "Attention fusion (arXiv 2501.08085): multi-head attention over the modality representations",
    {"model": {"sequence_encoder": _FINAL_STATE, "fusion": {"name": "modality_attention"},
               "use_residual": False, "modality_dropout": 0.0}},
)

# Adaptive Modality Weighting: softmax over the modality axis of a learnable M x d matrix.
_recipe(
    "amw",
    "Adaptive Modality Weighting: learnable M x d weights, softmax over modalities, weighted sum",
    {"model": {"fusion": {"name": "amw", "mode": "static"}, "use_residual": False, "modality_dropout": 0.0}},
)
_recipe(
    "amw_sample",
    "Adaptive Modality Weighting, sample-adaptive: the M x d weights are computed from each input",
    {"model": {"fusion": {"name": "amw", "mode": "sample"}, "use_residual": False, "modality_dropout": 0.0}},
)
_recipe(
    "amw_temporal",
    "Adaptive Modality Weighting per time segment: each sequence cut into 8 relative-time segments",
    {"model": {"fusion": {"name": "amw", "mode": "temporal", "segments": 8}, "use_residual": False,
               "modality_dropout": 0.0}},
)

# MulT (Tsai et al., ACL 2019) at the sizes of its CMU-MOSEI configuration: width 30, 5 heads,
# 5 cross-modal layers per pair, 3 self-attention layers per target, dropout 0.1.
_recipe(
    "mult",
    "MulT: cross-modal transformers for every source -> target pair, self-attention, last step",
    {"model": {"fusion": {"name": "mult", "dim": 30, "num_heads": 5, "num_layers": 5, "self_layers": 3,
                          "dropout": 0.1, "attn_dropout": 0.1, "pooling": "last"},
               "use_residual": False, "modality_dropout": 0.0}},
)

# TMT (Yin et al., EAAI 2024), the host model of the AMW paper: identity encoders (TMT projects
# the raw features itself), the published loss 10 * task + 0.01 * orthogonality + 1 * similarity
# (the fusion declares the two auxiliary weights), and AMW on the modality-specific tokens.
_TMT = {"sequence_encoder": {"name": "identity"}, "vector_encoder": {"name": "identity_vector"},
        "use_residual": False, "modality_dropout": 0.0}
_recipe("tmt", "TMT: modality-invariant and -specific tokens, mutual transformers, orthogonality + MMD losses",
        {"model": {**_TMT, "fusion": {"name": "tmt", "amw": "none"}}, "trainer": {"task_loss_weight": 10.0}})
_recipe("tmt_amw", "TMT + Adaptive Modality Weighting (learnable M x d weights) on the modality-specific tokens",
        {"model": {**_TMT, "fusion": {"name": "tmt", "amw": "static"}}, "trainer": {"task_loss_weight": 10.0}})
_recipe("tmt_amw_temporal", "TMT + temporal AMW: weights per modality-specific token, computed from each token",
        {"model": {**_TMT, "fusion": {"name": "tmt", "amw": "temporal"}}, "trainer": {"task_loss_weight": 10.0}})

# Beyond the paper (issue 7): dialogue context over the fused utterances of a dialogue (window of
# 8 utterances each side), then speakers, then class-imbalance losses. They choose no fusion, so they
# apply to any base configuration and run on one modality too. A context model's batch is a number
# of whole dialogues: 4 MELD dialogues hold ~38 utterances, close to the paper's batch of 32.
_CONTEXT = {"name": "transformer", "window": 8, "d_model": 128, "num_layers": 1, "num_heads": 4, "dropout": 0.1}
_recipe("context_past", "dialogue context: past utterances only (streaming), no speaker information",
        {"model": {"context": {**_CONTEXT, "direction": "past", "speaker": "none"}}, "trainer": {"batch_size": 4}})
_recipe("context_past_speaker", "dialogue context, past only, speaker-aware (same/other-speaker bias + embeddings)",
        {"model": {"context": {**_CONTEXT, "direction": "past", "speaker": "both"}}, "trainer": {"batch_size": 4}})
_recipe("context_both_speaker", "dialogue context, past and future, speaker-aware",
        {"model": {"context": {**_CONTEXT, "direction": "both", "speaker": "both"}}, "trainer": {"batch_size": 4}})
_recipe("class_weighted", "cross-entropy weighted by inverse training class frequency",
        {"trainer": {"loss": "cross_entropy", "class_weighted_loss": True}})
_recipe("focal", "focal loss, gamma 2 (Lin et al. 2017)", {"trainer": {"loss": "focal", "loss_params": {"gamma": 2.0}}})
_recipe("logit_adjusted", "logit-adjusted cross-entropy, tau 1 (Menon et al. 2021)",
        {"trainer": {"loss": "logit_adjusted", "loss_params": {"tau": 1.0}}})

SCENE_SENSE_RECIPES: tuple[str, ...] = (
    "concat",
    "hadamard",
    "cross_attention",
    "residual",
    "residual_cross_attention",
)


COMPANION_RECIPES: tuple[str, ...] = (
    "tacfn", "mosei_early", "mosei_late", "mosei_attention", "amw", "amw_sample", "amw_temporal", "mult",
    "tmt", "tmt_amw", "tmt_amw_temporal",
)


CONTEXT_RECIPES: tuple[str, ...] = ("context_past", "context_past_speaker", "context_both_speaker")
IMBALANCE_RECIPES: tuple[str, ...] = ("class_weighted", "focal", "logit_adjusted")


def recipe_delta(name: str) -> dict[str, Any]:
    """The config delta of recipe ``name`` (``KeyError`` lists the valid names)."""
    return RECIPES.get(name).delta


# --------------------------------------------------------------------------- resolution
def _check_name(registry: Registry[Any], name: object, where: str, also: tuple[str, ...] = ()) -> None:
    """Raise a `ConfigError` naming ``where`` and the valid choices unless ``name`` is registered."""
    if not (isinstance(name, str) and (name in also or name in registry)):
        choices = [*also, *registry.names()]
        raise ConfigError(f"{where}: unknown {registry.kind} {name!r}; choose from {choices}")


def check_names(cfg: ExperimentConfig) -> None:
    """Check every registry name ``cfg`` uses: dataset, encoders, fusion, context, loss and the
    extractor a dataset parameter ``extractor`` names.

    Raises:
        ConfigError: ``"<key>: unknown <kind> '<name>'; choose from [...]"`` for the first unknown name.
    """
    _check_name(DATASETS, cfg.data.dataset, "data.dataset")
    if "extractor" in cfg.data.params:
        _check_name(EXTRACTORS, cfg.data.params["extractor"], "data.params.extractor")
    model = cfg.model
    _check_name(ENCODERS, model.sequence_encoder.name, "model.sequence_encoder")
    _check_name(ENCODERS, model.vector_encoder.name, "model.vector_encoder")
    for modality, component in sorted(model.encoders.items()):
        _check_name(ENCODERS, component.name, f"model.encoders.{modality}")
    _check_name(FUSIONS, model.fusion.name, "model.fusion")
    if model.context is not None:
        _check_name(CONTEXTS, model.context.name, "model.context")
    _check_name(LOSSES, cfg.trainer.loss, "trainer.loss", also=("auto",))


def resolve_config(*layers: Mapping[str, Any]) -> ExperimentConfig:
    """Merge ``layers`` (lowest precedence first) over the defaults, as
    `scenesense.config.build_config` does, and check the result before anything runs.

    ``modalities`` that no layer sets come from the dataset (its source's ``modalities``: ``text``
    for ``meld``, all three for ``synthetic``, those of the feature sets in ``train.h5`` for a
    ``store``). Every registry name must be registered
    (`check_names`), ``data.root`` must be given exactly when the dataset reads files (unset, it
    comes from the environment variable ``SCENESENSE_<DATASET>_ROOT``, e.g. ``SCENESENSE_MELD_ROOT``), and
    ``data.params`` must suit the dataset.

    Args:
        layers: nested config mappings, e.g. a YAML file, a recipe delta, command-line flags.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the first invalid value, named by its key (unknown names list the choices;
            a missing root says what folder the dataset expects).

    Examples:
        >>> resolve_config({"data": {"dataset": "meld", "root": "MELD"}}).modalities
        ('text',)
    """
    cfg = build_config(*layers)
    _check_name(DATASETS, cfg.data.dataset, "data.dataset")
    source = DATASETS.get(cfg.data.dataset)()
    modalities = source.modalities_at(cfg.data.root)
    if not any("modalities" in layer for layer in layers) and cfg.modalities != modalities:
        cfg = build_config({"modalities": list(modalities)}, *layers)
    check_names(cfg)
    source.check_root(cfg.data.root)
    if source.given_root(cfg.data.root) != cfg.data.root:  # from the environment: recorded in the config
        cfg = build_config(*layers, {"data": {"root": source.given_root(cfg.data.root)}},
                           {"modalities": list(cfg.modalities)})
    source.params(cfg.data.params)
    return cfg
