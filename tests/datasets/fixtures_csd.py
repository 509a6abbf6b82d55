"""Writers of tiny CMU-MultimodalSDK computational sequences (formats.md §6); the ``csd`` contract fixture.

Layout reproduced (as the SDK writes it): one top-level group named by the root name, ``data/<video
id>/{features (n, d), intervals (n, 2)}`` gzip level 9, ``metadata/<key>`` shape (1,) variable-length
strings holding JSON (the SDK's template keys, including its run-together "dimension
namescomputational sequence version", plus uuid and md5), with one value written raw (not JSON).
A word-token file (byte strings (n, 1)) sits beside the numeric ones.

MOSI-like folder (``mosi_folder``), videos and label segments (seconds)::

    vidA   [0, 2] [2, 5] [5, 6.5]     vidB  [0, 3] [3, 4]       81406  [0, 1.5] [1.5, 4]
    vidC   [0, 2] [2, 4]              vidD  [0, 2.5]            vidE   [0, 2]  (no COVAREP entry)

Word vectors every 0.5 s (one "sp" zero vector per video), COVAREP 74-d at 20 Hz with ``-inf`` at
vidA's first frame, FACET 35-d at 10 Hz; vidB's vision stops at 3.0 s, so segment vidB[1] has no
vision rows. vidB[1] is labelled exactly 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SEGMENTS: dict[str, list[tuple[float, float]]] = {
    "vidA": [(0.0, 2.0), (2.0, 5.0), (5.0, 6.5)], "vidB": [(0.0, 3.0), (3.0, 4.0)],
    "81406": [(0.0, 1.5), (1.5, 4.0)], "vidC": [(0.0, 2.0), (2.0, 4.0)], "vidD": [(0.0, 2.5)],
    "vidE": [(0.0, 2.0)],
}
SPLITS = {"train": ["vidA", "vidB", "81406"], "valid": ["vidC"], "test": ["vidD", "vidE"]}
RAW_METADATA_KEY = "creator"  # written without JSON encoding


def sdk_metadata(root: str, dim_names: list[str]) -> dict[str, Any]:
    """The SDK's metadata template values (JSON-able)."""
    return {"root name": root, "computational sequence description": f"{root} features",
            "dimension namescomputational sequence version": dim_names, "alignment compatible": True,
            "dataset name": "CMU-MOSI", "dataset version": "1.0", "contact": "nobody@example.org",
            "featureset bib citation": "@misc{x}", "dataset bib citation": "@misc{y}",
            "uuid": "0b0c2f2e-0000-4000-8000-000000000000", "md5": None}


def write_csd(path: Path, root: str, entries: dict[str, tuple[np.ndarray, np.ndarray]],
              metadata: dict[str, Any], raw: dict[str, str] | None = None) -> Path:
    """Write a computational sequence the way the SDK does (gzip 9, metadata as JSON strings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        group = f.create_group(root)
        data = group.create_group("data")
        for vid, (features, intervals) in entries.items():
            entry = data.create_group(vid)
            entry.create_dataset("features", data=features, compression="gzip", compression_opts=9)
            entry.create_dataset("intervals", data=intervals, compression="gzip", compression_opts=9)
        meta = group.create_group("metadata")
        for key, value in {**{k: json.dumps(v) for k, v in metadata.items()}, **(raw or {})}.items():
            meta.create_dataset(key, (1,), dtype=h5py.string_dtype("utf-8"))[0] = value
    return path


def _grid(end: float, rate: int) -> np.ndarray:
    """``(n, 2)`` intervals ``[i / rate, (i + 1) / rate]`` up to ``end`` (exact at whole seconds)."""
    steps = np.arange(int(round(end * rate)))
    return np.stack([steps / rate, (steps + 1) / rate], axis=1)


def mosi_folder(folder: Path, *, seed: int = 0) -> Path:
    """Write the MOSI-like folder described in the module docstring; returns it."""
    rng = np.random.default_rng(seed)
    words, vectors, covarep, facet, labels = {}, {}, {}, {}, {}
    for vid, segs in SEGMENTS.items():
        end = segs[-1][1]
        w = _grid(end, 2)
        tokens = np.array([[b"sp"] if i == 1 else [f"w{i}".encode()] for i in range(len(w))])
        words[vid] = (tokens, w)
        vec = rng.normal(size=(len(w), 300)).astype(np.float32)
        vec[1] = 0.0  # "sp" has a zero vector
        vectors[vid] = (vec, w)
        if vid != "vidE":
            a = _grid(end, 20)
            feats = rng.normal(size=(len(a), 74)).astype(np.float32)
            if vid == "vidA":
                feats[0, 3] = -np.inf
            covarep[vid] = (feats, a)
        v = _grid(3.0 if vid == "vidB" else end, 10)
        facet[vid] = (rng.normal(size=(len(v), 35)).astype(np.float32), v)
        scores = np.round(rng.uniform(-3, 3, size=(len(segs), 1)), 1)
        if vid == "vidB":
            scores[1] = 0.0
        labels[vid] = (scores, np.array(segs))
    write_csd(folder / "CMU_MOSI_TimestampedWords.csd", "CMU_MOSI_TimestampedWords", words,
              sdk_metadata("CMU_MOSI_TimestampedWords", ["word"]))
    write_csd(folder / "CMU_MOSI_TimestampedWordVectors.csd", "CMU_MOSI_TimestampedWordVectors", vectors,
              sdk_metadata("CMU_MOSI_TimestampedWordVectors", [f"g{i}" for i in range(300)]))
    write_csd(folder / "CMU_MOSI_COVAREP.csd", "CMU_MOSI_COVAREP", covarep,
              sdk_metadata("CMU_MOSI_COVAREP", [f"c{i}" for i in range(74)]))
    write_csd(folder / "CMU_MOSI_Visual_Facet_42.csd", "CMU_MOSI_Visual_Facet_42", facet,
              sdk_metadata("CMU_MOSI_Visual_Facet_42", [f"f{i}" for i in range(35)]))
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "CMU_MOSI_Opinion_Labels", labels,
              sdk_metadata("CMU_MOSI_Opinion_Labels", ["sentiment"]),
              raw={RAW_METADATA_KEY: "A. Zadeh (raw)"})
    return folder


def _build(tmp_path: Path):
    root = mosi_folder(tmp_path / "csd")
    return root, {"splits": SPLITS, "label": "sentiment7"}  # regression is trained in test_csd.py


def _corrupt(root: Path) -> str:
    path = root / "CMU_MOSI_COVAREP.csd"
    with h5py.File(path, "r+") as f:
        entry = f["CMU_MOSI_COVAREP/data/vidA"]
        n = entry["intervals"].shape[0]
        del entry["intervals"]
        entry.create_dataset("intervals", data=np.zeros((n, 3)))  # (n, 3): breaks the (n, 2) invariant
    return path.name


FIXTURES: dict[str, dict[str, Any]] = {
    "csd": {"build": _build, "corrupt": _corrupt, "modalities": ("audio", "text", "vision")},
}
