"""Manifest -> extractors -> feature store: batched, parallel, resumable, one bad item never aborts.

:func:`extract_manifest` runs, top-down:

1. **plan**: for every split and every feature set key (one extractor), find what each item
   gives the extractor (:meth:`ManifestItem.input_for`); no input = modality absent, a media file
   that does not exist = a per-item error, an item already in the journal = skipped;
2. **run**: the rest in batches, in-process (``workers=1``) or in a ``spawn`` process pool whose
   workers rebuild each extractor once (from its class and ``provenance()["params"]``) in an
   initializer. Every finished batch is journaled at once; per-item failures
   (:class:`~scenesense.extraction.base.ItemError`, wrong shapes, unexpected exceptions as one
   line) are collected;
3. **assemble**: one ``<out>/<split>.h5`` per split with :class:`~scenesense.data.store.StoreWriter`
   (atomic), rows in manifest order; a failed modality is ``present=False``; an item with no
   modality at all is left out and counted; ``<out>/errors.csv`` lists every failure.

Journal (what makes a killed run resumable)::

    <out>/.partial/<split>/<key>-<digest of provenance + outputs>/<uuid>.npz
        ids [B] str, fingerprints [B] str (hash of the text, or of path + size + mtime),
        data__<output> [sum T_i, D] or [B, D] float32, lengths__<output> [B] int64

Each shard is written to a temporary file, fsync'd and renamed, so a shard either exists whole
or not at all. A re-run skips every journaled (id, fingerprint); failed items are not journaled
and are retried. Changing an extractor's parameters (or package versions) changes the digest, so
stale results are never mixed in. ``.partial`` is removed once every split file is written.

Re-running on a finished store: ``<out>/.extraction.json`` records a fingerprint of the
inputs (every item's split, id, label, dialogue fields and input fingerprint), the extractors'
digests, the label set and the manifest description, plus the size and modification time of
every split file written. A re-run whose fingerprint matches, over unchanged split files,
extracts nothing and returns the recorded report (``reused=True``). The folder is locked
(:func:`~scenesense.utils.io.folder_lock`) while a run works in it.

Feature set names: an extractor under key ``k`` with outputs ``o1, o2, ...`` (in
``outputs()`` order) gives feature sets ``k`` (``o1``) and ``k_o2``, ... - so ``text=minilm``
gives ``text`` (tokens ``[T, 384]``) and ``text_sentence`` (``[384]``), as the MELD store does.

Unlabelled items are stored with class id ``-1`` (the store counts them in ``source``); when no
item has a label and no label space is given, the store's label set is ``("unlabelled",)``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.data.labels import UNLABELLED, LabelSpace
from scenesense.data.store import VERSION, FeatureSpec, StoreWriter
from scenesense.extraction.base import EXTRACTORS, FeatureExtractor, ItemError, OutputSpec
from scenesense.extraction.items import extract_items, one_line
from scenesense.extraction.manifest import ManifestItem, check_split_name, check_unique_ids
from scenesense.types import validate_modality
from scenesense.utils.io import atomic_write_text, folder_lock, write_json

logger = logging.getLogger(__name__)

ExtractorSpec = FeatureExtractor | tuple[str, Mapping[str, Any]]
PARTIAL_DIR = ".partial"
ERRORS_FILE = "errors.csv"
RECORD_FILE = ".extraction.json"  # fingerprint and report of the last finished run
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_ASSEMBLE_CHUNK = 256  # rows per StoreWriter.append
_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class ItemFailure:
    """One item that a feature set could not be extracted for: ``id``, ``split``, ``feature_set``
    (the extractor key), ``message`` (one line)."""

    id: str
    split: str
    feature_set: str
    message: str


@dataclass(frozen=True)
class ExtractionReport:
    """What :func:`extract_manifest` did.

    Fields:
        out_dir: the store folder.
        files: split -> the written ``<split>.h5``.
        rows: split -> rows written.
        items: manifest items.
        extracted: (item, extractor) pairs run by this run, failed ones included.
        resumed: (item, extractor) results taken from the journal of an earlier, killed run.
        no_input: (item, extractor) pairs without an input (modality absent, not an error).
        failures: every per-item failure, in manifest order.
        dropped: ids left out of the store because none of their modalities could be extracted.
        unlabelled: rows written without a label.
        feature_sets: feature set name -> ``{"key", "output", "modality", "kind", "dim"}``.
        errors_file: ``<out>/errors.csv``.
        seconds: wall time.
        reused: True when the store was already extracted from the same inputs and extractors and
            nothing was done (the other fields are the earlier run's, ``seconds`` this call's).
    """

    out_dir: Path
    files: dict[str, Path]
    rows: dict[str, int]
    items: int
    extracted: int
    resumed: int
    no_input: int
    failures: tuple[ItemFailure, ...]
    dropped: tuple[str, ...]
    unlabelled: int
    feature_sets: dict[str, dict[str, Any]]
    errors_file: Path
    seconds: float
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (failures counted per feature set, first message of each)."""
        by_key: dict[str, dict[str, Any]] = {}
        for f in self.failures:
            entry = by_key.setdefault(f.feature_set, {"count": 0, "first": f"{f.id}: {f.message}"})
            entry["count"] += 1
        return {
            "store": str(self.out_dir), "files": {k: str(v) for k, v in self.files.items()},
            "rows": self.rows,
            "items": self.items, "extracted": self.extracted, "resumed": self.resumed,
            "no_input": self.no_input, "failures": len(self.failures), "failures_by_feature_set": by_key,
            "dropped": len(self.dropped), "unlabelled": self.unlabelled, "feature_sets": self.feature_sets,
            "errors_file": str(self.errors_file), "seconds": round(self.seconds, 3), "reused": self.reused,
        }


