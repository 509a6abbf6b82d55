"""The ``openface`` source: OpenFace 2 per-frame CSVs -> vision sequences joined to a labels file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError
from scenesense.data.store import open_store_split
from scenesense.data.validation import DataFormatError
from scenesense.datasets.openface import OpenFaceSource, read_openface_csv
from tests.datasets.fixtures_ravdess import (
    AU_COLUMNS,
    OPENFACE_CLIPS,
    write_labels,
    write_openface,
    write_openface_csv,
)


def _convert(root: Path, out: Path, **given):
    source = OpenFaceSource()
    return {s: open_store_split(p) for s, p in source.convert(root, out, source.params(given)).items()}


def _au(frame: int) -> np.ndarray:
    return frame + np.arange(len(AU_COLUMNS)) / 100


def test_header_with_leading_spaces_gives_the_35_au_columns_in_openface_order(tmp_path):
    path = write_openface_csv(tmp_path / "c.csv", 3)
    assert path.read_text().startswith("frame, face_id, timestamp, confidence, success, gaze_0_x")
    clip = read_openface_csv(path)
    assert clip.columns == tuple(AU_COLUMNS) and clip.frames.shape == (3, 35)
    np.testing.assert_allclose(clip.frames[2], _au(3), rtol=1e-6)


def test_failed_frames_are_dropped_and_counted(tmp_path):
    clip = read_openface_csv(write_openface_csv(tmp_path / "c.csv", 5, failed=(2, 4)))
    assert clip.failed == 2
    np.testing.assert_allclose(clip.frames[:, 0], [1, 3, 5])


def test_rows_of_other_faces_are_dropped_unless_face_id_is_none(tmp_path):
    path = write_openface_csv(tmp_path / "c.csv", 3, extra_faces=(1, 3))
    assert (len(read_openface_csv(path).frames), read_openface_csv(path).other_faces) == (3, 2)
    assert len(read_openface_csv(path, face_id=None).frames) == 5


def test_older_header_without_face_id_is_accepted(tmp_path):
    path = write_openface_csv(tmp_path / "c.csv", 4, face_id=False, failed=(1,))
    assert read_openface_csv(path).frames.shape == (3, 35)


@pytest.mark.parametrize(("columns", "expected"), [
    ("au_r", [c for c in AU_COLUMNS if c.endswith("_r")]),
    ("au_c", [c for c in AU_COLUMNS if c.endswith("_c")]),
    (["pose_Rx", "AU12_r"], ["pose_Rx", "AU12_r"]),
])
def test_column_choices(tmp_path, columns, expected):
    clip = read_openface_csv(write_openface_csv(tmp_path / "c.csv", 2), columns)
    assert list(clip.columns) == expected
    if columns == ["pose_Rx", "AU12_r"]:
        np.testing.assert_allclose(clip.frames, [[-1, 1 + 8 / 100], [-2, 2 + 8 / 100]], rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"bad": (2, "AU06_r", "abc")}, "frame 2: column 'AU06_r' is not a number"),
    ({"bad": (1, "AU45_c", "nan")}, "frame 1: column 'AU45_c' is nan"),
    ({"bad": (1, "success", "yes")}, "column 'success'"),
])
def test_bad_cells_are_one_line_naming_file_frame_and_column(tmp_path, kwargs, needle):
    path = write_openface_csv(tmp_path / "clip9.csv", 3, **kwargs)
    with pytest.raises(DataFormatError) as err:
        read_openface_csv(path)
    assert "clip9.csv" in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)


def test_missing_columns_and_short_rows_are_errors(tmp_path):
    path = write_openface_csv(tmp_path / "c.csv", 2)
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['AU99_r'\]"):
        read_openface_csv(path, ["AU99_r"])
    path.write_text("frame, face_id, timestamp, confidence, success\n1, 0, 0.000, 0.98, 1\n")
    with pytest.raises(DataFormatError, match="no au columns"):
        read_openface_csv(path)
    write_openface_csv(path, 2)
    path.write_text(path.read_text().rsplit(", ", 3)[0] + "\n")
    with pytest.raises(DataFormatError, match="line 3 has"):
        read_openface_csv(path)


def test_convert_sequences_lengths_labels_and_splits(tmp_path):
    stores = _convert(write_openface(tmp_path / "of"), tmp_path / "out")
    train, dev = stores["train"], stores["dev"]
    assert train.ids == ("clip_a", "clip_b", "clip_c")
    assert dev.ids == ("clip_d", "clip_e")  # val, valid -> dev
    assert train.label_space.names == ("happy", "sad") == dev.label_space.names
    assert train.labels.tolist() == [0, 1, 0] and dev.labels.tolist() == [1, 0]
    info = train.features["vision"]
    assert (info.modality, info.kind, info.dim, info.max_len) == ("vision", "sequence", 35, 4)
    with h5py.File(train.path) as f:
        assert f["features/vision/lengths"][:].tolist() == [3, 3, 4]  # frame 2 failed in clips of > 3 frames
        np.testing.assert_allclose(f["features/vision/data"][0, 1], _au(3), rtol=1e-6)
    assert train.source["frames_failed_dropped"] == 2 and info.provenance["columns"] == AU_COLUMNS


def test_clip_with_no_successful_frame_is_missing(tmp_path):
    root = write_openface(tmp_path / "of")
    write_openface_csv(root / "processed" / "b" / "clip_b.csv", 2, failed=(1, 2))
    train = _convert(root, tmp_path / "out")["train"]
    with h5py.File(train.path) as f:
        assert f["features/vision/present"][:].tolist() == [True, False, True]
    assert train.source["clips_without_frames"] == 1


def test_labelled_clip_without_csv_is_an_error_listing_it(tmp_path):
    root = write_openface(tmp_path / "of")
    (root / "processed" / "e" / "clip_e.csv").unlink()
    with pytest.raises(DataFormatError, match=r"labels.csv: .*1 labelled id\(s\), e.g. \['clip_e'\]"):
        _convert(root, tmp_path / "out")


def test_unlabelled_csvs_are_ignored_and_counted(tmp_path):
    root = write_openface(tmp_path / "of")
    write_openface_csv(root / "processed" / "x" / "stray.csv", 2)
    assert _convert(root, tmp_path / "out")["train"].source["unlabelled_csvs_ignored"] == 1


def test_splits_file_replaces_the_split_column(tmp_path):
    root = write_openface(tmp_path / "of")
    write_labels(root / "labels.csv", [(c, label) for c, label, _, _ in OPENFACE_CLIPS], ("id", "label"))
    write_labels(root / "splits.csv", [("clip_a", "train"), ("clip_b", "dev"), ("clip_c", "train"),
                                       ("clip_d", "test"), ("clip_e", "train")], ("id", "split"))
    params = OpenFaceSource().params({"splits": "splits.csv"})
    assert OpenFaceSource().splits(root, params) == ["train", "dev", "test"]
    stores = _convert(root, tmp_path / "out", splits="splits.csv")
    assert stores["dev"].ids == ("clip_b",) and stores["test"].ids == ("clip_d",)


def test_labels_without_split_column_or_with_an_unknown_split_are_errors(tmp_path):
    root = write_openface(tmp_path / "of")
    write_labels(root / "labels.csv", [(c, label) for c, label, _, _ in OPENFACE_CLIPS], ("id", "label"))
    with pytest.raises(DataFormatError, match="no 'split' column"):
        _convert(root, tmp_path / "o1")
    write_labels(root / "labels.csv", [(c, label, "holdout") for c, label, _, _ in OPENFACE_CLIPS])
    with pytest.raises(DataFormatError, match="split 'holdout'"):
        _convert(root, tmp_path / "o2")


def test_clips_with_different_columns_are_an_error(tmp_path):
    root = write_openface(tmp_path / "of")
    path = root / "processed" / "c" / "clip_c.csv"
    header, *rows = path.read_text().splitlines()
    keep = [i for i, name in enumerate(header.split(", ")) if name != "AU28_c"]
    lines = [", ".join(line.split(", ")[i] for i in keep) for line in [header, *rows]]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"clip_c\.csv: columns differ"):
        _convert(root, tmp_path / "out")


@pytest.mark.parametrize("given", [{"columns": "hog"}, {"columns": []}, {"columns": None}, {"face_id": "0"},
                                   {"task": "ranking"}])
def test_bad_params_are_config_errors(given):
    with pytest.raises(ConfigError):
        OpenFaceSource().params(given)
