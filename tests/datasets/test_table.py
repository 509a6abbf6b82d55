"""The ``table`` source: bring-your-own CSV/NPZ/Parquet features joined to a labels CSV by id."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError
from scenesense.data.store import open_store_split
from scenesense.data.validation import DataFormatError
from scenesense.datasets.table import TableSource
from tests.datasets.fixtures_ravdess import (
    TABLE_COLUMNS,
    TABLE_COLUMNS_PARAM,
    TABLE_LABELS,
    write_feature_csv,
    write_labels,
    write_table,
)

FEATURE_ORDER = ["u6", "u4", "extra", "u1", "u2", "u5", "u3"]  # row i of features.csv holds i + j / 10


def _convert(root: Path, out: Path, **given):
    source = TableSource()
    return {s: open_store_split(p) for s, p in source.convert(root, out, source.params(given)).items()}


def _data(split, name: str) -> np.ndarray:
    with h5py.File(split.path) as f:
        return f[f"features/{name}/data"][:]


def _row(key: str) -> np.ndarray:
    return FEATURE_ORDER.index(key) + np.arange(len(TABLE_COLUMNS)) / 10


def _error(call, *needles: str) -> str:
    with pytest.raises(DataFormatError) as err:
        call()
    assert "\n" not in str(err.value) and all(n in str(err.value) for n in needles), str(err.value)
    return str(err.value)


def test_default_is_one_audio_set_of_every_column_joined_by_id(tmp_path):
    stores = _convert(write_table(tmp_path / "t"), tmp_path / "out")
    train = stores["train"]
    assert train.ids == ("u1", "u2", "u3", "u4") and list(train.features) == ["audio"]
    assert train.features["audio"].dim == len(TABLE_COLUMNS)
    np.testing.assert_allclose(_data(train, "audio"), [_row(k) for k in train.ids], rtol=1e-6)
    assert train.source["extra_feature_rows_ignored"] == 1


def test_columns_prefixes_make_one_set_per_modality_and_ignore_the_rest(tmp_path):
    train = _convert(write_table(tmp_path / "t"), tmp_path / "out", columns=TABLE_COLUMNS_PARAM)["train"]
    assert {n: (f.modality, f.dim) for n, f in train.features.items()} == {
        "audio": ("audio", 3), "text": ("text", 2), "vision": ("vision", 2)}
    np.testing.assert_allclose(_data(train, "text")[0], _row("u1")[5:7], rtol=1e-6)
    assert train.features["vision"].provenance["columns"] == ["AU01_r", "AU02_r"]
    assert train.source["ignored_columns"] == ["note_0"]


def test_labels_metadata_and_label_space(tmp_path):
    stores = _convert(write_table(tmp_path / "t"), tmp_path / "out", modality="vision")
    train, dev = stores["train"], stores["dev"]
    assert train.label_space.names == ("neg", "neu", "pos") == dev.label_space.names  # sorted unique, shared
    assert train.labels.tolist() == [2, 0, 1, 2] and dev.labels.tolist() == [0, 2]
    assert train.dialogue_ids == ("d1", "d1", "d2", "d2") and dev.speakers == ("Dee", "Ed")
    assert train.features["vision"].modality == "vision"


def test_explicit_label_names_fix_the_order_and_refuse_others(tmp_path):
    root = write_table(tmp_path / "t")
    train = _convert(root, tmp_path / "o1", label_names=["pos", "neu", "neg"])["train"]
    assert train.labels.tolist() == [0, 2, 1, 0] and train.source["label_names_from"] == "params"
    _error(lambda: _convert(root, tmp_path / "o2", label_names=["pos", "neg"]), "labels.csv", "'u3'", "'neu'")


def test_integer_labels_sort_numerically(tmp_path):
    root = write_table(tmp_path / "t")
    write_labels(root / "labels.csv", [("u1", 10, "train"), ("u2", 2, "train"), ("u5", 1, "dev")])
    assert _convert(root, tmp_path / "out")["train"].label_space.names == ("1", "2", "10")


def test_regression_targets(tmp_path):
    root = write_table(tmp_path / "t")
    write_labels(root / "labels.csv", [("u1", 0.5, "train"), ("u2", -1.25, "train"), ("u5", 3, "dev")])
    train = _convert(root, tmp_path / "out", task="regression", label_names=["valence"])["train"]
    assert train.label_space.task == "regression" and train.label_space.names == ("valence",)
    np.testing.assert_allclose(train.labels, [0.5, -1.25])
    write_labels(root / "labels.csv", [("u1", "high", "train"), ("u5", 3, "dev")])
    _error(lambda: _convert(root, tmp_path / "o2", task="regression"), "'u1'", "'high'")


def test_labelled_ids_without_features_list_the_first_missing(tmp_path):
    root = write_table(tmp_path / "t")
    missing = [(f"m{i}", "pos", "dev") for i in range(7)]
    write_labels(root / "labels.csv", [*(r[:3] for r in TABLE_LABELS), *missing])
    message = _error(lambda: _convert(root, tmp_path / "out"), "features.csv", "7 labelled id(s)")
    assert "['m0', 'm1', 'm2', 'm3', 'm4']" in message and "m5" not in message


@pytest.mark.parametrize(("text", "needle"), [
    ("n/a", "is not a number ('n/a')"), ("", "is not a number ('')"), ("nan", "is nan"), ("-inf", "is -inf")])
def test_bad_cells_name_file_id_and_column(tmp_path, text, needle):
    root = write_table(tmp_path / "t")
    write_feature_csv(root / "features.csv", FEATURE_ORDER, bad=("u5", "mfcc_1", text))
    _error(lambda: _convert(root, tmp_path / "out"), "features.csv", "id 'u5'", "column 'mfcc_1'", needle)


def test_bad_cell_in_an_unlabelled_row_is_ignored(tmp_path):
    root = write_table(tmp_path / "t")
    write_feature_csv(root / "features.csv", FEATURE_ORDER, bad=("extra", "mfcc_1", "n/a"))
    assert _convert(root, tmp_path / "out")["train"].n == 4


def test_custom_id_column_and_absolute_paths(tmp_path):
    features = write_feature_csv(tmp_path / "elsewhere" / "feats.csv", FEATURE_ORDER, id_column="utt")
    labels = write_labels(tmp_path / "lab.csv", [r[:3] for r in TABLE_LABELS], ("utt", "label", "split"))
    stores = _convert(tmp_path, tmp_path / "out", features=str(features), labels=str(labels), id_column="utt")
    assert stores["dev"].ids == ("u5", "u6")
    params = TableSource().params({"features": str(features), "labels": str(labels), "id_column": "utt"})
    assert TableSource().inputs(tmp_path, params) == [features, labels]


def test_duplicate_ids_and_missing_id_column_are_errors(tmp_path):
    root = write_table(tmp_path / "t")
    write_feature_csv(root / "features.csv", [*FEATURE_ORDER, "u2"])
    _error(lambda: _convert(root, tmp_path / "o1"), "features.csv", "duplicate id 'u2'")
    _error(lambda: _convert(root, tmp_path / "o2", id_column="key"), "labels.csv",
           "missing column(s) ['key']")


def test_npz_layout_one_feature_set_per_array(tmp_path):
    root = write_table(tmp_path / "t")
    (root / "features.csv").unlink()
    ids = np.array(["u3", "u1", "u2", "u4", "u5", "u6", "zz"])
    np.savez(root / "features.npz", ids=ids, vision=np.arange(14.0).reshape(7, 2),
             mfcc=np.ones((7, 3)) * np.arange(7)[:, None], extra_scalar=np.arange(7))
    train = _convert(root, tmp_path / "out")["train"]  # features.npz found by name
    assert {n: (f.modality, f.dim) for n, f in train.features.items()} == {
        "vision": ("vision", 2), "mfcc": ("audio", 3), "extra_scalar": ("audio", 1)}
    np.testing.assert_allclose(_data(train, "vision")[0], [2, 3])  # u1 is row 1
    mapped = _convert(root, tmp_path / "o2", columns={"audio": ["mfcc"]})["train"]
    assert list(mapped.features) == ["mfcc"] and mapped.source["ignored_columns"][0] == "vision[0]"


def test_npz_nan_and_object_arrays_are_errors(tmp_path):
    root = write_table(tmp_path / "t")
    write_labels(root / "labels.csv", [("u1", "pos", "train"), ("u5", "neg", "dev")])
    features = np.ones((2, 2))
    features[1, 1] = np.nan
    np.savez(tmp_path / "f.npz", ids=np.array(["u1", "u5"]), audio=features)
    _error(lambda: _convert(root, tmp_path / "o1", features=str(tmp_path / "f.npz")), "f.npz", "'u5'",
           "'audio[1]'")
    np.savez(tmp_path / "g.npz", ids=np.array(["u1", None], dtype=object), audio=features)
    _error(lambda: _convert(root, tmp_path / "o2", features=str(tmp_path / "g.npz")), "g.npz",
           "Python objects")


def test_parquet_without_pyarrow_says_to_install_it(tmp_path, monkeypatch):
    root = write_table(tmp_path / "t")
    (root / "f.parquet").write_bytes(b"PAR1")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install pandas pyarrow"):
        _convert(root, tmp_path / "out", features="f.parquet")


def test_parquet_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    root = write_table(tmp_path / "t")
    pd.read_csv(root / "features.csv").to_parquet(root / "f.parquet")
    train = _convert(root, tmp_path / "out", features="f.parquet")["train"]
    np.testing.assert_allclose(_data(train, "audio"), [_row(k) for k in train.ids], rtol=1e-6)


@pytest.mark.parametrize("given", [{"modality": "video"}, {"task": "ranking"}, {"columns": {"face": ["AU"]}},
                                   {"columns": ["AU"]}, {"label_names": "pos"}])
def test_bad_params_are_config_errors(given):
    with pytest.raises(ConfigError):
        TableSource().params(given)


def test_a_column_matching_two_modalities_or_none_is_a_config_error(tmp_path):
    root = write_table(tmp_path / "t")
    with pytest.raises(ConfigError, match="matches the prefixes"):
        _convert(root, tmp_path / "o1", columns={"audio": ["mfcc"], "vision": ["mf"]})
    with pytest.raises(ConfigError, match="starts with"):
        _convert(root, tmp_path / "o2", columns={"audio": ["mfcc"], "text": ["bert"]})


def test_features_file_must_be_named_when_not_found(tmp_path):
    root = write_table(tmp_path / "t")
    (root / "features.csv").rename(root / "mine.csv")
    with pytest.raises(ConfigError, match="set data.params.features"):
        TableSource().splits(root, TableSource().params({}))
    assert TableSource().splits(root, TableSource().params({"features": "mine.csv"})) == ["train", "dev"]
