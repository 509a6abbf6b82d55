"""The ``meld_features`` source: MELD.Features.Models pickles + FacialMMT vision (formats.md §1, §2, §3)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError
from scenesense.data.safe_pickle import UnsafePickleError, load_pickle
from scenesense.data.store import StoreSplit, open_store_split
from scenesense.data.validation import DataFormatError
from scenesense.datasets.meld_features import MeldFeaturesSource
from scenesense.datasets.meld_pickles import read_data_pickle
from tests.datasets.fixtures_meld_features import (
    ABSENT,
    EMOTIONS,
    FRAMES,
    NO_AUDIO,
    NO_FACE,
    OOV,
    SENTIMENT_OF,
    SENTIMENTS,
    UTTERANCES,
    WORD_IDX,
    build_meld_features,
    code,
    data_pickle,
    ids,
    n_frames,
    vision_pickle,
)

Rows = dict[str, "np.ndarray | None"]


def convert(root: Path, out: Path, **params: Any) -> dict[str, Path]:
    source = MeldFeaturesSource()
    return source.convert(root, out, source.params(params))


def feature(path: Path, name: str) -> Rows:
    """id -> the stored row (sequences trimmed to their length), or None where not present."""
    with h5py.File(path, "r") as f:
        keys = [k.decode() for k in f["meta/ids"][:]]
        group = f["features"][name]
        data, present = group["data"][:], group["present"][:]
        lengths = group["lengths"][:] if "lengths" in group else None
    return {k: (data[r, : lengths[r]] if lengths is not None else data[r]) if present[r] else None
            for r, k in enumerate(keys)}


def meta(path: Path) -> StoreSplit:
    return open_store_split(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build_meld_features(tmp_path / "meld")


@pytest.fixture
def store(root: Path, tmp_path: Path) -> dict[str, Path]:
    return convert(root, tmp_path / "store")


def expected_frames(dialogue: int, utterance: int) -> np.ndarray:
    n = n_frames(dialogue, utterance)
    steps = 0.01 * np.arange(n, dtype=np.float32)[:, None]
    return np.full((n, 512), code(dialogue, utterance), np.float32) + steps


# ------------------------------------------------------------------------------------------------
# text, labels, meta


def test_text_is_glove_rows_of_the_tokens_with_true_lengths_and_oov_row_zero(store):
    text = feature(store["train"], "text")
    for split, d, u, *_, words in UTTERANCES:
        if split != "train":
            continue
        rows = text[f"dia{d}_utt{u}"]
        assert rows.shape == (len(words.split()), 300)
        np.testing.assert_array_equal(rows[:, 0], [WORD_IDX.get(t, 0) for t in words.split()])
    smelly_cat = text["dia125_utt3"]
    assert OOV == "smelly" and not smelly_cat[0].any() and (smelly_cat[1] == WORD_IDX["cat"]).all()


def test_word_idx_map_is_told_from_vocab_by_content_not_position(tmp_path):
    code_order = build_meld_features(tmp_path / "code")
    readme_order = build_meld_features(tmp_path / "readme", readme_order=True)
    assert read_data_pickle(next(code_order.rglob("data_emotion.p"))).word_map_element == 2
    assert read_data_pickle(next(readme_order.rglob("data_emotion.p"))).word_map_element == 3
    a = feature(convert(code_order, tmp_path / "a")["train"], "text")
    b = feature(convert(readme_order, tmp_path / "b")["train"], "text")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_two_candidate_word_maps_prefer_the_one_numbering_every_row_of_w(tmp_path):
    elements = data_pickle()
    elements[3] = {w: 2 * i for i, w in enumerate(WORD_IDX)}  # distinct ints inside W too, but not 1..V
    elements[2], elements[3] = elements[3], elements[2]
    path = tmp_path / "data_emotion.p"
    path.write_bytes(pickle.dumps(elements))
    text = read_data_pickle(path)
    assert text.word_map_element == 3 and text.word_idx_map == WORD_IDX


def test_ids_dialogues_positions_speakers_and_emotion_labels(store):
    train, dev = meta(store["train"]), meta(store["dev"])
    assert list(train.ids) == ids("train")  # CSV order, not the shuffled revs order
    assert list(dev.ids) == ids("dev")  # revs split 'val' -> dev
    assert train.dialogue_ids[-1] == "dia126" and list(train.positions[-2:]) == [0, 1]  # utt 2 follows utt 0
    rows = [u for u in UTTERANCES if u[0] == "train"]
    assert list(train.speakers) == [u[3] for u in rows]
    assert list(train.labels) == [EMOTIONS.index(u[4]) for u in rows]
    assert train.label_space.names == EMOTIONS
    assert train.source["mode"] == "corrected" and train.source["rows_from"] == "train_sent_emo.csv"


def test_sentiment_labels_and_feature_sets(tmp_path):
    root = build_meld_features(tmp_path / "meld", labels=("sentiment",))
    out = convert(root, tmp_path / "store", label="sentiment")
    train = meta(out["train"])
    assert train.label_space.names == SENTIMENTS
    assert list(train.labels) == [SENTIMENTS.index(SENTIMENT_OF[u[4]]) for u in UTTERANCES if u[0] == "train"]
    dims = {name: info.dim for name, info in train.features.items()}
    assert dims == {"text": 300, "text_glove_avg": 300, "text_glove_cnn": 100, "text_bclstm": 600,
                    "bimodal_bclstm": 600, "audio": 1422, "audio_bclstm": 600, "vision": 512}


def test_revs_label_disagreeing_with_the_csv_is_an_error(root, tmp_path):
    elements = data_pickle()
    rev = next(r for r in elements[0] if (r["dialog"], r["utterance"]) == ("125", "1"))
    rev["y"] = "joy"
    next(root.rglob("data_emotion.p")).write_bytes(pickle.dumps(elements))
    message = r"data_emotion.p: revs\[\d+\] \(dia125_utt1, train\) is 'joy' but train_sent_emo.csv says 'sad"
    with pytest.raises(DataFormatError, match=message):
        convert(root, tmp_path / "store")


# ------------------------------------------------------------------------------------------------
# audio and the other MELD feature pickles


def test_audio_missing_key_is_a_missing_modality_and_list_values_are_read(store):
    audio = feature(store["train"], "audio")
    assert audio[NO_AUDIO] is None
    assert audio["dia125_utt4"].shape == (1611,) and (audio["dia125_utt4"] == code(125, 4)).all()
    assert sum(v is None for v in audio.values()) == 1


def test_glove_average_and_cnn_vectors_are_keyed_by_utterance(store):
    average, cnn = feature(store["dev"], "text_glove_avg"), feature(store["dev"], "text_glove_cnn")
    assert average["dia1_utt0"].shape == (300,) and (average["dia1_utt0"] == code(1, 0)).all()
    assert cnn["dia1_utt1"].shape == (100,) and (cnn["dia1_utt1"] == code(1, 1)).all()


def test_dialogue_pickles_are_python2_and_row_j_is_the_jth_utterance_by_id(root, store):
    path = next(root.rglob("text_emotion.pkl"))
    with pytest.raises(UnsafePickleError, match="cannot decode the pickle's strings as ASCII"):
        load_pickle(path, encoding="ASCII")
    text, audio = feature(store["train"], "text_bclstm"), feature(store["train"], "audio_bclstm")
    assert (text["dia126_utt2"] == code(126, 2)).all()  # row 1 of dialogue 126 (no utterance 1)
    assert audio["dia125_utt4"].shape == (300,) and (audio["dia125_utt4"] == code(125, 4)).all()


# ------------------------------------------------------------------------------------------------
# FacialMMT vision


def test_vision_rows_are_keyed_by_csv_order_minus_absent_items_with_frame_masks(store):
    for split, length in (("train", FRAMES["train"]), ("dev", FRAMES["val"]), ("test", FRAMES["test"])):
        vision = feature(store[split], "vision")
        for key, rows in vision.items():
            d, u = (int(x) for x in key[3:].split("_utt"))
            if key in (ABSENT.get(split), NO_FACE):
                assert rows is None, key
            else:
                np.testing.assert_allclose(rows, expected_frames(d, u))
                assert rows.shape[0] < length  # padding frames are trimmed
    provenance = meta(store["train"]).features["vision"].provenance
    assert provenance["keys_from"] == "train_sent_emo.csv order without ['dia125_utt3']"
    assert provenance["order_verified"] == "emotion labels of train_sent_emo.csv"


def test_vision_rows_out_of_order_name_the_file_and_first_bad_row(tmp_path):
    order = [i for i in ids("train") if i != ABSENT["train"]]
    order[2], order[3] = order[3], order[2]
    root = build_meld_features(tmp_path / "meld", vision_orders={"train": order})
    message = r"meld_train_vision_utt.pkl: row 2 has label 3 but dia125_utt0 is anger in train_sent_emo.csv"
    with pytest.raises(DataFormatError, match=message) as err:
        convert(root, tmp_path / "store")
    assert "\n" not in str(err.value)


def test_vision_profile_json_gives_the_row_order(tmp_path):
    order = [i for i in ids("train") if i != ABSENT["train"]][::-1]
    root = build_meld_features(tmp_path / "meld", vision_orders={"train": order}, profiles=True)
    out = convert(root, tmp_path / "store")
    np.testing.assert_allclose(feature(out["train"], "vision")["dia124_utt0"], expected_frames(124, 0))
    assert meta(out["train"]).features["vision"].provenance["keys_from"] == "train_utt_profile.json"


def test_vision_without_csvs_is_keyed_by_the_sorted_revs(tmp_path):
    root = build_meld_features(tmp_path / "meld", csvs=False)
    out = convert(root, tmp_path / "store")
    vision = feature(out["test"], "vision")
    assert list(vision) == ids("test") and vision["dia220_utt0"] is None
    np.testing.assert_allclose(vision["dia220_utt1"], expected_frames(220, 1))
    provenance = meta(out["test"]).features["vision"].provenance
    assert provenance["order_verified"] == "emotion labels of data_emotion.p"


def test_sentiment_only_verifies_vision_by_neutral_flags(tmp_path):
    root = build_meld_features(tmp_path / "meld", labels=("sentiment",), csvs=False)
    out = convert(root, tmp_path / "store", label="sentiment")
    provenance = meta(out["dev"]).features["vision"].provenance
    assert provenance["order_verified"] == "neutral flags of data_sentiment.p"


def test_vision_row_count_disagreeing_with_the_rebuilt_keys_is_an_error(root, tmp_path):
    obj = vision_pickle("dev")
    obj["val"] = {k: v[:-1] for k, v in obj["val"].items()}
    next(root.rglob("meld_val_vision_utt.pkl")).write_bytes(pickle.dumps(obj))
    message = r"meld_val_vision_utt.pkl: 3 rows but dev_sent_emo.csv lists 4 dev utterances"
    with pytest.raises(DataFormatError, match=message):
        convert(root, tmp_path / "store")


def test_trimodal_copy_wins_over_the_vision_only_copy(root, tmp_path):
    facial = next(root.rglob("T+A+V"))
    other = facial.parent / "V" / "meld_test_vision_utt.pkl"
    other.parent.mkdir()
    junk = {"vision": np.zeros((1, 2, 512)), "vision_utt_mask": np.ones((1, 2)), "labels": [0]}
    other.write_bytes(pickle.dumps({"test": junk}))
    assert convert(root, tmp_path / "store")["test"].is_file()
    (facial / "meld_test_vision_utt.pkl").rename(facial.parent / "meld_test_vision_utt.pkl")
    with pytest.raises(DataFormatError, match=r"several meld_test_vision_utt.pkl files"):
        convert(root, tmp_path / "store2")


# ------------------------------------------------------------------------------------------------
# compat mode (Scene Sense, formats.md §3.1)


def test_compat_pairs_vision_by_position_and_corrected_by_key(root, tmp_path):
    # revs are stored train-reversed, FacialMMT rows follow the CSV: the orders differ, as in the real data.
    compat = convert(root, tmp_path / "compat", mode="compat", compat_drop_train=2, compat_drop_test=2)
    corrected = convert(root, tmp_path / "corrected")
    first_rev = "dia126_utt2"  # the first train rev; FacialMMT row 0 is dia124_utt0
    wrong = feature(compat["train"], "vision")[first_rev]
    right = feature(corrected["train"], "vision")[first_rev]
    np.testing.assert_allclose(right, expected_frames(126, 2))
    np.testing.assert_allclose(wrong[: n_frames(124, 0)], expected_frames(124, 0))
    assert meta(compat["train"]).features["vision"].provenance["alignment"].startswith("row i of the pickle")


def test_compat_reproduces_the_published_tensors(root, tmp_path):
    out = convert(root, tmp_path / "compat", mode="compat", compat_drop_train=2, compat_drop_test=2)
    train = meta(out["train"])
    stored = ["dia126_utt2", "dia126_utt0", "dia125_utt4", "dia125_utt3", "dia125_utt2", "dia125_utt1",
              "dia125_utt0", "dia124_utt1", "dia124_utt0"]
    assert list(train.ids) == stored[:2] + stored[3:]  # revs order, position 2 dropped
    text = feature(out["train"], "text")
    assert all(rows.shape == (50, 300) for rows in text.values())
    assert not text["dia126_utt0"][1:].any()  # "ok" + 49 W[0] rows
    audio = feature(out["train"], "audio")
    assert audio[NO_AUDIO] is not None and not audio[NO_AUDIO].any()  # zeros, present
    vision = feature(out["train"], "vision")
    assert all(rows.shape == (FRAMES["train"], 512) for rows in vision.values())  # padding kept
    assert train.source["mode"] == "compat" and train.source["dropped_position"] == 2
    assert train.features["text"].provenance["mode"] == "compat"
    assert list(meta(out["test"]).ids) == ["dia219_utt0", "dia219_utt1", "dia220_utt1"]


def test_compat_rows_must_match_the_vision_rows_after_the_drop(root, tmp_path):
    message = r"meld_train_vision_utt.pkl: 8 rows but 9 train revs remain after dropping position 1169"
    with pytest.raises(DataFormatError, match=message):
        convert(root, tmp_path / "compat", mode="compat")


# ------------------------------------------------------------------------------------------------
# parameters, discovery, errors


@pytest.mark.parametrize(("params", "message"), [
    ({"mode": "scenesense"}, "mode must be one of"),
    ({"label": "arousal"}, "label must be one of"),
    ({"mode": "compat", "label": "sentiment"}, "emotion-only"),
    ({"labels": "emotion"}, "unknown key"),
])
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        MeldFeaturesSource().params(params)


def test_splits_and_inputs_list_what_convert_reads(root):
    source = MeldFeaturesSource()
    params = source.params({})
    assert source.splits(root, params) == ["train", "dev", "test"]
    names = {p.name for p in source.inputs(root, params)}
    assert names == {"data_emotion.p", "audio_embeddings_feature_selection_emotion.pkl", "text_emotion.pkl",
                     "audio_emotion.pkl", "text_glove_average_emotion.pkl", "text_glove_CNN_emotion.pkl",
                     "meld_train_vision_utt.pkl", "meld_val_vision_utt.pkl", "meld_test_vision_utt.pkl",
                     "train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"}


def test_root_without_family_files_is_an_error(tmp_path, write_meld_csv):
    with pytest.raises(DataFormatError, match="none of the MELD CSVs, feature pickles or FacialMMT files"):
        MeldFeaturesSource().validate(tmp_path, {})
    write_meld_csv("train_sent_emo.csv")
    with pytest.raises(DataFormatError, match="none of the MELD feature files"):
        convert(tmp_path, tmp_path / "store")


def test_malformed_data_pickle_is_one_line_naming_the_file(root, tmp_path):
    next(root.rglob("data_emotion.p")).write_bytes(pickle.dumps(data_pickle()[:5]))
    with pytest.raises(DataFormatError, match=r"data_emotion.p: expected a list of 6") as err:
        convert(root, tmp_path / "store")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# validate


def test_validate_checks_every_file_against_the_published_facts(root):
    report = MeldFeaturesSource().validate(root, {})
    checks = {c.name: c for c in report.checks}
    for name in ("data_emotion.p word_idx_map found by content", "data_emotion.p W.shape[1]",
                 "data_emotion.p label_index", "data_emotion.p train labels agree with the CSV",
                 "audio_embeddings_feature_selection_emotion.pkl dim", "text_emotion.pkl utterance slots",
                 "meld_train_vision_utt.pkl row order (CSV order)", "meld_test_vision_utt.pkl frame dim"):
        assert checks[name].ok, checks[name]
    assert checks["data_emotion.p train revs"].detail == "found 9, expected 9989"  # a tiny fixture
    assert "'disgust': 67" in checks["meld_test_vision_utt.pkl emotion counts"].detail


def test_validate_reports_vision_rows_out_of_order(tmp_path):
    order = [i for i in ids("dev")][::-1]
    root = build_meld_features(tmp_path / "meld", vision_orders={"dev": order})
    check = next(c for c in MeldFeaturesSource().validate(root, {}).checks
                 if c.name == "meld_val_vision_utt.pkl row order (CSV order)")
    assert not check.ok and "meld_val_vision_utt.pkl: row 0 has label 3" in check.detail


def test_validate_real_meld_csvs_reports_only_the_csvs(meld_data_dir):
    report = MeldFeaturesSource().validate(meld_data_dir, {})
    assert report.errors == 0
    assert {c.name.split()[0] for c in report.checks} == {"train", "dev"}
    assert json.dumps(report.to_dict())
