"""One pickle holding the three splits (the MMSA and MulT layouts): finding, loading, checking, writing.

A ``{train, valid, test}`` dict of split dicts of arrays with ``N`` rows each: `load_split_dicts`
maps the split keys to store split names (`SPLIT_NAMES`), `split_array` reads one checked array
of a split, and `write_split_rows` writes the rows of a split (`SplitRows`) into a store split.
`SplitPickleSource` is the base of the sources that read such a file (`scenesense.datasets.mmsa`,
`scenesense.datasets.mult`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.data.labels import LabelSpace
from scenesense.data.safe_pickle import load_pickle
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError
from scenesense.datasets.sources import DatasetSource

SPLIT_NAMES: dict[str, str] = {"train": "train", "valid": "dev", "val": "dev", "dev": "dev", "test": "test"}
"""Split key in a published pickle -> store split name."""

_WRITE_CHUNK = 256
_SCAN_CHUNK = 1024  # rows per NaN/inf scan, bounding the temporary boolean masks



def find_pickle(root: Path) -> Path:
    """``root`` when it is a file, else the single ``.pkl`` directly inside the folder ``root``.

    Raises:
        DataFormatError: the folder holds no ``.pkl`` or several.
    """
    if root.is_file():
        return root
    found = sorted(p for p in root.glob("*.pkl") if not p.name.startswith("."))
    if len(found) != 1:
        names = [p.name for p in found]
        raise DataFormatError(f"{root}: expected exactly one .pkl file in the folder, found {names}; "
                              f"pass the file itself as the root")
    return found[0]


def load_split_dicts(path: Path) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Load a ``{train, valid, test}`` pickle (through `load_pickle`).

    Returns:
        store split name -> (the pickle's split key, that split's dict of arrays); ``train`` and
        ``dev`` are always present.

    Raises:
        DataFormatError: not a dict of split dicts, a split named twice, or train / valid missing.
    """
    data = load_pickle(path)
    if not isinstance(data, Mapping):
        raise DataFormatError(f"{path}: top level is a {type(data).__name__}, expected a dict with keys "
                              f"train/valid/test")
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for key, value in data.items():
        split = SPLIT_NAMES.get(str(key))
        if split is None:
            continue
        if split in out:
            raise DataFormatError(f"{path}: splits {out[split][0]!r} and {key!r} both map to {split!r}")
        if not isinstance(value, Mapping):
            raise DataFormatError(f"{path}: split {key!r} is a {type(value).__name__}, "
                                  f"expected a dict of arrays")
        out[split] = (str(key), value)
    missing = [s for s in ("train", "dev") if s not in out]
    if missing:
        raise DataFormatError(f"{path}: no {' / '.join(missing)} split "
                              f"(top-level keys {sorted(map(str, data))})")
    return out


def split_array(path: Path, key: str, split: Mapping[str, Any], name: str, *, ndim: int | None = None,
                n: int | None = None) -> np.ndarray:
    """``split[name]`` as an array, checked for its number of dimensions and rows.

    Raises:
        DataFormatError: the key is missing, or has the wrong ``ndim`` or row count.
    """
    if name not in split:
        raise DataFormatError(f"{path}: split {key!r} has no {name!r} (keys {sorted(map(str, split))})")
    value = split[name]
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if ndim is not None and array.ndim != ndim:
        raise DataFormatError(f"{path}: split {key!r} key {name!r} has shape {list(array.shape)}, "
                              f"expected {ndim} dimensions")
    if n is not None and (array.ndim == 0 or array.shape[0] != n):
        raise DataFormatError(f"{path}: split {key!r} key {name!r} has {array.shape[0] if array.ndim else 0} "
                              f"rows, expected {n}")
    return array


def zero_neg_inf(array: np.ndarray) -> tuple[np.ndarray, int]:
    """``array`` as float32 with ``-inf`` replaced by 0, and how many were replaced.

    A writable float32 array (what a loaded pickle holds) is changed in place, sparing a copy of
    a multi-GB matrix; anything else is converted first.
    """
    out = array if array.dtype == np.float32 and array.flags.writeable else np.array(array, dtype=np.float32)
    count = 0
    for start in range(0, out.shape[0], _SCAN_CHUNK):
        block = out[start:start + _SCAN_CHUNK]
        neg = np.isneginf(block)
        count += int(neg.sum())
        block[neg] = 0.0
    return out, count


def check_finite(path: Path, key: str, name: str, array: np.ndarray, ids: Sequence[str]) -> None:
    """Raise `DataFormatError` naming the first sample of ``array`` ``[N, ...]`` with NaN/inf."""
    for start in range(0, array.shape[0], _SCAN_CHUNK):
        block = array[start:start + _SCAN_CHUNK]
        bad = ~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1)
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{path}: split {key!r} key {name!r} row {row} (id {ids[row]!r}) "
                                  f"has NaN or inf values")


def as_strings(values: np.ndarray | Sequence[Any]) -> list[str]:
    """Decode bytes as UTF-8 and stringify everything else."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def rank_positions(dialogue_ids: Sequence[str], parts: Sequence[str]) -> list[int]:
    """Rank of each ``parts[i]`` among the parts of its dialogue (numeric when all are digits)."""
    numeric = all(p.isdigit() for p in parts)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(dialogue_ids):
        groups.setdefault(d, []).append(i)
    out = [-1] * len(parts)
    for rows in groups.values():
        for rank, i in enumerate(sorted(rows, key=lambda r: (int(parts[r]) if numeric else 0, parts[r]))):
            out[i] = rank
    return out


@dataclass
class SplitRows:
    """One split ready for the store: ids, labels, per-feature rows and meta, plus counters."""

    ids: list[str]
    labels: np.ndarray
    rows: dict[str, list[np.ndarray | None]]
    dialogue_ids: list[str]
    positions: list[int]
    counts: dict[str, Any] = field(default_factory=dict)


def write_split_rows(out_file: Path, space: LabelSpace, specs: Mapping[str, FeatureSpec],
                     source: Mapping[str, Any], data: SplitRows) -> Path:
    """Write ``data`` into the store split ``out_file`` in chunks (atomic: nothing on failure)."""
    with StoreWriter(out_file, label_space=space, features=specs, source=source) as writer:
        for start in range(0, len(data.ids), _WRITE_CHUNK):
            part = slice(start, start + _WRITE_CHUNK)
            writer.append(data.ids[part], data.labels[part], {k: v[part] for k, v in data.rows.items()},
                          dialogue_ids=data.dialogue_ids[part], positions=data.positions[part])
    return out_file


def trim_rows(array: np.ndarray, lengths: np.ndarray) -> list[np.ndarray | None]:
    """Rows ``array[i, :lengths[i]]`` of ``[N, L, D]``; ``None`` where the length is 0."""
    return [array[i, : int(t)] if t > 0 else None for i, t in enumerate(lengths)]


class SplitPickleSource(DatasetSource):
    """A source read from one pickle holding the three splits (MMSA and MulT layouts)."""

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The pickle."""
        assert root is not None
        return [find_pickle(root)]

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """train, dev and test (every published MMSA and MulT pickle has the three)."""
        return ["train", "dev", "test"]
