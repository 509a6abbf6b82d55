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
unaffected: a failure of an extractor on one item, expected or not, stays that item's problem.
A run with dialogue context classifies these items each alone, with a warning;
:mod:`scenesense.streaming` predicts whole conversations with their (past) context.

Long media are predicted in windows, in bounded memory. An item whose audio (file, or a video's
track) lasts more than twice ``window_s`` (:data:`DEFAULT_WINDOW_S`, 4 s: the length of the
acted clips runs are trained on, RAVDESS 3.1-5.0 s) is streamed from disk window by window
(:func:`~scenesense.extraction.audio_io.audio_windows`); each window is featurised by the run's
audio extractor and classified alone, and the item gets a ``timeline`` (one
:class:`WindowPrediction` per window) and an overall prediction: the mean of the windows'
probabilities (of their values for regression). Windows carry audio only: the item's text and
video frames are not aligned with them and are left out (a problem line says so). Every
sequence the model is given has at most
:data:`~scenesense.encoders.base.MAX_SEQUENCE_STEPS` steps; a longer one is that item's problem.

Contents, top-down: result types, :func:`predict`, input routing and manifests, the feature
plan per modality, extraction, the model pass, long media in windows, and the CSV writer.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenesense.data.collate import collate
from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.speaker_norm import Stats, apply_speaker_norm, speaker_statistics
from scenesense.data.store import StoreError, find_store_splits, open_store_split
from scenesense.encoders.base import MAX_SEQUENCE_STEPS
from scenesense.extraction.audio_io import AudioWindow, audio_seconds, audio_windows, write_wav
from scenesense.extraction.base import EXTRACTORS, FeatureExtractor, ItemError, OutputSpec, check_output
from scenesense.runs import RunSpec, load_run
from scenesense.types import ModelOutput, Sample
from scenesense.utils.io import atomic_write_text

log = logging.getLogger(__name__)

SpeakerStats = dict[str, dict[str, Stats]]  # modality -> speaker -> (mean [D], std [D])

