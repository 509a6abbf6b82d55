"""``scenesense.analyze.segments``: fixed windows, transcripts of segments, transcript segments."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from scenesense.analyze.segments import BLOCK_S, FixedSegmenter, split_by_transcript, transcribe_spans
from scenesense.extraction.transcribe import Segment, Transcript, Word
from scenesense.extraction.vad import SAMPLE_RATE, SpeechSpan
from tests.analyze.support import ScriptedTranscriber


def _fixed(seconds: float, window: float, chunk: int) -> list[tuple[float, float]]:
    segmenter = FixedSegmenter(window)
    x = np.ones(round(seconds * SAMPLE_RATE), np.float32)
    spans = [s for start in range(0, x.size, chunk) for s in segmenter.feed(x[start:start + chunk])]
    spans += segmenter.finish()
    assert all(a.end == b.start for a, b in pairwise(spans))
    return [(s.start_s, s.end_s) for s in spans]


@pytest.mark.parametrize("chunk", [100, 4000, 10**7])
def test_fixed_windows_take_the_whole_recording(chunk):
    assert _fixed(10.5, 4.0, chunk) == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.5)]  # a rest of 2.5 s >= half
    assert _fixed(9.5, 4.0, chunk) == [(0.0, 4.0), (4.0, 9.5)]  # a rest of 1.5 s joins the last window
    assert _fixed(1.0, 4.0, chunk) == [(0.0, 1.0)]
    with pytest.raises(ValueError, match="window_s"):
        FixedSegmenter(0)


def _tone_span(start_s: float, seconds: float) -> SpeechSpan:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = 0.3 * np.sin(2 * np.pi * 200 * t).astype(np.float32)
    samples[: SAMPLE_RATE // 10] = samples[-SAMPLE_RATE // 10:] = 0  # padded with silence, as VAD spans are
    return SpeechSpan(round(start_s * SAMPLE_RATE), samples)


def test_each_span_gets_its_own_words_from_few_calls():
    spans = [_tone_span(10.0 * k, 3.0 + k % 3) for k in range(12)]  # 3-5 s each, 48 s in all
    script = [f"words of span {k}" for k in range(12)]
    transcriber = ScriptedTranscriber(script)
    assert transcribe_spans(transcriber, spans) == script
    assert len(transcriber.calls) == 2 and max(transcriber.calls) <= BLOCK_S  # blocks, not one call per span
    long = [_tone_span(0.0, BLOCK_S + 2.0), _tone_span(40.0, 2.0)]
    transcriber = ScriptedTranscriber(["long one", "short one"])
    assert transcribe_spans(transcriber, long) == ["long one", "short one"]
    assert len(transcriber.calls) == 2  # a span longer than a block is transcribed alone


def test_split_by_transcript_cuts_at_its_segments():
    span = SpeechSpan(16000, np.arange(10 * SAMPLE_RATE, dtype=np.float32))  # 10 s from 1 s
    words = (Word(0.5, 1.0, "hello", 1.0), Word(1.0, 1.5, "there", 1.0))
    later = tuple(Word(4.0 + k, 4.5 + k, f"w{k}", 1.0) for k in range(5))
    transcript = Transcript("hello there ...", "en", (Segment(0.4, 1.6, "Hello there.", words),
                                                      Segment(3.9, 9.0, "w0 w1 w2 w3 w4", later)))
    pieces = split_by_transcript(span, transcript, max_segment_s=3.0)
    assert [(p.start_s, p.end_s, p.text) for p in pieces] == [
        (1.4, 2.6, "Hello there."), (4.9, 7.45, "w0 w1 w2"), (7.45, 10.0, "w3 w4")]
    assert np.array_equal(pieces[0].samples, span.samples[round(0.4 * SAMPLE_RATE):round(1.6 * SAMPLE_RATE)])
    nothing = split_by_transcript(span, Transcript("", "en", ()), max_segment_s=3.0)
    assert [(p.start, p.end, p.text) for p in nothing] == [(span.start, span.end, "")]
