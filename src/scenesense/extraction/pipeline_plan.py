"""Extraction set-up and plan: the extractors built and named, and the batches still to run.

`build_extractors` instantiates the extractor of each feature set key, names its feature
sets and digests its provenance; `plan_tasks` finds, per split and key, what each item
gives the extractor, what the journal already holds, and the batches left to run (see
`scenesense.extraction.pipeline`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenesense.data.labels import LabelSpace
from scenesense.extraction.base import EXTRACTORS, FeatureExtractor, OutputSpec
from scenesense.extraction.journal import Journal, JournalEntry, journal_dir, load_journal
from scenesense.extraction.manifest import ManifestItem, check_split_name, check_unique_ids
from scenesense.types import validate_modality

logger = logging.getLogger(__name__)

ExtractorSpec = FeatureExtractor | tuple[str, Mapping[str, Any]]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ItemFailure:
    """One item that a feature set could not be extracted for: ``id``, ``split``, ``feature_set``
    (the extractor key), ``message`` (one line)."""

    id: str
    split: str
    feature_set: str
    message: str


@dataclass
class BuiltExtractor:
    """One configured extractor (feature set key): the instance, how workers rebuild it, its outputs."""

    key: str
    extractor: FeatureExtractor
    cls: type
    params: dict[str, Any]
    provenance: dict[str, Any]
    outputs: dict[str, OutputSpec]
    names: dict[str, str]  # output -> feature set name
    digest: str


@dataclass
class Task:
    """One batch: ``B`` items of one split for one extractor key."""

    split: str
    key: str
    ids: list[str]
    inputs: list[str]
    fingerprints: list[str]


# --- validation and set-up -------------------------------------------------------------------


def validate_arguments(items: Sequence[ManifestItem], extractors: Mapping[str, ExtractorSpec],
                        workers: int, batch_size: int) -> None:
    if not items:
        raise ValueError("the manifest has no items")
    if not extractors:
        raise ValueError("no extractors given (feature set name -> extractor)")
    for name, value in (("workers", workers), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    for item in items:
        check_split_name(item.split, item.where or item.id)
    by_split: dict[str, list[ManifestItem]] = {}
    for item in items:
        by_split.setdefault(item.split, []).append(item)
    for group in by_split.values():
        check_unique_ids(group)


def _instantiate(key: str, spec: ExtractorSpec) -> tuple[FeatureExtractor, type, dict[str, Any] | None]:
    if isinstance(spec, FeatureExtractor):
        return spec, type(spec), None
    if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)):
        raise ValueError(f"extractor for {key!r} must be a FeatureExtractor or (name, params), got {spec!r}")
    name, params = spec[0], dict(spec[1] or {})
    return EXTRACTORS.create(name, **params), EXTRACTORS.get(name), params


def build_extractors(extractors: Mapping[str, ExtractorSpec], workers: int) -> dict[str, BuiltExtractor]:
    """Instantiate, read outputs and provenance, name feature sets, check workers can rebuild."""
    built: dict[str, BuiltExtractor] = {}
    taken: dict[str, str] = {}
    for key in extractors:
        if not isinstance(key, str) or not _NAME.match(key):
            raise ValueError(f"feature set name {key!r} must be letters, digits, '_' or '-'")
        extractor, cls, params = _instantiate(key, extractors[key])
        validate_modality(extractor.modality)
        outputs = dict(extractor.outputs())
        if not outputs:
            raise ValueError(f"extractor {type(extractor).__name__} for {key!r} declares no outputs")
        provenance = dict(extractor.provenance())
        if params is None:  # an instance: workers rebuild it from its provenance
            params = provenance.get("params")
            if workers > 1 and (not isinstance(params, dict) or "extractor" not in provenance):
                raise ValueError(f"extractor for {key!r} ({cls.__name__}) has no provenance 'extractor' + "
                                 f"'params', so worker processes cannot rebuild it; use workers=1")
            params = dict(params or {})
            if workers > 1:
                rebuilt = cls(**{k: v for k, v in params.items() if v is not None}).provenance()
                if rebuilt != provenance:
                    raise ValueError(f"extractor for {key!r}: rebuilding {cls.__name__} from its provenance "
                                     f"params gives a different provenance; use workers=1")
        names = {out: key if i == 0 else f"{key}_{out}" for i, out in enumerate(outputs)}
        for out, name in names.items():
            if name in taken:
                raise ValueError(f"feature set name {name!r} ({key}.{out}) is also made by {taken[name]}")
            taken[name] = f"{key}.{out}"
        fingerprint = {"provenance": provenance, "input_kind": extractor.input_kind,
                       "outputs": {o: [s.kind, s.dim] for o, s in outputs.items()}}
        text = json.dumps(fingerprint, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        built[key] = BuiltExtractor(key, extractor, cls, params, provenance, outputs, names, digest)
    return built


def label_space_for(items: Sequence[ManifestItem], given: LabelSpace | None) -> LabelSpace:
    names = sorted({item.label for item in items if item.label is not None})
    if given is None:
        return LabelSpace(tuple(names)) if names else LabelSpace(("unlabelled",))
    if not given.is_classification:
        raise ValueError("extraction from a manifest supports classification labels only")
    for item in items:
        if item.label is not None and item.label not in given.names:
            raise ValueError(f"{item.where or item.id}: label {item.label!r} is not in the label set "
                             f"{list(given.names)}")
    return given


# --- plan ------------------------------------------------------------------------------------


def input_fingerprint(kind: str, value: str | Path) -> tuple[str, str | None]:
    """(what the extractor reads, fingerprint) or (message, None) when the file is missing."""
    if kind == "text":
        return str(value), hashlib.sha256(f"text\0{value}".encode()).hexdigest()
    path = Path(value)
    try:
        stat = path.stat()
    except OSError:
        return f"{path}: no such file", None
    if not path.is_file():
        return f"{path}: not a file", None
    resolved = str(path.resolve())
    return str(path), hashlib.sha256(f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()


def plan_tasks(items: Sequence[ManifestItem], built: Mapping[str, BuiltExtractor], out: Path, batch_size: int
          ) -> tuple[list[Task], list[ItemFailure], Journal, dict[str, int]]:
    """Batches to run, failures known up front, the journal index per (split, key), counts."""
    tasks: list[Task] = []
    failures: list[ItemFailure] = []
    journal: Journal = {}
    counts = {"resumed": 0, "no_input": 0}
    splits = list(dict.fromkeys(item.split for item in items))
    for split in splits:
        rows = [item for item in items if item.split == split]
        for key, e in built.items():
            folder = journal_dir(out, split, e.key, e.digest)
            for stale in folder.parent.glob(f"{key}-*"):
                if stale != folder and stale.is_dir() and stale.name.rsplit("-", 1)[0] == key:
                    logger.info("discarding %s: made with other extractor settings", stale)
                    shutil.rmtree(stale, ignore_errors=True)
            done = load_journal(folder, list(e.outputs)) if folder.is_dir() else {}
            kept: dict[str, JournalEntry] = {}
            todo: list[tuple[str, str, str]] = []
            for item in rows:
                value = item.input_for(e.extractor.input_kind)
                if value is None:
                    counts["no_input"] += 1
                    continue
                text, fp = input_fingerprint(e.extractor.input_kind, value)
                if fp is None:
                    failures.append(ItemFailure(item.id, split, key, text))
                elif item.id in done and done[item.id].fingerprint == fp:
                    kept[item.id] = done[item.id]
                else:
                    todo.append((item.id, text, fp))
            counts["resumed"] += len(kept)
            journal[(split, key)] = kept
            for i in range(0, len(todo), batch_size):
                part = todo[i:i + batch_size]
                ids, inputs, prints = (list(column) for column in zip(*part, strict=True))
                tasks.append(Task(split, key, ids, inputs, prints))
    return tasks, failures, journal, counts