DEFAULT_WINDOW_S = 4.0  # seconds of audio per window of long media (acted clips last 3-5 s)
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
class WindowPrediction:
    """The prediction for one window of a long item (see :attr:`ItemPrediction.timeline`).

    Fields:
        start, end: the window's span in the item's audio, in seconds.
        label: predicted class name (``None`` when the window failed or for regression).
        probabilities: class name -> probability (empty when the window failed or for regression).
        value: the predicted target of a regression run (else ``None``).
        error: why the window got no prediction, e.g. silence (``None`` when it has one).
    """

    start: float
    end: float
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the window has a prediction."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"start": self.start, "end": self.end, "ok": self.ok, "label": self.label,
                "probabilities": dict(self.probabilities), "value": self.value, "error": self.error}


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
        timeline: for long media predicted in windows, one :class:`WindowPrediction` per window
            in time order (the item's scores are then their mean); empty otherwise.
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
    timeline: tuple[WindowPrediction, ...] = ()

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
            "timeline": [window.to_dict() for window in self.timeline],
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
            batch_size: int = 32, device: str = "cpu",
            window_s: float = DEFAULT_WINDOW_S) -> PredictionResult:
    """Predict every item of ``inputs`` with the trained run at ``run_dir``.

    Args:
        run_dir: a finished run directory (``config.yaml``, ``model_spec.json``, ``checkpoint.pt``).
        inputs: a manifest CSV path (``os.PathLike``, see :func:`read_manifest`); a single string
            (one item, routed by :func:`route_input`); or a sequence of items, each a string
            (routed) or a mapping with any of ``text``, ``audio``, ``video`` (``vision`` is an
            alias), ``media`` and an optional ``id``.
        batch_size: items (or windows of a long item) extracted and classified together.
        device: torch device of the model, e.g. ``"cpu"``.
        window_s: window length in seconds for long media: audio longer than twice this is
            predicted window by window (see the module docstring).

    Returns:
        The :class:`PredictionResult`, one item per input in order.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run, or the manifest does not exist.
        ValueError: a malformed manifest or item mapping, a ``batch_size`` or ``window_s`` that
            is not positive, or no modality of the run can be extracted from raw inputs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0 seconds, got {window_s}")
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
    long = {i: path for i, item in enumerate(items)
            if (path := _long_audio(item, plans, window_s)) is not None}
    whole = [i for i in range(len(items)) if i not in long]
    speaker_norm, chunk_size = cfg.data.speaker_norm, batch_size
    if speaker_norm and whole:
        chunk_size = len(whole)  # speaker statistics come from all the items given (long ones: their windows)
        warnings += _speaker_norm_warnings([items[i] for i in whole])
    for message in warnings:
        log.warning("%s", message)
    predicted: dict[int, ItemPrediction] = {}
    for start in range(0, len(whole), chunk_size):
        chunk = whole[start:start + chunk_size]
        predicted.update(zip(chunk, _predict_chunk(model, spec, plans, [items[i] for i in chunk], device,
                                                   speaker_norm)))
    for i, path in long.items():
        predicted[i] = _predict_windows(model, spec, plans, items[i], path, window_s, batch_size=batch_size,
                                        device=device, speaker_norm=speaker_norm)
    features = {m: p.describe() for m, p in plans.items()}
    return PredictionResult(Path(run_dir), spec.task, spec.label_names, modalities, features,
                            tuple(warnings), tuple(predicted[i] for i in range(len(items))))


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


def feature_provenance(spec: RunSpec, modality: str) -> dict[str, Any] | None:
    """The provenance of the feature set a run was trained on for ``modality``.

    Read from the model spec (:meth:`~scenesense.runs.RunSpec.provenance_of`); for older runs
    without it, from the training store the spec names (``store`` + the feature set's name) if
    reachable. ``None`` when neither has it.
    """
    recorded = spec.provenance_of(modality)
    if recorded is not None:
        return dict(recorded)
    feature = spec.features.get(modality)
    store, name = spec.store, None if feature is None else feature.name
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


def plan_modality(spec: RunSpec, modality: str) -> ModalityPlan:
    """Rebuild the extractor that made a run's ``modality`` features (see :class:`ModalityPlan`)."""
    kind, dim = spec.features[modality].kind, spec.features[modality].dim
    provenance = feature_provenance(spec, modality)
    plan = ModalityPlan(modality, kind, dim, provenance or {})
    if provenance is None:
        plan.unavailable = (f"{modality}: the run records no provenance for its {modality} features and its "
                            f"training store ({spec.store}) is not readable, so {modality} cannot be "
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


def _describe(err: BaseException) -> str:
    """One line for an unexpected exception: its type and message (never empty)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _extract_each(plan: ModalityPlan, sources: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
    """``extract_batch`` over ``sources``, one result per source whatever goes wrong.

    An exception other than :class:`ItemError` (a library failing on an odd file, a bug) is
    pinned on the item that raised it: the batch is retried one item at a time, and an item that
    still raises gets an :class:`ItemError` naming the exception. Only ``MemoryError`` stops.
    """
    assert plan.extractor is not None
    name = plan.provenance["extractor"]
    try:
        results = plan.extractor.extract_batch(sources)
    except MemoryError:
        raise
    except Exception as err:
        if len(sources) > 1:
            return [result for source in sources for result in _extract_each(plan, [source])]
        log.debug("extractor %r failed on %s", name, sources[0], exc_info=True)
        return [ItemError(f"{sources[0]}: extractor {name!r} failed ({_describe(err)})")]
    if len(results) != len(sources):
        raise RuntimeError(f"extractor {name!r} returned {len(results)} results for {len(sources)} items")
    return results


def _extract(plan: ModalityPlan, items: Sequence[_Item]) -> list[np.ndarray | str | None]:
    """Per item: the feature array (``[D]`` or ``[T, D]``), an error line, or ``None`` (no input).

    A sequence longer than :data:`~scenesense.encoders.base.MAX_SEQUENCE_STEPS` is an error line.
    """
    assert plan.extractor is not None and plan.output is not None
    sources = [_source(item, plan) for item in items]
    todo = [i for i, s in enumerate(sources) if s is not None]
    out: list[np.ndarray | str | None] = [None] * len(items)
    if not todo:
        return out
    results = _extract_each(plan, [str(sources[i]) for i in todo])
    spec = OutputSpec(plan.kind, plan.dim)  # type: ignore[arg-type]
    for i, result in zip(todo, results):
        try:
            if isinstance(result, ItemError):
                raise result
            if plan.output not in result:
                raise ItemError(f"extractor {plan.provenance['extractor']!r} returned {sorted(result)}, "
                                f"not its declared output {plan.output!r}")
            value = check_output(plan.output, result[plan.output], spec, str(sources[i]))
            if value.ndim == 2 and value.shape[0] > MAX_SEQUENCE_STEPS:
                raise ItemError(f"{sources[i]}: {value.shape[0]} feature steps, more than the "
                                f"{MAX_SEQUENCE_STEPS} a sequence encoder takes; cut the input shorter")
            out[i] = value if value.flags.writeable else value.copy()  # torch wants writable arrays
        except ItemError as err:
            out[i] = f"{plan.modality}: {str(err) or 'failed (no reason given)'}"
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


def _predict_chunk(model: torch.nn.Module, spec: RunSpec, plans: Mapping[str, ModalityPlan],
                   items: Sequence[_Item], device: str, speaker_norm: bool = False) -> list[ItemPrediction]:
    """Extract every modality of a chunk of items, then classify the items that have any.

    With ``speaker_norm`` the items' features are z-scored per speaker over the chunk first
    (:mod:`scenesense.data.speaker_norm`), as the run's training data was.
    """
    results, samples = _prepare_chunk(spec, plans, items)
    if speaker_norm and samples:
        stats = _speaker_statistics(samples, plans)
        samples = [apply_speaker_norm(s, stats) for s in samples]
    return _classify(model, spec, results, samples, device)


def _speaker_statistics(samples: Sequence[Sample], plans: Mapping[str, ModalityPlan]) -> SpeakerStats:
    """Per-speaker feature statistics of ``samples``, as the run's training data was normalised."""
    return speaker_statistics(samples, [m for m in plans if any(s["present"][m] for s in samples)],
                              MIN_SPEAKER_ITEMS)


def _classify(model: torch.nn.Module, spec: RunSpec, results: Sequence[ItemPrediction],
              samples: Sequence[Sample], device: str) -> list[ItemPrediction]:
    """``results`` (from :func:`_prepare_chunk`) with the model's scores of ``samples`` filled in."""
    regression = spec.task == "regression"
    scores = iter(_score(model, samples, list(spec.label_names), regression, device) if samples else [])
    return [result if not result.used else replace(result, **next(scores)) for result in results]


def _prepare_chunk(spec: RunSpec, plans: Mapping[str, ModalityPlan],
                   items: Sequence[_Item]) -> tuple[list[ItemPrediction], list[Sample]]:
    """Extract every modality of a chunk of items.

    Returns:
        Per item its :class:`ItemPrediction` without scores (an error row when no modality could
        be extracted), and one :class:`~scenesense.types.Sample` per item that has a modality
        (``used`` non-empty), in item order.
    """
    features = {m: _extract(p, items) if p.extractor is not None else [None] * len(items)
                for m, p in plans.items()}
    regression = spec.task == "regression"
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
# long media: windows and their timeline

_LONG_FACTOR = 2.0  # audio longer than this many windows is predicted window by window


def _long_audio(item: _Item, plans: Mapping[str, ModalityPlan], window_s: float) -> Path | None:
    """The audio file of ``item`` to predict in windows: its audio is read by an audio extractor
    and known to last more than ``_LONG_FACTOR`` windows. Else ``None``."""
    if not any(p.extractor is not None and p.extractor.input_kind == "audio" for p in plans.values()):
        return None
    path = item.audio or item.media or item.video
    if path is None:
        return None
    seconds = audio_seconds(path)
    return path if seconds is not None and seconds > _LONG_FACTOR * window_s else None


def clock(seconds: float) -> str:
    """A time in a recording as ``"M:SS.s"`` (``"H:MM:SS.s"`` from one hour)."""
    minutes, sec = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"


def _batches(windows: Iterator[AudioWindow], size: int) -> Iterator[list[AudioWindow]]:
    batch: list[AudioWindow] = []
    for window in windows:
        batch.append(window)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _predict_windows(model: torch.nn.Module, spec: RunSpec, plans: Mapping[str, ModalityPlan],
                     item: _Item, path: Path, window_s: float, *, batch_size: int, device: str,
                     speaker_norm: bool) -> ItemPrediction:
    """Predict the audio ``path`` of ``item`` window by window (see the module docstring).

    Windows are streamed from disk (:func:`~scenesense.extraction.audio_io.audio_windows`),
    ``batch_size`` at a time: written as 16-bit WAVs to a temporary folder, featurised by the
    run's extractors as any audio file is, and classified; one batch is held at a time. With
    ``speaker_norm`` every window is normalised with the statistics of the first batch (at least
    ``MIN_SPEAKER_ITEMS`` windows): those of the recording's speaker.
    """
    problems = list(item.problems) + [
        f"{m}: not used: the audio of {path} is predicted in {window_s:g} s windows, which {m} is not "
        f"aligned with"
        for m, p in sorted(plans.items())
        if p.extractor is not None and p.extractor.input_kind != "audio" and _source(item, p) is not None]
    timeline: list[WindowPrediction] = []
    stats: SpeakerStats | None = None
    size = max(batch_size, MIN_SPEAKER_ITEMS) if speaker_norm else batch_size
    with tempfile.TemporaryDirectory(prefix="scenesense-windows-") as folder:
        try:
            for batch in _batches(audio_windows(path, window_s), size):
                windows = [_window_item(item, k, w, Path(folder)) for k, w in enumerate(batch)]
                results, samples = _prepare_chunk(spec, plans, windows)
                if speaker_norm and samples:
                    stats = stats or _speaker_statistics(samples, plans)
                    samples = [apply_speaker_norm(s, stats) for s in samples]
                results = _classify(model, spec, results, samples, device)
                timeline += [_window_prediction(w, result, path) for w, result in zip(batch, results)]
        except ItemError as err:  # the file cannot be read (any further): the windows before it are kept
            problems.append(f"audio: {err}")
    return _summarise_windows(item, plans, spec, timeline, problems, path)


def _window_item(item: _Item, k: int, window: AudioWindow, folder: Path) -> _Item:
    """The ``k``-th window of a batch as an item of its own: audio only, written to ``folder``."""
    path = write_wav(folder / f"window{k}.wav", window.samples, window.rate)
    return _Item(f"{item.id}@{clock(window.start / window.rate)}", {"audio": str(path)}, audio=path,
                 speaker=item.speaker)


def _window_prediction(window: AudioWindow, result: ItemPrediction, path: Path) -> WindowPrediction:
    """A window's prediction; an error names the recording and the span, not the temporary file."""
    start, end = window.start / window.rate, (window.start + window.samples.shape[1]) / window.rate
    error = result.error
    if error is not None:
        error = error.removeprefix("no modality could be extracted: ")
        error = error.replace(result.inputs["audio"], f"{path} [{clock(start)}-{clock(end)}]")
    return WindowPrediction(start, end, result.label, result.probabilities, result.value, error)


def _summarise_windows(item: _Item, plans: Mapping[str, ModalityPlan], spec: RunSpec,
                       timeline: Sequence[WindowPrediction], problems: list[str],
                       path: Path) -> ItemPrediction:
    """The item's prediction from its windows: the mean of their probabilities (or values)."""
    ok = [w for w in timeline if w.ok]
    failed = [w for w in timeline if not w.ok]
    if failed:
        problems.append(f"audio: {len(failed)} of {len(timeline)} windows of {path} could not be predicted "
                        f"(first: {failed[0].error})")
    audio = {m for m, p in plans.items() if p.extractor is not None and p.extractor.input_kind == "audio"}
    used = audio if ok else set()
    result = ItemPrediction(item.id, item.raw, used=tuple(sorted(used)),
                            missing=tuple(sorted(set(plans) - used)), problems=tuple(problems),
                            timeline=tuple(timeline))
    if not timeline:
        return replace(result, error="no modality could be extracted: " + "; ".join(problems))
    if not ok:
        return replace(result, error=f"no window of {path} could be predicted: " + "; ".join(problems))
    if spec.task == "regression":
        return replace(result, value=float(np.mean([w.value for w in ok])))
    names = list(spec.label_names)
    mean = {c: float(np.mean([w.probabilities[c] for w in ok])) for c in names}
    return replace(result, label=max(names, key=lambda c: mean[c]), probabilities=mean)


# ---------------------------------------------------------------------------------------------
# output


def write_predictions(result: PredictionResult, path: str | Path) -> Path:
    """Write one CSV row per item, atomically.

    Columns: ``id, ok, label`` (or ``value`` for regression), ``prob_<class>`` per class,
    ``used``, ``missing`` (modalities joined by ``+``), ``weight_<modality>`` where the fusion
    gives weights, ``problems`` and ``error`` (one-line messages joined by `` | ``).
    Probabilities are written at full precision. When an item was predicted in windows (long
    media), ``start`` and ``end`` columns (seconds) follow ``id``: each such item's row (blank
    span: the overall prediction) is followed by one row per window, with the same ``id``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    regression = result.task == "regression"
    weighted = sorted({m for item in result.items for m in (item.modality_weights or {})})
    span = ["start", "end"] if any(item.timeline for item in result.items) else []
    names = ["value"] if regression else ["label", *(f"prob_{c}" for c in result.label_names)]
    header = ["id", *span, "ok", *names, "used", "missing", *(f"weight_{m}" for m in weighted), "problems",
              "error"]

    def scores(p: ItemPrediction | WindowPrediction) -> list[str]:
        return ([_num(p.value)] if regression else
                [p.label or "", *(_num(p.probabilities.get(c)) for c in result.label_names)])

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for item in result.items:
        weights = [_num((item.modality_weights or {}).get(m)) for m in weighted]
        writer.writerow([item.id, *([""] * len(span)), int(item.ok), *scores(item), "+".join(item.used),
                         "+".join(item.missing), *weights, " | ".join(item.problems), item.error or ""])
        for w in item.timeline:
            writer.writerow([item.id, _num(w.start), _num(w.end), int(w.ok), *scores(w), "", "",
                             *([""] * len(weighted)), "", w.error or ""])
    return atomic_write_text(path, buffer.getvalue())


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))
