"""Writers of tiny MulT pickles in the published layout (formats.md §5), and the ``mult`` contract fixture.

Layout reproduced: top level ``{train, valid, test}``; per split ``text`` (N, L, 300), ``audio``
(MOSI: 5 dims; with ``-inf``), ``vision`` (MOSI: 20 dims), ``labels`` (N, 1, 1) float sentiment or
IEMOCAP's (N, 4, 2) one-hot per emotion, and MOSI's ``id`` (N, 3) as bytes. No lengths: rows are
zero padded to L; the fixtures pad even rows at the START and odd rows at the END, and the true
span of row ``i`` (``spans[i]``) is returned so tests can check the trimming.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

MOSI_DIMS = {"text": 300, "audio": 5, "vision": 20}
IEMOCAP_DIMS = {"text": 300, "audio": 74, "vision": 35}


def padded(rng: np.random.Generator, n: int, steps: int, dim: int
           ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``(N, steps, dim)`` float32 with even rows padded at the start and odd rows at the end."""
    out = np.zeros((n, steps, dim), dtype=np.float32)
    spans = []
    for i in range(n):
        t = int(rng.integers(2, steps))
        start = steps - t if i % 2 == 0 else 0
        out[i, start:start + t] = rng.normal(size=(t, dim)) + 0.5  # never exactly 0
        spans.append((start, start + t))
    return out, spans


def mult_split(n: int, *, seed: int, steps: dict[str, int], dims: dict[str, int], iemocap: bool = False,
               ids: bool = True) -> tuple[dict[str, Any], dict[str, list[tuple[int, int]]]]:
    """One split dict and the true span of every row per modality."""
    rng = np.random.default_rng(seed)
    split: dict[str, Any] = {}
    spans = {}
    for m in ("text", "audio", "vision"):
        split[m], spans[m] = padded(rng, n, steps[m], dims[m])
    for i in range(min(n, 2)):  # COVAREP -inf frames inside the true span
        split["audio"][i, spans["audio"][i][0], 0] = -np.inf
    if iemocap:
        present = np.zeros((n, 4), dtype=int)
        present[np.arange(n), np.arange(n) % 4] = 1
        present[0] = 0  # no emotion present: dropped
        if n > 1:
            present[1, :2] = 1  # two emotions present: dropped
        split["labels"] = np.stack([1 - present, present], axis=2).astype(np.float32)  # (N, 4, 2)
    else:
        split["labels"] = np.round(rng.uniform(-3, 3, size=(n, 1, 1)), 1).astype(np.float32)
    if ids:
        split["id"] = np.array([[f"vid{seed}", str(i), f"{i * 1.5:.1f}"] for i in range(n)], dtype=bytes)
    return split, spans


def write_mult(path: Path, splits: dict[str, dict[str, Any]]) -> Path:
    """Pickle ``splits`` (keys train / valid / test) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(splits, f, protocol=4)
    return path


def mult_file(folder: Path, name: str = "mosi", *, aligned: bool = True,
              sizes: tuple[int, int, int] = (8, 4, 4),
              ids: bool = True) -> tuple[Path, dict[str, dict[str, list[tuple[int, int]]]]]:
    """``{name}_data[_noalign].pkl`` (MOSI: L=50 or 50/375/500; IEMOCAP: L=20 or 20/400/500)."""
    iemocap = name == "iemocap"
    dims = IEMOCAP_DIMS if iemocap else MOSI_DIMS
    lengths = (20, 400, 500) if iemocap else (50, 375, 500)
    steps = dict(zip(("text", "audio", "vision"), (lengths[0],) * 3 if aligned else lengths, strict=True))
    splits, spans = {}, {}
    for seed, (key, n) in enumerate(zip(("train", "valid", "test"), sizes, strict=True)):
        splits[key], spans[key] = mult_split(n, seed=seed, steps=steps, dims=dims, iemocap=iemocap, ids=ids)
    path = write_mult(folder / f"{name}_data{'' if aligned else '_noalign'}.pkl", splits)
    return path, spans


def _build(tmp_path: Path):
    root = tmp_path / "mult"
    mult_file(root, "iemocap", aligned=False)  # emotion4 classes; MOSI regression is trained in test_mult.py
    return root, {}


def _corrupt(root: Path) -> str:
    from scenesense.data.safe_pickle import load_pickle

    path = root / "iemocap_data_noalign.pkl"
    data = load_pickle(path)
    del data["valid"]["labels"]
    write_mult(path, data)
    return path.name


FIXTURES: dict[str, dict[str, Any]] = {
    "mult": {"build": _build, "corrupt": _corrupt, "modalities": ("audio", "text", "vision")},
}
