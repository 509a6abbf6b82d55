from __future__ import annotations

from pathlib import Path

import pytest

from scenesense.datasets.meld_manifest import meld_split_from_name, read_meld_manifest
from scenesense.datasets.ravdess_manifest import read_ravdess_manifest
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS, LabelSpace
from scenesense.data.validation import DataFormatError
from scenesense.extraction.manifest import (
    ManifestItem,
    read_folder_manifest,
    read_manifest_csv,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch(root: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x01")
        out.append(path)
    return out


def test_csv_manifest_fields_and_paths(tmp_path):
    csv_path = write(tmp_path / "data" / "m.csv",
                     "\ufeffid,split,label,text,audio,video,media,dialogue_id,speaker,position\n"
                     'a,train,happy,"Hello, there",clips/a.wav,,,d1,Ann,0\n'
                     "b,,,,,/abs/b.mp4,,,,\n"
                     "c,dev,sad,,,,c.mkv,d1,Bob,3\n")
    manifest = read_manifest_csv(csv_path)
    a, b, c = manifest.items
    assert a == ManifestItem(id="a", split="train", label="happy", text="Hello, there",
                             audio=tmp_path / "data" / "clips" / "a.wav", dialogue_id="d1", speaker="Ann",
                             position=0, where=f"{csv_path}: line 2 (a)")
    assert (b.split, b.label, b.text, b.video, b.position) == ("test", None, None, Path("/abs/b.mp4"), -1)
    assert c.media == tmp_path / "data" / "c.mkv" and c.position == 3
    assert manifest.source == {"kind": "csv", "path": str(csv_path.resolve())}
    assert manifest.label_space is None
    # what each input kind reads: audio -> audio, else media; video -> video, else media
    assert [a.input_for(k) for k in ("text", "audio", "video")] == ["Hello, there", a.audio, None]
    assert (b.input_for("audio"), b.input_for("video")) == (None, b.video)
    assert (c.input_for("audio"), c.input_for("video")) == (c.media, c.media)
    assert [i.split for i in read_manifest_csv(csv_path, split="all").items] == ["all"] * 3


def test_csv_manifest_missing_media_is_not_an_error_here(tmp_path):
    csv_path = write(tmp_path / "m.csv", "id,audio\nx,nowhere.wav\n")
    assert read_manifest_csv(csv_path).items[0].audio == tmp_path / "nowhere.wav"


@pytest.mark.parametrize(("text", "message"), [
    ("id,text,mood\na,hi,x\n", r"m.csv: line 1: unknown column\(s\) \['mood'\]; allowed columns are"),
    ("id,text,text\na,hi,x\n", r"m.csv: line 1: repeated column\(s\) \['text'\]"),
    ("text,label\nhi,x\n", r"m.csv: line 1: no 'id' column"),
    ("id,label\na,x\n", r"m.csv: line 1: needs at least one of \['text', 'audio', 'video', 'media'\]"),
    ("", r"m.csv: empty file"),
    ("id,text\n", r"m.csv: no rows after the header"),
    ("id,text\na,hi\nb,yo\na,again\n",
     r"m.csv: line 4 \(a\): duplicate id 'a' \(first at .*m.csv: line 2 \(a\)\)"),
    ("id,text\n ,hi\n", r"m.csv: line 2: empty id"),
    ("id,text\na,hi,extra\n", r"m.csv: line 2: more cells than the 2 header columns"),
    ("id,text,position\na,hi,first\n", r"m.csv: line 2 \(a\): position 'first' is not an integer"),
    ("id,text,split\na,hi,../x\n", r"m.csv: line 2 \(a\): split '../x' is not a valid name"),
    ("id,text,audio\na,,\n", r"m.csv: line 2 \(a\): no text, audio, video or media for this row"),
])
def test_csv_manifest_errors_name_file_and_row(tmp_path, text, message):
    path = write(tmp_path / "m.csv", text)
    with pytest.raises(DataFormatError, match=message):
        read_manifest_csv(path)


def test_csv_manifest_labels_checked_against_label_set(tmp_path):
    path = write(tmp_path / "m.csv", "id,label,text\na,joy,hi\nb,,yo\nc,angry,no\n")
    with pytest.raises(DataFormatError, match=r"m.csv: line 4 \(c\): label 'angry' is not in the label set "
                                              r"\['joy', 'sadness'\]"):
        read_manifest_csv(path, label_space=LabelSpace(("joy", "sadness")))
    assert [i.label for i in read_manifest_csv(path).items] == ["joy", None, "angry"]


def test_csv_manifest_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such manifest file"):
        read_manifest_csv(tmp_path / "nope.csv")


def test_meld_manifest(write_meld_csv, tmp_path):
    csv_path = write_meld_csv("dev_sent_emo.csv")
    clips = tmp_path / "clips"
    clips.mkdir()
    manifest = read_meld_manifest(csv_path, media_dir=clips)
    items = manifest.items
    assert [i.id for i in items][:5] == ["dia0_utt0", "dia0_utt1", "dia1_utt0", "dia1_utt1", "dia1_utt4"]
    assert {i.split for i in items} == {"dev"}
    assert [i.label for i in items][:3] == ["neutral", "neutral", "sadness"]
    assert [i.position for i in items][2:5] == [0, 1, 2]  # Utterance_ID gap 1 -> 4 leaves no gap
    assert items[3].text == "What?" and items[3].speaker == "Monica" and items[3].dialogue_id == "dia1"
    assert items[3].media == clips / "dia1_utt1.mp4" and items[3].input_for("audio") == items[3].media
    assert manifest.label_space == MELD_EMOTIONS and manifest.source["kind"] == "meld"
    sentiment = read_meld_manifest(csv_path, label="sentiment", split="valid")
    assert sentiment.label_space == MELD_SENTIMENTS and sentiment.items[2].label == "negative"
    assert sentiment.items[0].media is None and sentiment.items[0].split == "valid"
    with pytest.raises(FileNotFoundError, match="no such media folder"):
        read_meld_manifest(csv_path, media_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown MELD label 'mood'"):
        read_meld_manifest(csv_path, label="mood")


@pytest.mark.parametrize(("name", "split"), [("train_sent_emo.csv", "train"), ("val_sent_emo.csv", "dev"),
                                             ("dev_sent_emo.csv", "dev"), ("test_sent_emo.csv", "test"),
                                             ("mine.csv", "test")])
def test_meld_split_from_name(name, split):
    assert meld_split_from_name(Path(name)) == split


def test_ravdess_manifest(tmp_path):
    touch(tmp_path, "Actor_01/03-01-05-01-01-01-01.wav", "Actor_01/01-01-03-02-01-01-01.mp4",
          "Actor_01/02-01-03-02-01-01-01.mp4", "Actor_01/03-02-04-01-01-01-01.wav",
          "Actor_18/03-01-01-01-02-02-18.wav", "Actor_22/03-01-08-02-01-01-22.wav",
          "Actor_01/._03-01-05-01-01-01-01.wav", "Actor_01/.hidden/03-01-02-01-01-01-01.wav")
    assert "03-02-04-01-01-01-01" not in {i.id for i in read_ravdess_manifest(tmp_path).items}  # speech only
    manifest = read_ravdess_manifest(tmp_path, channel="all")
    by_id = {i.id: i for i in manifest.items}
    assert list(by_id) == ["01-01-03-02-01-01-01", "02-01-03-02-01-01-01", "03-01-05-01-01-01-01",
                           "03-02-04-01-01-01-01", "03-01-01-01-02-02-18", "03-01-08-02-01-01-22"]
    assert [by_id[k].split for k in by_id] == ["train"] * 4 + ["dev", "test"]
    assert [by_id[k].label for k in by_id] == ["happy", "happy", "angry", "sad", "neutral", "surprised"]
    audio_video, video_only, audio_only = (by_id[k] for k in list(by_id)[:3])
    assert audio_video.media is not None and audio_video.input_for("audio") == audio_video.media
    assert video_only.video is not None and video_only.input_for("audio") is None
    assert audio_only.audio is not None and audio_only.input_for("video") is None
    assert audio_only.speaker == audio_only.dialogue_id == "actor01"
    assert manifest.label_space is not None and manifest.label_space.num_classes == 8
    assert {i.split for i in read_ravdess_manifest(tmp_path, channel="all", split="test").items} == {"test"}
    assert len(read_ravdess_manifest(tmp_path, channel="song").items) == 1
    only = read_ravdess_manifest(tmp_path, actor_splits={"train": [1]})
    assert {i.speaker for i in only.items} == {"actor01"}
    with pytest.raises(ValueError, match="actor 1 is in train and dev"):
        read_ravdess_manifest(tmp_path, actor_splits={"train": [1, 2], "dev": [1]})


def test_ravdess_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such RAVDESS folder"):
        read_ravdess_manifest(tmp_path / "none")
    touch(tmp_path, "Actor_02/03-01-05-01-01-01-02.wav")
    with pytest.raises(DataFormatError, match="no RAVDESS song clips"):
        read_ravdess_manifest(tmp_path, channel="song")
    touch(tmp_path, "Actor_02/03-01-09-01-01-01-02.wav")
    with pytest.raises(DataFormatError, match=r"03-01-09-01-01-01-02.wav: emotion field '09'"):
        read_ravdess_manifest(tmp_path)


def test_folder_manifest(tmp_path):
    touch(tmp_path, "a.wav", "sub/b.MP4", "c.flac", "notes.txt", ".d.wav")
    manifest = read_folder_manifest(tmp_path)
    assert [(i.id, i.split, i.label) for i in manifest.items] == [("a", "test", None), ("c", "test", None),
                                                                   ("b", "test", None)]
    a, c, b = manifest.items
    assert a.audio == tmp_path / "a.wav" and b.media == tmp_path / "sub" / "b.MP4" and c.audio is not None
    assert manifest.source["kind"] == "folder" and manifest.label_space is None
    assert {i.split for i in read_folder_manifest(tmp_path, split="new").items} == {"new"}
    touch(tmp_path, "other/a.mp3")
    with pytest.raises(DataFormatError, match=r"a.mp3: duplicate id 'a' \(first at .*a.wav\)"):
        read_folder_manifest(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no audio or video files"):
        read_folder_manifest(empty)
    with pytest.raises(FileNotFoundError, match="no such folder of clips"):
        read_folder_manifest(tmp_path / "nope")


def test_ravdess_actor_folders_behind_symbolic_links(tmp_path):
    real = tmp_path / "real"
    touch(real, "Actor_01/03-01-05-01-01-01-01.wav", "Actor_18/03-01-03-01-01-01-18.wav")
    (real / "Actor_01" / "up").symlink_to(real, target_is_directory=True)  # a loop: followed once
    root = tmp_path / "tree"
    root.mkdir()
    for actor in ("Actor_01", "Actor_18"):
        (root / actor).symlink_to(real / actor, target_is_directory=True)
    manifest = read_ravdess_manifest(root)
    assert [(i.id, i.split) for i in manifest.items] == [("03-01-05-01-01-01-01", "train"),
                                                         ("03-01-03-01-01-01-18", "dev")]
    folder = read_folder_manifest(root)
    assert sorted(i.id for i in folder.items) == ["03-01-03-01-01-01-18", "03-01-05-01-01-01-01"]


def test_ravdess_without_clips_is_worded_for_a_person(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "readme.txt").write_text("no clips here")
    with pytest.raises(DataFormatError) as err:
        read_ravdess_manifest(tmp_path)
    assert str(err.value) == (f"no RAVDESS clips (*.wav, *.mp4 named like 03-01-05-01-02-01-12.wav) "
                              f"found under {tmp_path}")
    touch(tmp_path, "Actor_02/03-01-05-01-01-01-02.wav")
    with pytest.raises(DataFormatError, match=r"no RAVDESS clips of the chosen actors \[5\] among the 1 clips"):
        read_ravdess_manifest(tmp_path, actor_splits={"train": [5]})
