"""A run's model spec (``model_spec.json``): what its model reads and predicts, typed.

`scenesense.api.train` writes it beside ``config.yaml`` and the weights; everything that
rebuilds, scores or feeds a trained model reads it through `read_spec`. On disk (schema
version 1, the keys every scenesense version has written):

```text
{"modalities": ["audio", "text"],              # the run's modalities (config order)
 "features": {"audio": "<feature set>", ...},  # per modality: the store feature set it read
 "feature_dims": {"audio": 32, ...},           # per modality: feature size D
 "feature_kinds": {"audio": "vector", ...},    # rows [D] ("vector") or [T, D] ("sequence")
 "label_names": [...],                         # class names in class-id order (regression: targets)
 "task": "classification",                     # or "regression"
 "provenance": {"source": {...},               # the training split's dataset provenance
                "features": {"audio": {...}}}, # how each feature set was made: extractor, params,
                                               # package versions, a text's dialogue context
 "store": "/path/to/store",                    # the training feature store folder
 "speakers": ["Joey", ...],                    # runs with dialogue context: known speakers, id order
 "schema_version": 1}
```

A file without ``schema_version`` is version 1. ``task`` defaults to classification and
``provenance`` may be absent (its readers then look in the training store). The context model's
settings are in ``config.yaml`` (``model.context``), not here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.dialogues import SpeakerVocabulary
from scenesense.data.labels import LabelSpace, Task
from scenesense.data.store import FeatureKind
from scenesense.types import validate_modality
from scenesense.utils.io import write_json

SCHEMA_VERSION = 1
"""The model spec schema this code writes and the newest it reads."""

_REQUIRED = ("modalities", "features", "feature_dims", "feature_kinds", "label_names", "store")


@dataclass(frozen=True)
class FeatureSet:
    """The feature set a run's model reads for one modality.

    Fields:
        name: the feature set's name in the store (e.g. ``"text"``, ``"minilm"``).
        kind: ``"vector"`` (rows ``[D]``) or ``"sequence"`` (rows ``[T, D]``).
        dim: feature size ``D``.
        provenance: how it was made (``extractor``, ``params``, ``versions``, ...); ``None`` when
            the spec records none.
    """

    name: str
    kind: FeatureKind
    dim: int
    provenance: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("sequence", "vector"):
            raise ValueError(f"feature kind must be 'sequence' or 'vector', got {self.kind!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"feature dim must be a positive int, got {self.dim!r}")


@dataclass(frozen=True)
class RunSpec:
    """What a trained model reads and predicts (the JSON form is in the module docstring).

    Fields:
        modalities: the run's modalities, in config order.
        features: modality -> `FeatureSet`, in the order the training split listed them.
        label_names: class names in class-id order (regression: target names).
        task: ``"classification"`` or ``"regression"``.
        store: the training feature store folder (it may be gone since).
        source: the training split's dataset provenance (``None``: the spec records no provenance).
        speakers: known speakers in id order (runs with dialogue context; ``None`` otherwise).
        schema_version: the spec schema, `SCHEMA_VERSION` for specs written now.

    Raises:
        ValueError: features for other modalities than ``modalities``, or an invalid label space.
    """

    modalities: tuple[str, ...]
    features: Mapping[str, FeatureSet]
    label_names: tuple[str, ...]
    task: Task = "classification"
    store: str = ""
    source: Mapping[str, Any] | None = None
    speakers: tuple[str, ...] | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for m in self.modalities:
            validate_modality(m)
        if set(self.features) != set(self.modalities):
            raise ValueError(f"features for {sorted(self.features)}, but the modalities are {sorted(self.modalities)}")
        LabelSpace(self.label_names, self.task)  # checks the names and the task

    @classmethod
    def from_dataset(cls, dataset: FeatureStoreDataset, modalities: Sequence[str], store: str | Path,
                     speakers: Sequence[str] | None = None) -> RunSpec:
        """The spec of a model of ``modalities`` (config order) trained on ``dataset``, a training
        split of the store folder ``store``."""
        provenance = dataset.provenance
        features = {m: FeatureSet(name, dataset.feature_kinds[m], int(dataset.feature_dims[m]),
                                  provenance["features"][m])
                    for m, name in dataset.feature_names.items()}
        space = dataset.label_space
        return cls(tuple(modalities), features, space.names, space.task, str(store), provenance["source"],
                   None if speakers is None else tuple(speakers))

    @property
    def label_space(self) -> LabelSpace:
        """The run's labels as a `scenesense.data.labels.LabelSpace`."""
        return LabelSpace(self.label_names, self.task)

    @property
    def feature_names(self) -> dict[str, str]:
        """Modality -> store feature set name."""
        return {m: f.name for m, f in self.features.items()}

    @property
    def feature_dims(self) -> dict[str, int]:
        """Modality -> feature size ``D``."""
        return {m: f.dim for m, f in self.features.items()}

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Modality -> ``"sequence"`` or ``"vector"``."""
        return {m: f.kind for m, f in self.features.items()}

    @property
    def speaker_vocabulary(self) -> SpeakerVocabulary:
        """The known speakers (ids ``1..K``; everyone else 0); empty for a run without dialogue context."""
        return SpeakerVocabulary(self.speakers or ())

    def provenance_of(self, modality: str) -> Mapping[str, Any] | None:
        """The recorded provenance of ``modality``'s feature set; ``None`` when there is none."""
        feature = self.features.get(modality)
        return None if feature is None else feature.provenance

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """Read the JSON form (see the module docstring).

        Raises:
            ValueError: a missing or malformed key, or a schema version newer than `SCHEMA_VERSION`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a model spec is a JSON object, not a {type(data).__name__}")
        version = data.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"schema_version must be an int >= 1, got {version!r}")
        if version > SCHEMA_VERSION:
            raise ValueError(f"schema version {version} is newer than this scenesense reads ({SCHEMA_VERSION}); "
                             "update scenesense")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        names, dims, kinds = (_mapping(data, k) for k in ("features", "feature_dims", "feature_kinds"))
        if not set(names) == set(dims) == set(kinds):
            raise ValueError(f"features {sorted(names)}, feature_dims {sorted(dims)} and feature_kinds "
                             f"{sorted(kinds)} name different modalities")
        provenance = data.get("provenance")
        provenance = None if provenance is None else copy.deepcopy(dict(_mapping(data, "provenance")))
        recorded = {} if provenance is None else dict(provenance.get("features") or {})
        features = {m: FeatureSet(str(names[m]), kinds[m], dims[m],
                                  None if m not in recorded else dict(recorded[m] or {}))
                    for m in names}
        speakers = data.get("speakers")
        return cls(
            modalities=tuple(_strings(data, "modalities")), features=features,
            label_names=tuple(_strings(data, "label_names")), task=data.get("task", "classification"),
            store=str(data["store"]), source=None if provenance is None else dict(provenance.get("source") or {}),
            speakers=None if speakers is None else tuple(_strings(data, "speakers")), schema_version=version)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (a fresh, plain mapping; see the module docstring)."""
        out: dict[str, Any] = {
            "modalities": list(self.modalities),
            "features": self.feature_names,
            "feature_dims": self.feature_dims,
            "feature_kinds": self.feature_kinds,
            "label_names": list(self.label_names),
            "task": self.task,
        }
        recorded = {m: copy.deepcopy(dict(f.provenance)) for m, f in self.features.items() if f.provenance is not None}
        if self.source is not None or recorded:
            out["provenance"] = {"source": copy.deepcopy(dict(self.source or {})), "features": recorded}
        out["store"] = self.store
        if self.speakers is not None:
            out["speakers"] = list(self.speakers)
        out["schema_version"] = self.schema_version
        return out


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data[key]
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a JSON object, got {value!r:.80}")
    return value


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings, got {value!r:.80}")
    return value


def read_spec(path: str | Path) -> RunSpec:
    """Read a ``model_spec.json``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: ``"<path>: not a valid model spec (<why>)"``: not JSON, or not a spec.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return RunSpec.from_json(json.loads(text))
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        raise ValueError(f"{path}: not a valid model spec ({err})") from None


def write_spec(path: str | Path, spec: RunSpec) -> Path:
    """Write ``spec`` as JSON to ``path`` atomically; returns ``path``."""
    return write_json(path, spec.to_json())
