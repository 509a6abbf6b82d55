"""``scenesense analyze``: files written, the summary or JSON printed, errors as one line."""

from __future__ import annotations

import json

import pytest

from scenesense.cli import main
from tests.analyze.support import write_tones

TONES = [(0.5, 2.0, 0.6), (3.0, 4.0, 0.03), (5.0, 7.5, 0.5)]


def test_analyze_writes_the_files_and_prints_json(tmp_path, capsys, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "tones.wav", TONES, 9.0)
    code = main(["analyze", str(media), "--run", str(audio_text_run), "--output-dir", str(tmp_path / "out"),
                 "--segmenter", "fixed", "--window", "3", "--transcribe", "never", "--no-progress", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]
    assert data == json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"timeline.csv", "timeline.json", "emotions.png",
                                                               "index.html"}


def test_analyze_prints_a_summary_with_stage_times(tmp_path, capsys, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "tones.wav", TONES, 9.0)
    assert main(["analyze", str(media), "--run", str(audio_text_run), "--segmenter", "fixed", "--transcribe",
                 "never", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 segments in 0:09.0 of media, 2 predicted" in out  # windows of 4 s: 0-4, 4-9
    for stage in ("decode", "vad", "transcription", "features", "model", "write"):
        assert f"{stage} " in out
    assert f"html: {tmp_path / 'tones.analysis' / 'index.html'}" in out


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--segmenter", "transcript", "--transcribe", "never"], 2, "drop --transcribe never"),
    (["--window", "0"], 2, "--window must be > 0"),
    (["--max-segment", "-1"], 2, "--max-segment must be > 0"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, audio_text_run, argv, code, message):
    media = write_tones(tmp_path / "tones.wav", TONES, 9.0)
    assert main(["analyze", str(media), "--run", str(audio_text_run), *argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scenesense: error:") and message in err[0]


def test_missing_media_is_one_line(tmp_path, capsys, audio_text_run):
    assert main(["analyze", str(tmp_path / "nope.mp4"), "--run", str(audio_text_run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"scenesense: error: {tmp_path / 'nope.mp4'}: no such media file"]


def test_without_the_speech_extra_vad_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, audio_text_run,
                                                                   fakes, stub_text_extractor):
    from scenesense.utils import extras

    real = extras.missing_modules
    monkeypatch.setattr(extras, "missing_modules",  # silero-vad is not installed
                        lambda modules: real(modules) + [m for m in modules if m == "silero_vad"])
    media = write_tones(tmp_path / "tones.wav", TONES, 9.0)
    argv = ["analyze", str(media), "--run", str(audio_text_run), "--transcribe", "never", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "scenesense[speech]"' in err[0] and "--segmenter fixed" in err[0]
    assert not (tmp_path / "tones.analysis").exists()
    assert main([*argv, "--segmenter", "fixed"]) == 0  # fixed windows need no speech extra
