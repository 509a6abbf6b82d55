"""The ``mult`` source: MulT data pickles (formats.md §5) into a feature store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenesense.data.safe_pickle import load_pickle
from scenesense.data.validation import DataFormatError
from scenesense.datasets.mult import PADDING_RULE, MultSource
from tests.datasets.fixtures_mmsa import train_tiny
from tests.datasets.fixtures_mult import mult_file, write_mult
from tests.datasets.store_reading import feature, meta


def convert(root: Path, out: Path, **params) -> dict[str, Path]:
    source = MultSource()
    return source.convert(root, out, source.params(params))


def test_unaligned_rows_are_trimmed_of_padding_at_either_end(tmp_path):
    path, spans = mult_file(tmp_path, "iemocap", aligned=False)
    raw = load_pickle(path)["valid"]
    out = convert(path, tmp_path / "out")["dev"]
    kept = [2, 3]  # rows 0 and 1 are dropped (no / two emotions)
    for m in ("text", "audio", "vision"):
        data, lengths, _, _ = feature(out, m)
        for j, i in enumerate(kept):
            start, stop = spans["valid"][m][i]
            assert lengths[j] == stop - start
            expected = np.where(np.isneginf(raw[m][i, start:stop]), 0, raw[m][i, start:stop])
            np.testing.assert_array_equal(data[j, : stop - start], expected)


def test_aligned_rows_keep_the_union_span_of_the_three_modalities(tmp_path):
    path, spans = mult_file(tmp_path)
    out = convert(path, tmp_path / "out")["train"]
    for i in range(8):
        start = min(spans["train"][m][i][0] for m in spans["train"])
        stop = max(spans["train"][m][i][1] for m in spans["train"])
        assert [feature(out, m)[1][i] for m in ("text", "audio", "vision")] == [stop - start] * 3


def test_padding_rule_and_sides_are_recorded(tmp_path):
    path, _ = mult_file(tmp_path, aligned=False)
    provenance = feature(convert(path, tmp_path / "out")["train"], "text")[3]
    assert provenance["lengths"] == PADDING_RULE
    assert provenance["padding"] == {"leading": 4, "trailing": 4}  # even rows padded first, odd rows last


def test_bytes_ids_are_decoded_and_joined(tmp_path):
    path, _ = mult_file(tmp_path)
    out = meta(convert(path, tmp_path / "out")["dev"])
    assert out["ids"] == ["vid1_0_0.0", "vid1_1_1.5", "vid1_2_3.0", "vid1_3_4.5"]
    assert out["dialogue"] == ["vid1"] * 4


def test_without_ids_rows_are_keyed_by_position_and_flagged(tmp_path):
    path, _ = mult_file(tmp_path, ids=False)
    out = meta(convert(path, tmp_path / "out")["dev"])
    assert out["ids"] == ["dev_0", "dev_1", "dev_2", "dev_3"]
    assert out["source"]["ids"].startswith("positional")


def test_repeated_ids_are_made_unique_and_counted(tmp_path):
    path, _ = mult_file(tmp_path)
    data = load_pickle(path)
    data["train"]["id"][3] = data["train"]["id"][2]
    write_mult(path, data)
    out = meta(convert(path, tmp_path / "out")["train"])
    assert out["ids"][2:4] == ["vid0_2_3.0", "vid0_2_3.0#1"]
    assert out["source"]["duplicate_ids"] == 1


def test_audio_neg_inf_becomes_zero_and_is_counted(tmp_path):
    path, _ = mult_file(tmp_path, aligned=False)
    data, _, _, provenance = feature(convert(path, tmp_path / "out")["train"], "audio")
    assert np.isfinite(data).all() and provenance["neg_inf_zeroed"] == 2


def test_mosi_labels_are_the_sentiment_regression_target(tmp_path):
    path, _ = mult_file(tmp_path)
    out = meta(convert(path, tmp_path / "out")["test"])
    assert (out["task"], out["names"]) == ("regression", ["sentiment"])
    np.testing.assert_allclose(out["label"], load_pickle(path)["test"]["labels"].reshape(-1))


def test_iemocap_emotion4_keeps_samples_with_exactly_one_emotion(tmp_path):
    path, _ = mult_file(tmp_path, "iemocap", aligned=False)
    out = meta(convert(path, tmp_path / "out")["train"])
    assert out["names"] == ["neutral", "happy", "sad", "angry"]
    assert out["ids"] == [f"vid0_{i}_{i * 1.5:.1f}" for i in range(2, 8)]
    assert out["label"].tolist() == [2, 3, 0, 1, 2, 3]
    assert (out["source"]["dropped_no_emotion"], out["source"]["dropped_several_emotions"]) == (1, 1)


def test_emotion4_on_sentiment_labels_is_one_line_naming_the_file(tmp_path):
    path, _ = mult_file(tmp_path)
    with pytest.raises(DataFormatError, match=r"mosi_data\.pkl: split 'train' 'labels' has shape \[8, 1, 1"):
        convert(path, tmp_path / "out", label="emotion4")


def test_an_all_zero_modality_is_stored_as_missing(tmp_path):
    path, _ = mult_file(tmp_path, aligned=False)
    data = load_pickle(path)
    data["train"]["vision"][5] = 0.0
    write_mult(path, data)
    out = convert(path, tmp_path / "out")["train"]
    assert feature(out, "vision")[2].tolist() == [True] * 5 + [False] + [True] * 2
    assert meta(out)["source"]["empty"] == {"audio": 0, "text": 0, "vision": 1}


def test_nan_in_text_is_an_error_naming_the_row(tmp_path):
    path, spans = mult_file(tmp_path)
    data = load_pickle(path)
    data["test"]["text"][1, spans["test"]["text"][1][0], 0] = np.nan
    write_mult(path, data)
    with pytest.raises(DataFormatError, match=r"split 'test' key 'text' row 1 \(id 'vid2_1_1.5'\) has NaN"):
        convert(path, tmp_path / "out")


def test_validate_reports_published_mosi_counts_and_dims(tmp_path):
    path, _ = mult_file(tmp_path)
    report = MultSource().validate(path, {})
    assert [c.name for c in report.checks if not c.ok] == ["mosi rows per split (published)"]
    data = load_pickle(path)
    data["train"]["audio"] = np.zeros((8, 50, 74), dtype=np.float32)  # MOSEI's COVAREP dim in a MOSI file
    write_mult(path, data)
    failed = [c.name for c in MultSource().validate(path, {}).checks if not c.ok]
    assert "train: dims (text, audio, vision)" in failed


def test_validate_gives_iemocap_counts_as_unconfirmed_facts(tmp_path):
    path, _ = mult_file(tmp_path, "iemocap", aligned=False, ids=False)
    report = MultSource().validate(path, {})
    assert report.errors == 0
    assert report.counts["published_rows_unconfirmed"] == {"train": 2717, "dev": 798, "test": 938}
    assert report.counts["exactly_one_emotion"] == {"train": 6, "valid": 2, "test": 2}


def test_validate_flags_an_aligned_name_with_unequal_time_dims(tmp_path):
    path, _ = mult_file(tmp_path, aligned=False)
    aligned = path.rename(tmp_path / "mosi_data.pkl")
    failed = [c.name for c in MultSource().validate(aligned, {}).checks if not c.ok]
    assert "train: aligned (file name) <=> equal time dims" in failed


def test_a_regression_model_trains_on_the_converted_store(tmp_path, monkeypatch):
    path, _ = mult_file(tmp_path / "in")
    metrics = train_tiny("mult", path, {}, tmp_path, monkeypatch)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["mae"])
