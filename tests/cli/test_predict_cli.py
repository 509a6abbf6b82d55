"""``scenesense predict`` in-process: table and JSON output, --out CSV, exit codes, one-line errors.

The runs (``run_a``, ``run_b``, ``lld_run``) and the fake extractors (``fakes``) are fixtures of
``tests/conftest.py``, shared with ``tests/test_predict.py``; the media writers are ``tests.support.media``.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from scenesense.cli import main
from tests.support.media import truncate_wav, voice, write_samples, write_video, write_wav


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("scenesense: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_text_and_wav_table(run_a, fakes, tmp_path, capsys, caplog):
    loud = write_wav(tmp_path / "loud.wav", 0.8)
    silent = write_wav(tmp_path / "silent.wav", 0.0)
    argv = ["predict", str(run_a), "That is wonderful news.", str(loud), str(silent), "--top-k", "1",
            "--transcribe", "never"]  # tones: nothing to transcribe (tests/cli/test_predict_transcribe.py)
    assert main(argv) == 1  # one item failed: the others are still printed
    captured = capsys.readouterr()
    assert _error_line(captured.err) == ("scenesense: error: 1 of 3 items could not be predicted (see "
                                         "problems); the predictions of the other 2 are printed")
    lines = captured.out.splitlines()
    assert lines[0].split() == ["id", "input", "prediction", "top", "1", "used", "missing"]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert rows["0"][1:5] == ['"That', "is", "wonderful", 'news."']
    assert rows["0"][-2:] == ["text", "audio+vision"]
    assert rows["1"][1:] == ["loud.wav", "angry", "angry", rows["1"][4], "audio", "text+vision"]
    assert float(rows["1"][4]) > 0.7
    assert rows["2"][1:] == ["silent.wav", "ERROR", "-", "audio+text+vision"]
    assert lines[5:] == ["", "problems:", f"  2: no modality could be extracted: audio: {silent}: "
                                           f"silent audio (every sample is zero)"]
    warning = "vision: the run's vision features were made from a converted feature set"
    assert any(r.levelname == "WARNING" and r.getMessage().startswith(warning) for r in caplog.records)


def test_flag_item_json_and_csv(run_a, fakes, tmp_path, capsys):
    wav = write_wav(tmp_path / "a.wav", 0.1)
    out = tmp_path / "preds" / "p.csv"
    argv = ["predict", str(run_a), "Okay.", "--text", "Leave me alone.", "--audio", str(wav), "--id", "utt7",
            "--json", "--out", str(out), "--top-k", "5"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["labels"] == ["calm", "angry"] and result["n"] == 2 and result["n_failed"] == 0
    okay, utt7 = result["items"]  # positional inputs first, then the flag item
    assert okay["id"] == "0" and okay["used"] == ["text"]
    assert utt7["id"] == "utt7" and utt7["used"] == ["audio", "text"] and utt7["missing"] == ["vision"]
    assert utt7["inputs"] == {"text": "Leave me alone.", "audio": str(wav)}
    probs = utt7["probabilities"]
    assert [name for name, _ in utt7["top"]] == sorted(probs, key=lambda c: -probs[c])
    assert len(utt7["top"]) == 2  # --top-k is capped at the number of classes
    assert result["predictions_csv"] == str(out)
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["0", "utt7"]
    assert float(rows[1]["prob_angry"]) == utt7["probabilities"]["angry"]


def test_manifest_and_video_with_attention(run_b, fakes, tmp_path, capsys):
    run, items = run_b
    write_video(tmp_path / "dark.mp4", 0, 0.5)
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:  # texts hold commas: quoted by the csv writer
        writer = csv.writer(f)
        writer.writerows([["id", "text", "video"], *([it["id"], it["text"], it["video"]] for it in items),
                          ["dark", "", "dark.mp4"]])
    assert main(["predict", str(run), "--manifest", str(manifest), "--json", "--transcribe", "never"]) == 0
    result = json.loads(capsys.readouterr().out)
    by_id = {item["id"]: item for item in result["items"]}
    assert set(by_id["dev1"]["attention"]) == {"text->vision", "vision->text"}
    assert by_id["dark"]["used"] == ["audio"] and "no face found" in by_id["dark"]["problems"][0]
    saved = {r["id"]: r["pred_name"] for r in csv.DictReader((run / "predictions.csv").open())}
    assert {i: by_id[i]["label"] for i in saved} == saved


def test_every_item_failing_exits_1(run_a, fakes, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert main(["predict", str(run_a), str(notes), "--text", "   "]) == 1
    captured = capsys.readouterr()
    assert "ERROR" in captured.out and "unsupported format '.txt'" in captured.out
    assert "empty text" in captured.out
    assert _error_line(captured.err) == ("scenesense: error: no item could be predicted "
                                         "(2 failed; see problems)")


def test_a_truncated_wav_fails_alone(lld_run, tmp_path, capsys):
    """GOOD.wav BAD.wav: the good prediction is printed and written, the bad file named with its
    problem, and the exit code (1) says that an item failed."""
    good = write_samples(tmp_path / "GOOD.wav", voice(1.0, 270))
    bad = truncate_wav(write_samples(tmp_path / "BAD.wav", voice(10.0, 270)), 0.2)
    out = tmp_path / "p.csv"
    assert main(["predict", str(lld_run), str(good), str(bad), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert _error_line(captured.err) == ("scenesense: error: 1 of 2 items could not be predicted (see "
                                         "problems); the predictions of the other 1 are printed and "
                                         f"written to {out}")
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[2:4]}
    assert rows["0"][1:3] == ["GOOD.wav", "high"] and rows["1"][1:3] == ["BAD.wav", "ERROR"]
    assert (f"  1: no modality could be extracted: audio: {bad}: WAV header says 10.0 s of audio but "
            "the file holds 0.200 s (truncated?)") in captured.out.splitlines()
    saved = list(csv.DictReader(out.open()))
    assert [(r["id"], r["ok"], r["label"]) for r in saved] == [("0", "1", "high"), ("1", "0", "")]


def test_long_audio_prints_a_timeline(lld_run, tmp_path, capsys):
    samples = np.concatenate([voice(12.0, 270), voice(8.0, 110)])
    path = write_samples(tmp_path / "talk.wav", samples)
    assert main(["predict", str(lld_run), str(path), "--window", "4", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["items"]
    assert [(w["start"], w["label"]) for w in item["timeline"]] == [(0, "high"), (4, "high"), (8, "high"),
                                                                    (12, "low"), (16, "low")]
    assert main(["predict", str(lld_run), str(path), "--window", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["timelines (consecutive windows with the same prediction merged):",
                          "  0: 5 windows: 0:00.0-0:12.0 high, 0:12.0-0:20.0 low"]


@pytest.mark.parametrize(("extra", "message"), [
    ([], "predict needs something to predict"),
    (["hello", "--top-k", "0"], "--top-k must be >= 1, got 0"),
    (["hello", "--window", "0"], "--window must be > 0 seconds, got 0.0"),
    (["hello", "--id", "x"], "--id names the item given by --text/--audio/--video"),
    (["--json", "hello"], "unrecognized arguments: hello"),  # INPUTs come right after RUN_DIR
])
def test_usage_errors_exit_2(run_a, capsys, extra, message):
    assert main(["predict", str(run_a), *extra]) == 2
    assert message in _error_line(capsys.readouterr().err)


def test_runtime_errors_exit_1(run_a, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "hello"]) == 1
    assert _error_line(capsys.readouterr().err) == (f"scenesense: error: {tmp_path}: not a finished run "
                                                    f"(missing config.yaml)")
    assert main(["predict", str(run_a), "--manifest", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv: no such manifest file" in _error_line(capsys.readouterr().err)