@dataclass
class _Extractor:
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
class _Task:
    """One batch: ``B`` items of one split for one extractor key."""

    split: str
    key: str
    ids: list[str]
    inputs: list[str]
    fingerprints: list[str]


@dataclass
class _Entry:
    """Where a journaled result lives: shard file, row in it, lengths per output."""

    shard: Path
    row: int
    fingerprint: str
    lengths: dict[str, int] = field(default_factory=dict)


_Journal = dict[tuple[str, str], dict[str, _Entry]]  # (split, key) -> id -> journaled result


# --- public entry point ----------------------------------------------------------------------


def extract_manifest(
    items: Sequence[ManifestItem],
    extractors: Mapping[str, ExtractorSpec],
    out_dir: str | Path,
    *,
    workers: int = 1,
    batch_size: int = 16,
    label_space: LabelSpace | None = None,
    progress: bool = True,
    source: Mapping[str, Any] | None = None,
) -> ExtractionReport:
    """Extract features for manifest items into a feature store folder.

    Args:
        items: the manifest rows (ids unique).
        extractors: feature set key -> a :class:`FeatureExtractor`, or ``(registry name, params)``.
            The key names the feature set of the extractor's first output (see the module
            docstring); the modality comes from the extractor.
        out_dir: store folder; gets ``<split>.h5`` per split, ``errors.csv`` and, while running,
            the ``.partial`` journal.
        workers: processes; 1 runs in this process. Workers share the thread budget
            (``OMP_NUM_THREADS``, else the CPU count) equally.
        batch_size: items per ``extract_batch`` call (and per journal shard).
        label_space: the label set; default: the sorted label names found in ``items``.
        progress: show a tqdm progress bar on stderr.
        source: JSON-able manifest description stored with the data (e.g. ``Manifest.source``).

    Returns:
        The :class:`ExtractionReport`.

    Raises:
        ValueError: no items or extractors, a bad key, workers/batch size, an item label outside
            ``label_space``, or an extractor that cannot be rebuilt from its provenance.
        RuntimeError: nothing could be extracted for any item, or a worker process died.
        KeyboardInterrupt: finished batches stay journaled; re-run to resume.
    """
    start = time.perf_counter()
    items = list(items)
    _validate_arguments(items, extractors, workers, batch_size)
    built = _build_extractors(extractors, workers)
    space = _label_space(items, label_space)
    out = Path(out_dir)
    fingerprint = _inputs_fingerprint(items, built, space, dict(source or {}))
    with folder_lock(out):  # one process at a time: the journal and split files are this run's
        report = _recorded_report(out, fingerprint)
        if report is not None:
            logger.info("extract: %s already holds these features (same inputs and extractors); reused", out)
            return replace(report, seconds=time.perf_counter() - start)
        (out / RECORD_FILE).unlink(missing_ok=True)
        report = _extract(items, built, space, out, workers, batch_size, progress, dict(source or {}), start)
        _write_record(out, fingerprint, report)
        return report


