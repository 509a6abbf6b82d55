from __future__ import annotations

import h5py
import numpy as np
import pytest

from scenesense.data.inspect import format_inspection, inspect_split, inspect_store
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreError, StoreWriter


def test_inspect_counts_labels_shapes_missing_and_lengths(tiny_store):
    info = inspect_store(tiny_store)
    assert sorted(info["splits"]) == ["dev", "train"]
    train = info["splits"]["train"]
    assert train["n"] == 5 and train["task"] == "classification"
    assert train["labels"] == {"a": 2, "b": 2, "c": 1}  # labels i % 3 for i < 5
    assert train["features"]["audio"]["missing"] == 1
    assert train["features"]["audio"]["shape"] == [5, 3]
    assert train["features"]["text"]["lengths"] == {"min": 1, "mean": 2.2, "max": 4}  # 1 + i % 4
    assert train["features"]["text"]["nonfinite_values"] == 0
    text = format_inspection(info)
    assert "train: 5 samples" in text and "missing 1" in text


def test_inspect_counts_non_finite_values_the_reader_would_refuse(tiny_store):
    with h5py.File(tiny_store / "train.h5", "r+") as f:
        f["features/audio/data"][2] = [np.nan, np.inf, 1.0]
    assert inspect_split(tiny_store / "train.h5")["features"]["audio"]["nonfinite_values"] == 2


def test_inspect_regression_targets_and_one_file(tmp_path):
    path = tmp_path / "s" / "test.h5"
    with StoreWriter(path, label_space=LabelSpace(("sentiment",), "regression"),
                     features={"audio": FeatureSpec("audio", "vector", 2)}, source={}) as w:
        w.append(["u", "v"], [-1.5, 2.5], {"audio": [np.ones(2), np.zeros(2)]})
    info = inspect_store(path)
    assert info["splits"]["test"]["labels"] == {"min": -1.5, "mean": 0.5, "max": 2.5}


def test_inspect_errors(tmp_path, tiny_store):
    with pytest.raises(FileNotFoundError, match="no such store folder"):
        inspect_store(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no <split>.h5 files"):
        inspect_store(tmp_path / "empty")
    with h5py.File(tiny_store / "dev.h5", "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(StoreError):
        inspect_store(tiny_store)
