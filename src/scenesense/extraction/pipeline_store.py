"""Assembling the store: one ``<split>.h5`` per split from the journal, rows in manifest order,
and ``errors.csv`` listing every per-item failure."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.data.labels import UNLABELLED, LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.extraction.journal import Journal, JournalEntry, ShardCache
from scenesense.extraction.manifest import ManifestItem
from scenesense.extraction.pipeline_plan import BuiltExtractor, ItemFailure
from scenesense.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

_ASSEMBLE_CHUNK = 256  # rows per StoreWriter.append


def assemble(items: Sequence[ManifestItem], built: Mapping[str, BuiltExtractor],
              journal: Journal, failures: Sequence[ItemFailure],
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
                 built: Mapping[str, BuiltExtractor], indexes: Mapping[str, dict[str, JournalEntry]],
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
                 built: Mapping[str, BuiltExtractor], indexes: Mapping[str, dict[str, JournalEntry]],
                 specs: Mapping[str, FeatureSpec], space: LabelSpace, source: dict[str, Any]) -> Path:
    """Stream the journaled rows of ``keep`` (manifest order) into ``path`` in chunks."""
    cache = ShardCache()
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


def write_errors(path: Path, failures: Sequence[ItemFailure]) -> Path:
    """``errors.csv`` (id, split, feature_set, message), header included when empty; atomic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "split", "feature_set", "message"])
    writer.writerows([f.id, f.split, f.feature_set, f.message] for f in failures)
    return atomic_write_text(path, buffer.getvalue())
