"""Reading CMU-MultimodalSDK computational sequences (``.csd``, formats.md §6): structure and entries.

A ``.csd`` file is HDF5 with one top-level group (the root name; like the SDK, the FIRST key is
taken) holding ``data/<video id>/features`` ``(n, d)`` and ``intervals`` ``(n, 2)`` (seconds), and
``metadata/<key>`` (JSON-encoded strings; a value that is not JSON is kept as the raw string).
Every malformed file is a `scenesense.data.validation.DataFormatError` naming it. The
``csd`` dataset built on these readers is `scenesense.datasets.csd`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scenesense.data.validation import DataFormatError


def normalise(name: str) -> str:
    """Lowercase alphanumerics of a name (``CMU_MOSI_Visual_Facet_42`` -> ``cmumosivisualfacet42``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class CsdFile:
    """Structure of one ``.csd`` file (no feature data loaded).

    Fields: ``path``; ``root`` (top-level group name); ``numeric`` (False for byte-string
    features); ``dim`` (``d``); ``entries`` (entry ids in file order); ``metadata`` (decoded
    values); ``not_json`` (metadata keys whose value is not JSON); ``groups`` (top-level keys).
    """

    path: Path
    root: str
    numeric: bool
    dim: int
    entries: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    not_json: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def names(self) -> tuple[str, str]:
        """The normalised stem and root name."""
        return normalise(self.path.stem), normalise(self.root)


def open_csd(path: Path) -> h5py.File:
    """Open a ``.csd`` file for reading.

    Raises:
        DataFormatError: not a readable HDF5 file.
    """
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({err})") from None


def _metadata_value(dataset: h5py.Dataset) -> str:
    value = dataset[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_csd(path: Path) -> CsdFile:
    """Read the structure of a computational sequence.

    Raises:
        DataFormatError: not HDF5, no top-level group, no ``data`` / ``metadata``, no entries, or
            a first entry that breaks the SDK's invariants.
    """
    with open_csd(path) as f:
        groups = list(f.keys())
        if not groups or not isinstance(f[groups[0]], h5py.Group):
            raise DataFormatError(f"{path}: no top-level group (a computational sequence has exactly one)")
        root = f[groups[0]]
        missing = [k for k in ("data", "metadata") if k not in root]
        if missing:
            raise DataFormatError(f"{path}: group {groups[0]!r} has no {' / '.join(missing)}")
        entries = list(root["data"].keys())
        if not entries:
            raise DataFormatError(f"{path}: group {groups[0]!r} has no entries under data/")
        features = root["data"][entries[0]].get("features")
        if features is None or features.ndim < 2:
            raise DataFormatError(f"{path}: data/{entries[0]}/features is missing or not (n, d)")
        metadata, not_json = {}, []
        for key, dataset in root["metadata"].items():
            raw = _metadata_value(dataset)
            try:
                metadata[key] = json.loads(raw)
            except json.JSONDecodeError:
                metadata[key], _ = raw, not_json.append(key)
        numeric = features.dtype.kind in "fiu"
        return CsdFile(path, groups[0], numeric, int(features.shape[1]), entries, metadata, not_json, groups)


def read_entry(csd: CsdFile, handle: h5py.File, entry: str) -> tuple[np.ndarray, np.ndarray]:
    """``features`` ``(n, d)`` float32 and ``intervals`` ``(n, 2)`` float64 of one entry.

    Raises:
        DataFormatError: a missing dataset, ``intervals`` not ``(n, 2)``, features not ``(n, d)``
            with the file's ``d``, or unequal first dims (one line naming file and entry).
    """
    group = handle[csd.root]["data"].get(entry)
    where = f"{csd.path}: data/{entry}"
    if group is None or "features" not in group or "intervals" not in group:
        raise DataFormatError(f"{where}: missing features or intervals")
    features, intervals = group["features"], group["intervals"]
    if intervals.ndim != 2 or intervals.shape[1] != 2:
        raise DataFormatError(f"{where}/intervals has shape {list(intervals.shape)}, expected (n, 2)")
    if features.ndim != 2 or features.shape[1] != csd.dim:
        raise DataFormatError(f"{where}/features has shape {list(features.shape)}, expected (n, {csd.dim})")
    if features.shape[0] != intervals.shape[0]:
        raise DataFormatError(f"{where}: features has {features.shape[0]} rows but intervals "
                              f"{intervals.shape[0]}")
    return np.asarray(features[()], dtype=np.float32), np.asarray(intervals[()], dtype=np.float64)


def overlapping(intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of rows of ``intervals`` ``(n, 2)`` overlapping ``[start, end]`` (containing it if empty)."""
    if end > start:
        return np.flatnonzero((intervals[:, 0] < end) & (intervals[:, 1] > start))
    return np.flatnonzero((intervals[:, 0] <= start) & (intervals[:, 1] >= start))
