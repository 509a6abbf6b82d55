"""Predict emotions from raw inputs with a trained run: texts, audio files, video files, manifests.

Each item is one utterance: a transcript (``text``), an ``audio`` file and/or a ``video`` file
(``media``: a video whose sound is the utterance's audio, as in extraction manifests).
For every modality the run uses, the extractor that made its training features is rebuilt from
the feature provenance recorded in the run's model spec (``extractor`` + ``params``, read through
``EXTRACTORS``), so raw inputs are featurised exactly as the training data was. Routing by input
kind: a text feeds text extractors, an audio file feeds audio extractors, and a video (or
media) file feeds video (vision) extractors and, when the item has no separate audio file,
audio extractors too (they read its audio track).

A modality whose training features cannot be made from raw media (e.g. a feature set converted
from a table or a published pickle) is treated as missing for every item, with a warning; so is a
modality an item does not provide, or whose extraction failed (the
:class:`~scenesense.extraction.base.ItemError` message is kept). The model predicts from what
is present, as it does for missing modalities in a store (runs trained with modality dropout
are made for this). An item with no usable modality gets an error row; the other items are
unaffected. A run with dialogue context classifies these items each alone, with a warning;
:mod:`scenesense.streaming` predicts whole conversations with their (past) context.

Contents, top-down: result types, :func:`predict`, input routing and manifests, the feature
plan per modality, extraction, the model pass, and the CSV writer.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import scenesense.extraction  # noqa: F401  (registers the built-in extractors)
from scenesense.data.collate import collate
from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.speaker_norm import apply_speaker_norm, speaker_statistics
from scenesense.data.store import StoreError, find_store_splits, open_store_split
from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec, check_output
from scenesense.registry import EXTRACTORS
from scenesense.types import ModelOutput, Sample
from scenesense.utils.io import atomic_write_text

log = logging.getLogger(__name__)

MIN_SPEAKER_ITEMS = 10  # as FeatureStoreDataset: fewer items of a speaker -> all items' statistics
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
INPUT_KINDS = ("text", "audio", "video", "media")  # media: a video whose sound is the utterance too
_PATHLIKE = re.compile(r"\.[A-Za-z0-9]{2,5}$")  # a file suffix, for telling paths from texts
NO_CONTEXT_WARNING = ("the run reads dialogue context (model.context), but these items are predicted "
                      "each alone, without it; for predictions with context give whole conversations: "
                      "`scenesense predict RUN --conversation FILE.csv` (a MELD-format CSV) or "
                      "`--stream` (JSON lines), or scenesense.streaming in Python")


@dataclass(frozen=True)
class ItemPrediction:
    """The prediction for one item.

    Fields:
        id: the item's key (given, else its position in the input, from 0).
        inputs: input kind (``text``/``audio``/``video``/``media``; ``file`` for a bare path
            that is none of them) -> the raw input as given.
        label: predicted class name (``None`` for an error row or a regression run).
        probabilities: class name -> probability, every class (empty for an error row or regression).
        value: the predicted target of a regression run (else ``None``).
        used: modalities the model saw for this item, sorted.
        missing: modalities of the run it did not see (not given, failed, or not extractable), sorted.
        problems: one line per input or modality that failed, e.g. ``"audio: a.wav: silent audio"``.
        modality_weights: modality -> the fusion's weight for this item (mean over channels), where
            the fusion provides weights.
        attention: attention map name (``"text->vision"``) -> mean attention per real key step,
            averaged over the real query steps, where the fusion provides attention maps.
        error: why the item got no prediction (``None`` when it has one).
    """

    id: str
    inputs: dict[str, str]
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    modality_weights: dict[str, float] | None = None
    attention: dict[str, list[float]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the item has a prediction."""
        return self.error is None

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        """JSON-able form; with ``top_k`` also a ``top`` list of ``[class, probability]`` pairs."""
        out: dict[str, Any] = {
            "id": self.id, "inputs": dict(self.inputs), "ok": self.ok, "label": self.label,
            "probabilities": dict(self.probabilities), "value": self.value, "used": list(self.used),
            "missing": list(self.missing), "problems": list(self.problems),
            "modality_weights": self.modality_weights, "attention": self.attention, "error": self.error,
        }
        if top_k is not None:
            out["top"] = [[name, p] for name, p in self.top(top_k)]
        return out


