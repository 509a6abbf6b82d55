"""``scenesense.data.export``: a store as MMSA 2.2.1's feature pickle (formats.md §4, peers.md §1.3)."""

from __future__ import annotations

import argparse
import json
import os
import pickle

import h5py
import numpy as np
import pytest

from scenesense.cli import data as data_cli
from scenesense.data.export import MMSA_SPLITS, export_mmsa
from scenesense.datasets.mmsa import MmsaSource
from scenesense.data.labels import LabelSpace
from scenesense.data.safe_pickle import load_pickle
from scenesense.data.store import FeatureSpec, StoreError, StoreWriter, open_store_split

SPLIT_KEYS = {"text", "audio", "vision", "audio_lengths", "vision_lengths", "regression_labels",
              "classification_labels", "annotations", "id", "raw_text"}
NAMES = ("calm", "happy", "sad")


def _write_store(root, *, task="classification", test=True, with_text=True):
    """train (4 rows), dev (2), test (3): text seq D=2 (T_i = 1 + i % 3, dev up to 4), audio vector D=3,
    vision seq D=1 missing for row 1. Text row i step t = 10 i + t; audio row i = -i; vision = i + 0.5."""
    space = LabelSpace(NAMES) if task == "classification" else LabelSpace(("sentiment",), "regression")
    specs = {"audio": FeatureSpec("audio", "vector", 3),
             "vision": FeatureSpec("vision", "sequence", 1, max_len=8)}
    if with_text:
        specs["text"] = FeatureSpec("text", "sequence", 2, max_len=8)
    sizes = {"train": 4, "dev": 2, **({"test": 3} if test else {})}
    for split, n in sizes.items():
        lengths = [4, 1] if split == "dev" else [1 + i % 3 for i in range(n)]
        features = {
            "text": [np.full((t, 2), 10.0 * i, np.float32) + np.arange(t, dtype=np.float32)[:, None]
                     for i, t in enumerate(lengths)],
            "audio": [np.full(3, -float(i), np.float32) for i in range(n)],
            "vision": [None if i == 1 else np.full((2, 1), i + 0.5, np.float32) for i in range(n)],
        }
        labels = [(i * 2) % 3 for i in range(n)] if task == "classification" else [-1.5, 0.0, 2.0, 0.5][:n]
        ids = [f"{split}-{i}" for i in range(n)][::-1]  # reversed: the export must keep the store's order
        source = {"dataset": "t"}
        with StoreWriter(root / f"{split}.h5", label_space=space, features=specs, source=source) as w:
            w.append(ids, labels, {k: v for k, v in features.items() if k in specs})
    return root


@pytest.fixture
def store(tmp_path):
    return _write_store(tmp_path / "store")


def test_every_key_shape_and_dtype(store, tmp_path):
    result = export_mmsa(store, tmp_path / "out" / "x.pkl")
    data = load_pickle(result.path)  # the restricted unpickler: plain containers and numpy arrays only
    assert sorted(data) == ["test", "train", "valid"]
    t = {"text": 4, "audio": 1, "vision": 2}  # longest text row is in dev; vision stored T = 2
    for key, n in (("train", 4), ("valid", 2), ("test", 3)):
        split = data[key]
        assert set(split) == SPLIT_KEYS
        for m, d in (("text", 2), ("audio", 3), ("vision", 1)):
            assert split[m].dtype == np.float32 and split[m].shape == (n, t[m], d)
        for name in ("audio_lengths", "vision_lengths"):
            assert type(split[name]) is list and all(type(v) is int for v in split[name])
        for name in ("regression_labels", "classification_labels"):
            assert split[name].dtype == np.float32 and split[name].shape == (n,)
        for name in ("annotations", "id", "raw_text"):
            assert split[name].dtype == object and split[name].shape == (n,)
    assert result.seq_lens == t and result.feature_dims == {"audio": 3, "text": 2, "vision": 1}
    assert result.rows == {"train": 4, "valid": 2, "test": 3} and result.splits == MMSA_SPLITS
    assert result.num_classes == 3


def test_values_ids_labels_and_padding(store, tmp_path):
    data = load_pickle(export_mmsa(store, tmp_path / "x.pkl").path)
    train = data["train"]
    # rows keep the store's order (ids were appended in reverse)
    assert train["id"].tolist() == ["train-3", "train-2", "train-1", "train-0"]
    assert train["raw_text"].tolist() == ["", "", "", ""]
    # labels: class ids as floats in the key MMSA reads, names in annotations
    assert train["regression_labels"].tolist() == [0.0, 2.0, 1.0, 0.0]
    assert train["classification_labels"].tolist() == [0.0, 2.0, 1.0, 0.0]
    assert train["annotations"].tolist() == ["calm", "sad", "happy", "calm"]
    # text row 2 has T = 3: values, then zeros at the END up to T = 4
    np.testing.assert_array_equal(train["text"][2], [[20, 20], [21, 21], [22, 22], [0, 0]])
    # a vector modality is a length-1 sequence [N, 1, D]
    np.testing.assert_array_equal(train["audio"][:, 0, 0], [0, -1, -2, -3])
    assert train["audio_lengths"] == [1, 1, 1, 1]
    # vision missing for row 1: zeros, length 1 (never 0)
    np.testing.assert_array_equal(train["vision"][:, :, 0], [[0.5, 0.5], [0, 0], [2.5, 2.5], [3.5, 3.5]])
    assert train["vision_lengths"] == [2, 1, 2, 2]
    assert data["valid"]["id"].tolist() == ["dev-1", "dev-0"]


