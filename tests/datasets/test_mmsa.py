"""The ``mmsa`` source: MMSA feature pickles (formats.md §4) into a feature store."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError
from scenesense.data.labels import SENTIMENT5
from scenesense.data.safe_pickle import UnsafePickleError, load_pickle
from scenesense.data.validation import DataFormatError
from scenesense.datasets.mmsa import MmsaSource
from tests.datasets.fixtures_mmsa import NEG_INF_PER_SPLIT, mmsa_file, mmsa_split, train_tiny, write_mmsa
from tests.datasets.store_reading import feature, meta


def convert(root: Path, out: Path, **params) -> dict[str, Path]:
    source = MmsaSource()
    return source.convert(root, out, source.params(params))


def test_valid_split_becomes_dev_and_all_three_splits_are_written(tmp_path):
    written = convert(mmsa_file(tmp_path / "in"), tmp_path / "out")
    assert sorted(written) == ["dev", "test", "train"]
    assert meta(written["dev"])["source"]["split_key"] == "valid"


def test_unaligned_lengths_come_from_the_length_lists_and_the_text_mask(tmp_path):
    path = mmsa_file(tmp_path / "in")
    raw = load_pickle(path)["train"]
    out = convert(path, tmp_path / "out")["train"]
    assert feature(out, "audio")[1].tolist() == raw["audio_lengths"]
    assert feature(out, "vision")[1].tolist() == raw["vision_lengths"]
    assert feature(out, "text")[1].tolist() == raw["text_bert"][:, 1].sum(axis=1).astype(int).tolist()


def test_stored_rows_are_the_file_rows_up_to_their_length(tmp_path):
    path = mmsa_file(tmp_path / "in")
    raw = load_pickle(path)["train"]
    data, lengths, _, _ = feature(convert(path, tmp_path / "out")["train"], "vision")
    t = lengths[3]
    np.testing.assert_array_equal(data[3, :t], raw["vision"][3, :t])


def test_audio_neg_inf_becomes_zero_and_is_counted_in_the_provenance(tmp_path):
    path = mmsa_file(tmp_path / "in")
    raw = load_pickle(path)["train"]
    out = convert(path, tmp_path / "out")["train"]
    data, _, _, provenance = feature(out, "audio")
    assert np.isneginf(raw["audio"][0, 0, 0]) and data[0, 0, 0] == 0.0
    assert provenance["neg_inf_zeroed"] == NEG_INF_PER_SPLIT
    assert meta(out)["source"]["audio_neg_inf_zeroed"] == NEG_INF_PER_SPLIT


def test_aligned_file_gives_every_modality_the_text_mask_length(tmp_path):
    path = mmsa_file(tmp_path / "in", aligned=True)
    mask_len = load_pickle(path)["train"]["text_bert"][:, 1].sum(axis=1).astype(int).tolist()
    out = convert(path, tmp_path / "out")["train"]
    for m in ("text", "audio", "vision"):
        assert feature(out, m)[1].tolist() == mask_len
    assert meta(out)["source"]["aligned"] is True


def test_aligned_file_without_text_bert_uses_the_full_length(tmp_path):
    data = {k: mmsa_split(4, seed=i, aligned=True) for i, k in enumerate(("train", "valid", "test"))}
    for split in data.values():
        del split["text_bert"]
    out = convert(write_mmsa(tmp_path / "aligned_50.pkl", data), tmp_path / "out")["train"]
    assert feature(out, "audio")[1].tolist() == [50] * 4


def test_ids_dialogues_and_positions_come_from_the_id_strings(tmp_path):
    out = meta(convert(mmsa_file(tmp_path / "in"), tmp_path / "out")["dev"])
    assert out["ids"] == ["v1$_$1", "v1$_$2", "v1$_$10", "v1$_$3"]
    assert out["dialogue"] == ["v1"] * 4
    assert out["position"].tolist() == [0, 1, 3, 2]  # clip 10 comes after clip 3


def test_default_label_is_the_regression_target_sentiment(tmp_path):
    path = mmsa_file(tmp_path / "in")
    out = meta(convert(path, tmp_path / "out")["train"])
    assert (out["task"], out["names"]) == ("regression", ["sentiment"])
    np.testing.assert_allclose(out["label"], load_pickle(path)["train"]["regression_labels"])


def test_classification_label_comes_from_annotations(tmp_path):
    path = mmsa_file(tmp_path / "in")
    out = meta(convert(path, tmp_path / "out", label="classification")["train"])
    names = ["Negative", "Neutral", "Positive"]
    assert out["names"] == names
    assert [names[i] for i in out["label"]] == load_pickle(path)["train"]["annotations"]


def test_classification_falls_back_to_classification_labels(tmp_path):
    data = {k: mmsa_split(4, seed=i, aligned=True) for i, k in enumerate(("train", "valid", "test"))}
    for split in data.values():
        del split["annotations"]
        split["classification_labels"] = np.array([2.0, 2.0, 0.0, 1.0])
    out = meta(convert(write_mmsa(tmp_path / "aligned_50.pkl", data), tmp_path / "out",
                       label="classification")["train"])
    assert out["label"].tolist() == [2, 2, 0, 1]
    assert out["source"]["label_source"] == "classification_labels"


def test_sims_unimodal_label_is_offered_and_recorded(tmp_path):
    path = mmsa_file(tmp_path / "in", sims=True)
    out = meta(convert(path, tmp_path / "out", label="regression_T")["train"])
    assert out["names"] == ["sentiment_T"]
    np.testing.assert_allclose(out["label"], load_pickle(path)["train"]["regression_labels_T"])
    assert out["source"]["unimodal_labels"] == [f"regression_labels_{m}" for m in "ATV"]


def test_sentiment5_label_rounds_mosi_scores_into_five_classes(tmp_path):
    path = mmsa_file(tmp_path / "in")
    out = meta(convert(path, tmp_path / "out", label="sentiment5")["train"])
    assert (out["task"], out["names"]) == ("classification", list(SENTIMENT5.names))
    scores = load_pickle(path)["train"]["regression_labels"]
    assert out["label"].tolist() == (np.round(np.clip(scores, -2, 2)) + 2).astype(int).tolist()
    assert out["source"]["five_class"] == "round"
    assert out["source"]["label_source"] == "regression_labels, 5 classes by rule 'round'"


def test_sentiment5_label_of_a_sims_file_takes_the_sims_intervals(tmp_path):
    data = {k: mmsa_split(4, seed=i, aligned=False, sims=True) for i, k in enumerate(("train", "valid", "test"))}
    data["train"]["regression_labels"] = np.array([-0.8, -0.2, 0.6, 0.8], dtype=np.float32)
    path = write_mmsa(tmp_path / "unaligned_39.pkl", data)
    out = meta(convert(path, tmp_path / "out", label="sentiment5")["train"])
    assert out["label"].tolist() == [0, 1, 3, 4]  # rounding would give 1, 2, 3, 3
    assert out["source"]["five_class"] == "sims"
    forced = meta(convert(path, tmp_path / "forced", label="sentiment5", five_class="round")["train"])
    assert forced["label"].tolist() == [1, 2, 3, 3]


def test_the_five_class_rule_is_recorded_for_regression_but_not_for_classification(tmp_path):
    mosi, sims = mmsa_file(tmp_path / "mosi"), mmsa_file(tmp_path / "sims", sims=True)
    assert meta(convert(mosi, tmp_path / "a")["dev"])["source"]["five_class"] == "round"
    assert meta(convert(sims, tmp_path / "b")["dev"])["source"]["five_class"] == "sims"
    assert meta(convert(sims, tmp_path / "c", label="regression_T")["dev"])["source"]["five_class"] == "sims"
    assert "five_class" not in meta(convert(mosi, tmp_path / "d", label="classification")["dev"])["source"]


def test_unknown_five_class_rule_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.params.five_class must be one of \['auto', 'round', 'sims'\]"):
        MmsaSource().params({"five_class": "quantile"})


def test_unimodal_label_of_a_non_sims_file_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(DataFormatError, match=r"unaligned_50\.pkl: split 'train' has no 'regression_label"):
        convert(mmsa_file(tmp_path / "in"), tmp_path / "out", label="regression_A")


def test_text_requested_from_a_text_bert_only_file_is_a_clear_error(tmp_path):
    data = {k: mmsa_split(4, seed=i, aligned=False) for i, k in enumerate(("train", "valid", "test"))}
    for split in data.values():
        del split["text"]
    path = write_mmsa(tmp_path / "unaligned_50.pkl", data)
    with pytest.raises(DataFormatError) as err:
        convert(path, tmp_path / "out")
    assert "unaligned_50.pkl" in str(err.value) and "only 'text_bert'" in str(err.value)
    assert "\n" not in str(err.value)
    with h5py.File(convert(path, tmp_path / "out2", modalities=["audio", "vision"])["train"], "r") as f:
        assert sorted(f["features"]) == ["audio", "vision"]


def test_a_length_beyond_the_padded_size_is_an_error_naming_the_key(tmp_path):
    path = mmsa_file(tmp_path / "in")
    data = load_pickle(path)
    data["test"]["vision_lengths"][1] = 501
    write_mmsa(path, data)
    with pytest.raises(DataFormatError, match=r"split 'test' 'vision_lengths' row 1 is 501, outside \["):
        convert(path, tmp_path / "out")


def test_nan_outside_audio_is_an_error_naming_the_sample(tmp_path):
    path = mmsa_file(tmp_path / "in")
    data = load_pickle(path)
    data["train"]["vision"][2, 0, 0] = np.nan
    write_mmsa(path, data)
    with pytest.raises(DataFormatError, match=r"key 'vision' row 2 \(id 'v0\$_\$10'\) has NaN or inf"):
        convert(path, tmp_path / "out")


def test_zero_length_stores_the_modality_as_missing(tmp_path):
    path = mmsa_file(tmp_path / "in")
    data = load_pickle(path)
    data["train"]["vision_lengths"][4] = 0
    write_mmsa(path, data)
    out = convert(path, tmp_path / "out")["train"]
    assert feature(out, "vision")[2].tolist() == [True] * 4 + [False] + [True] * 3
    assert meta(out)["source"]["empty"]["vision"] == 1


def test_folder_must_hold_exactly_one_pickle(tmp_path):
    mmsa_file(tmp_path / "in")
    mmsa_file(tmp_path / "in", aligned=True)
    with pytest.raises(DataFormatError, match="expected exactly one .pkl"):
        convert(tmp_path / "in", tmp_path / "out")


def test_unknown_label_is_a_config_error():
    with pytest.raises(ConfigError, match="data.params.label must be one of"):
        MmsaSource().params({"label": "emotion"})


def test_a_pickle_asking_for_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": Evil()}))
    with pytest.raises(UnsafePickleError, match="refusing to load builtins.print"):
        convert(path, tmp_path / "out")


def test_validate_passes_the_structure_and_reports_mosi_row_counts(tmp_path):
    report = MmsaSource().validate(mmsa_file(tmp_path / "in"), {})
    failed = [c.name for c in report.checks if not c.ok]
    assert failed == [f"MOSI {s} rows (published)" for s in ("train", "dev", "test")]
    assert report.counts["rows"] == {"train": 8, "dev": 4, "test": 4}
    assert report.counts["audio_neg_inf"]["train"] == NEG_INF_PER_SPLIT


def test_validate_of_an_unknown_dataset_has_no_row_count_checks(tmp_path):
    report = MmsaSource().validate(mmsa_file(tmp_path / "in", dims=(768, 7, 9)), {})
    assert report.errors == 0 and report.counts["dataset"] == "unknown"


def test_validate_flags_unaligned_data_without_lengths(tmp_path):
    path = mmsa_file(tmp_path / "in")
    data = load_pickle(path)
    del data["valid"]["audio_lengths"], data["valid"]["vision_lengths"]
    write_mmsa(path, data)
    report = MmsaSource().validate(path, {})
    assert not next(c for c in report.checks if c.name == "valid: aligned <=> equal time dims").ok


def test_a_regression_model_trains_on_the_converted_store(tmp_path, monkeypatch):
    metrics = train_tiny("mmsa", mmsa_file(tmp_path / "in"), {}, tmp_path, monkeypatch)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["mae"])
