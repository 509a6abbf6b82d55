"""Typed experiment configuration: frozen dataclasses, strict YAML loading and dotted overrides.

Precedence: dataclass defaults < YAML file (``-c``) < recipe deltas < ``--set key.path=value``.
Unknown keys and type mismatches are errors (`ConfigError`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scenesense.types import MODALITIES

LR_SCHEDULES = ("constant", "linear")  # trainer.lr_schedule values (scenesense.training.optim.lr_factor)
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu")  # what Lightning Fabric accepts
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",  # Fabric's values
              "transformer-engine", "transformer-engine-float16", "32", "16", "bf16", "64")
MAX_SEED = 2**32 - 1  # seeds are numpy seeds: [0, 2**32 - 1]
LOGGERS = ("csv", "mlflow", "tensorboard")  # trainer.loggers values (scenesense.training.tracking)


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or inconsistent."""


@dataclass(frozen=True)
class ComponentConfig:
    """A registered component chosen by name, with keyword arguments for its constructor."""

    name: str  # registry name, e.g. "transformer" or "cross_attention"
    params: dict[str, Any] = field(default_factory=dict)  # constructor kwargs (sizes are derived)


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from."""

    dataset: str = "synthetic"  # DATASETS registry name: synthetic | meld | store | ...
    root: str | None = None  # dataset root (MELD CSV folder, store folder, ...)
    train_split: str = "train"  # split used for fitting
    dev_split: str = "dev"  # split used for model selection (early stopping) and reporting
    features: dict[str, str] = field(default_factory=dict)  # modality -> feature set name in the store
    params: dict[str, Any] = field(default_factory=dict)  # dataset-specific options (e.g. synthetic sizes)
    cache_dir: str | None = None  # where derived stores go (default: $SCENESENSE_CACHE or ~/.cache/scenesense)
    speaker_norm: bool = False  # z-score each speaker's features with their own stats (per split, no labels)
    speaker_min_utterances: int = 20  # context models: speakers with fewer train utterances are "unknown"


@dataclass(frozen=True)
class ModelConfig:
    """Encoders, fusion, modality dropout and head."""

    encoders: dict[str, ComponentConfig] = field(default_factory=dict)  # per modality; unset -> default
    sequence_encoder: ComponentConfig = field(  # used for sequence modalities without an entry above
        default_factory=lambda: ComponentConfig(
            "transformer", {"num_layers": 3, "num_heads": 4, "dim_feedforward": 512, "dropout": 0.1}
        )
    )
    vector_encoder: ComponentConfig = field(default_factory=lambda: ComponentConfig("linear"))  # for [D] inputs
    out_dim: int = 512  # every encoder's output size (the paper's modality_dim)
    use_residual: bool = False  # outer residual around each encoder (the paper's residual variant)
    fusion: ComponentConfig = field(default_factory=lambda: ComponentConfig("concat"))
    modality_dropout: float = 0.5  # probability of dropping a modality while training (>= 2 modalities)
    modality_dropout_mode: str = "batch"  # "batch": one draw per batch (paper); "sample": per sample
    head_hidden_dim: int = 256  # MLP head: fused -> hidden -> classes
    head_dropout: float = 0.2
    standardize: bool = False  # z-score each modality's inputs with train-split mean/std (kept in the model)
    context: ComponentConfig | None = None  # CONTEXTS model over a dialogue's utterances (None: each alone)


@dataclass(frozen=True)
class MlflowConfig:
    """Where ``trainer.loggers: [mlflow]`` logs (`scenesense.training.tracking.MlflowLogger`).

    Attributes:
        tracking_uri: MLflow tracking URI, e.g. ``http://localhost:5000``, ``sqlite:///mlflow.db`` or
            a folder (a local file store; a relative path is taken from the working directory).
            Unset: the ``MLFLOW_TRACKING_URI`` environment variable, else a file store in the run
            directory, ``<run dir>/logs/mlruns``.
        experiment: MLflow experiment the run is logged under. Unset: the config's ``name``.
    """

    tracking_uri: str | None = None  # unset: $MLFLOW_TRACKING_URI, else <run dir>/logs/mlruns
    experiment: str | None = None  # unset: the config's name


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation, early stopping, hardware and experiment logging (the paper's settings by default).

    Experiment logging goes through Lightning Fabric's loggers, on the first process only: the
    hyper-parameters (the resolved config, flattened), each epoch's train and dev loss and dev
    accuracy (step = epoch), and the final metrics (``final/best_epoch``, ``final/dev_accuracy``, ...).

    Attributes:
        loggers: experiment loggers, any of ``csv`` (``<run dir>/logs/csv/metrics.csv`` and
            ``hparams.yaml``), ``tensorboard`` (event files in ``<run dir>/logs/tensorboard``) and
            ``mlflow`` (an MLflow run, see `MlflowConfig`; the run folder's files are added as its
            artifacts at the end). Empty: no experiment logging. ``tensorboard`` and ``mlflow``
            need ``pip install "scenesense[tracking]"``. Loggers may change when a run is resumed.
        mlflow: where the ``mlflow`` logger logs (`MlflowConfig`).
        task_loss_weight: the weight of the task loss (``loss``) in the training loss, > 0.
        aux_loss_weights: weights (>= 0) of the named auxiliary losses a model returns (e.g. a
            fusion's ``orthogonality``); the training loss is ``task_loss_weight * task loss +
            sum of weight * auxiliary loss``. A name not set here takes the model's default
            (``model.aux_loss_weights()``), else 1; a name the model does not return during the
            first epoch is an error. Early stopping uses the unweighted task loss on dev.
    """

    epochs: int = 20
    batch_size: int = 32  # utterances; dialogues for a model with dialogue context (model.context)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | linear (decays to 0 over epochs x batches steps), per step
    warmup: float = 0.0  # fraction of all training steps over which the lr rises linearly from 0
    grad_clip: float = 5.0  # max gradient norm (0 disables)
    patience: int = 5  # early stopping on dev loss; best weights are restored
    class_weighted_loss: bool = False  # weight the loss (cross_entropy, focal) by inverse train class frequency
    loss: str = "auto"  # LOSSES name; auto: cross_entropy (classification) or l1 (regression)
    loss_params: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the loss, e.g. {gamma: 2}
    task_loss_weight: float = 1.0  # > 0: the task loss's weight in the training loss
    aux_loss_weights: dict[str, float] = field(default_factory=dict)  # a model's auxiliary loss name -> weight
    seed: int = 0
    accelerator: str = "cpu"  # Lightning Fabric accelerator: cpu | cuda | gpu | mps | auto
    devices: int = 1  # Fabric devices (> 1 uses DDP)
    precision: str = "32-true"  # Fabric precision, e.g. "bf16-mixed"
    num_workers: int = 0  # DataLoader workers
    bucket_batches: int = 0  # > 0: train batches of similar length, sorted in pools of this many batches
    compile: bool = False  # torch.compile the model for training (eager where a part cannot be compiled)
    compile_backend: str = "inductor"  # torch.compile backend when compile is on
    progress: bool = True  # tqdm progress bar on stderr
    loggers: tuple[str, ...] = ()  # experiment loggers: csv | tensorboard | mlflow (under <run dir>/logs)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)  # the mlflow logger's tracking URI, experiment


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs."""

    name: str = "experiment"  # run directory: <output_dir>/<name>/<timestamp>-s<seed>
    modalities: tuple[str, ...] = ("audio", "text", "vision")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output_dir: str = "runs"


# ---------------------------------------------------------------------------------------------
# dict <-> dataclass


def to_dict(cfg: Any) -> Any:  # noqa: ANN401
    """Convert a (nested) config dataclass to plain YAML-able Python values."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "",
                  show: Callable[[Any], str] = repr) -> list[str]:
    """``"key.path: old -> new"`` for every leaf where two nested mappings differ, sorted by key.

    A key one side lacks counts as ``None`` there; ``show`` renders a value (default ``repr``).
    """
    lines: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            lines += diff_mappings(a, b, f"{name}.", show)
        elif a != b:
            lines.append(f"{name}: {show(a)} -> {show(b)}")
    return lines


