"""Atomic writes, stale temporary files, folder locks, the link-following walk, full-precision JSON
and seeding."""

from __future__ import annotations

import json
import os
import random
import time

import numpy as np
import pytest
import torch

from scenesense.utils.io import (
    STALE_TEMP_SECONDS,
    FolderInUseError,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    folder_lock,
    remove_stale_temps,
    walk_files,
    write_json,
)
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


def _temp(folder, name, age_s):
    """A leftover temporary file ``name`` last written ``age_s`` seconds ago."""
    path = folder / name
    path.write_bytes(b"half a file")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_a_write_removes_the_stale_temps_of_killed_writes_of_the_same_file(tmp_path):
    old = _temp(tmp_path, ".metrics.json.k1ll3d.tmp", 2 * STALE_TEMP_SECONDS)
    live = _temp(tmp_path, ".metrics.json.w0rk1n.tmp", 10)  # a concurrent writer, still writing
    other = _temp(tmp_path, ".last.pt.k1ll3d.tmp", 2 * STALE_TEMP_SECONDS)  # cleaned by its own write
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert not old.exists() and live.exists() and other.exists()
    atomic_torch_save({"w": torch.ones(1)}, tmp_path / "last.pt")
    assert not other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".metrics.json.w0rk1n.tmp", "last.pt", "metrics.json"]


def test_remove_stale_temps_takes_only_old_matching_files(tmp_path):
    old = _temp(tmp_path, ".a.h5.x.tmp", 100)
    young = _temp(tmp_path, ".a.h5.y.tmp", 1)
    unrelated = _temp(tmp_path, "a.h5", 100)
    special = _temp(tmp_path, ".a[1].h5.z.tmp", 100)  # glob characters in the name are literal
    assert remove_stale_temps(tmp_path, ".a.h5.", older_than=50) == [old]
    assert young.exists() and unrelated.exists() and special.exists()
    assert remove_stale_temps(tmp_path, ".a[1].h5.", older_than=50) == [special]
    assert remove_stale_temps(tmp_path / "missing", ".a.h5.") == []


def test_folder_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    folder = tmp_path / "run"
    with folder_lock(folder) as lock_file:
        assert lock_file == folder / ".scenesense.lock" and lock_file.exists()
        busy = folder_lock(folder)
        with pytest.raises(FolderInUseError, match=r"run is in use by another scenesense process \(lock file "):
            busy.__enter__()
    with folder_lock(folder):  # free again
        pass


def test_walk_files_follows_links_to_folders_once_and_never_loops(tmp_path):
    data = tmp_path / "elsewhere" / "Actor_01"
    data.mkdir(parents=True)
    (data / "a.wav").write_bytes(b"x")
    (data / "loop").symlink_to(data, target_is_directory=True)  # a link back up: must not loop
    root = tmp_path / "tree"
    root.mkdir()
    (root / "Actor_01").symlink_to(data, target_is_directory=True)
    (root / "again").symlink_to(data, target_is_directory=True)  # the same folder twice: listed once
    (root / "b.wav").write_bytes(b"y")
    (root / "dangling").symlink_to(tmp_path / "nothing")
    found = [p.relative_to(root).as_posix() for p in walk_files(root)]
    assert found == ["b.wav", "dangling", "Actor_01/a.wav"]
