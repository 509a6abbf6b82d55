"""The extraction journal: finished batches on disk, so that a killed extraction resumes.

    <out>/.partial/<split>/<key>-<digest of provenance + outputs>/<uuid>.npz
        ids [B] str, fingerprints [B] str (hash of the text, or of path + size + mtime),
        data__<output> [sum T_i, D] or [B, D] float32, lengths__<output> [B] int64

Each shard is written to a temporary file, fsync'd and renamed, so a shard either exists whole
or not at all; an unreadable shard is deleted and its items are extracted again.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenesense.extraction.base import OutputSpec

logger = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"


@dataclass
class JournalEntry:
    """Where a journaled result lives: shard file, row in it, lengths per output."""

    shard: Path
    row: int
    fingerprint: str
    lengths: dict[str, int] = field(default_factory=dict)


Journal = dict[tuple[str, str], dict[str, JournalEntry]]  # (split, key) -> id -> journaled result


def journal_dir(out: Path, split: str, key: str, digest: str) -> Path:
    """The journal folder of one feature set key (extractor ``digest``) in one split."""
    return out / PARTIAL_DIR / split / f"{key}-{digest}"


def load_journal(folder: Path, outputs: Sequence[str]) -> dict[str, JournalEntry]:
    """id -> entry for every shard in ``folder`` (unreadable shards are deleted and redone)."""
    entries: dict[str, JournalEntry] = {}
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
            entries[key] = JournalEntry(shard, row, fp, {o: int(lengths[o][row]) for o in outputs})
    return entries


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(folder: Path, ids: Sequence[str], fingerprints: Sequence[str],
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


class ShardCache:
    """Loaded journal shards (a few at a time) and row lookup."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._cache: OrderedDict[Path, dict[str, np.ndarray]] = OrderedDict()

    def row(self, entry: JournalEntry, output: str, kind: str) -> np.ndarray:
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
