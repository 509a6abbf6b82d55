"""What a feature store holds (``scenesense data inspect``): counts, labels, shapes, gaps, bad values."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scenesense.data.store import StoreSplit, find_store_splits, open_store_split

_ROWS_PER_READ = 256  # rows scanned at a time for NaN/inf, so memory stays bounded


def _labels(split: StoreSplit) -> dict[str, Any]:
    if split.label_space.is_classification:
        counts = Counter(int(v) for v in split.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(split.label_space.names)}
    values = split.labels.astype(np.float64)
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}


def _feature(group: h5py.Group, present: np.ndarray) -> dict[str, Any]:
    data = group["data"]
    nonfinite = 0
    for start in range(0, data.shape[0], _ROWS_PER_READ):
        block = data[start:start + _ROWS_PER_READ]
        nonfinite += int(np.count_nonzero(~np.isfinite(block)))
    out: dict[str, Any] = {"modality": str(group.attrs["modality"]), "kind": str(group.attrs["kind"]),
                           "dim": int(group.attrs["dim"]), "shape": list(data.shape),
                           "missing": int((~present).sum()), "nonfinite_values": nonfinite}
    if "lengths" in group:
        lengths = group["lengths"][:][present]
        if lengths.size:
            out["lengths"] = {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 2),
                              "max": int(lengths.max())}
    return out


def inspect_split(path: str | Path) -> dict[str, Any]:
    """Facts about one split file.

    Returns:
        ``{"n", "task", "labels" (histogram, or min/mean/max for regression), "dialogues",
        "speakers", "features": {name: {modality, kind, dim, shape, missing, nonfinite_values,
        lengths}}, "source", "created_by"}``.

    Raises:
        StoreError: the file is not a complete store split.
    """
    split = open_store_split(path)
    features = {}
    with h5py.File(split.path, "r") as f:
        for name in split.features:
            group = f["features"][name]
            features[name] = _feature(group, group["present"][:].astype(bool))
    return {
        "n": split.n, "task": split.label_space.task, "labels": _labels(split),
        "dialogues": len({d for d in split.dialogue_ids if d}), "speakers": len({s for s in split.speakers if s}),
        "features": features, "source": split.source, "created_by": split.created_by,
    }


def inspect_store(root: str | Path) -> dict[str, Any]:
    """`inspect_split` for every ``<split>.h5`` in a store folder (or one split file).

    Raises:
        StoreError: a split file is invalid; FileNotFoundError: no such path or no split files.
    """
    root = Path(root)
    if root.is_file():
        return {"store": str(root.parent), "splits": {root.stem: inspect_split(root)}}
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such store folder")
    splits = find_store_splits(root)
    if not splits:
        raise FileNotFoundError(f"{root}: no <split>.h5 files")
    return {"store": str(root), "splits": {name: inspect_split(p) for name, p in sorted(splits.items())}}


def format_inspection(info: dict[str, Any]) -> str:
    """Human-readable lines for `inspect_store`'s result."""
    lines = [f"store {info['store']}"]
    for name, s in info["splits"].items():
        lines.append(f"{name}: {s['n']} samples, {s['dialogues']} dialogues, {s['speakers']} speakers; "
                     f"{s['task']} labels {s['labels']}")
        for fname, feat in s["features"].items():
            extra = f", lengths {feat['lengths']}" if "lengths" in feat else ""
            lines.append(f"  {fname} [{feat['modality']}, {feat['kind']}] shape {tuple(feat['shape'])}, "
                         f"missing {feat['missing']}, NaN/inf values {feat['nonfinite_values']}{extra}")
    return "\n".join(lines)