@dataclass(frozen=True)
class PredictionResult:
    """Predictions for a batch of items.

    Fields:
        run_dir: the run that predicted.
        task: ``"classification"`` or ``"regression"``.
        label_names: the run's classes (or regression target name).
        modalities: the run's modalities, sorted.
        features: modality -> how raw inputs are featurised (``extractor``, ``output``), or
            ``{"unavailable": reason}``.
        warnings: run-level warnings (e.g. a modality that cannot be extracted from raw media).
        items: one :class:`ItemPrediction` per input item, in input order.
    """

    run_dir: Path
    task: str
    label_names: tuple[str, ...]
    modalities: tuple[str, ...]
    features: dict[str, dict[str, Any]]
    warnings: tuple[str, ...]
    items: tuple[ItemPrediction, ...]

    @property
    def n_ok(self) -> int:
        """Items with a prediction."""
        return sum(item.ok for item in self.items)

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        """JSON-able form of the whole result."""
        return {
            "run": str(self.run_dir), "task": self.task, "labels": list(self.label_names),
            "modalities": list(self.modalities), "features": self.features, "warnings": list(self.warnings),
            "n": len(self.items), "n_ok": self.n_ok, "n_failed": len(self.items) - self.n_ok,
            "items": [item.to_dict(top_k) for item in self.items],
        }


InputItem = Mapping[str, "str | os.PathLike[str]"]


def predict(run_dir: str | Path, inputs: Sequence[InputItem | str] | os.PathLike[str] | str, *,
            batch_size: int = 32, device: str = "cpu") -> PredictionResult:
    """Predict every item of ``inputs`` with the trained run at ``run_dir``.

    Args:
        run_dir: a finished run directory (``config.yaml``, ``model_spec.json``, ``checkpoint.pt``).
        inputs: a manifest CSV path (``os.PathLike``, see :func:`read_manifest`); a single string
            (one item, routed by :func:`route_input`); or a sequence of items, each a string
            (routed) or a mapping with any of ``text``, ``audio``, ``video`` (``vision`` is an
            alias), ``media`` and an optional ``id``.
        batch_size: items extracted and classified together.
        device: torch device of the model, e.g. ``"cpu"``.

    Returns:
        The :class:`PredictionResult`, one item per input in order.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run, or the manifest does not exist.
        ValueError: a malformed manifest or item mapping, or no modality of the run can be
            extracted from raw inputs.
    """
    from scenesense.api import load_run  # imported here, so that the API module may re-export predict

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    items = _normalise_inputs(inputs)
    cfg, spec, model = load_run(run_dir)
    model.to(device)
    modalities = tuple(sorted(cfg.modalities))
    plans = {m: plan_modality(spec, m) for m in modalities}
    warnings = [p.unavailable for p in plans.values() if p.unavailable]
    if all(p.extractor is None for p in plans.values()):
        raise ValueError(f"{run_dir}: none of the run's modalities can be extracted from raw inputs: "
                         + "; ".join(warnings))
    warnings += _version_warnings(plans)
    warnings += _ignored_input_warnings({k for item in items for k in item.raw}, plans)
    if cfg.model.context is not None:
        warnings.append(NO_CONTEXT_WARNING)
    speaker_norm = cfg.data.speaker_norm
    if speaker_norm:
        batch_size = max(len(items), 1)  # speaker statistics come from all the items given
        warnings += _speaker_norm_warnings(items)
    for message in warnings:
        log.warning("%s", message)
    predicted: list[ItemPrediction] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        predicted += _predict_chunk(model, spec, plans, chunk, device, speaker_norm)
    features = {m: p.describe() for m, p in plans.items()}
    task = str(spec.get("task", "classification"))
    return PredictionResult(Path(run_dir), task, tuple(spec["label_names"]), modalities, features,
                            tuple(warnings), tuple(predicted))


# ---------------------------------------------------------------------------------------------
# inputs: routing, item mappings and manifests