def _extract(items: list[ManifestItem], built: dict[str, _Extractor], space: LabelSpace, out: Path,
             workers: int, batch_size: int, progress: bool, source: dict[str, Any], start: float
             ) -> ExtractionReport:
    """Plan, run and assemble (see the module docstring); the caller holds the folder lock."""
    tasks, failures, journal, counts = _plan(items, built, out, batch_size)
    total = sum(len(t.ids) for t in tasks)
    logger.info("extract: %d items, %d results to compute, %d resumed from %s", len(items), total,
                counts["resumed"], out / PARTIAL_DIR)
    failures += _run(tasks, built, out, journal, workers=workers, progress=progress,
                     resumed=counts["resumed"])
    order = {(item.split, item.id): i for i, item in enumerate(items)}
    keys = list(built)
    failures.sort(key=lambda f: (order[(f.split, f.id)], keys.index(f.feature_set)))
    errors_file = _write_errors(out / ERRORS_FILE, failures)
    files, rows, dropped, unlabelled = _assemble(items, built, journal, failures, space, out, source)
    if not files:
        raise RuntimeError(f"no item could be extracted ({len(failures)} failures, see {errors_file})")
    shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
    feature_sets = {name: {"key": e.key, "output": o, "modality": e.extractor.modality,
                           "kind": e.outputs[o].kind, "dim": e.outputs[o].dim}
                    for e in built.values() for o, name in e.names.items()}
    return ExtractionReport(
        out_dir=out, files=files, rows=rows, items=len(items), extracted=total, resumed=counts["resumed"],
        no_input=counts["no_input"], failures=tuple(failures), dropped=tuple(dropped), unlabelled=unlabelled,
        feature_sets=feature_sets, errors_file=errors_file, seconds=time.perf_counter() - start,
    )


# --- reuse of a finished store ---------------------------------------------------------------


def _inputs_fingerprint(items: Sequence[ManifestItem], built: Mapping[str, _Extractor], space: LabelSpace,
                        source: Mapping[str, Any]) -> str:
    """SHA-256 of everything a finished store depends on (see the module docstring)."""
    h = hashlib.sha256()
    head = {"store_version": VERSION, "labels": list(space.names), "source": source,
            "extractors": {key: e.digest for key, e in built.items()}}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for item in items:
        inputs = [item.input_for(e.extractor.input_kind) for e in built.values()]
        prints = [None if v is None else _fingerprint(e.extractor.input_kind, v)
                  for v, e in zip(inputs, built.values(), strict=True)]
        row = [item.split, item.id, item.label, item.dialogue_id, item.speaker, item.position, prints]
        h.update(json.dumps(row, default=str).encode() + b"\n")
    return h.hexdigest()


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _write_record(out: Path, fingerprint: str, report: ExtractionReport) -> None:
    """Record a finished run: its fingerprint, the stamps of the files it wrote and its report."""
    files = {split: {"name": path.name, "stamp": _file_stamp(path)} for split, path in report.files.items()}
    failures = [[f.id, f.split, f.feature_set, f.message] for f in report.failures]
    write_json(out / RECORD_FILE, {
        "fingerprint": fingerprint, "files": files, "rows": report.rows, "items": report.items,
        "no_input": report.no_input, "failures": failures, "dropped": list(report.dropped),
        "unlabelled": report.unlabelled, "feature_sets": report.feature_sets})


