from __future__ import annotations

from collections import Counter

import pytest

from scenesense.data.meld import (
    MELD_COLUMNS,
    DataFormatError,
    dialogue_positions,
    encoding_variant,
    find_meld_csv,
    read_meld_csv,
    repair_text,
    validate_meld_csvs,
)
from scenesense.data.validation import ValidationReport
from tests.support.meld import MELD_HEADER, MELD_ROWS, render_meld_csv


def test_reads_the_published_layout(write_meld_csv, meld_rows):
    path = write_meld_csv("dev_sent_emo.csv", bom=True)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfSr No.,Utterance")
    assert b'"00:16:16,059"' in raw
    assert b"\r\n" in raw
    utts = read_meld_csv(path)
    assert [u.id for u in utts] == ["dia0_utt0", "dia0_utt1", "dia1_utt0", "dia1_utt1", "dia1_utt4",
                                    "dia3_utt2", "dia3_utt3", "dia3_utt5"]
    first = utts[0]
    assert (first.dialogue_id, first.utterance_id, first.sr_no) == (0, 0, 1)
    assert (first.season, first.episode) == (8, 21)
    assert first.text == meld_rows[0][1]
    assert (first.start_time, first.end_time) == ("00:16:16,059", "00:16:21,731")
    assert utts[4].speaker == "Richard’s Date"
    assert utts[5].text == 'He said "no", then left.'
    assert [u.emotion for u in utts] == [r[3] for r in meld_rows]
    assert [u.sentiment for u in utts] == [r[4] for r in meld_rows]
    assert utts[0].dialogue_key == "dia0"


def test_positions_rank_utterance_ids_within_dialogues(write_meld_csv):
    utts = read_meld_csv(write_meld_csv())
    reordered = [utts[4], utts[2], utts[7], utts[3], utts[5], utts[0], utts[6], utts[1]]
    assert dialogue_positions(reordered) == [2, 0, 2, 1, 0, 0, 1, 1]


@pytest.mark.parametrize("variant", ["c1", "mojibake"])
def test_encoding_variants_read_as_the_current_text(write_meld_csv, variant):
    clean = read_meld_csv(write_meld_csv("clean/dev_sent_emo.csv", variant="clean"))
    damaged_path = write_meld_csv(f"{variant}/dev_sent_emo.csv", variant=variant, bom=False)
    raw = damaged_path.read_text(encoding="utf-8")
    assert ("\x92" in raw and "\xa0" in raw) if variant == "c1" else ("â€™" in raw)
    assert read_meld_csv(damaged_path) == clean


@pytest.mark.parametrize(("text", "expected"), [
    ("must\x92ve \x85 \x97 \x93x\x94", "must’ve … — “x”"),
    ("â€™ â€¦ Ã©tÃ©", "’ … été"),
    ("café’s naïve é’", "café’s naïve é’"),  # legitimate non-ASCII text is left alone
    ("a\xa0 b", "a  b"),
])
def test_repair_text(text, expected):
    assert repair_text(text) == expected


