"""Tiny runs: the ``scenesense train`` arguments of a quick model and a learnable audio store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter

TINY_MODEL_ARGS: list[str] = [
    "--set", "model.out_dim=8", "--set", "model.head_hidden_dim=8",
    "--set", "model.sequence_encoder.params.num_layers=1", "--set", "model.sequence_encoder.params.dim_feedforward=16",
    "--set", "trainer.progress=false", "--set", "trainer.batch_size=8",
]
"""``scenesense train`` arguments of a tiny, quick model (width 8, one encoder layer, batch 8, no bar)."""


def write_audio_store(root: Path) -> Path:
    """A store at ``root``: audio vectors (D=3) of classes a, b, c, 24 train and 12 dev rows, learnable."""
    rng = np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 3)}
    for split, n in (("train", 24), ("dev", 12)):
        y = np.arange(n) % 3
        x = (rng.normal(size=(n, 3)) + np.eye(3)[y]).astype(np.float32)
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("a", "b", "c")), features=specs,
                         source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(n)], y.tolist(), {"audio": list(x)})
    return root