def test_regression_store_keeps_targets_and_adds_sign_classes(tmp_path):
    store = _write_store(tmp_path / "store", task="regression")
    result = export_mmsa(store, tmp_path / "x.pkl")
    train = load_pickle(result.path)["train"]
    assert train["regression_labels"].tolist() == [-1.5, 0.0, 2.0, 0.5]
    assert train["classification_labels"].tolist() == [0.0, 1.0, 2.0, 2.0]
    assert train["annotations"].tolist() == ["Negative", "Neutral", "Positive", "Positive"]
    assert result.task == "regression" and result.num_classes == 0


def test_max_len_cuts_sequences_and_lengths(store, tmp_path):
    result = export_mmsa(store, tmp_path / "x.pkl", max_len={"text": 2})
    data = load_pickle(result.path)
    assert data["valid"]["text"].shape == (2, 2, 2)
    np.testing.assert_array_equal(data["valid"]["text"][0], [[0, 0], [1, 1]])  # row 0 (T=4) keeps 2 steps
    np.testing.assert_array_equal(data["valid"]["text"][1], [[10, 10], [0, 0]])  # row 1 (T=1) is padded
    # rows longer than 2: one per split (train T=3, dev T=4, test T=3)
    assert result.seq_lens["text"] == 2 and result.truncated == {"audio": 0, "text": 3, "vision": 0}
    with pytest.raises(ValueError, match="positive int"):
        export_mmsa(store, tmp_path / "y.pkl", max_len=0)


def test_missing_modality_errors_or_zeros(tmp_path):
    store = _write_store(tmp_path / "store", with_text=False)
    with pytest.raises(StoreError, match=r"no feature set for \['text'\]"):
        export_mmsa(store, tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()
    result = export_mmsa(store, tmp_path / "x.pkl", missing="zeros")
    train = load_pickle(result.path)["train"]
    assert train["text"].shape == (4, 1, 1) and not train["text"].any()
    assert result.feature_sets["text"] is None and result.feature_dims["text"] == 1


def test_modalities_subset_exports_zeros_for_the_rest(store, tmp_path):
    result = export_mmsa(store, tmp_path / "x.pkl", modalities=["text"], missing="zeros")
    train = load_pickle(result.path)["train"]
    assert train["audio"].shape == (4, 1, 1) and train["vision"].shape == (4, 1, 1)
    assert train["text"].shape == (4, 4, 2)
    assert result.feature_sets == {"audio": None, "text": "text", "vision": None}


def test_store_without_test_split(tmp_path):
    store = _write_store(tmp_path / "store", test=False)
    with pytest.raises(StoreError, match=r"no split file\(s\) \['test.h5'\]"):
        export_mmsa(store, tmp_path / "x.pkl")
    data = load_pickle(export_mmsa(store, tmp_path / "x.pkl", splits={"test": "dev"}).path)
    assert data["test"]["id"].tolist() == data["valid"]["id"].tolist() == ["dev-1", "dev-0"]


def test_unlabelled_rows_are_refused(store, tmp_path):
    with h5py.File(store / "test.h5", "r+") as f:
        f["meta/label"][0] = -1
    with pytest.raises(StoreError, match="no label"):
        export_mmsa(store, tmp_path / "x.pkl")


def test_round_trip_through_our_mmsa_reader(store, tmp_path):
    path = export_mmsa(store, tmp_path / "x.pkl").path
    MmsaSource().convert(path, tmp_path / "back", {"label": "regression"})
    back, orig = open_store_split(tmp_path / "back" / "train.h5"), open_store_split(store / "train.h5")
    assert back.ids == orig.ids
    assert back.labels.tolist() == orig.labels.astype(np.float32).tolist()
    with h5py.File(tmp_path / "back" / "train.h5", "r") as f:
        assert f["features/text/lengths"][:].tolist() == [4, 4, 4, 4]  # no text lengths in MMSA files
        assert f["features/vision/lengths"][:].tolist() == [2, 1, 2, 2]


def test_pickle_loads_with_plain_pickle_as_mmsa_does(store, tmp_path):
    path = export_mmsa(store, tmp_path / "x.pkl").path
    with path.open("rb") as f:
        data = pickle.load(f)
    # MMSA's loader: .astype(np.float32) on features, np.array(regression_labels), lengths indexed per row
    assert np.array(data["test"]["regression_labels"]).astype(np.float32).tolist() == [0.0, 2.0, 1.0]
    assert data["test"]["audio"].astype(np.float32).shape[2] == 3


def _export_args(store, out, **extra):
    base = {"store": str(store), "format": "mmsa", "out": str(out), "split": [], "feature": [],
            "modalities": None, "max_len": [], "missing": "error", "json": True}
    return argparse.Namespace(**{**base, **extra})


def test_cli_export(store, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "export", str(store), "--format", "mmsa",
                              "--out", str(tmp_path / "x.pkl"), "--max-len", "text=3", "--split", "test=dev",
                              "--json"])
    assert args.handler(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["seq_lens"] == {"audio": 1, "text": 3, "vision": 2}
    assert info["splits"]["test"] == "dev" and info["num_classes"] == 3
    assert data_cli.run_export(_export_args(store, tmp_path / "y.pkl", json=False)) == 0
    assert "num_classes': 3" in capsys.readouterr().out
    with pytest.raises(data_cli.ConfigError, match="--max-len"):
        data_cli.run_export(_export_args(store, tmp_path / "z.pkl", max_len=["text=x"]))


def test_an_export_removes_the_stale_temp_of_a_killed_one(store, tmp_path):
    from scenesense.utils.io import STALE_TEMP_SECONDS

    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".x.pkl.k1ll3d.tmp"
    killed.write_bytes(b"\x80\x04half a pickle")
    then = killed.stat().st_mtime - 2 * STALE_TEMP_SECONDS
    os.utime(killed, (then, then))
    export_mmsa(store, out / "x.pkl")
    assert sorted(p.name for p in out.iterdir()) == ["x.pkl"]