def _as_float(value: Any) -> float | None:  # noqa: ANN401
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(tp: Any, value: Any, where: str) -> Any:  # noqa: ANN401, C901
    """Check ``value`` against the annotation ``tp`` and convert containers; raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if tp is ComponentConfig and isinstance(value, str):
            return ComponentConfig(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        if tp is ComponentConfig:
            value = dict(value)
            if "name" not in value:
                raise ConfigError(f"{where}: a component needs a 'name'")
            name = value.pop("name")
            params = dict(value.pop("params", {}) or {})
            params.update(value)  # flat form: {name: x, num_heads: 4}
            return ComponentConfig(str(name), params)
        return from_dict(tp, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = args
        return {str(k): _coerce(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value))
    if tp is float and not isinstance(value, bool):
        number = _as_float(value)  # YAML 1.1 reads "3e-4" (no dot) as a string
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return number
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:  # noqa: ANN401
    """Build dataclass ``cls`` from a mapping, strictly: unknown keys and bad types raise."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``delta`` into a copy of ``base`` (mappings merge, other values replace).

    A component mapping with a new ``name`` replaces the old component instead of merging into it,
    and a later ``params.<key>`` replaces the same key written flat earlier (``{name: x, window: 8}``
    then ``params: {window: 4}`` gives 4).
    """
    out = dict(base)
    for key, value in delta.items():
        old = out.get(key)
        same_component = not (isinstance(value, dict) and "name" in value and isinstance(old, dict)
                              and old.get("name") != value["name"])
        if isinstance(value, dict) and isinstance(old, dict) and same_component:
            if "name" in old and isinstance(value.get("params"), dict):  # flat keys of the same component
                old = {k: v for k, v in old.items() if k in ("name", "params") or k not in value["params"]}
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


class _PlainYamlLoader(yaml.SafeLoader):
    """Safe YAML without aliases: ``*name`` could build a cycle or expand exponentially when copied."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_plain_yaml(text: str) -> Any:  # noqa: ANN401
    """Parse ``text`` as safe YAML (no Python tags) without anchors' aliases.

    Raises:
        yaml.YAMLError: invalid YAML, a Python tag, or an alias.
    """
    return yaml.load(text, Loader=_PlainYamlLoader)  # noqa: S506 - a SafeLoader subclass


