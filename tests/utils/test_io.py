"""Atomic writes, full-precision JSON and seeding."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from scenesense.utils.io import atomic_torch_save, atomic_write_bytes, atomic_write_text, write_json
from scenesense.utils.seed import seed_everything


def test_atomic_text_and_bytes_create_parents_and_replace(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "sécond")
    assert path.read_text(encoding="utf-8") == "sécond"
    atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["b.txt", "c.bin"]  # no temp files


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "model.pt"
    atomic_torch_save({"w": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"w": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_write_json_full_precision_and_numpy_values(tmp_path):
    value = 0.1 + 0.2  # 0.30000000000000004
    write_json(tmp_path / "m.json", {"x": value, "np": np.float64(1 / 3), "arr": np.arange(3),
                                     "t": torch.tensor(2.5), "nan": float("nan"), "n": np.int64(7)})
    loaded = json.loads((tmp_path / "m.json").read_text())
    assert loaded == {"x": value, "np": 1 / 3, "arr": [0, 1, 2], "t": 2.5, "nan": None, "n": 7}


def test_seed_everything_seeds_all_generators():
    def draw() -> tuple:
        return random.random(), np.random.rand(), torch.rand(1).item()

    seeded = seed_everything(3)
    first = draw()
    assert seed_everything(3) == seeded
    assert draw() == first
    assert {"python", "numpy", "torch"} <= set(seeded)
    assert seeded["torch"] == 3
    seed_everything(4)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)
