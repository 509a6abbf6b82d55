"""Read a written store split back as plain values, for the adapter tests."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np


def feature(path: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``data``, ``lengths``, ``present`` and provenance of one stored feature set."""
    with h5py.File(path, "r") as f:
        g = f["features"][name]
        return g["data"][()], g["lengths"][()], g["present"][()], json.loads(g.attrs["provenance"])


def meta(path: Path) -> dict:
    """Ids, labels, dialogue ids, positions, label names, task, feature set names and source."""
    with h5py.File(path, "r") as f:
        return {"ids": [v.decode() for v in f["meta/ids"][()]], "label": f["meta/label"][()],
                "dialogue": [v.decode() for v in f["meta/dialogue_id"][()]],
                "position": f["meta/position"][()],
                "names": json.loads(f.attrs["label_names"]), "task": f.attrs["task"],
                "features": sorted(f["features"]), "source": json.loads(f.attrs["source"])}
