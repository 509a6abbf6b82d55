"""``scenesense.extraction.vad``: speech spans of audio fed chunk by chunk.

The state machine is checked with `EnergyVAD` (a frame is speech when it is loud) on tone bursts
at known times; Silero VAD itself on espeak-ng speech with known pauses (skipped without
espeak-ng or the ``speech`` extra).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from scenesense.extraction.audio_io import audio_chunks
from scenesense.extraction.vad import FRAME, SAMPLE_RATE, SileroVAD, VADSegmenter
from tests.analyze.support import EnergyVAD, bursts, write_tones
from tests.support.speech import requires_espeak, speech


def _tones(spans: list[tuple[float, float]], seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = np.zeros_like(t, dtype=np.float32)
    for start, end in spans:
        on = (t >= start) & (t < end)
        x[on] = amplitude * np.sin(2 * np.pi * 220 * t[on])
    return x


def _segment(x: np.ndarray, chunk: int, **params) -> list:
    segmenter = VADSegmenter(EnergyVAD(), **params)
    spans = []
    for start in range(0, x.size, chunk):
        spans += segmenter.feed(x[start:start + chunk])
    return spans + segmenter.finish()


SPANS = [(1.0, 2.5), (3.5, 4.2), (5.0, 7.0), (7.6, 9.9)]


def test_spans_cover_each_burst_and_nothing_else():
    x = _tones(SPANS, 11.0)
    spans = _segment(x, 1000)
    assert len(spans) == len(SPANS)
    frame_s, pad = FRAME / SAMPLE_RATE, 0.1
    for span, (start, end) in zip(spans, SPANS):
        assert start - pad - frame_s <= span.start_s <= start - pad + 1e-9  # the burst and its padding
        assert end + pad - frame_s <= span.end_s <= end + pad + frame_s
        assert np.array_equal(span.samples, x[span.start:span.end])  # the recording's own samples
    assert all(a.end <= b.start for a, b in pairwise(spans))


@pytest.mark.parametrize("chunk", [1, 333, 512, 16000, 10**7])
def test_chunk_size_does_not_change_the_spans(chunk):
    x = _tones(SPANS, 11.0)
    want = _segment(x, 4096)
    got = _segment(x, chunk)
    assert [(s.start, s.end) for s in got] == [(s.start, s.end) for s in want]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got, want))


def test_short_pauses_stay_inside_and_short_sounds_are_dropped():
    x = _tones([(1.0, 2.0), (2.2, 3.0), (5.0, 5.1)], 6.0)  # a 0.2 s pause (< 0.5 s) and a 0.1 s click
    spans = _segment(x, 2048)
    assert len(spans) == 1
    assert spans[0].start_s < 1.0 and spans[0].end_s > 3.0
    assert len(_segment(x, 2048, min_silence_s=0.15, pad_s=0.05)) == 2  # a shorter min_silence_s splits


def test_long_speech_is_cut_at_a_pause_then_at_max_segment():
    x = _tones([(0.5, 6.0), (6.2, 14.5)], 15.0)  # 14 s of "speech" with one 0.2 s pause at 6 s
    spans = _segment(x, 4000, max_segment_s=10.0)
    assert [round(s.end_s - s.start_s, 3) <= 10.0 for s in spans] == [True] * len(spans)
    assert len(spans) == 2
    assert 6.0 <= spans[0].end_s <= 6.2 and spans[1].start == spans[0].end  # cut inside the pause
    x = _tones([(0.5, 14.5)], 15.0)  # no pause: cut where it is, the pieces contiguous
    spans = _segment(x, 4000, max_segment_s=4.0)
    assert len(spans) == 4 and all(s.end_s - s.start_s <= 4.0 for s in spans)
    assert all(a.end == b.start for a, b in pairwise(spans))
    assert spans[0].start_s <= 0.5 and spans[-1].end_s >= 14.5


def test_memory_holds_one_span_at_most():
    segmenter = VADSegmenter(EnergyVAD(), max_segment_s=5.0)
    x = _tones([(k * 7.0 + 1.0, k * 7.0 + 6.9) for k in range(20)], 140.0)  # 20 stretches of 5.9 s
    held, n = [], 0
    for start in range(0, x.size, 3000):
        n += len(segmenter.feed(x[start:start + 3000]))
        held.append(sum(h.size for h in segmenter._held))
    n += len(segmenter.finish())
    assert n == 40  # each stretch cut once at 5 s
    assert max(held) <= (5.0 + 0.5 + 0.2) * SAMPLE_RATE  # one span, its silence and a chunk; never 140 s


@pytest.mark.parametrize("params", [{"threshold": 1.0}, {"pad_s": 0.3}, {"min_silence_s": 0},
                                    {"max_segment_s": 0.1}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        VADSegmenter(EnergyVAD(), **params)


def test_finish_ends_the_segmenter():
    segmenter = VADSegmenter(EnergyVAD())
    spans = segmenter.feed(_tones([(0.2, 1.0)], 1.0))
    spans += segmenter.finish()
    assert len(spans) == 1 and spans[0].end_s == pytest.approx(1.0)  # speech up to the end: clipped there
    assert segmenter.finish() == []
    with pytest.raises(RuntimeError, match="finished"):
        segmenter.feed(np.zeros(10, np.float32))


SENTENCES = ["The weather was lovely today.", "I could not find my keys anywhere.",
             "Let us meet again next week."]


@requires_espeak
def test_silero_finds_each_sentence_of_real_speech(tmp_path):
    pytest.importorskip("silero_vad")
    pytest.importorskip("onnxruntime")
    samples, rate = speech(SENTENCES, pause_s=1.2, lead_s=0.8)
    from tests.support.media import write_samples

    wav = write_samples(tmp_path / "speech.wav", samples, rate)
    x = np.concatenate(list(audio_chunks(wav, SAMPLE_RATE)))
    voiced = bursts(x, SAMPLE_RATE, min_gap_s=0.6)  # where each sentence is heard
    assert len(voiced) == len(SENTENCES)
    model = SileroVAD()
    spans = []
    segmenter = VADSegmenter(model)
    for chunk in audio_chunks(wav, SAMPLE_RATE):  # as decoded, in FFmpeg's chunk sizes
        spans += segmenter.feed(chunk)
    spans += segmenter.finish()
    assert len(spans) == len(SENTENCES)
    for span, (start, end) in zip(spans, voiced):
        assert span.start_s <= start + 0.1 and span.end_s >= end - 0.15  # the sentence, within a word's edge
        assert span.start_s >= start - 0.5 and span.end_s <= end + 0.5  # and not the pauses around it
    # the state carries over: scoring in pieces equals scoring at once
    frames = x[: x.size // FRAME * FRAME].reshape(-1, FRAME)
    model.reset()
    whole = model(frames)
    model.reset()
    pieces = np.concatenate([model(frames[:7]), model(frames[7:100]), model(frames[100:])])
    assert np.allclose(whole, pieces, atol=1e-6)


def test_tones_file_decodes_to_the_same_spans(tmp_path):
    pytest.importorskip("av")
    wav = write_tones(tmp_path / "tones.wav", [(a, b, 0.5) for a, b in SPANS], 11.0)
    segmenter = VADSegmenter(EnergyVAD())
    spans = [s for chunk in audio_chunks(wav, SAMPLE_RATE) for s in segmenter.feed(chunk)] + segmenter.finish()
    assert [(round(s.start_s, 2), round(s.end_s, 2)) for s in spans] == \
        [(round(s.start_s, 2), round(s.end_s, 2)) for s in _segment(_tones(SPANS, 11.0), 1000)]
