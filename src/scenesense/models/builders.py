"""Builders: the only place that maps configuration to modules.

Sizes are derived, never configured: encoder ``in_dim`` comes from the data, ``out_dim`` from
``ModelConfig.out_dim``, the fusion's ``modality_dims`` from the encoders and the head's input
size from ``fusion.out_dim``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from scenesense.config import ComponentConfig, ConfigError, ModelConfig
from scenesense.encoders import ENCODERS, ModalityEncoder
from scenesense.fusions import FUSIONS, Fusion
from scenesense.layers.mlp import MLP
from scenesense.models.classifier import MultimodalClassifier
from scenesense.models.context import CONTEXTS
from scenesense.models.contextual import ContextualClassifier
from scenesense.models.modality_dropout import ModalityDropout
from scenesense.models.standardize import FeatureStandardizer
from scenesense.registry import Registry
from scenesense.types import MODALITIES

_KINDS = ("sequence", "vector")


def _parameters(factory: Any) -> tuple[list[str], bool]:  # noqa: ANN401
    """Constructor parameter names of ``factory`` and whether it takes ``**kwargs``."""
    params = inspect.signature(factory).parameters.values()
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _create(
    registry: Registry[Any],
    component: ComponentConfig,
    where: str,
    derived: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> Any:  # noqa: ANN401
    """Instantiate ``component`` from ``registry``.

    ``derived`` values are always passed where accepted and may not be set in the params;
    ``defaults`` are passed where accepted unless the params override them.
    """
    try:
        factory = registry.get(component.name)
    except KeyError as err:
        raise ConfigError(f"{where}: {err.args[0]}") from None
    label = f"{where} ({registry.kind} {component.name!r})"
    names, takes_any = _parameters(factory)
    clash = sorted(set(component.params) & set(derived))
    if clash:
        raise ConfigError(f"{label}: {clash} are derived from the data/model and cannot be set")
    unknown = sorted(set(component.params) - set(names))
    if unknown and not takes_any:
        valid = [n for n in names if n not in derived]
        raise ConfigError(f"{label}: unknown parameter(s) {unknown}; valid parameters are {valid}")
    passed = {k: v for k, v in {**derived, **defaults}.items() if k in names or takes_any}
    try:
        return registry.create(component.name, **{**passed, **component.params})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{label}: {err}") from err


def build_encoder(
    component: ComponentConfig,
    modality: str,
    in_dim: int,
    kind: str,
    out_dim: int,
    use_residual: bool = False,
) -> ModalityEncoder:
    """Build one modality encoder and check it accepts the modality's feature kind.

    Args:
        component: encoder name and parameters.
        modality: modality name (for error messages).
        in_dim: feature size from the data.
        kind: ``"sequence"`` (``[T, D]`` features) or ``"vector"`` (``[D]``).
        out_dim: encoder output size.
        use_residual: passed if the encoder accepts it, unless the params set it.

    Returns:
        The encoder.

    Raises:
        ConfigError: unknown encoder or parameter, invalid value, or wrong input kind.
    """
    where = f"model.encoders.{modality}"
    if kind not in _KINDS:
        raise ConfigError(f"{where}: feature kind must be one of {list(_KINDS)}, got {kind!r}")
    try:
        input_kind = ENCODERS.get(component.name).input_kind
    except KeyError as err:
        raise ConfigError(f"{where}: {err.args[0]}") from None
    if input_kind != kind:
        raise ConfigError(
            f"{where}: encoder {component.name!r} takes {input_kind} inputs but modality {modality!r} "
            f"has {kind} features; choose a {kind} encoder"
        )
    derived = {"in_dim": in_dim, "out_dim": out_dim}
    return _create(ENCODERS, component, where, derived, {"use_residual": use_residual})


def build_fusion(
    component: ComponentConfig,
    modality_dims: Mapping[str, int],
    sequence_modalities: Sequence[str],
    num_classes: int | None = None,
) -> Fusion:
    """Build a fusion, passing only the derived arguments its constructor accepts.

    Args:
        component: fusion name and parameters.
        modality_dims: encoder ``out_dim`` per modality.
        sequence_modalities: modalities whose encoders give sequences (for ``"sequence"``-level fusions).
        num_classes: number of classes (for ``"decision"``-level fusions).

    Returns:
        The fusion.

    Raises:
        ConfigError: unknown fusion or parameter, or a modality set the fusion cannot handle.
    """
    derived: dict[str, Any] = {
        "modality_dims": dict(modality_dims),
        "sequence_modalities": sorted(sequence_modalities),
    }
    if num_classes is not None:
        derived["num_classes"] = num_classes
    return _create(FUSIONS, component, "model.fusion", derived, {})


def _validate_encoder_keys(cfg: ModelConfig) -> None:
    unknown = sorted(set(cfg.encoders) - set(MODALITIES))
    if unknown:
        raise ConfigError(
            f"model.encoders: unknown modality key(s) {unknown}; expected some of {list(MODALITIES)}"
        )


def _validate_inputs(
    modalities: Sequence[str],
    feature_dims: Mapping[str, int],
    feature_kinds: Mapping[str, str],
    num_classes: int,
) -> None:
    if not modalities:
        raise ConfigError("modalities: at least one modality is required")
    if len(set(modalities)) != len(modalities):
        raise ConfigError(f"modalities: duplicates in {list(modalities)}")
    for m in modalities:
        if m not in feature_dims or m not in feature_kinds:
            raise ConfigError(f"modality {m!r} is not provided by the data (it has {sorted(feature_dims)})")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")


def build_model(
    cfg: ModelConfig,
    modalities: Sequence[str],
    feature_dims: Mapping[str, int],
    feature_kinds: Mapping[str, str],
    num_classes: int,
    num_speakers: int = 1,
) -> MultimodalClassifier | ContextualClassifier:
    """Build encoders, fusion, head, modality dropout and context model from a `ModelConfig`.

    Per modality the encoder is ``cfg.encoders[m]`` if set, else ``cfg.sequence_encoder`` or
    ``cfg.vector_encoder`` by feature kind. The fusion is told which modalities are sequences
    (``sequence_modalities``) when it accepts that argument. The head is
    ``Linear(fusion.out_dim -> head_hidden_dim) -> ReLU -> Dropout -> Linear(-> num_classes)``
    (an identity for ``"decision"``-level fusions). Modality dropout is used only with >= 2
    modalities and ``p > 0``. With ``cfg.standardize`` the model gets a
    `scenesense.models.standardize.FeatureStandardizer` (identity until fitted).

    Args:
        cfg: model configuration.
        modalities: modalities to use.
        feature_dims: feature size per modality (from the data).
        feature_kinds: ``"sequence"`` or ``"vector"`` per modality (from the data).
        num_classes: number of output classes ``C``.
        num_speakers: speaker vocabulary size incl. the unknown id (for a context model).

    Returns:
        The `MultimodalClassifier`; with ``cfg.context`` set, a `ContextualClassifier`
        around it, whose context model gets ``in_dim = fusion.out_dim`` and ``num_speakers``.

    Raises:
        ConfigError: on any inconsistency, naming the component and the offending value.
    """
    _validate_inputs(modalities, feature_dims, feature_kinds, num_classes)
    _validate_encoder_keys(cfg)
    names = sorted(modalities)
    encoders: dict[str, ModalityEncoder] = {}
    for m in names:
        kind = feature_kinds[m]
        default = cfg.sequence_encoder if kind == "sequence" else cfg.vector_encoder
        encoders[m] = build_encoder(
            cfg.encoders.get(m, default), m, feature_dims[m], kind, cfg.out_dim, cfg.use_residual
        )
    modality_dims = {m: int(enc.out_dim) for m, enc in encoders.items()}
    sequences = [m for m, enc in encoders.items() if enc.input_kind == "sequence"]
    fusion = build_fusion(cfg.fusion, modality_dims, sequences, num_classes)
    if fusion.level == "decision":
        if fusion.out_dim != num_classes:
            raise ConfigError(
                f"model.fusion: decision-level fusion gives {fusion.out_dim} outputs, expected {num_classes}"
            )
        head: nn.Module = nn.Identity()
    else:
        try:
            head = MLP(
                fusion.out_dim, num_classes, hidden_dims=(cfg.head_hidden_dim,), dropout=cfg.head_dropout
            )
        except ValueError as err:
            raise ConfigError(f"model head: {err}") from err
    dropout = None
    if len(names) >= 2 and cfg.modality_dropout > 0:
        try:
            dropout = ModalityDropout(cfg.modality_dropout, cfg.modality_dropout_mode)
        except ValueError as err:
            raise ConfigError(f"model.modality_dropout: {err}") from err
    standardizer = FeatureStandardizer({m: feature_dims[m] for m in names}) if cfg.standardize else None
    model = MultimodalClassifier(nn.ModuleDict(encoders), fusion, head, dropout, standardizer)
    if cfg.context is None:
        return model
    context = _create(CONTEXTS, cfg.context, "model.context",
                      {"in_dim": fusion.out_dim, "num_speakers": num_speakers}, {})
    return ContextualClassifier(model, context)
