from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from scenesense.data.labels import LabelSpace
from scenesense.data.store import (
    FORMAT,
    FeatureSpec,
    StoreError,
    StoreWriter,
    find_store_splits,
    open_store_split,
)


def _writer(path, **specs):
    specs = specs or {"text": FeatureSpec("text", "sequence", 2, max_len=4),
                      "audio": FeatureSpec("audio", "vector", 3)}
    return StoreWriter(path, label_space=LabelSpace(("x", "y")), features=specs, source={"dataset": "t"})


def test_split_file_layout(tiny_store):
    with h5py.File(tiny_store / "train.h5", "r") as f:
        assert f.attrs["format"] == FORMAT
        assert f.attrs["version"] == 1
        assert bool(f.attrs["complete"]) is True
        assert json.loads(f.attrs["label_names"]) == ["a", "b", "c"]
        assert json.loads(f.attrs["source"]) == {"dataset": "fixture", "split": "train"}
        assert f["meta/label"].dtype == np.int64
        text = f["features/text"]
        assert text["data"].shape == (5, 4, 4)  # T_max trimmed from max_len 6 to the longest row
        assert text["data"].chunks[1:] == (6, 4)  # whole rows per chunk
        assert text["lengths"][:].tolist() == [1, 2, 3, 4, 1]
        assert text.attrs["kind"] == "sequence"
        assert text.attrs["modality"] == "text"
        assert json.loads(text.attrs["provenance"]) == {"extractor": "fixture"}
        assert f["features/audio/present"][:].tolist() == [True, False, True, True, True]
    assert sorted(p.name for p in tiny_store.iterdir()) == ["dev.h5", "train.h5"]  # no temp files left


def test_open_store_split_reads_metadata(tiny_store):
    split = open_store_split(tiny_store / "train.h5")
    assert split.n == 5
    assert split.ids == ("train0", "train1", "train2", "train3", "train4")
    assert split.labels.tolist() == [0, 1, 2, 0, 1]
    assert split.dialogue_ids[:3] == ("d0", "d0", "")
    assert split.positions.tolist() == [0, 1, -1, -1, -1]
    assert split.speakers[:2] == ("Ann", "Bob")
    assert split.label_space == LabelSpace(("a", "b", "c"))
    info = split.features["text"]
    assert (info.modality, info.kind, info.dim, info.max_len) == ("text", "sequence", 4, 4)
    assert split.features["audio"].max_len is None
    assert find_store_splits(tiny_store) == {"dev": tiny_store / "dev.h5", "train": tiny_store / "train.h5"}



def test_writer_rejects_non_finite_values_naming_the_id(tmp_path):
    with pytest.raises(StoreError, match="id 'bad'.*'audio' has NaN or inf"), _writer(tmp_path / "t.h5") as w:
        w.append(["ok", "bad"], [0, 1], {"text": [np.ones((1, 2)), np.ones((1, 2))],
                                         "audio": [np.ones(3), np.array([1.0, np.inf, 0.0])]})
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone and no split file appeared


@pytest.mark.parametrize(("rows", "message"), [
    ({"text": [np.ones((1, 3))], "audio": [np.ones(3)]}, r"'text' has shape \[1, 3\], expected \[1..4, 2\]"),
    ({"text": [np.ones((5, 2))], "audio": [np.ones(3)]}, r"shape \[5, 2\]"),
    ({"text": [np.ones((0, 2))], "audio": [np.ones(3)]}, r"shape \[0, 2\]"),
    ({"text": [np.ones((1, 2))], "audio": [np.ones(4)]}, r"'audio' has shape \[4\], expected \[3\]"),
    ({"text": [np.ones((1, 2))]}, r"missing \['audio'\]"),
])
def test_writer_rejects_bad_rows(tmp_path, rows, message):
    writer = _writer(tmp_path / "t.h5")
    with pytest.raises(StoreError, match=rf"id 'u7'.*{message}" if "missing" not in message else message):
        writer.append(["u7"], [0], rows)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_duplicate_ids_and_bad_labels(tmp_path):
    rows = {"text": [np.ones((1, 2))], "audio": [np.ones(3)]}
    with _writer(tmp_path / "t.h5") as w:
        w.append(["u1"], [0], rows)
        with pytest.raises(StoreError, match=r"duplicate id\(s\) \['u1'\]"):
            w.append(["u1"], [1], rows)
        with pytest.raises(StoreError, match=r"class id 2 outside \[0, 2\)"):
            w.append(["u2"], [2], rows)
        with pytest.raises(StoreError, match="must be integers"):
            w.append(["u3"], [0.5], rows)
    assert open_store_split(tmp_path / "t.h5").ids == ("u1",)


def _crashing_extraction(path):
    with _writer(path) as w:
        w.append(["u"], [0], {"text": [np.ones((1, 2))], "audio": [np.ones(3)]})
        raise RuntimeError("extraction crashed")


def test_exception_inside_writer_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="crashed"):
        _crashing_extraction(tmp_path / "dev.h5")
    assert list(tmp_path.iterdir()) == []


def test_empty_split_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="no rows"), _writer(tmp_path / "dev.h5"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_incomplete_foreign_and_non_hdf5_files(tiny_store, tmp_path):
    path = tiny_store / "dev.h5"
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(StoreError, match=r"^dev.h5: store is incomplete \(written by a killed process\?\); "
                                         r"re-run the extraction$"):
        open_store_split(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(StoreError, match="not a scenesense store"):
        open_store_split(path)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        open_store_split(tmp_path / "junk.h5")
    with pytest.raises(StoreError, match="no such store file"):
        open_store_split(tmp_path / "absent.h5")


def test_unlabelled_rows_are_stored_as_minus_one_and_refused_by_training(tmp_path):
    import os

    from scenesense import api
    from scenesense.config import build_config

    specs = {"audio": FeatureSpec("audio", "vector", 2)}
    for split in ("train", "dev"):
        with StoreWriter(tmp_path / f"{split}.h5", label_space=LabelSpace(("a", "b")), features=specs,
                         source={"dataset": "fixture"}) as w:
            w.append(["x", "y", "z"], [0, 1, -1], {"audio": [np.ones(2), np.zeros(2), np.ones(2)]})
        with pytest.raises(StoreError, match="-1 = unlabelled"):
            StoreWriter(tmp_path / "bad.h5", label_space=LabelSpace(("a", "b")), features=specs,
                        source={}).append(["q"], [-2], {"audio": [np.ones(2)]})
    assert open_store_split(tmp_path / "dev.h5").labels.tolist() == [0, 1, -1]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "dev.h5").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    cfg = build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(tmp_path)},
                        "trainer": {"epochs": 1, "progress": False}})
    with pytest.raises(ValueError, match="1 of 3 rows have no label"):
        api.train(cfg, tmp_path / "run")


def test_a_new_writer_removes_the_stale_temp_of_a_killed_one(tmp_path):
    from scenesense.utils.io import STALE_TEMP_SECONDS

    killed = tmp_path / ".dev.h5.k1ll3d.tmp"  # what a SIGKILLed writer leaves
    killed.write_bytes(b"half an HDF5 file")
    then = os.path.getmtime(killed) - 2 * STALE_TEMP_SECONDS
    os.utime(killed, (then, then))
    live = tmp_path / ".dev.h5.w0rk1n.tmp"  # a writer still running beside us
    live.write_bytes(b"in progress")
    with _writer(tmp_path / "dev.h5") as w:
        w.append(["u"], [0], {"text": [np.ones((1, 2))], "audio": [np.ones(3)]})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dev.h5.w0rk1n.tmp", "dev.h5"]
