"""Manifest -> extractors -> feature store: batched, parallel, resumable, one bad item never aborts.

`extract_manifest` runs, top-down:

1. **plan** (`scenesense.extraction.pipeline_plan`): for every split and every feature set
   key (one extractor), find what each item gives the extractor (`ManifestItem.input_for`);
   no input = modality absent, a media file that does not exist = a per-item error, an item
   already in the journal = skipped;
2. **run** (`scenesense.extraction.pipeline_run`): the rest in batches, in-process
   (``workers=1``) or in a ``spawn`` process pool whose workers rebuild each extractor once (from
   its class and ``provenance()["params"]``) in an initializer. Every finished batch is journaled
   at once; per-item failures (`scenesense.extraction.base.ItemError`, wrong shapes,
   unexpected exceptions as one line; `scenesense.extraction.items.extract_items`) are
   collected;
3. **assemble** (`scenesense.extraction.pipeline_store`): one ``<out>/<split>.h5`` per split
   with `scenesense.data.store.StoreWriter` (atomic), rows in manifest order; a failed
   modality is ``present=False``; an item with no modality at all is left out and counted;
   ``<out>/errors.csv`` lists every failure.

Journal (what makes a killed run resumable; `scenesense.extraction.journal`):

```text
<out>/.partial/<split>/<key>-<digest of provenance + outputs>/<uuid>.npz
    ids [B] str, fingerprints [B] str (hash of the text, or of path + size + mtime),
    data__<output> [sum T_i, D] or [B, D] float32, lengths__<output> [B] int64
```

Each shard is written to a temporary file, fsync'd and renamed, so a shard either exists whole
or not at all. A re-run skips every journaled (id, fingerprint); failed items are not journaled
and are retried. Changing an extractor's parameters (or package versions) changes the digest, so
stale results are never mixed in. ``.partial`` is removed once every split file is written.

Re-running on a finished store: ``<out>/.extraction.json`` records a fingerprint of the
inputs (every item's split, id, label, dialogue fields and input fingerprint), the extractors'
digests, the label set and the manifest description, plus the size and modification time of
every split file written. A re-run whose fingerprint matches, over unchanged split files,
extracts nothing and returns the recorded report (``reused=True``). The folder is locked
(`scenesense.utils.io.folder_lock`) while a run works in it.

Feature set names: an extractor under key ``k`` with outputs ``o1, o2, ...`` (in
``outputs()`` order) gives feature sets ``k`` (``o1``) and ``k_o2``, ... - so ``text=minilm``
gives ``text`` (tokens ``[T, 384]``) and ``text_sentence`` (``[384]``), as the MELD store does.

Unlabelled items are stored with class id ``-1`` (the store counts them in ``source``); when no
item has a label and no label space is given, the store's label set is ``("unlabelled",)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scenesense.data.labels import LabelSpace
from scenesense.data.store import VERSION
from scenesense.extraction.journal import PARTIAL_DIR
from scenesense.extraction.manifest import ManifestItem
from scenesense.extraction.pipeline_plan import (
    BuiltExtractor,
    ExtractorSpec,
    ItemFailure,
    build_extractors,
    input_fingerprint,
    label_space_for,
    plan_tasks,
    validate_arguments,
)
from scenesense.extraction.pipeline_run import run_tasks
from scenesense.extraction.pipeline_store import assemble, write_errors
from scenesense.utils.io import folder_lock, write_json

logger = logging.getLogger(__name__)

ERRORS_FILE = "errors.csv"
RECORD_FILE = ".extraction.json"  # fingerprint and report of the last finished run


@dataclass(frozen=True)
class ExtractionReport:
    """What `extract_manifest` did.

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
        extractors: feature set key -> a `FeatureExtractor`, or ``(registry name, params)``.
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
        The `ExtractionReport`.

    Raises:
        ValueError: no items or extractors, a bad key, workers/batch size, an item label outside
            ``label_space``, or an extractor that cannot be rebuilt from its provenance.
        RuntimeError: nothing could be extracted for any item, or a worker process died.
        KeyboardInterrupt: finished batches stay journaled; re-run to resume.
    """
    start = time.perf_counter()
    items = list(items)
    validate_arguments(items, extractors, workers, batch_size)
    built = build_extractors(extractors, workers)
    space = label_space_for(items, label_space)
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


def _extract(items: list[ManifestItem], built: dict[str, BuiltExtractor], space: LabelSpace, out: Path,
             workers: int, batch_size: int, progress: bool, source: dict[str, Any], start: float
             ) -> ExtractionReport:
    """Plan, run and assemble (see the module docstring); the caller holds the folder lock."""
    tasks, failures, journal, counts = plan_tasks(items, built, out, batch_size)
    total = sum(len(t.ids) for t in tasks)
    logger.info("extract: %d items, %d results to compute, %d resumed from %s", len(items), total,
                counts["resumed"], out / PARTIAL_DIR)
    failures += run_tasks(tasks, built, out, journal, workers=workers, progress=progress,
                     resumed=counts["resumed"])
    order = {(item.split, item.id): i for i, item in enumerate(items)}
    keys = list(built)
    failures.sort(key=lambda f: (order[(f.split, f.id)], keys.index(f.feature_set)))
    errors_file = write_errors(out / ERRORS_FILE, failures)
    files, rows, dropped, unlabelled = assemble(items, built, journal, failures, space, out, source)
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


def _inputs_fingerprint(items: Sequence[ManifestItem], built: Mapping[str, BuiltExtractor], space: LabelSpace,
                        source: Mapping[str, Any]) -> str:
    """SHA-256 of everything a finished store depends on (see the module docstring)."""
    h = hashlib.sha256()
    head = {"store_version": VERSION, "labels": list(space.names), "source": source,
            "extractors": {key: e.digest for key, e in built.items()}}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for item in items:
        inputs = [item.input_for(e.extractor.input_kind) for e in built.values()]
        prints = [None if v is None else input_fingerprint(e.extractor.input_kind, v)
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