def _recorded_report(out: Path, fingerprint: str) -> ExtractionReport | None:
    """The recorded report if ``out`` was finished with ``fingerprint`` and its files are unchanged."""
    try:
        record = json.loads((out / RECORD_FILE).read_text(encoding="utf-8"))
        if record["fingerprint"] != fingerprint:
            return None
        files = {split: out / entry["name"] for split, entry in record["files"].items()}
        if any(_file_stamp(files[split]) != entry["stamp"] for split, entry in record["files"].items()):
            return None
        return ExtractionReport(
            out_dir=out, files=files, rows=record["rows"], items=record["items"], extracted=0, resumed=0,
            no_input=record["no_input"], failures=tuple(ItemFailure(*f) for f in record["failures"]),
            dropped=tuple(record["dropped"]), unlabelled=record["unlabelled"],
            feature_sets=record["feature_sets"], errors_file=out / ERRORS_FILE, seconds=0.0, reused=True)
    except (OSError, ValueError, KeyError, TypeError):  # no record, or one this code cannot use
        return None


# --- validation and set-up -------------------------------------------------------------------


def _validate_arguments(items: Sequence[ManifestItem], extractors: Mapping[str, ExtractorSpec],
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


def _build_extractors(extractors: Mapping[str, ExtractorSpec], workers: int) -> dict[str, _Extractor]:
    """Instantiate, read outputs and provenance, name feature sets, check workers can rebuild."""
    built: dict[str, _Extractor] = {}
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
        built[key] = _Extractor(key, extractor, cls, params, provenance, outputs, names, digest)
    return built


def _label_space(items: Sequence[ManifestItem], given: LabelSpace | None) -> LabelSpace:
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


def _fingerprint(kind: str, value: str | Path) -> tuple[str, str | None]:
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


def _journal_dir(out: Path, split: str, e: _Extractor) -> Path:
    return out / PARTIAL_DIR / split / f"{e.key}-{e.digest}"


def _load_journal(folder: Path, outputs: Sequence[str]) -> dict[str, _Entry]:
    """id -> entry for every shard in ``folder`` (unreadable shards are deleted and redone)."""
    entries: dict[str, _Entry] = {}
    for leftover in folder.glob(".*.tmp"):  # a shard being written when the process died
        leftover.unlink(missing_ok=True)
    for shard in sorted(folder.glob("*.npz")):
        try:
            with np.load(shard, allow_pickle=False) as z:
                ids, prints = z["ids"].tolist(), z["fingerprints"].tolist()
                lengths = {o: z[f"lengths__{o}"].tolist() for o in outputs}
        except (OSError, ValueError, KeyError) as err:
            logger.warning("%s: unreadable journal shard (%s); its items are extracted again", shard, err)
            shard.unlink(missing_ok=True)
            continue
        for row, (key, fp) in enumerate(zip(ids, prints, strict=True)):
            entries[key] = _Entry(shard, row, fp, {o: int(lengths[o][row]) for o in outputs})
    return entries


def _plan(items: Sequence[ManifestItem], built: Mapping[str, _Extractor], out: Path, batch_size: int
          ) -> tuple[list[_Task], list[ItemFailure], _Journal, dict[str, int]]:
    """Batches to run, failures known up front, the journal index per (split, key), counts."""
    tasks: list[_Task] = []
    failures: list[ItemFailure] = []
    journal: _Journal = {}
    counts = {"resumed": 0, "no_input": 0}
    splits = list(dict.fromkeys(item.split for item in items))
    for split in splits:
        rows = [item for item in items if item.split == split]
        for key, e in built.items():
            folder = _journal_dir(out, split, e)
            for stale in folder.parent.glob(f"{key}-*"):
                if stale != folder and stale.is_dir() and stale.name.rsplit("-", 1)[0] == key:
                    logger.info("discarding %s: made with other extractor settings", stale)
                    shutil.rmtree(stale, ignore_errors=True)
            done = _load_journal(folder, list(e.outputs)) if folder.is_dir() else {}
            kept: dict[str, _Entry] = {}
            todo: list[tuple[str, str, str]] = []
            for item in rows:
                value = item.input_for(e.extractor.input_kind)
                if value is None:
                    counts["no_input"] += 1
                    continue
                text, fp = _fingerprint(e.extractor.input_kind, value)
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
                tasks.append(_Task(split, key, ids, inputs, prints))
    return tasks, failures, journal, counts


# --- run -------------------------------------------------------------------------------------


def extract_batch_safely(extractor: FeatureExtractor, inputs: Sequence[str]
                         ) -> list[dict[str, np.ndarray] | str]:
    """Run ``extract_batch`` (:func:`~scenesense.extraction.items.extract_items`) and check every result.

    A batch that raises an unexpected exception is retried item by item, so only the item that
    raises fails. ``KeyboardInterrupt``/``SystemExit`` propagate.

    Returns:
        Per input, in order: its checked float32 outputs, or a one-line error message.
    """
    results = [r for batch in extract_items(extractor, inputs, on_error=_unexpected) for r in batch]
    return [one_line(r)[:_MESSAGE_CHARS] if isinstance(r, ItemError) else r for r in results]


def _unexpected(item: str, err: Exception) -> ItemError:
    return ItemError(one_line(err))


_WORKER_EXTRACTORS: dict[str, FeatureExtractor] = {}


def _init_worker(builds: Mapping[str, tuple[type, dict[str, Any]]], threads: int) -> None:
    """Process-pool initializer: share the thread budget, build every extractor once."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    for key, (cls, params) in builds.items():
        _WORKER_EXTRACTORS[key] = cls(**{k: v for k, v in params.items() if v is not None})


def _worker_batch(key: str, inputs: list[str]) -> list[dict[str, np.ndarray] | str]:
    return extract_batch_safely(_WORKER_EXTRACTORS[key], inputs)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_shard(folder: Path, ids: Sequence[str], fingerprints: Sequence[str],
                 rows: Sequence[Mapping[str, np.ndarray]], outputs: Mapping[str, OutputSpec]) -> Path:
    """Journal ``B`` finished items atomically (temp file, fsync, rename, fsync folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"ids": np.asarray(ids, dtype=str),
                                     "fingerprints": np.asarray(fingerprints, dtype=str)}
    for name, spec in outputs.items():
        values = [r[name] for r in rows]
        lengths = [v.shape[0] if spec.kind == "sequence" else 1 for v in values]
        arrays[f"lengths__{name}"] = np.asarray(lengths, dtype=np.int64)
        arrays[f"data__{name}"] = np.concatenate(values) if spec.kind == "sequence" else np.stack(values)
    final = folder / f"{uuid.uuid4().hex}.npz"
    tmp = folder / f".{final.stem}.tmp"
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def _record(task: _Task, results: Sequence[dict[str, np.ndarray] | str], e: _Extractor, out: Path,
            journal: _Journal) -> list[ItemFailure]:
    """Journal a finished batch; return its failures."""
    good = [i for i, r in enumerate(results) if not isinstance(r, str)]
    failures = [ItemFailure(task.ids[i], task.split, task.key, str(r)) for i, r in enumerate(results)
                if isinstance(r, str)]
    if good:
        rows = [results[i] for i in good]
        shard = _write_shard(_journal_dir(out, task.split, e), [task.ids[i] for i in good],
                             [task.fingerprints[i] for i in good], rows, e.outputs)  # type: ignore[arg-type]
        index = journal[(task.split, task.key)]
        for row, i in enumerate(good):
            lengths = {o: (int(rows[row][o].shape[0]) if spec.kind == "sequence" else 1)  # type: ignore[index]
                       for o, spec in e.outputs.items()}
            index[task.ids[i]] = _Entry(shard, row, task.fingerprints[i], lengths)
    return failures


def _thread_budget() -> int:
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def _run(tasks: Sequence[_Task], built: Mapping[str, _Extractor], out: Path,
         journal: _Journal, *, workers: int, progress: bool,
         resumed: int) -> list[ItemFailure]:
    """Extract every task, journaling each batch as it finishes; returns the failures."""
    from tqdm.auto import tqdm

    failures: list[ItemFailure] = []
    total = sum(len(t.ids) for t in tasks)
    with tqdm(total=total + resumed, initial=resumed, desc="extract", unit="item", disable=not progress,
              file=sys.stderr, dynamic_ncols=True) as bar:
        def finish(task: _Task, results: Sequence[dict[str, np.ndarray] | str]) -> None:
            failures.extend(_record(task, results, built[task.key], out, journal))
            bar.update(len(task.ids))
            bar.set_postfix(errors=len(failures), refresh=False)

        if workers == 1 or not tasks:
            for task in tasks:
                finish(task, extract_batch_safely(built[task.key].extractor, task.inputs))
        else:
            _run_pool(tasks, built, workers, finish)
    return failures


def _run_pool(tasks: Sequence[_Task], built: Mapping[str, _Extractor], workers: int, finish: Any) -> None:  # noqa: ANN401
    """Run tasks in a spawn process pool, at most ``2 * workers`` batches in flight."""
    builds = {key: (e.cls, e.params) for key, e in built.items()}
    threads = max(1, _thread_budget() // workers)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(builds, threads))
    pending: dict[Future[Any], _Task] = {}
    queue: Iterator[_Task] = iter(tasks)
    clean = False
    try:
        def submit() -> None:
            task = next(queue, None)
            if task is not None:
                pending[pool.submit(_worker_batch, task.key, task.inputs)] = task

        for _ in range(2 * workers):
            submit()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:
                    raise RuntimeError(f"a worker process died while extracting {task.key!r} for "
                                       f"{task.ids[:3]}... (out of memory, or a crash inside the extractor); "
                                       f"finished batches are kept: re-run to resume") from None
                finish(task, results)
                submit()
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)


# --- assemble --------------------------------------------------------------------------------


class _ShardCache:
    """Loaded journal shards (a few at a time) and row lookup."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._cache: OrderedDict[Path, dict[str, np.ndarray]] = OrderedDict()

    def row(self, entry: _Entry, output: str, kind: str) -> np.ndarray:
        """One journaled output: ``[T, D]`` (sequence) or ``[D]`` (vector)."""
        arrays = self._cache.get(entry.shard)
        if arrays is None:
            with np.load(entry.shard, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            self._cache[entry.shard] = arrays
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(entry.shard)
        data = arrays[f"data__{output}"]
        if kind == "vector":
            return data[entry.row]  # [D]
        lengths = arrays[f"lengths__{output}"]
        start = int(lengths[:entry.row].sum())
        return data[start:start + int(lengths[entry.row])]  # [T, D]


def _assemble(items: Sequence[ManifestItem], built: Mapping[str, _Extractor],
              journal: _Journal, failures: Sequence[ItemFailure],
              space: LabelSpace, out: Path, source: dict[str, Any]
              ) -> tuple[dict[str, Path], dict[str, int], list[str], int]:
    """Write one store split file per split; returns files, rows, dropped ids, unlabelled rows."""
    files: dict[str, Path] = {}
    rows_written: dict[str, int] = {}
    dropped: list[str] = []
    unlabelled = 0
    failed = {(f.split, f.id, f.feature_set) for f in failures}
    for split in dict.fromkeys(item.split for item in items):
        rows = [item for item in items if item.split == split]
        indexes = {key: journal[(split, key)] for key in built}
        keep = [item for item in rows if any(item.id in index for index in indexes.values())]
        kept_ids = {item.id for item in keep}
        dropped += [item.id for item in rows if item.id not in kept_ids]
        if not keep:
            logger.warning("split %s: no item could be extracted; no %s.h5 written", split, split)
            continue
        specs = _split_specs(split, rows, keep, built, indexes, failed, source)
        labels = np.asarray([UNLABELLED if i.label is None else space.id_of(i.label) for i in keep],
                            dtype=np.int64)
        n_unlabelled = int((labels == UNLABELLED).sum())
        unlabelled += n_unlabelled
        store_source = {"dataset": "manifest", **source, "split": split, "items": len(rows),
                        "written": len(keep), "dropped": len(rows) - len(keep), "unlabelled": n_unlabelled,
                        "label_for_unlabelled": UNLABELLED}
        files[split] = _write_split(out / f"{split}.h5", keep, labels, built, indexes, specs, space,
                                    store_source)
        rows_written[split] = len(keep)
    return files, rows_written, dropped, unlabelled


def _split_specs(split: str, rows: Sequence[ManifestItem], keep: Sequence[ManifestItem],
                 built: Mapping[str, _Extractor], indexes: Mapping[str, dict[str, _Entry]],
                 failed: set[tuple[str, str, str]], source: dict[str, Any]) -> dict[str, FeatureSpec]:
    """Feature set name -> spec; provenance = extractor provenance + manifest, output and counts."""
    specs = {}
    for key, e in built.items():
        index = indexes[key]
        counts = {"items": len(rows), "present": sum(item.id in index for item in keep),
                  "failed": sum((split, item.id, key) in failed for item in rows),
                  "no_input": sum(item.input_for(e.extractor.input_kind) is None for item in rows)}
        for output, name in e.names.items():
            spec = e.outputs[output]
            longest = max((index[i.id].lengths[output] for i in keep if i.id in index), default=1)
            provenance = {**e.provenance, "extraction": {
                "key": key, "output": output, "manifest": source, "split": split, "counts": counts}}
            specs[name] = FeatureSpec(e.extractor.modality, spec.kind, spec.dim,
                                      max_len=max(1, longest) if spec.kind == "sequence" else None,
                                      provenance=provenance)
    return specs


def _write_split(path: Path, keep: Sequence[ManifestItem], labels: np.ndarray,
                 built: Mapping[str, _Extractor], indexes: Mapping[str, dict[str, _Entry]],
                 specs: Mapping[str, FeatureSpec], space: LabelSpace, source: dict[str, Any]) -> Path:
    """Stream the journaled rows of ``keep`` (manifest order) into ``path`` in chunks."""
    cache = _ShardCache()
    with StoreWriter(path, label_space=space, features=specs, source=source) as writer:
        for start in range(0, len(keep), _ASSEMBLE_CHUNK):
            part = keep[start:start + _ASSEMBLE_CHUNK]
            features: dict[str, list[np.ndarray | None]] = {}
            for key, e in built.items():
                index = indexes[key]
                for output, name in e.names.items():
                    kind = e.outputs[output].kind
                    features[name] = [cache.row(index[i.id], output, kind) if i.id in index else None
                                      for i in part]
            writer.append([i.id for i in part], labels[start:start + len(part)], features,
                          dialogue_ids=[i.dialogue_id for i in part], positions=[i.position for i in part],
                          speakers=[i.speaker for i in part])
    return path


def _write_errors(path: Path, failures: Sequence[ItemFailure]) -> Path:
    """``errors.csv`` (id, split, feature_set, message), header included when empty; atomic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "split", "feature_set", "message"])
    writer.writerows([f.id, f.split, f.feature_set, f.message] for f in failures)
    return atomic_write_text(path, buffer.getvalue())
