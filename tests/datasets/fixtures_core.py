"""Contract fixtures for the core sources: synthetic, store, meld (text through a stub extractor).

Every ``fixtures_*.py`` module in this folder defines ``FIXTURES``: source name -> dict with
``build(tmp_path) -> (root or None, params)`` writing a tiny source in its real format,
``modalities`` (every modality the family provides), optional ``corrupt(root) -> file name``
damaging the source so conversion must fail naming that file, and optional ``setup(monkeypatch)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scenesense.extraction import EXTRACTORS
from tests.support.extractors import StubTextExtractor
from tests.support.meld import MELD_ROWS, render_meld_csv


def _stub(monkeypatch) -> None:
    monkeypatch.setitem(EXTRACTORS._items, "stub", StubTextExtractor)


def _meld(tmp_path: Path):
    root = tmp_path / "meld"
    root.mkdir()
    for split in ("train", "dev"):
        (root / f"{split}_sent_emo.csv").write_bytes(render_meld_csv(MELD_ROWS))
    return root, {"extractor": "stub"}


def _meld_corrupt(root: Path) -> str:
    path = root / "dev_sent_emo.csv"
    path.write_text(path.read_text(encoding="utf-8-sig").replace("surprise", "surprised"), encoding="utf-8")
    return "dev_sent_emo.csv"


def _store(tmp_path: Path):
    from scenesense.data.labels import LabelSpace
    from scenesense.data.store import FeatureSpec, StoreWriter

    root = tmp_path / "store"
    specs = {"text": FeatureSpec("text", "sequence", 4, max_len=5), "audio": FeatureSpec("audio", "vector", 3),
             "vision": FeatureSpec("vision", "sequence", 2, max_len=6)}
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("dev", 4)):
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("a", "b")), features=specs,
                         source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(n)], [i % 2 for i in range(n)],
                     {"text": [rng.normal(size=(1 + i % 5, 4)) for i in range(n)],
                      "audio": [rng.normal(size=3) for _ in range(n)],
                      "vision": [rng.normal(size=(2 + i % 4, 2)) for i in range(n)]})
    return root, {}


def _store_corrupt(root: Path) -> str:
    import h5py

    with h5py.File(root / "dev.h5", "r+") as f:
        f.attrs["complete"] = False
    return "dev.h5"


FIXTURES: dict[str, dict[str, Any]] = {
    "synthetic": {"build": lambda tmp: (None, {"n_train": 16, "n_dev": 8, "n_test": 8, "min_len": 10,
                                               "max_len": 12}),
                  "modalities": ("audio", "text", "vision")},
    "store": {"build": _store, "corrupt": _store_corrupt, "modalities": ("audio", "text", "vision")},
    "meld": {"build": _meld, "corrupt": _meld_corrupt, "modalities": ("text",), "setup": _stub},
}
