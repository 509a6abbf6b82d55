from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from scenesense.cli import main
from scenesense.data.store import open_store_split
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec


class CliFakeAudio(FeatureExtractor):
    """``level`` [1] = scale * file size; ``BAD`` content -> ItemError; ``interrupt`` stops the run."""

    modality: ClassVar[str] = "audio"
    input_kind: ClassVar[str] = "audio"
    interrupt_after: ClassVar[int | None] = None  # raise KeyboardInterrupt once this many items were done
    calls: ClassVar[list[str]] = []

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def outputs(self) -> dict[str, OutputSpec]:
        return {"level": OutputSpec("vector", 1)}

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "cli_fake_audio", "params": {"scale": self.scale}}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        limit = CliFakeAudio.interrupt_after
        if limit is not None and len(CliFakeAudio.calls) >= limit:
            raise KeyboardInterrupt
        CliFakeAudio.calls.append(Path(item).name)
        raw = Path(item).read_bytes()
        if raw.startswith(b"BAD"):
            raise ItemError(f"{item}: cannot decode")
        return {"level": np.array([self.scale * len(raw)], dtype=np.float32)}


@pytest.fixture
def fake_audio() -> Iterator[type[CliFakeAudio]]:
    """Register ``cli_fake_audio`` for one test only (the registry has no public unregister)."""
    EXTRACTORS.register("cli_fake_audio")(CliFakeAudio)
    CliFakeAudio.calls = []
    CliFakeAudio.interrupt_after = None
    yield CliFakeAudio
    EXTRACTORS._items.pop("cli_fake_audio", None)