def parse_value(raw: str, option: str) -> Any:  # noqa: ANN401
    """One option value (``option`` names it in errors, e.g. ``"--set trainer.lr"``) parsed as safe
    YAML: ``3`` int, ``[1, 2]`` list, ``x`` str, empty -> ``""``.

    Raises:
        ConfigError: the text is not valid YAML, or asks for a Python object (``!!python/...`` tags).
    """
    if not raw.strip():
        return ""
    try:
        return load_plain_yaml(raw)
    except yaml.YAMLError as err:
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{option}={raw!r}: not a valid YAML value ({reason})") from None


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``"a.b.c=value"`` into ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    path, raw = text.split("=", 1)
    value = parse_value(raw, f"--set {path.strip()}")
    node: dict[str, Any] = {}
    out = node
    keys = path.strip().split(".")
    for key in keys[:-1]:
        node[key] = {}
        node = node[key]
    node[keys[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``."""
    try:
        data = load_plain_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def build_config(*layers: dict[str, Any]) -> ExperimentConfig:
    """Merge ``layers`` (lowest precedence first) over the defaults and validate the result."""
    merged = to_dict(ExperimentConfig())
    for layer in layers:
        merged = merge(merged, layer)
    cfg = from_dict(ExperimentConfig, merged)
    validate_config(cfg)
    return cfg


def validate_config(cfg: ExperimentConfig) -> None:
    """Check the values of a typed config (ranges, names, combinations).

    Raises:
        ConfigError: the first invalid value, named by its key.
    """
    if not cfg.modalities:
        raise ConfigError("modalities: at least one modality is required")
    for m in cfg.modalities:
        if m not in MODALITIES:
            raise ConfigError(f"modalities: unknown modality {m!r}; expected some of {list(MODALITIES)}")
    if len(set(cfg.modalities)) != len(cfg.modalities):
        raise ConfigError(f"modalities: duplicates in {list(cfg.modalities)}")
    if not 0.0 <= cfg.model.modality_dropout < 1.0:
        raise ConfigError("model.modality_dropout must be in [0, 1)")
    if cfg.model.modality_dropout_mode not in ("batch", "sample"):
        raise ConfigError("model.modality_dropout_mode must be 'batch' or 'sample'")
    t = cfg.trainer
    if t.bucket_batches < 0:
        raise ConfigError(f"trainer.bucket_batches must be >= 0 (0: off), got {t.bucket_batches}")
    if t.bucket_batches and cfg.model.context is not None:
        raise ConfigError("trainer.bucket_batches sorts single utterances by length; a model with "
                          "model.context trains on whole dialogues: set bucket_batches: 0")
    if t.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"trainer.lr_schedule must be one of {list(LR_SCHEDULES)}, got {t.lr_schedule!r}")
    if not 0.0 <= t.warmup < 1.0:
        raise ConfigError(f"trainer.warmup is a fraction of the training steps in [0, 1), got {t.warmup}")
    if t.epochs < 1 or t.batch_size < 1 or t.lr <= 0 or t.patience < 1:
        raise ConfigError("trainer: epochs, batch_size, patience must be >= 1 and lr > 0")
    _validate_hardware(t)
    check_loss_weights(t)


def check_loss_weights(t: TrainerConfig) -> None:
    """Refuse a ``task_loss_weight`` that is not a finite number > 0, or ``aux_loss_weights`` that are
    not finite numbers >= 0.

    Raises:
        ConfigError: naming the key and the values.
    """
    def number(value: Any) -> bool:  # noqa: ANN401
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not (number(t.task_loss_weight) and t.task_loss_weight > 0):
        raise ConfigError(f"trainer.task_loss_weight must be a finite number > 0, got {t.task_loss_weight!r}")
    bad = {k: v for k, v in t.aux_loss_weights.items() if not (number(v) and v >= 0)}
    if bad:
        raise ConfigError(f"trainer.aux_loss_weights must be finite numbers >= 0, got {bad}")


def _validate_hardware(t: TrainerConfig) -> None:
    """Seed, optimiser ranges and the Lightning Fabric settings (which Fabric itself would refuse late)."""
    if not 0 <= t.seed <= MAX_SEED:
        raise ConfigError(f"trainer.seed must be an integer in [0, {MAX_SEED}], got {t.seed}")
    if t.grad_clip < 0 or t.weight_decay < 0:
        raise ConfigError(f"trainer.grad_clip and trainer.weight_decay must be >= 0, got {t.grad_clip} and "
                          f"{t.weight_decay}")
    if not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"trainer.betas must be in [0, 1), got {list(t.betas)}")
    if t.accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator must be one of {list(ACCELERATORS)}, got {t.accelerator!r}")
    if t.devices < 1:
        raise ConfigError(f"trainer.devices must be >= 1 (the number of devices to use), got {t.devices}")
    if t.precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {list(PRECISIONS)}, got {t.precision!r}")
    if t.num_workers < 0:
        raise ConfigError(f"trainer.num_workers must be >= 0, got {t.num_workers}")
    unknown = [name for name in t.loggers if name not in LOGGERS]
    if unknown or len(set(t.loggers)) != len(t.loggers):
        raise ConfigError(f"trainer.loggers must be distinct names among {list(LOGGERS)}, got {list(t.loggers)}")


def dump_yaml(cfg: ExperimentConfig) -> str:
    """The fully resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
