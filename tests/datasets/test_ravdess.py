"""The ``ravdess`` source: name rules, WAV headers, join by file name, speaker-independent splits."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.config import ConfigError, DataConfig
from scenesense.data.store import open_store_split
from scenesense.data.validation import DataFormatError
from scenesense.datasets.ravdess import RavdessSource, assign_splits, check_speaker_independent
from scenesense.datasets.ravdess_files import (
    RAVDESS_EMOTIONS,
    parse_ravdess_name,
    read_clip_table,
    read_wav_info,
)
from scenesense.datasets.sources import prepare_dataset
from tests.datasets.fixtures_ravdess import (
    AU_COLUMNS,
    MFCC_COLUMNS,
    clip_f0,
    ravdess_name,
    speech_names,
    table_values,
    write_clip_table,
    write_mp4,
    write_ravdess,
    write_wav,
)


def _convert(root: Path, out: Path, **given):
    source = RavdessSource()
    params = source.params({"train_actors": [1, 2], "dev_actors": [3], **given})
    return {split: open_store_split(path) for split, path in source.convert(root, out, params).items()}


def _one_line_error(call, *needles: str) -> str:
    with pytest.raises(DataFormatError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    return message


# --- names ---------------------------------------------------------------------------------------

def test_name_fields_sex_and_audio_twin():
    name = parse_ravdess_name(Path("Actor_12/01-02-06-02-01-02-12.mp4"))
    assert (name.modality, name.channel, name.emotion, name.intensity, name.statement, name.repetition,
            name.actor, name.extension) == (1, 2, 6, 2, 1, 2, 12, "mp4")
    assert name.sex == "female" and parse_ravdess_name("03-01-01-01-01-01-07.wav").sex == "male"
    assert name.audio_twin == "03-02-06-02-01-02-12.wav"


def test_emotion_order_is_the_ravdess_code_order():
    assert RAVDESS_EMOTIONS.names == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                      "surprised")


@pytest.mark.parametrize(("path", "rule"), [
    ("03-01-09-01-01-01-01.wav", "emotion field '09'"),
    ("03-01-01-01-01-01-25.wav", "actor field '25'"),
    ("04-01-01-01-01-01-01.wav", "modality field '04'"),
    ("03-01-01-01-01-01.wav", "not a RAVDESS name"),
    ("03-01-01-01-01-01-01.WAV", "not a RAVDESS name"),
    ("03-01-01-02-01-01-01.wav", "neutral (emotion 01) has no strong intensity"),
    ("03-02-07-01-01-01-01.wav", "song (channel 02) never has emotion 07 or 08"),
    ("03-02-03-01-01-01-18.wav", "actor 18 has no song files"),
    ("01-01-03-01-01-01-01.wav", "modality 03 is .wav"),
    ("Actor_05/03-01-03-01-01-01-06.wav", "does not match folder Actor_05"),
])
def test_a_broken_name_is_one_line_naming_file_and_rule(path, rule):
    _one_line_error(lambda: parse_ravdess_name(Path(path)), Path(path).name, rule)


# --- WAV headers ---------------------------------------------------------------------------------

def test_wav_headers_16k_mono_and_48k_stereo(tmp_path):
    mono = read_wav_info(write_wav(tmp_path / "a.wav", 16000, 1, frames=40))
    stereo = read_wav_info(write_wav(tmp_path / "b.wav", 48000, 2, frames=96))
    assert (mono.rate, mono.channels, mono.width, mono.frames) == (16000, 1, 2, 40)
    assert (stereo.rate, stereo.channels, stereo.frames) == (48000, 2, 96)
    assert stereo.label == "48000 Hz 2 ch 16 bit"


def test_truncated_wav_data_is_an_error(tmp_path):
    path = write_wav(tmp_path / "03-01-01-01-01-01-01.wav", frames=100)
    path.write_bytes(path.read_bytes()[:-20])
    _one_line_error(lambda: read_wav_info(path), path.name, "truncated WAV")


@pytest.mark.parametrize("payload", [b"", b"RIFF\x10\x00", b"not a wav file at all, just text" * 3])
def test_non_wav_is_an_error(tmp_path, payload):
    path = tmp_path / "03-01-01-01-01-01-01.wav"
    path.write_bytes(payload)
    _one_line_error(lambda: read_wav_info(path), path.name, "not a readable PCM WAV")


# --- table ---------------------------------------------------------------------------------------

def test_table_duplicate_file_and_non_number_name_the_row(tmp_path):
    path = write_clip_table(tmp_path / "t.csv", [ravdess_name(3, 1)] * 2)
    _one_line_error(lambda: read_clip_table(path), "t.csv", "appears twice")
    name = ravdess_name(3, 1)
    path = write_clip_table(tmp_path / "t.csv", [name], overrides={(name, "AU04_r"): "x"})
    _one_line_error(lambda: read_clip_table(path), "t.csv", ravdess_name(3, 1), "'AU04_r'")


def test_table_columns_are_split_into_au_and_mfcc(tmp_path):
    table = read_clip_table(write_clip_table(tmp_path / "t.csv", [ravdess_name(3, 1)]))
    assert table.au_columns == tuple(AU_COLUMNS) and table.mfcc_columns == tuple(MFCC_COLUMNS)
    assert len(table.au_columns) == 35 and len(table.mfcc_columns) == 259


# --- splits --------------------------------------------------------------------------------------

def test_default_split_is_train_1_to_16_dev_17_to_20_no_test():
    params = RavdessSource().params({})
    assert assign_splits(range(1, 21), params) == {"train": list(range(1, 17)), "dev": [17, 18, 19, 20]}


def test_actor_lists_accept_range_strings_and_test_split():
    params = RavdessSource().params({"train_actors": "1-4,7", "dev_actors": [5], "test_actors": "6"})
    assert assign_splits([], params) == {"train": [1, 2, 3, 4, 7], "dev": [5], "test": [6]}
    assert RavdessSource().splits(None, params) == ["train", "dev", "test"]


def test_kfold_groups_are_contiguous_and_deterministic():
    params = RavdessSource().params({"split": "kfold", "folds": 5, "fold": 1})
    assert assign_splits(range(1, 21), params)["dev"] == [5, 6, 7, 8]
    params = RavdessSource().params({"split": "kfold", "folds": 3, "fold": 0})
    assert assign_splits([2, 4, 6, 8, 10, 12, 14], params)["dev"] == [2, 4, 6]


@pytest.mark.parametrize("fold", range(5))
def test_every_kfold_split_is_speaker_independent_and_complete(fold):
    split = assign_splits(range(1, 21), RavdessSource().params({"split": "kfold", "fold": fold}))
    assert not set(split["train"]) & set(split["dev"])
    assert sorted(split["train"] + split["dev"]) == list(range(1, 21))


def test_an_actor_in_two_splits_is_refused():
    with pytest.raises(ValueError, match="actor 16 is in both train and dev"):
        RavdessSource().params({"dev_actors": [16, 17]})
    with pytest.raises(ValueError, match="actor 3"):
        check_speaker_independent({"train": [1, 3], "test": [3]})


@pytest.mark.parametrize("given", [{"channel": "both"}, {"split": "random"}, {"folds": 1}, {"fold": 5},
                                   {"train_actors": []}, {"dev_actors": [30]}, {"nope": 1},
                                   {"audio": "nope"}, {"audio": "minilm"}, {"audio": "egemaps", "audio_params": 3},
                                   {"audio": "egemaps", "audio_params": {"max_frames": 10}},
                                   {"audio": "egemaps_lld", "audio_params": {"max_frames": 0}},
                                   {"audio_params": {"sample_rate": 8000}}])
def test_bad_params_are_config_errors(given):
    with pytest.raises(ConfigError):
        RavdessSource().params(given)


# --- convert -------------------------------------------------------------------------------------

def test_convert_ids_labels_speakers_and_split_membership(tmp_path):
    stores = _convert(write_ravdess(tmp_path / "r"), tmp_path / "out")
    assert set(stores) == {"train", "dev"}
    train, dev = stores["train"], stores["dev"]
    assert train.ids[:4] == tuple(n[:-4] for n in speech_names(1))
    assert set(train.speakers) == {"actor01", "actor02"} and set(dev.speakers) == {"actor03"}
    assert train.dialogue_ids == train.speakers
    assert train.labels[:4].tolist() == [0, 2, 4, 7]  # emotions 01, 03, 05, 08
    assert train.label_space == RAVDESS_EMOTIONS
    assert {n: (f.modality, f.kind, f.dim) for n, f in train.features.items()} == {
        "vision": ("vision", "vector", 35), "audio": ("audio", "vector", 259)}
    assert train.source["wav_formats"] == {"48000 Hz 2 ch 16 bit": 1, "48000 Hz 1 ch 16 bit": 7}


def test_table_is_joined_by_file_name_not_by_row(tmp_path):
    root = write_ravdess(tmp_path / "r")  # table rows are shuffled
    stores = _convert(root, tmp_path / "out")
    for split in stores.values():
        with h5py.File(split.path) as f:
            for i, key in enumerate(split.ids):
                au, mfcc = table_values(key + ".wav")
                np.testing.assert_allclose(f["features/vision/data"][i], au, rtol=1e-6)
                np.testing.assert_allclose(f["features/audio/data"][i], mfcc, rtol=1e-6)


def test_no_actor_is_in_two_stores(tmp_path):
    stores = _convert(write_ravdess(tmp_path / "r", actors=(1, 2, 3, 4, 5, 6)), tmp_path / "out",
                      split="kfold", folds=3, fold=2)
    assert not set(stores["train"].speakers) & set(stores["dev"].speakers)
    assert set(stores["dev"].speakers) == {"actor05", "actor06"}


def test_clip_without_table_row_has_modalities_missing(tmp_path):
    root = write_ravdess(tmp_path / "r", table=False)
    names = speech_names(1) + speech_names(2) + speech_names(3)
    orphan = ravdess_name(2, 9)
    write_clip_table(root / "openface_au_mfcc.csv", [*names[1:], orphan])  # drop one row, add an orphan
    train = _convert(root, tmp_path / "out")["train"]
    with h5py.File(train.path) as f:
        assert f["features/vision/present"][:].tolist() == [False] + [True] * 7
        assert f["features/audio/present"][0] == np.False_
    assert train.source["clips_without_table_row"] == 1


def test_nan_in_a_used_row_names_table_row_and_column(tmp_path):
    root = write_ravdess(tmp_path / "r", table=False)
    names = speech_names(1) + speech_names(2) + speech_names(3)
    write_clip_table(root / "openface_au_mfcc.csv", names, overrides={(names[5], "mfcc_stat_007"): "nan"})
    _one_line_error(lambda: _convert(root, tmp_path / "out"), "openface_au_mfcc.csv", names[5],
                    "'mfcc_stat_007'")


def test_channel_selects_speech_song_or_all(tmp_path):
    song = [ravdess_name(3, a, channel=2) for a in (1, 3)]
    root = write_ravdess(tmp_path / "r", extra_names=song)
    assert _convert(root, tmp_path / "speech")["train"].n == 8
    both = _convert(root, tmp_path / "all", channel="all")
    assert both["train"].n == 9 and both["dev"].n == 5
    assert _convert(root, tmp_path / "song", channel="song")["dev"].ids == (song[1][:-4],)


def test_video_clip_joins_its_audio_twin_row(tmp_path):
    root = write_ravdess(tmp_path / "r")
    (root / "video" / "Actor_03").mkdir(parents=True)
    (root / "video" / "Actor_03" / ravdess_name(1, 3, repetition=1, modality=1, ext="mp4")).write_bytes(b"")
    dev = _convert(root, tmp_path / "out")["dev"]
    assert "01-01-01-01-01-01-03" in dev.ids and dev.n == 5


def test_broken_wav_fails_conversion_naming_it(tmp_path):
    root = write_ravdess(tmp_path / "r")
    bad = root / "audio" / "Actor_02" / speech_names(2)[3]
    bad.write_bytes(b"RIFF")
    _one_line_error(lambda: _convert(root, tmp_path / "out"), bad.name)
    assert not (tmp_path / "out" / "train.h5").exists()


def test_other_rates_and_widths_are_accepted_and_recorded(tmp_path):
    root = write_ravdess(tmp_path / "r")
    write_wav(root / "audio" / "Actor_03" / speech_names(3)[0], 22050, 1, width=1)
    assert _convert(root, tmp_path / "out")["dev"].source["wav_formats"] == {
        "22050 Hz 1 ch 8 bit": 1, "16000 Hz 1 ch 16 bit": 3}


def test_no_table_and_split_without_clips_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="openface_au_mfcc.csv"):
        _convert(write_ravdess(tmp_path / "a", table=False), tmp_path / "o1")
    with pytest.raises(ConfigError, match=r"dev actors \[4\]"):
        _convert(write_ravdess(tmp_path / "b"), tmp_path / "o2", dev_actors=[4])


def test_table_param_and_default_search(tmp_path):
    root = write_ravdess(tmp_path / "r")
    moved = (root / "openface_au_mfcc.csv").rename(tmp_path / "elsewhere.csv")
    assert _convert(root, tmp_path / "out", table=str(moved))["train"].source["table"] == "elsewhere.csv"
    assert moved in RavdessSource().inputs(root, RavdessSource().params({"table": str(moved)}))


def test_split_all_puts_every_actor_into_one_test_split(tmp_path):
    params = RavdessSource().params({"split": "all", "train_actors": []})  # actor lists are ignored
    assert RavdessSource().splits(None, params) == ["test"]
    assert assign_splits([7, 3, 21, 3], params) == {"test": [3, 7, 21]}
    root = write_ravdess(tmp_path / "withheld" / "anywhere", actors=(21, 22))
    stores = _convert(root, tmp_path / "out", split="all")
    assert list(stores) == ["test"] and stores["test"].n == 8
    assert set(stores["test"].speakers) == {"actor21", "actor22"}
    assert stores["test"].source["split_design"] == "all"
    assert {n: f.dim for n, f in stores["test"].features.items()} == {"vision": 35, "audio": 259}


# --- audio extracted from the clips (audio=<extractor>) -----------------------------------------

@pytest.fixture
def opensmile_available():
    pytest.importorskip("av")
    pytest.importorskip("opensmile")


def _egemaps(path: Path) -> np.ndarray:
    from scenesense.extraction import EXTRACTORS

    return EXTRACTORS.create("egemaps").extract_one(str(path))["functionals"]


def test_audio_egemaps_replaces_the_table_mfcc_and_keeps_the_au(tmp_path, opensmile_available):
    root = write_ravdess(tmp_path / "r", seconds=0.4)
    stores = _convert(root, tmp_path / "out", audio="egemaps")
    train = stores["train"]
    audio = train.features["audio"]
    assert (audio.modality, audio.kind, audio.dim) == ("audio", "vector", 88)
    assert audio.provenance["extractor"] == "egemaps" and audio.provenance["feature_set"] == "eGeMAPSv02"
    assert audio.provenance["versions"]["opensmile"] != "not installed"
    assert "16000 Hz" in audio.provenance["input"] and "audio twin" in audio.provenance["clip_audio"]
    assert train.source["audio"] == "egemaps" and train.source["clips_without_audio"] == 0
    with h5py.File(train.path) as f:
        assert f["features/audio/present"][:].all()
        rows = f["features/audio/data"][:]
        for i, key in enumerate(train.ids):
            np.testing.assert_allclose(f["features/vision/data"][i], table_values(key + ".wav")[0], rtol=1e-6)
    first = root / "audio" / "Actor_01" / f"{train.ids[0]}.wav"
    np.testing.assert_array_equal(rows[0], _egemaps(first))
    # joined by name: feature 0 (mean F0 in semitones above 27.5 Hz) follows each clip's tone pitch
    f0 = np.array([clip_f0(k + ".wav") for k in train.ids])
    assert np.argsort(rows[:, 0]).tolist() == np.argsort(f0).tolist()
    assert np.abs(rows[:, 0] - 12 * np.log2(f0 / 27.5)).max() < 1.0


def test_a_clip_whose_audio_fails_is_missing_and_counted_not_fatal(tmp_path, opensmile_available, caplog):
    root = write_ravdess(tmp_path / "r", seconds=0.4)
    silent = root / "audio" / "Actor_03" / speech_names(3)[2]
    write_wav(silent, 16000, seconds=0.4, amplitude=0.0)  # all-zero samples
    dev = _convert(root, tmp_path / "out", audio="egemaps")["dev"]
    with h5py.File(dev.path) as f:
        present = f["features/audio/present"][:].tolist()
        assert f["features/vision/present"][:].all()
    assert present == [name != silent.name for name in (k + ".wav" for k in dev.ids)]
    assert dev.source["clips_without_audio"] == 1
    assert silent.name[:-4] in dev.source["audio_errors"][0] and "silent audio" in dev.source["audio_errors"][0]
    assert any("silent audio" in r.getMessage() for r in caplog.records)


def test_video_clips_take_the_audio_of_their_twin_or_their_own_track(tmp_path, opensmile_available):
    root = write_ravdess(tmp_path / "r", seconds=0.4)
    folder = root / "video" / "Actor_03"
    twin = speech_names(3)[0]  # its WAV exists; the video-only file is empty: it is never read
    video_only = "02" + twin[2:-4] + ".mp4"
    (folder / video_only).parent.mkdir(parents=True)
    (folder / video_only).write_bytes(b"")
    talking = ravdess_name(2, 3, modality=1, ext="mp4")  # no twin WAV: its own audio track is used
    write_mp4(folder / talking, 0.4, f0=clip_f0(talking))
    muted = ravdess_name(4, 3, modality=2, ext="mp4")  # no twin, no audio track
    write_mp4(folder / muted, 0.4)
    dev = _convert(root, tmp_path / "out", audio="egemaps")["dev"]
    with h5py.File(dev.path) as f:
        rows, present = f["features/audio/data"][:], f["features/audio/present"][:]
    ids = list(dev.ids)
    np.testing.assert_array_equal(rows[ids.index(video_only[:-4])], rows[ids.index(twin[:-4])])
    np.testing.assert_array_equal(rows[ids.index(talking[:-4])], _egemaps(folder / talking))
    assert present[ids.index(talking[:-4])] and not present[ids.index(muted[:-4])]
    assert dev.source["clips_without_audio"] == 1 and "no audio stream" in dev.source["audio_errors"][0]


def test_audio_extractor_needs_no_table_and_writes_lld_sequences(tmp_path, opensmile_available):
    root = write_ravdess(tmp_path / "r", seconds=0.4, table=False)
    stores = _convert(root, tmp_path / "out", audio="egemaps_lld", audio_params={"max_frames": 20})
    train = stores["train"]
    assert set(train.features) == {"audio"} and train.source["table"] is None
    info = train.features["audio"]
    assert (info.kind, info.dim, info.max_len) == ("sequence", 25, 20)
    assert info.provenance["params"]["max_frames"] == 20 and info.provenance["frame_hop_ms"] == 10
    with h5py.File(train.path) as f:
        assert f["features/audio/lengths"][:].tolist() == [20] * train.n


def test_audio_choice_and_its_params_change_the_cache_key(tmp_path, opensmile_available):
    root = write_ravdess(tmp_path / "r", seconds=0.4)
    keys = {}
    for label, given in {"table": {}, "egemaps": {"audio": "egemaps"},
                         "egemaps 22k": {"audio": "egemaps", "audio_params": {"sample_rate": 22050}}}.items():
        cfg = DataConfig(dataset="ravdess", root=str(root),
                         params={"train_actors": [1, 2], "dev_actors": [3], **given})
        keys[label] = prepare_dataset(cfg, tmp_path / "cache")
        assert prepare_dataset(cfg, tmp_path / "cache") == keys[label]  # cached
    assert len(set(keys.values())) == 3
    assert open_store_split(keys["egemaps 22k"] / "dev.h5").features["audio"].provenance["params"][
        "sample_rate"] == 22050
    identity = RavdessSource().identity(root, RavdessSource().params({"audio": "egemaps"}))
    assert identity["audio_extractor"]["versions"]["opensmile"] != "not installed"


def test_checking_audio_params_loads_no_audio_library():
    import subprocess
    import sys

    code = ("import sys; from scenesense.datasets.ravdess import RavdessSource as R; "
            "R().params({'audio': 'egemaps_lld', 'audio_params': {'max_frames': 5}}); "
            "print(sorted(m for m in ('opensmile', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_needs_no_table_when_audio_is_extracted(tmp_path):
    root = write_ravdess(tmp_path / "r", actors=(1, 2, 3), full=True, table=False)
    given = {"train_actors": [1, 2], "dev_actors": [3]}
    assert RavdessSource().validate(root, RavdessSource().params(given)).errors == 1
    report = RavdessSource().validate(root, RavdessSource().params({**given, "audio": "egemaps"}))
    assert report.errors == 0, report.format()


def test_split_all_with_extracted_audio(tmp_path, opensmile_available):
    root = write_ravdess(tmp_path / "withheld", actors=(21,), seconds=0.4)
    test = _convert(root, tmp_path / "out", split="all", audio="egemaps")["test"]
    assert test.n == 4 and test.features["audio"].dim == 88 and test.features["vision"].dim == 35


# --- validate ------------------------------------------------------------------------------------

def test_validate_a_complete_fixture_has_zero_errors(tmp_path):
    root = write_ravdess(tmp_path / "r", actors=(1, 2, 3), full=True)
    params = RavdessSource().params({"train_actors": [1, 2], "dev_actors": [3]})
    report = RavdessSource().validate(root, params)
    assert report.errors == 0, report.format()
    assert report.counts["speech_wav_per_actor"] == {"01": 60, "02": 60, "03": 60}
    assert report.counts["wav_formats"] == {"48000 Hz 2 ch 16 bit": 1, "48000 Hz 1 ch 16 bit": 119,
                                            "16000 Hz 1 ch 16 bit": 60}
    assert report.counts["table_rows"] == 180 and report.counts["clips_without_table_row"] == 0


def test_validate_reports_each_broken_fact(tmp_path):
    root = write_ravdess(tmp_path / "r", actors=(1, 3), full=True, table=False,
                         extra_names=["03-01-01-02-01-01-03.wav"])
    names = speech_names(1, True) + speech_names(3, True)
    write_clip_table(root / "openface_au_mfcc.csv", names[1:] + [ravdess_name(2, 9)],
                     overrides={(names[2], "AU01_r"): "6", (names[3], "AU28_c"): "nan"})
    (root / "audio" / "Actor_03" / names[-1]).write_bytes(b"RIFF")
    write_wav(root / "audio" / "Actor_03" / names[-2], 48000)  # actor 03 now mixes 16 and 48 kHz
    report = RavdessSource().validate(root, RavdessSource().params({"train_actors": [1], "dev_actors": [3]}))
    failed = {c.name for c in report.checks if not c.ok}
    assert failed == {"file names follow formats.md 7", "neutral (emotion 01) has no strong intensity (02)",
                      "WAV headers readable", "60 speech .wav per actor", "every table row has a clip",
                      "every clip has a table row", "table NaN/inf cells", "AU *_r intensities in [0, 5]",
                      "one sample rate per actor"}
    assert report.counts["table_nonfinite_cells"] == 1
    assert report.counts["table_rows_without_clip"] == 2  # actor 9's row, the broken WAV's row


def _shared_ravdess(shared_data_dir: Path) -> Path:
    root = shared_data_dir / "ravdess"
    if not (root / "openface_au_mfcc.csv").is_file():
        pytest.skip(f"RAVDESS not available under {root}")
    return root


def test_shared_ravdess_validates_with_zero_errors(shared_data_dir):
    root = _shared_ravdess(shared_data_dir)
    report = RavdessSource().validate(root, RavdessSource().params({}))
    assert report.errors == 0, report.format()
    assert report.counts["actors"] == list(range(1, 21))
    assert set(report.counts["speech_wav_per_actor"].values()) == {60}
    assert report.counts["wav_formats"] == {"48000 Hz 1 ch 16 bit": 118, "48000 Hz 2 ch 16 bit": 2,
                                            "16000 Hz 1 ch 16 bit": 1080}
    by_actor = report.counts["wav_formats_by_actor"]
    assert by_actor["01"] == {"48000 Hz 1 ch 16 bit": 58, "48000 Hz 2 ch 16 bit": 2}
    assert all(by_actor[f"{a:02d}"] == {"16000 Hz 1 ch 16 bit": 60} for a in range(3, 21))
    assert (report.counts["table_rows"], report.counts["table_rows_without_clip"],
            report.counts["table_nonfinite_cells"]) == (1200, 0, 0)


def test_shared_ravdess_cli_validate_exits_zero(shared_data_dir, capsys):
    from scenesense.cli import main

    root = _shared_ravdess(shared_data_dir)
    assert main(["data", "validate", "ravdess", "--root", str(root)]) == 0
    assert "checks passed" in capsys.readouterr().out


def test_shared_table_keys_are_the_audio_file_names(shared_data_dir):
    root = _shared_ravdess(shared_data_dir)
    with (root / "openface_au_mfcc.csv").open(newline="") as f:
        keys = [row["file"] for row in csv.DictReader(f)]
    on_disk = {p.name for p in (root / "audio").rglob("*.wav")}
    assert len(keys) == 1200 and set(keys) == on_disk


def _linked_tree(tmp_path: Path) -> Path:
    """A RAVDESS root whose actor folders and table are symbolic links (with a loop inside one)."""
    real = write_ravdess(tmp_path / "real")
    root = tmp_path / "linked"
    (root / "audio").mkdir(parents=True)
    for actor in sorted((real / "audio").iterdir()):
        (root / "audio" / actor.name).symlink_to(actor, target_is_directory=True)
    (real / "audio" / "Actor_01" / "loop").symlink_to(real / "audio", target_is_directory=True)
    (root / "openface_au_mfcc.csv").symlink_to(real / "openface_au_mfcc.csv")
    return root


def test_actor_folders_behind_symbolic_links_are_found(tmp_path):
    stores = _convert(_linked_tree(tmp_path), tmp_path / "out")
    plain = _convert(tmp_path / "real", tmp_path / "plain")
    assert {s: stores[s].ids for s in stores} == {s: plain[s].ids for s in plain}
    assert len(stores["train"].ids) == 8


def test_no_clip_at_all_is_worded_for_a_person(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    write_clip_table(root / "openface_au_mfcc.csv", [])
    _one_line_error(lambda: _convert(root, tmp_path / "out"), "no RAVDESS speech clips (*.wav, *.mp4 named "
                    f"like 03-01-05-01-02-01-12.wav) found under {root}")