def run_json(capsys, argv: list[str]) -> dict[str, Any]:
    assert main(argv + ["--json", "--no-progress"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def clips(root: Path, names: dict[str, bytes]) -> None:
    for name, data in names.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_manifest_text_and_audio(tmp_path, capsys, fake_audio):
    clips(tmp_path, {"a.wav": b"12345", "b.wav": b"BAD"})
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,split,label,text,audio\nu1,train,joy,Great news!,a.wav\nu2,train,anger,,b.wav\n"
                        "u3,dev,joy,Hello there,\n", encoding="utf-8")
    out = tmp_path / "store"
    summary = run_json(capsys, ["extract", "--manifest", str(manifest), "--features", "text=minilm",
                                "audio=cli_fake_audio", "--param", "text.max_tokens=8", "--param",
                                "cli_fake_audio.scale=2", "--out", str(out), "--batch-size", "2"])
    assert summary["rows"] == {"train": 1, "dev": 1} and summary["dropped"] == 1
    assert summary["failures"] == 1
    assert summary["failures_by_feature_set"]["audio"]["first"] == f"u2: {tmp_path / 'b.wav'}: cannot decode"
    assert summary["splits"]["train"]["features"] == {
        "text": {"modality": "text", "kind": "sequence", "dim": 384},
        "text_sentence": {"modality": "text", "kind": "vector", "dim": 384},
        "audio": {"modality": "audio", "kind": "vector", "dim": 1}}
    train = open_store_split(out / "train.h5")
    assert train.label_space.names == ("anger", "joy") and list(train.labels) == [1]
    assert train.features["text"].provenance["params"]["max_tokens"] == 8
    assert train.features["audio"].provenance["params"] == {"scale": 2}
    assert (out / "errors.csv").read_text().splitlines()[1].startswith("u2,train,audio,")


def test_meld_csv_with_media_dir(tmp_path, capsys, write_meld_csv, fake_audio):
    csv_path = write_meld_csv("train_sent_emo.csv")
    clips(tmp_path / "MELD.Raw", {"dia0_utt0.mp4": b"abc", "dia1_utt1.mp4": b"abcdef"})
    out = tmp_path / "store"
    summary = run_json(capsys, ["extract", "--meld-csv", str(csv_path), "--media-dir",
                                str(tmp_path / "MELD.Raw"), "--features", "audio=cli_fake_audio",
                                "--label", "sentiment", "--out", str(out)])
    assert summary["rows"] == {"train": 2} and summary["failures"] == 6  # 6 clips are missing
    split = open_store_split(out / "train.h5")
    assert split.ids == ("dia0_utt0", "dia1_utt1")
    assert split.label_space.names == ("neutral", "positive", "negative")
    assert list(split.labels) == [0, 2] and split.speakers == ("Chandler", "Monica")
    assert split.source["kind"] == "meld" and split.source["dropped"] == 6


def test_ravdess_and_folder(tmp_path, capsys, fake_audio):
    clips(tmp_path / "rav", {"Actor_01/03-01-03-01-01-01-01.wav": b"ab",
                             "Actor_17/03-01-04-01-01-01-17.wav": b"a",
                             "Actor_23/03-01-05-01-01-01-23.wav": b"abc"})
    features = ["--features", "audio=cli_fake_audio"]
    summary = run_json(capsys, ["extract", "--ravdess", str(tmp_path / "rav"), *features,
                                "--out", str(tmp_path / "s1")])
    assert summary["rows"] == {"train": 1, "dev": 1, "test": 1}
    assert list(open_store_split(tmp_path / "s1" / "test.h5").labels) == [4]  # angry in RAVDESS order
    summary = run_json(capsys, ["extract", "--folder", str(tmp_path / "rav"), *features,
                                "--labels", "ravdess", "--split", "pool", "--out", str(tmp_path / "s2")])
    split = open_store_split(tmp_path / "s2" / "pool.h5")
    assert summary["unlabelled"] == 3 and list(split.labels) == [-1, -1, -1]
    assert split.label_space.num_classes == 8


def test_ravdess_channel_defaults_to_speech_as_the_dataset_source(tmp_path, capsys, fake_audio):
    clips(tmp_path / "rav", {"Actor_01/03-01-03-01-01-01-01.wav": b"ab",   # speech
                             "Actor_01/03-02-03-01-01-01-01.wav": b"abc"})  # song
    features = ["--features", "audio=cli_fake_audio"]
    speech = run_json(capsys, ["extract", "--ravdess", str(tmp_path / "rav"), *features,
                               "--out", str(tmp_path / "a")])
    both = run_json(capsys, ["extract", "--ravdess", str(tmp_path / "rav"), "--channel", "all", *features,
                             "--out", str(tmp_path / "b")])
    assert speech["rows"] == {"train": 1} and both["rows"] == {"train": 2}
    assert main(["extract", "--folder", str(tmp_path / "rav"), "--channel", "song", *features,
                 "--out", str(tmp_path / "c")]) == 2
    assert "--channel goes with --ravdess" in capsys.readouterr().err


def test_interrupted_cli_run_resumes(tmp_path, capsys, fake_audio):
    clips(tmp_path / "c", {f"x{i}.wav": b"x" * (i + 1) for i in range(6)})
    argv = ["extract", "--folder", str(tmp_path / "c"), "--features", "audio=cli_fake_audio",
            "--batch-size", "2", "--out", str(tmp_path / "s"), "--no-progress"]
    fake_audio.interrupt_after = 4
    assert main(argv) == 130
    assert "interrupted; re-run the same command to resume" in capsys.readouterr().err
    fake_audio.interrupt_after = None
    summary = run_json(capsys, argv)
    assert (summary["resumed"], summary["extracted"]) == (4, 2)
    assert fake_audio.calls == [f"x{i}.wav" for i in range(6)]
    data = open_store_split(tmp_path / "s" / "test.h5")
    assert data.n == 6


def test_extract_again_on_a_finished_store_does_no_work(tmp_path, capsys, fake_audio):
    clips(tmp_path / "c", {f"x{i}.wav": b"x" * (i + 1) for i in range(4)})
    argv = ["extract", "--folder", str(tmp_path / "c"), "--features", "audio=cli_fake_audio",
            "--out", str(tmp_path / "s"), "--no-progress"]
    first = run_json(capsys, argv)
    assert len(fake_audio.calls) == 4 and not first.get("reused")
    fake_audio.calls = []
    again = run_json(capsys, argv)
    assert fake_audio.calls == [] and again["reused"] and again["extracted"] == 0
    assert again["rows"] == first["rows"] and again["splits"] == first["splits"]
    assert main(argv) == 0
    assert "already holds these features (same inputs, extractors and parameters); nothing extracted" in \
        capsys.readouterr().out
    assert fake_audio.calls == []
    assert main([*argv, "--param", "audio.scale=2"]) == 0  # other parameters: extracted again
    assert len(fake_audio.calls) == 4


def test_ravdess_tree_of_linked_actor_folders(tmp_path, capsys, fake_audio):
    clips(tmp_path / "real", {"Actor_01/03-01-03-01-01-01-01.wav": b"ab",
                              "Actor_23/03-01-05-01-01-01-23.wav": b"c"})
    (tmp_path / "rav").mkdir()
    for actor in ("Actor_01", "Actor_23"):
        (tmp_path / "rav" / actor).symlink_to(tmp_path / "real" / actor, target_is_directory=True)
    summary = run_json(capsys, ["extract", "--ravdess", str(tmp_path / "rav"), "--features",
                                "audio=cli_fake_audio", "--out", str(tmp_path / "s")])
    assert summary["rows"] == {"train": 1, "test": 1}
    (tmp_path / "empty").mkdir()
    assert main(["extract", "--ravdess", str(tmp_path / "empty"), "--features", "audio=cli_fake_audio",
                 "--out", str(tmp_path / "s2")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"scenesense: error: no RAVDESS clips (*.wav, *.mp4 named like 03-01-05-01-02-01-12.wav) found under "
        f"{tmp_path / 'empty'}")


def test_text_output_lines(tmp_path, capsys, fake_audio):
    clips(tmp_path / "c", {"a.wav": b"ab", "b.wav": b"BAD"})
    assert main(["extract", "--folder", str(tmp_path / "c"), "--features", "audio=cli_fake_audio", "--out",
                 str(tmp_path / "s"), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 's'}/test.h5: 1 samples; audio (vector, 1-d)"
    assert lines[1].startswith("2 items: 2 extracted, 0 resumed, 1 failed, 1 left out (no modality), "
                               "1 unlabelled;")
    assert lines[2] == f"  audio: 1 failed, first: b: {tmp_path / 'c' / 'b.wav'}: cannot decode"
    assert lines[3] == f"errors: {tmp_path / 's' / 'errors.csv'}"


@pytest.mark.parametrize(("argv", "message"), [
    ([], "exactly one of: a source"),
    (["synthetic", "--manifest", "m.csv"], "exactly one of: a source .*got \\['synthetic', '--manifest'\\]"),
    (["--folder", "."], "--features is required with a manifest"),
    (["--folder", ".", "--features", "audio"], "must look like NAME=EXTRACTOR"),
    (["--folder", ".", "--features", "audio=nope"], "unknown extractor 'nope'; choose from"),
    (["--folder", ".", "--features", "text=minilm", "text=minilm"], "feature set 'text' is given twice"),
    (["--folder", ".", "--features", "text=minilm", "--param", "max_tokens=3"],
     "must look like NAME.KEY=VALUE"),
    (["--folder", ".", "--features", "text=minilm", "--param", "audio.x=3"],
     "'audio' is neither a feature set"),
    (["--ravdess", ".", "--features", "text=minilm", "--labels", "a,b"], "--labels applies to --manifest"),
    (["--folder", ".", "--features", "text=minilm", "--media-dir", "."], "--media-dir goes with --meld-csv"),
    (["--folder", ".", "--features", "text=minilm", "--workers", "0"],
     "--workers and --batch-size must be >= 1"),
    (["--folder", ".", "--features", "text=minilm", "--labels", "a,a"], "duplicate label name"),
    (["synthetic", "--features", "text=minilm"], "go with --manifest"),
])
def test_usage_errors_exit_2(tmp_path, capsys, argv, message):
    assert main(["extract", *argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("scenesense: error: ")
    assert re.search(message, err), err


def test_runtime_errors_exit_1(tmp_path, capsys):
    assert main(["extract", "--manifest", str(tmp_path / "none.csv"), "--features", "text=minilm",
                 "--out", str(tmp_path / "s")]) == 1
    assert "none.csv: no such manifest file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\na,hi\na,again\n")
    argv = ["extract", "--manifest", str(bad), "--features", "text=minilm", "--out", str(tmp_path / "s")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"scenesense: error: {bad}: line 3 (a): duplicate id 'a' (first at {bad}: line 2 (a))"


def test_builtin_sources_still_work(tmp_path, capsys, write_meld_csv):
    summary = run_json(capsys, ["extract", "synthetic", "--out", str(tmp_path / "syn")])
    assert set(summary["splits"]) == {"train", "dev", "test"}
    csv_path = write_meld_csv("dev_sent_emo.csv")
    summary = run_json(capsys, ["extract", "meld", "--csv", str(csv_path), "--max-tokens", "8",
                                "--out", str(tmp_path / "meld")])
    assert summary["splits"]["test"]["n"] == 8
    assert summary["splits"]["test"]["features"]["text"]["dim"] == 384