def test_missing_column_is_named(write_meld_csv, meld_rows):
    header = [h for h in MELD_COLUMNS if h != "Emotion"]
    path = write_meld_csv("train_sent_emo.csv", [r[:3] + r[4:] for r in meld_rows], header=header)
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['Emotion'\]") as err:
        read_meld_csv(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("row", "column", "value", "message"), [
    (2, "Emotion", "happy", r"line 4 \(dia1_utt0\): unknown emotion 'happy'; valid: \['neutral', 'surprise'"),
    (3, "Sentiment", "mixed", r"dia1_utt1\): unknown sentiment 'mixed'"),
    (1, "Utterance_ID", "0", r"line 3 \(dia0_utt0\): duplicate utterance .* first at line 2"),
    (1, "Dialogue_ID", "x1", r"line 3: Dialogue_ID 'x1' is not an integer"),
])
def test_format_errors_are_one_line_and_name_the_file(write_meld_csv, meld_rows, row, column, value, message):
    meld_rows[row][MELD_COLUMNS.index(column)] = value
    path = write_meld_csv("train_sent_emo.csv", meld_rows)
    with pytest.raises(DataFormatError, match=message) as err:
        read_meld_csv(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_find_meld_csv(tmp_path, write_meld_csv):
    write_meld_csv("MELD.Raw/train/train_sent_emo.csv")
    write_meld_csv("MELD.Raw/val_sent_emo.csv")
    assert find_meld_csv(tmp_path, "train") == tmp_path / "MELD.Raw/train/train_sent_emo.csv"
    assert find_meld_csv(tmp_path, "dev") == tmp_path / "MELD.Raw/val_sent_emo.csv"
    assert find_meld_csv(tmp_path, "test", required=False) is None
    with pytest.raises(FileNotFoundError, match="test_sent_emo.csv"):
        find_meld_csv(tmp_path, "test")
    with pytest.raises(ValueError, match="unknown MELD split"):
        find_meld_csv(tmp_path, "validation")
    write_meld_csv("copy/train_sent_emo.csv")
    with pytest.raises(DataFormatError, match="several MELD train CSVs"):
        find_meld_csv(tmp_path, "train")


EMOTIONS = {
    "train": {"neutral": 4710, "joy": 1743, "surprise": 1205, "anger": 1109, "sadness": 683, "disgust": 271,
              "fear": 268},
    "dev": {"neutral": 470, "joy": 163, "surprise": 150, "anger": 153, "sadness": 111, "disgust": 22,
            "fear": 40},
}
SENTIMENTS = {"train": {"neutral": 4710, "negative": 2945, "positive": 2334},
              "dev": {"neutral": 470, "negative": 406, "positive": 233}}


@pytest.mark.parametrize("split", ["train", "dev"])
def test_real_meld_counts(meld_data_dir, split):
    utts = read_meld_csv(find_meld_csv(meld_data_dir, split))
    assert len(utts) == {"train": 9989, "dev": 1109}[split]
    assert Counter(u.emotion for u in utts) == EMOTIONS[split]
    assert Counter(u.sentiment for u in utts) == SENTIMENTS[split]
    assert len({u.dialogue_id for u in utts}) == {"train": 1038, "dev": 114}[split]


@pytest.mark.parametrize(("variant", "expected"), [("clean", "utf-8"), ("c1", "c1-controls"),
                                                   ("mojibake", "mojibake")])
def test_encoding_variant_is_detected(write_meld_csv, variant, expected):
    assert encoding_variant(write_meld_csv(variant=variant)) == expected


def test_validate_reports_each_published_fact(write_meld_csv, tmp_path):
    write_meld_csv("train_sent_emo.csv")
    write_meld_csv("dev_sent_emo.csv", rows=list(reversed(MELD_ROWS)))
    report = ValidationReport("meld", str(tmp_path))
    parsed = validate_meld_csvs(tmp_path, report)
    assert sorted(parsed) == ["dev", "train"]
    by_name = {c.name: c for c in report.checks}
    assert not by_name["train rows"].ok and "found 8, expected 9989" in by_name["train rows"].detail
    assert not by_name["dev rows sorted by (Dialogue_ID, Utterance_ID)"].ok
    assert by_name["train rows sorted by (Dialogue_ID, Utterance_ID)"].ok
    assert report.counts["dev"]["emotion"]["fear"] == 1 and report.counts["dev"]["encoding"] == "utf-8"
    assert report.errors == 7  # rows, dialogues, emotions for both splits + dev order


def test_validate_names_a_broken_or_missing_file(write_meld_csv, tmp_path):
    write_meld_csv("train_sent_emo.csv", header=[h for h in MELD_HEADER if h != "Speaker"])
    report = ValidationReport("meld", str(tmp_path))
    assert validate_meld_csvs(tmp_path, report) == {}
    names = {c.name: c.detail for c in report.checks if not c.ok}
    assert "missing column(s) ['Speaker']" in names["train CSV parses"]
    assert "no dev_sent_emo.csv" in names["dev CSV present"]


def test_real_meld_validates_without_errors(meld_data_dir):
    report = ValidationReport("meld", str(meld_data_dir))
    validate_meld_csvs(meld_data_dir, report)
    assert report.errors == 0 and len(report.checks) == 8


def test_meld_source_passes_extractor_params_to_word_vectors(tmp_path, monkeypatch):
    from scenesense.config import ConfigError, DataConfig
    from scenesense.data.store import open_store_split
    from scenesense.datasets.sources import prepare_dataset

    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "meld"
    root.mkdir()
    for split in ("train", "dev"):
        (root / f"{split}_sent_emo.csv").write_bytes(render_meld_csv(MELD_ROWS))
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the 1 0 0\noh 0 1 0\nmy 0 0 1\n", encoding="utf-8")
    params = {"extractor": "word_vectors", "model_path": str(vectors), "extractor_params": {"oov": "skip"}}
    store = prepare_dataset(DataConfig(dataset="meld", root=str(root), params=params))
    info = open_store_split(store / "dev.h5").features["text"]
    assert info.dim == 3 and info.provenance["params"]["oov"] == "skip"
    with pytest.raises(ConfigError, match="extractor_params"):
        prepare_dataset(DataConfig(dataset="meld", root=str(root), params={**params, "extractor_params": [1]}))


def test_find_meld_csv_follows_a_linked_folder_without_looping(tmp_path, write_meld_csv):
    real = write_meld_csv("elsewhere/train_sent_emo.csv").parent
    root = tmp_path / "MELD"
    root.mkdir()
    (root / "Raw").symlink_to(real, target_is_directory=True)
    (real / "loop").symlink_to(real, target_is_directory=True)  # a link back up must not repeat the walk
    assert find_meld_csv(root, "train") == root / "Raw" / "train_sent_emo.csv"
