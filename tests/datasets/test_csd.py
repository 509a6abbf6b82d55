"""The ``csd`` source: CMU-MultimodalSDK computational sequences (formats.md §6) into a feature store."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError
from scenesense.data.validation import DataFormatError
from scenesense.datasets.csd import HASH_SPLIT, CsdSource, hash_split
from scenesense.datasets.csd_files import read_csd
from tests.datasets.fixtures_csd import (
    RAW_METADATA_KEY,
    SEGMENTS,
    SPLITS,
    mosi_folder,
    sdk_metadata,
    write_csd,
)
from tests.datasets.fixtures_mmsa import train_tiny
from tests.datasets.store_reading import feature, meta


def convert(root: Path, out: Path, **params) -> dict[str, Path]:
    source = CsdSource()
    return source.convert(root, out, source.params(params))


def entry(path: Path, vid: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        group = f[next(iter(f))]["data"][vid]
        return group["features"][()], group["intervals"][()]


@pytest.fixture
def mosi(tmp_path) -> Path:
    return mosi_folder(tmp_path / "csd")


def test_files_are_chosen_by_name_and_token_files_skipped(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS)["train"])
    assert out["features"] == ["audio", "text", "vision"]
    assert feature(tmp_path / "out" / "train.h5", "vision")[3]["file"] == "CMU_MOSI_Visual_Facet_42.csd"
    assert out["source"]["skipped_token_files"] == ["CMU_MOSI_TimestampedWords.csd"]
    assert out["source"]["labels"] == "CMU_MOSI_Opinion_Labels.csd"


def test_each_label_segment_is_a_sample_keyed_by_video_and_index(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS)["train"])
    assert out["ids"] == ["81406[0]", "81406[1]", "vidA[0]", "vidA[1]", "vidA[2]", "vidB[0]", "vidB[1]"]
    assert out["dialogue"][:3] == ["81406", "81406", "vidA"]
    assert out["position"].tolist() == [0, 1, 0, 1, 2, 0, 1]
    labels = np.concatenate([entry(mosi / "CMU_MOSI_Opinion_Labels.csd", v)[0][:, 0]
                             for v in ("81406", "vidA", "vidB")])
    np.testing.assert_allclose(out["label"], labels)


def test_a_segment_holds_the_rows_whose_intervals_overlap_it(mosi, tmp_path):
    out = convert(mosi, tmp_path / "out", splits=SPLITS)["train"]
    row = meta(out)["ids"].index("vidA[1]")  # segment [2, 5]
    for name, file, expected_rows in (("text", "CMU_MOSI_TimestampedWordVectors.csd", slice(4, 10)),
                                      ("audio", "CMU_MOSI_COVAREP.csd", slice(40, 100))):
        data, lengths, _, _ = feature(out, name)
        features = entry(mosi / file, "vidA")[0][expected_rows]
        assert lengths[row] == len(features)
        np.testing.assert_array_equal(data[row, : lengths[row]], features)


def test_a_segment_without_overlapping_rows_has_the_modality_missing(mosi, tmp_path):
    out = convert(mosi, tmp_path / "out", splits=SPLITS)["train"]
    _, _, present, provenance = feature(out, "vision")
    assert present[meta(out)["ids"].index("vidB[1]")] == False  # noqa: E712  (vision stops at 3.0 s)
    assert present.sum() == 6 and provenance["no_overlap"] == 1


def test_videos_missing_from_a_chosen_file_are_dropped_and_counted(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS)["test"])
    assert out["ids"] == ["vidD[0]"]  # vidE has no COVAREP entry
    assert out["source"]["videos_dropped_missing_modality_all_splits"] == {"audio": 1, "text": 0, "vision": 0}


def test_non_finite_features_become_zero_and_are_counted(mosi, tmp_path):
    out = convert(mosi, tmp_path / "out", splits=SPLITS)["train"]
    data, _, _, provenance = feature(out, "audio")
    row = meta(out)["ids"].index("vidA[0]")
    assert data[row, 0, 3] == 0.0 and provenance["nonfinite_zeroed"] == 1


def test_metadata_is_json_with_the_raw_string_as_fallback(mosi):
    labels = read_csd(mosi / "CMU_MOSI_Opinion_Labels.csd")
    assert labels.metadata["alignment compatible"] is True
    assert labels.metadata["dimension namescomputational sequence version"] == ["sentiment"]
    assert labels.metadata[RAW_METADATA_KEY] == "A. Zadeh (raw)" and labels.not_json == [RAW_METADATA_KEY]


def test_two_candidate_files_for_a_modality_are_an_error_until_one_is_named(mosi, tmp_path):
    vectors = {v: (np.ones((2, 300), np.float32), np.array([[0.0, 1.0], [1.0, 2.0]])) for v in SEGMENTS}
    write_csd(mosi / "CMU_MOSI_TimestampedGloveVectors_with_SP.csd", "glove_vectors_with_sp", vectors,
              sdk_metadata("glove_vectors_with_sp", ["g"]))
    with pytest.raises(ConfigError, match=r"several .csd files could be the text modality"):
        convert(mosi, tmp_path / "out", splits=SPLITS)
    chosen = {"text": "glove_vectors_with_sp", "audio": "CMU_MOSI_COVAREP"}  # a root name and a stem
    out = convert(mosi, tmp_path / "out", splits=SPLITS, features=chosen)["dev"]
    assert meta(out)["features"] == ["audio", "text"]
    assert feature(out, "text")[3]["root"] == "glove_vectors_with_sp"


def test_label_column_picks_a_column_of_mosei_style_labels(mosi, tmp_path):
    labels = {v: (np.tile(np.arange(7.0) / 10, (len(s), 1)), np.array(s)) for v, s in SEGMENTS.items()}
    (mosi / "CMU_MOSI_Opinion_Labels.csd").unlink()
    write_csd(mosi / "CMU_MOSEI_Labels.csd", "All Labels", labels, sdk_metadata("All Labels", ["s"]))
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS, labels="All Labels", label_column=2)["dev"])
    np.testing.assert_allclose(out["label"], [0.2, 0.2])
    assert out["source"]["labels_root"] == "All Labels"


def test_binary_label_drops_zero_scores(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS, label="binary")["train"])
    assert out["names"] == ["negative", "positive"] and "vidB[1]" not in out["ids"]
    scores = {f"{v}[{k}]": s for v in SPLITS["train"]
              for k, s in enumerate(entry(mosi / "CMU_MOSI_Opinion_Labels.csd", v)[0][:, 0])}
    assert out["label"].tolist() == [int(scores[i] > 0) for i in out["ids"]]
    assert out["source"]["segments_dropped_zero_label"] == 1


@pytest.mark.parametrize(("band", "expected"), [(0.0, [2, 0, 2, 2, 0, 0, 1]), (0.5, [2, 0, 2, 2, 0, 1, 1])])
def test_sentiment3_splits_scores_around_a_neutral_band(mosi, tmp_path, band, expected):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS, label="sentiment3", neutral_band=band)["train"])
    assert out["names"] == ["Negative", "Neutral", "Positive"]
    assert out["ids"] == ["81406[0]", "81406[1]", "vidA[0]", "vidA[1]", "vidA[2]", "vidB[0]", "vidB[1]"]
    # scores 1.6, -2.1, 0.6, 0.6, -2.4, -0.1, 0.0: nothing is dropped, vidB[1] (exactly 0) is Neutral
    assert out["label"].tolist() == expected
    assert out["source"]["segments_dropped_zero_label"] == 0
    assert out["source"]["neutral_band"] == band


@pytest.mark.parametrize(("params", "message"), [
    ({"label": "sentiment3", "neutral_band": -0.1}, "finite number >= 0"),
    ({"label": "sentiment3", "neutral_band": float("nan")}, "finite number >= 0"),
    ({"label": "sentiment3", "neutral_band": True}, "finite number >= 0"),
    ({"label": "binary", "neutral_band": 0.5}, "sentiment3 only"),
])
def test_bad_neutral_band_is_a_config_error(params, message):
    with pytest.raises(ConfigError, match=message):
        CsdSource().params(params)


def test_sentiment7_rounds_the_clipped_score(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS, label="sentiment7")["train"])
    scores = np.concatenate([entry(mosi / "CMU_MOSI_Opinion_Labels.csd", v)[0][:, 0]
                             for v in ("81406", "vidA", "vidB")])
    assert out["names"] == ["-3", "-2", "-1", "0", "1", "2", "3"]
    assert out["label"].tolist() == (np.round(np.clip(scores, -3, 3)) + 3).astype(int).tolist()


def test_sentiment5_rounds_the_score_clipped_to_two(mosi, tmp_path):
    out = meta(convert(mosi, tmp_path / "out", splits=SPLITS, label="sentiment5")["train"])
    # scores 1.6, -2.1, 0.6, 0.6, -2.4, -0.1, 0.0
    assert out["names"] == ["Strongly Negative", "Negative", "Neutral", "Positive", "Strongly Positive"]
    assert out["label"].tolist() == [4, 0, 3, 3, 0, 2, 2]


def test_folds_file_assigns_videos_and_leaves_out_the_rest(mosi, tmp_path):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["vidA", "81406"], "valid": ["vidC"], "test": ["vidD"]}))
    written = convert(mosi, tmp_path / "out", folds=str(folds))
    train = meta(written["train"])
    assert set(train["dialogue"]) == {"vidA", "81406"}
    assert train["source"]["videos_not_in_folds"] == 2 and train["source"]["split"] == "folds file folds.json"


def test_default_split_hashes_video_ids_and_says_it_is_not_standard(mosi, tmp_path):
    source = CsdSource()
    params = source.params({})
    kept = [v for v in SEGMENTS if v != "vidE"]
    assert source.splits(mosi, params) == sorted({hash_split(v) for v in kept})
    written = source.convert(mosi, tmp_path / "out", params)
    for split, path in written.items():
        out = meta(path)
        assert all(hash_split(d) == split for d in out["dialogue"])
        assert out["source"]["split"] == HASH_SPLIT and "NOT the standard" in HASH_SPLIT


def test_a_video_in_two_folds_is_a_config_error(mosi, tmp_path):
    with pytest.raises(ConfigError, match="video 'vidA' is in both 'train' and 'dev'"):
        convert(mosi, tmp_path / "out", splits={"train": ["vidA"], "valid": ["vidA"]})


def test_folds_and_splits_together_are_a_config_error():
    with pytest.raises(ConfigError, match="not both"):
        CsdSource().params({"folds": "f.json", "splits": SPLITS})


def test_intervals_not_n_by_2_are_one_line_naming_file_and_entry(mosi, tmp_path):
    with h5py.File(mosi / "CMU_MOSI_Visual_Facet_42.csd", "r+") as f:
        group = f["CMU_MOSI_Visual_Facet_42/data/vidC"]
        n = group["intervals"].shape[0]
        del group["intervals"]
        group["intervals"] = np.zeros((n, 3))
    with pytest.raises(DataFormatError, match=r"Facet_42\.csd: data/vidC/intervals has shape \[40, 3\]"):
        convert(mosi, tmp_path / "out", splits=SPLITS)


def test_unequal_features_and_intervals_rows_are_an_error(mosi, tmp_path):
    with h5py.File(mosi / "CMU_MOSI_COVAREP.csd", "r+") as f:
        group = f["CMU_MOSI_COVAREP/data/vidD"]
        intervals = group["intervals"][()]
        del group["intervals"]
        group["intervals"] = intervals[:-1]
    with pytest.raises(DataFormatError, match=r"CMU_MOSI_COVAREP\.csd: data/vidD: features has 50 rows but"):
        convert(mosi, tmp_path / "out", splits=SPLITS)


def test_a_file_that_is_not_hdf5_is_named(mosi, tmp_path):
    (mosi / "CMU_MOSI_Visual_Facet_42.csd").write_bytes(b"not hdf5")
    with pytest.raises(DataFormatError, match=r"CMU_MOSI_Visual_Facet_42\.csd: not a readable HDF5 file"):
        convert(mosi, tmp_path / "out", splits=SPLITS)


def test_validate_checks_files_and_reports_segments(mosi):
    report = CsdSource().validate(mosi, CsdSource().params({"splits": SPLITS}))
    failed = [c.name for c in report.checks if not c.ok]
    assert failed == ["CMU_MOSI_Opinion_Labels.csd: metadata values are JSON",
                      "MOSI standard folds: videos per split", "MOSI standard folds: segments per split"]
    assert report.counts["segments"] == {"train": 7, "dev": 2, "test": 1}
    assert report.counts["files"]["CMU_MOSI_COVAREP.csd"]["dim"] == 74


def test_validate_reports_a_broken_entry_instead_of_raising(mosi):
    with h5py.File(mosi / "CMU_MOSI_COVAREP.csd", "r+") as f:
        del f["CMU_MOSI_COVAREP/data/vidC/intervals"]
    report = CsdSource().validate(mosi, CsdSource().params({"splits": SPLITS}))
    check = next(c for c in report.checks if c.name.startswith("CMU_MOSI_COVAREP.csd: entries"))
    assert not check.ok and "'vidC'" in check.detail


def test_a_regression_model_trains_on_the_converted_store(mosi, tmp_path, monkeypatch):
    metrics = train_tiny("csd", mosi, {"splits": SPLITS}, tmp_path, monkeypatch)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["mae"])


def test_csd_files_in_a_linked_folder_are_found(mosi, tmp_path):
    root = tmp_path / "linked"
    root.mkdir()
    (root / "CMU_MOSI").symlink_to(mosi, target_is_directory=True)
    out = meta(convert(root, tmp_path / "out", splits=SPLITS)["train"])
    assert out["features"] == ["audio", "text", "vision"]