@dataclass
class _Item:
    """One normalised input item; ``problems`` holds its routing errors."""

    id: str
    raw: dict[str, str]
    text: str | None = None
    audio: Path | None = None
    video: Path | None = None
    media: Path | None = None
    problems: list[str] = field(default_factory=list)
    speaker: str = ""


def route_input(raw: str) -> str:
    """The input kind of a bare string: ``"text"``, ``"audio"``, ``"video"`` or ``"file"``.

    An existing file is audio or video by its suffix (``"file"``: any other file, an unsupported
    format). A string without whitespace that names a folder or looks like a file name (a path
    separator, or a 2-5 character suffix such as ``.wav``) is a path even when it does not exist,
    so a mistyped file name is reported, not classified as text. Anything else is text.
    """
    if not raw.strip():
        return "text"
    path = Path(raw).expanduser()
    is_path = _exists(path) or (not any(c.isspace() for c in raw)
                                and ("/" in raw or os.sep in raw or bool(_PATHLIKE.search(raw))))
    if not is_path:
        return "text"
    suffix = path.suffix.lower()
    return "audio" if suffix in AUDIO_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else "file"


def _exists(path: Path) -> bool:
    """``path.exists()``, False for strings no file system accepts (too long, NUL bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _media_problem(path: Path, kind: str) -> str | None:
    """Why ``path`` cannot be used as a ``kind`` (audio/video) input, or ``None``."""
    allowed = AUDIO_SUFFIXES + VIDEO_SUFFIXES if kind == "audio" else VIDEO_SUFFIXES
    if not _exists(path):
        return f"{path}: no such file"
    if not path.is_file():
        return f"{path}: not a file"
    if path.suffix.lower() not in allowed:
        return (f"{path}: unsupported format {path.suffix or '(no suffix)'!r} for {kind} input "
                f"(expected one of {' '.join(allowed)})")
    if not os.access(path, os.R_OK):
        return f"{path}: not readable (permission denied)"
    return None


def _item_from_string(index: int, raw: str) -> _Item:
    kind = route_input(raw)
    if kind == "file":
        path = Path(raw).expanduser()
        problem = (f"{path}: no such file" if not _exists(path)
                   else f"{path}: not a file" if not path.is_file()
                   else f"{path}: unsupported format {path.suffix or '(no suffix)'!r} (audio: "
                        f"{' '.join(AUDIO_SUFFIXES)}; video: {' '.join(VIDEO_SUFFIXES)})")
        if path.suffix.lower() == ".csv":
            problem += "; a manifest is passed as a Path (CLI: --manifest)"
        return _Item(str(index), {"file": raw}, problems=[f"input: {problem}"])
    return _item_from_mapping(index, {kind: raw})


def _item_from_mapping(index: int, given: Mapping[str, Any]) -> _Item:
    unknown = sorted(set(given) - {"id", "speaker", "vision", *INPUT_KINDS})
    if unknown:
        raise ValueError(f"item {index}: unknown input key(s) {unknown}; use id, speaker, text, audio, video, media")
    if "vision" in given and "video" in given:
        raise ValueError(f"item {index}: give the video file as 'video' or 'vision', not both")
    values = {("video" if k == "vision" else k): v for k, v in given.items()
              if v is not None and k not in ("id", "speaker")}
    item = _Item(str(given["id"]) if given.get("id") not in (None, "") else str(index),
                 {k: str(v) for k, v in values.items() if str(v) != "" or k == "text"},
                 speaker=str(given.get("speaker") or ""))
    if "text" in values:
        text = values["text"]
        if not isinstance(text, str):
            item.problems.append(f"text: expected a string, got {type(text).__name__}")
        elif not text.strip():
            item.problems.append("text: empty text")
        else:
            item.text = text
    for kind in ("audio", "video", "media"):
        if kind not in values or str(values[kind]) == "":
            continue
        path = Path(values[kind]).expanduser()
        problem = _media_problem(path, kind)
        if problem:
            item.problems.append(f"{kind}: {problem}")
        else:
            setattr(item, kind, path)
    if not item.raw:
        item.problems.append("input: no text, audio, video or media given")
    return item


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """Read a manifest CSV: one item per row.

    Columns (header required, case-insensitive): ``id`` (optional; default: the item's number
    from 0, blank lines skipped), and at least one of ``text``, ``audio``, ``video``, ``media``
    (as in the ``scenesense extract`` manifest; its ``split``, ``label``, ``dialogue_id``, ...
    columns are ignored here; ``speaker`` is read, for runs trained with ``data.speaker_norm``).
    Empty cells mean "not given"; an empty ``text`` cell in a row
    with nothing else is kept (it is reported as an empty text). Relative paths are relative to
    the manifest's folder.

    Returns:
        One mapping per row: ``id`` and the given inputs (media paths resolved), ready for
        :func:`predict`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a UTF-8 CSV, no input column, or duplicate ids (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: manifest is not UTF-8 text ({err.reason} at byte {err.start})") from None
    allow_fields_up_to(len(text))
    reader = CsvRows(csv.reader(io.StringIO(text)), path)
    header = [h.strip().lower() for h in next(reader, [])]
    columns = [c for c in INPUT_KINDS if c in header]
    if not columns:
        raise ValueError(f"{path}: manifest needs a 'text', 'audio', 'video' or 'media' column; "
                         f"it has {header}")
    rows: list[dict[str, str]] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # a blank line
        row = dict(zip(header, cells))
        item = {c: row[c] for c in columns if row.get(c, "").strip()}
        for kind in ("audio", "video", "media"):
            if kind in item:
                media = Path(item[kind].strip()).expanduser()
                item[kind] = str(media if media.is_absolute() else path.parent / media)
        if not item and "text" in columns:
            item["text"] = row.get("text", "")
        item["id"] = row.get("id", "").strip() or str(len(rows))
        if row.get("speaker", "").strip():
            item["speaker"] = row["speaker"].strip()
        rows.append(item)
    ids = [r["id"] for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate ids in the manifest: {dupes[:5]}")
    if not rows:
        raise ValueError(f"{path}: the manifest has no rows")
    return rows


def _normalise_inputs(inputs: Sequence[InputItem | str] | os.PathLike[str] | str) -> list[_Item]:
    if isinstance(inputs, os.PathLike):
        return [_item_from_mapping(i, row) for i, row in enumerate(read_manifest(inputs))]
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs:
        raise ValueError("nothing to predict: no input items")
    items = []
    for i, given in enumerate(inputs):
        if isinstance(given, str):
            items.append(_item_from_string(i, given))
        elif isinstance(given, Mapping):
            items.append(_item_from_mapping(i, given))
        else:
            raise ValueError(f"item {i}: expected a string or a mapping, got {type(given).__name__}")
    return items


# ---------------------------------------------------------------------------------------------
# the feature plan: how each modality of the run is made from raw inputs


@dataclass
class ModalityPlan:
    """How one modality of a run is featurised from raw inputs.

    Fields:
        modality: the model modality.
        kind: ``"sequence"`` or ``"vector"`` (as trained).
        dim: feature size ``D`` (as trained).
        provenance: the training feature set's provenance.
        extractor: the rebuilt extractor (``None`` when unavailable).
        output: the extractor output that matches the training features.
        unavailable: why raw inputs cannot feed this modality (``None`` when they can).
    """

    modality: str
    kind: str
    dim: int
    provenance: dict[str, Any]
    extractor: FeatureExtractor | None = None
    output: str | None = None
    unavailable: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: extractor name, params and output, or the reason it is unavailable."""
        if self.extractor is None:
            return {"unavailable": self.unavailable}
        return {"extractor": self.provenance["extractor"], "params": self.provenance["params"],
                "output": self.output, "input_kind": self.extractor.input_kind}


def feature_provenance(spec: Mapping[str, Any], modality: str) -> dict[str, Any] | None:
    """The provenance of the feature set a run was trained on for ``modality``.

    Read from the model spec (``provenance.features.<modality>``); for older runs without it,
    from the training store the spec names (``store`` + ``features.<modality>``) if reachable.
    ``None`` when neither has it.
    """
    recorded = (spec.get("provenance") or {}).get("features") or {}
    if modality in recorded:
        return dict(recorded[modality] or {})
    store, name = spec.get("store"), (spec.get("features") or {}).get(modality)
    if not store or not name or not Path(store).is_dir():
        return None
    for split_file in find_store_splits(store).values():
        try:
            info = open_store_split(split_file).features.get(name)
        except StoreError:
            continue
        if info is not None:
            return dict(info.provenance)
    return None


def recorded_output(provenance: Mapping[str, Any]) -> str | None:
    """The extractor output a feature set holds, as recorded by the extraction pipeline
    (``extraction.output``) or at the top level (``output``); ``None`` when not recorded."""
    extraction = provenance.get("extraction")
    named = extraction.get("output") if isinstance(extraction, Mapping) else None
    named = provenance.get("output") if named is None else named
    return None if named is None else str(named)


def _pick_output(outputs: Mapping[str, OutputSpec], provenance: Mapping[str, Any], kind: str,
                 dim: int) -> tuple[str | None, str | None]:
    """``(output name, None)``, or ``(None, why not)``: the recorded ``output``, else the unique
    output with the trained kind and size."""
    have = ", ".join(f"{n} ({s.kind}, {s.dim}-d)" for n, s in outputs.items())
    named = recorded_output(provenance)
    if named is not None:
        spec = outputs.get(named)
        if spec is None or spec.kind != kind or spec.dim != dim:
            return None, f"its recorded output {named!r} is not a {kind} of {dim} dims (it has {have})"
        return named, None
    matches = [n for n, s in outputs.items() if s.kind == kind and s.dim == dim]
    if len(matches) == 1:
        return matches[0], None
    if not matches:
        return None, f"it has no {kind} output of {dim} dims like the training features (it has {have})"
    return None, (f"several outputs match the training features ({matches}) and the feature "
                  f"provenance records no 'output'")


def plan_modality(spec: Mapping[str, Any], modality: str) -> ModalityPlan:
    """Rebuild the extractor that made a run's ``modality`` features (see :class:`ModalityPlan`)."""
    kind, dim = str(spec["feature_kinds"][modality]), int(spec["feature_dims"][modality])
    provenance = feature_provenance(spec, modality)
    plan = ModalityPlan(modality, kind, dim, provenance or {})
    if provenance is None:
        plan.unavailable = (f"{modality}: the run records no provenance for its {modality} features and its "
                            f"training store ({spec.get('store')}) is not readable, so {modality} cannot be "
                            f"extracted from raw inputs; it is treated as missing")
        return plan
    name, params = provenance.get("extractor"), provenance.get("params")
    if isinstance(name, str) and isinstance(params, dict) and name not in EXTRACTORS:
        plan.unavailable = (f"{modality}: the run's {modality} features were made by extractor {name!r}, "
                            f"which is not registered here (registered: {EXTRACTORS.names()}); "
                            f"{modality} is treated as missing")
        return plan
    if not isinstance(name, str) or name not in EXTRACTORS or not isinstance(params, dict):
        made_by = f"by {name!r}" if isinstance(name, str) else f"from {_short(provenance)}"
        plan.unavailable = (f"{modality}: the run's {modality} features were made {made_by}, not by a "
                            f"registered extractor, so they cannot be extracted from raw media; "
                            f"{modality} is treated as missing")
        return plan
    if provenance.get("dialogue_context") is not None:
        plan.unavailable = (f"{modality}: the run's {modality} features carry dialogue context "
                            f"({provenance['dialogue_context']}: neighbouring turns in the input), which single "
                            f"items cannot give; score a MELD-format CSV with `scenesense evaluate` instead; "
                            f"{modality} is treated as missing")
        return plan
    try:
        extractor = EXTRACTORS.create(name, **params)
    except (TypeError, ValueError) as err:
        plan.unavailable = (f"{modality}: cannot rebuild extractor {name!r} with {params}: {err}; "
                            f"{modality} is treated as missing")
        return plan
    if extractor.modality != modality:
        plan.unavailable = (f"{modality}: extractor {name!r} makes {extractor.modality} features, not "
                            f"{modality}; {modality} is treated as missing")
        return plan
    output, why = _pick_output(extractor.outputs(), provenance, kind, dim)
    if output is None:
        plan.unavailable = f"{modality}: extractor {name!r} cannot reproduce the training features: {why}; " \
                           f"{modality} is treated as missing"
        return plan
    plan.extractor, plan.output = extractor, output
    return plan


def _short(provenance: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in provenance.items() if not isinstance(v, (list, dict)))
    return f"a converted feature set ({text})" if text else "an unknown source (no provenance)"


_RUN_RECORDS = ("extraction", "output")  # added to a feature set's provenance by whoever wrote it


def _version_warnings(plans: Mapping[str, ModalityPlan]) -> list[str]:
    """One warning per rebuilt extractor whose provenance (e.g. package versions) differs now."""
    out = []
    for m, plan in plans.items():
        if plan.extractor is None:
            continue
        now = {k: v for k, v in plan.extractor.provenance().items() if k not in _RUN_RECORDS}
        then = {k: v for k, v in plan.provenance.items() if k not in _RUN_RECORDS}
        changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        if changed:
            out.append(f"{m}: extractor {plan.provenance['extractor']!r} differs from the one the run was "
                       f"trained with in {changed}; predictions may shift slightly")
    return out


def _input_kinds_used(plans: Mapping[str, ModalityPlan]) -> set[str]:
    kinds = {p.extractor.input_kind for p in plans.values() if p.extractor is not None}
    kinds |= {"media"} if kinds & {"audio", "video"} else set()
    return kinds | ({"video"} if "audio" in kinds else set())  # audio extractors read video files too


def _ignored_input_warnings(given: Iterable[str], plans: Mapping[str, ModalityPlan]) -> list[str]:
    """One warning per input kind given (``text``, ``audio``, ...) that no modality of the run reads."""
    used = _input_kinds_used(plans)
    return [f"{kind} inputs are ignored: no modality of this run is extracted from {kind}"
            for kind in sorted(set(given) & set(INPUT_KINDS) - used)]


# ---------------------------------------------------------------------------------------------
# extraction and the model pass


def _source(item: _Item, plan: ModalityPlan) -> str | None:
    """The raw input ``plan``'s extractor reads for ``item`` (``None``: the item has none)."""
    assert plan.extractor is not None
    kind = plan.extractor.input_kind
    if kind == "text":
        return item.text
    if kind == "audio":
        path = item.audio or item.media or item.video
        return None if path is None else str(path)
    path = item.video or item.media
    return None if path is None else str(path)


def _extract(plan: ModalityPlan, items: Sequence[_Item]) -> list[np.ndarray | str | None]:
    """Per item: the feature array (``[D]`` or ``[T, D]``), an error line, or ``None`` (no input)."""
    assert plan.extractor is not None and plan.output is not None
    sources = [_source(item, plan) for item in items]
    todo = [i for i, s in enumerate(sources) if s is not None]
    out: list[np.ndarray | str | None] = [None] * len(items)
    if not todo:
        return out
    results = plan.extractor.extract_batch([sources[i] for i in todo])  # type: ignore[misc]
    if len(results) != len(todo):
        raise RuntimeError(f"extractor {plan.provenance['extractor']!r} returned {len(results)} results "
                           f"for {len(todo)} items")
    spec = OutputSpec(plan.kind, plan.dim)  # type: ignore[arg-type]
    for i, result in zip(todo, results):
        try:
            if isinstance(result, ItemError):
                raise result
            if plan.output not in result:
                raise RuntimeError(f"extractor {plan.provenance['extractor']!r} returned {sorted(result)}, "
                                   f"not its declared output {plan.output!r}")
            value = check_output(plan.output, result[plan.output], spec, str(sources[i]))
            out[i] = value if value.flags.writeable else value.copy()  # torch wants writable arrays
        except ItemError as err:
            out[i] = f"{plan.modality}: {err}"
    return out


def _speaker_norm_warnings(items: Sequence[_Item]) -> list[str]:
    counts = Counter(item.speaker for item in items)
    few = sorted(s or "(no speaker)" for s, n in counts.items() if n < MIN_SPEAKER_ITEMS or not s)
    if not few:
        return []
    return [f"the run normalises features per speaker (data.speaker_norm); {', '.join(few[:5])} "
            f"{'has' if len(few) == 1 else 'have'} fewer than {MIN_SPEAKER_ITEMS} items or no speaker, so "
            f"{'it is' if len(few) == 1 else 'they are'} normalised with the statistics of all {len(items)} "
            f"items given; give each clip's speaker (a 'speaker' column) and >= {MIN_SPEAKER_ITEMS} clips "
            "per speaker for the normalisation the run was trained with"]


def _predict_chunk(model: torch.nn.Module, spec: Mapping[str, Any], plans: Mapping[str, ModalityPlan],
                   items: Sequence[_Item], device: str, speaker_norm: bool = False) -> list[ItemPrediction]:
    """Extract every modality of a chunk of items, then classify the items that have any.

    With ``speaker_norm`` the items' features are z-scored per speaker over the chunk first
    (:mod:`scenesense.data.speaker_norm`), as the run's training data was.
    """
    results, samples = _prepare_chunk(spec, plans, items)
    if speaker_norm and samples:
        stats = speaker_statistics(samples, [m for m in plans if any(s["present"][m] for s in samples)],
                                   MIN_SPEAKER_ITEMS)
        samples = [apply_speaker_norm(s, stats) for s in samples]
    regression = spec.get("task") == "regression"
    scores = iter(_score(model, samples, list(spec["label_names"]), regression, device) if samples else [])
    return [result if not result.used else replace(result, **next(scores)) for result in results]


def _prepare_chunk(spec: Mapping[str, Any], plans: Mapping[str, ModalityPlan],
                   items: Sequence[_Item]) -> tuple[list[ItemPrediction], list[Sample]]:
    """Extract every modality of a chunk of items.

    Returns:
        Per item its :class:`ItemPrediction` without scores (an error row when no modality could
        be extracted), and one :class:`~scenesense.types.Sample` per item that has a modality
        (``used`` non-empty), in item order.
    """
    features = {m: _extract(p, items) if p.extractor is not None else [None] * len(items)
                for m, p in plans.items()}
    regression = spec.get("task") == "regression"
    results: list[ItemPrediction] = []
    samples: list[Sample] = []
    for i, item in enumerate(items):
        problems = tuple(item.problems) + tuple(f[i] for f in features.values() if isinstance(f[i], str))
        arrays = {m: f[i] for m, f in features.items() if isinstance(f[i], np.ndarray)}
        result = ItemPrediction(item.id, item.raw, used=tuple(sorted(arrays)),
                                missing=tuple(sorted(set(plans) - set(arrays))), problems=problems)
        if not arrays:
            extractable = ", ".join(m for m, p in plans.items() if p.extractor is not None)
            why = "; ".join(problems) or (f"its inputs ({', '.join(item.raw)}) feed none of the run's "
                                          f"extractable modalities ({extractable})")
            result = replace(result, error=f"no modality could be extracted: {why}")
        else:
            samples.append({
                "id": item.id, "dialogue_id": "", "position": -1, "speaker": item.speaker,
                "inputs": {m: arrays.get(m, _placeholder(plans[m])) for m in plans},
                "present": {m: m in arrays for m in plans},
                "label": 0.0 if regression else 0,
            })
        results.append(result)
    return results, samples


def _score(model: torch.nn.Module, samples: Sequence[Sample], label_names: Sequence[str], regression: bool,
           device: str) -> list[dict[str, Any]]:
    """One model pass over ``B`` samples: per sample the :class:`ItemPrediction` fields it sets."""
    batch = collate(samples, task="regression" if regression else "classification")
    with torch.no_grad():
        out = model({m: x.to(device) for m, x in batch["inputs"].items()},
                    {m: x.to(device) for m, x in batch["masks"].items()},
                    {m: x.to(device) for m, x in batch["present"].items()})
    return _scores_from_output(out, batch["masks"], label_names, regression)


def _scores_from_output(out: ModelOutput, masks: Mapping[str, torch.Tensor], label_names: Sequence[str],
                        regression: bool) -> list[dict[str, Any]]:
    """Per row of a model output (``logits [B, C]``): the :class:`ItemPrediction` fields it sets."""
    logits = out.logits.float().cpu()  # [B, C]
    probs = torch.softmax(logits, dim=-1).numpy()  # [B, C]
    weights = _weights_per_item(out.modality_weights)
    attention = _attention_per_item(out.attention, masks)
    scored: list[dict[str, Any]] = []
    for b in range(logits.shape[0]):
        fields: dict[str, Any] = {"modality_weights": None if weights is None else weights[b],
                                  "attention": None if attention is None else attention[b]}
        if regression:
            fields["value"] = float(logits[b, 0])
        else:
            fields["label"] = label_names[int(probs[b].argmax())]
            fields["probabilities"] = {name: float(p) for name, p in zip(label_names, probs[b])}
        scored.append(fields)
    return scored


def _placeholder(plan: ModalityPlan) -> np.ndarray:
    """Zeros standing in for a missing modality (hidden from the model by ``present``)."""
    shape = (1, plan.dim) if plan.kind == "sequence" else (plan.dim,)
    return np.zeros(shape, dtype=np.float32)


def _weights_per_item(weights: Mapping[str, torch.Tensor] | None) -> list[dict[str, float]] | None:
    """Per item, modality -> weight: ``[B]`` values, or ``[B, D]`` averaged over ``D``."""
    if not weights:
        return None
    per_modality = {m: w.detach().float().cpu().reshape(w.shape[0], -1).mean(dim=1)  # [B]
                    for m, w in weights.items()}
    batch = next(iter(per_modality.values())).shape[0]
    return [{m: float(w[b]) for m, w in sorted(per_modality.items())} for b in range(batch)]


def _attention_per_item(attention: Mapping[str, torch.Tensor] | None,
                        masks: Mapping[str, torch.Tensor]) -> list[dict[str, list[float]]] | None:
    """Per item, map ``"q->k"`` -> mean attention per real key step over the real query steps.

    Step weights ``"m:steps"`` ``[B, 1, T_m]`` keep ``m``'s real steps.

    A map whose query or key modality has no real step for an item is left out for that item.
    Real steps come from the input masks when their lengths match the map, else all steps count.
    """
    if not attention:
        return None
    batch = next(iter(attention.values())).shape[0]
    out: list[dict[str, list[float]]] = [{} for _ in range(batch)]
    for name, maps in sorted(attention.items()):
        maps = maps.detach().float().cpu()  # [B, T_q, T_k]
        query, arrow, key = name.partition("->")
        if not arrow and name.endswith(":steps"):  # per-step weights [B, 1, T] of one modality
            query, key = "", name.removesuffix(":steps")
        q_mask = _real_steps(masks.get(query), maps.shape[0], maps.shape[1])  # [B, T_q]
        k_mask = _real_steps(masks.get(key), maps.shape[0], maps.shape[2])  # [B, T_k]
        for b in range(batch):
            if not q_mask[b].any() or not k_mask[b].any():
                continue
            mean = maps[b][q_mask[b]][:, k_mask[b]].mean(dim=0)  # [T_k real]
            out[b][name] = [float(v) for v in mean]
    return out


def _real_steps(mask: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor:
    if mask is not None and tuple(mask.shape) == (batch, steps):
        return mask.cpu().bool()
    return torch.ones(batch, steps, dtype=torch.bool)


# ---------------------------------------------------------------------------------------------
# output


def write_predictions(result: PredictionResult, path: str | Path) -> Path:
    """Write one CSV row per item, atomically.

    Columns: ``id, ok, label`` (or ``value`` for regression), ``prob_<class>`` per class,
    ``used``, ``missing`` (modalities joined by ``+``), ``weight_<modality>`` where the fusion
    gives weights, ``problems`` and ``error`` (one-line messages joined by `` | ``).
    Probabilities are written at full precision.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    regression = result.task == "regression"
    weighted = sorted({m for item in result.items for m in (item.modality_weights or {})})
    scores = ["value"] if regression else ["label", *(f"prob_{c}" for c in result.label_names)]
    header = ["id", "ok", *scores, "used", "missing", *(f"weight_{m}" for m in weighted), "problems", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for item in result.items:
        scores = ([_num(item.value)] if regression else
                  [item.label or "", *(_num(item.probabilities.get(c)) for c in result.label_names)])
        writer.writerow([item.id, int(item.ok), *scores, "+".join(item.used), "+".join(item.missing),
                         *(_num((item.modality_weights or {}).get(m)) for m in weighted),
                         " | ".join(item.problems), item.error or ""])
    return atomic_write_text(path, buffer.getvalue())


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))
