"""Segments of a streamed recording, and their transcripts.

A segmenter takes the recording's 16 kHz mono samples chunk by chunk (``feed``, then ``finish``)
and returns `scenesense.extraction.vad.SpeechSpan` s as they complete: the speech spans of
`scenesense.extraction.vad.VADSegmenter` (``"vad"``), or consecutive windows of a fixed
length (`FixedSegmenter`, ``"fixed"``). With ``"transcript"`` the speech spans of the VAD are
transcribed and cut into the transcription's own segments (`split_by_transcript`).

`transcribe_spans` gives every span of a batch its transcript: consecutive spans are joined
(with half a second of silence between them) into blocks of at most `BLOCK_S` seconds, each
block is transcribed in one call, and every word goes to the span its middle falls in. Whisper
pads every call to 30 s, so one call per block instead of one per span makes transcription
several times faster on conversational speech.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Protocol

import numpy as np

from scenesense.extraction.transcribe import Segment, Transcriber, Transcript
from scenesense.extraction.vad import SAMPLE_RATE, SpeechSpan

BLOCK_S = 28.0
"""Longest audio (seconds) transcribed in one call: under Whisper's 30 s window."""

GAP_S = 0.5
"""Silence put between the spans of a block, so that words do not run across spans."""


class Segmenter(Protocol):
    """Cuts a recording fed chunk by chunk into spans (see the module docstring)."""

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""

    def feed(self, chunk: np.ndarray) -> list[SpeechSpan]:
        """Take the next samples; the spans they complete."""

    def finish(self) -> list[SpeechSpan]:
        """The spans left at the end of the recording."""

    def params(self) -> dict[str, float]:
        """The parameters, for the record."""


class FixedSegmenter:
    """Consecutive windows of ``window_s`` seconds; the last takes the rest when it is at least half
    a window, else it is added to the window before it (as `scenesense.predict` cuts long media).
    At most one and a half windows of samples are held.

    Raises:
        ValueError: ``window_s`` is not positive.
    """

    def __init__(self, window_s: float) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s!r}")
        self.window_s = float(window_s)
        self._size = max(1, round(window_s * SAMPLE_RATE))
        self._pending: list[np.ndarray] = []
        self._held = 0
        self._start = 0
        self._received = 0

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._received / SAMPLE_RATE

    def params(self) -> dict[str, float]:
        """``{"window_s": ...}``."""
        return {"window_s": self.window_s}

    def feed(self, chunk: np.ndarray) -> list[SpeechSpan]:
        """Take the next ``[n]`` samples; the windows they complete."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._pending.append(chunk)
        self._held += chunk.size
        self._received += chunk.size
        spans = []
        while self._held > self._size + self._size // 2:  # the rest after one window is over half a window
            buffer = np.concatenate(self._pending)
            spans.append(SpeechSpan(self._start, buffer[:self._size].copy()))
            self._pending, self._held, self._start = [buffer[self._size:]], self._held - self._size, \
                self._start + self._size
        return spans

    def finish(self) -> list[SpeechSpan]:
        """The last window (the rest of the recording), if any."""
        if not self._held:
            return []
        span = SpeechSpan(self._start, np.concatenate(self._pending))
        self._pending, self._held = [], 0
        return [span]


def _words(segment: Segment) -> list[tuple[float, float, str]]:
    """``(start, end, text)`` of a transcript segment's words, or the segment as one word."""
    words = [(float(w.start), float(w.end), str(w.text).strip()) for w in segment.words]
    if words:
        return words
    return [(float(segment.start), float(segment.end), str(segment.text).strip())]


def _blocks(spans: Sequence[SpeechSpan]) -> Iterator[list[int]]:
    """Indices of consecutive spans whose audio, with `GAP_S` between them, fits `BLOCK_S`."""
    block: list[int] = []
    seconds = 0.0
    for i, span in enumerate(spans):
        length = len(span.samples) / SAMPLE_RATE + (GAP_S if block else 0.0)
        if block and seconds + length > BLOCK_S:
            yield block
            block, seconds, length = [], 0.0, len(span.samples) / SAMPLE_RATE
        block.append(i)
        seconds += length
    if block:
        yield block


def transcribe_spans(transcriber: Transcriber, spans: Sequence[SpeechSpan]) -> list[str]:
    """The transcript of every span, in order (``""`` where nothing was heard); see the module docstring."""
    texts: list[list[str]] = [[] for _ in spans]
    gap = np.zeros(round(GAP_S * SAMPLE_RATE), np.float32)
    for block in _blocks(spans):
        parts, starts, at = [], [], 0  # starts: each span's first sample in the block
        for n, i in enumerate(block):
            if n:
                parts.append(gap)
                at += gap.size
            starts.append(at)
            parts.append(spans[i].samples)
            at += spans[i].samples.size
        transcript = transcriber.transcribe(np.concatenate(parts).astype(np.float32, copy=False), SAMPLE_RATE)
        bounds = np.asarray(starts[1:], np.float64) - gap.size / 2  # a word's middle past one -> a later span
        for segment in transcript.segments:
            for start, end, word in _words(segment):
                if word:
                    owner = int(np.searchsorted(bounds, (start + end) / 2 * SAMPLE_RATE, side="right"))
                    texts[block[owner]].append(word)
    return [" ".join(words) for words in texts]


def split_by_transcript(span: SpeechSpan, transcript: Transcript, max_segment_s: float) -> list[SpeechSpan]:
    """``span`` cut into the segments of its transcript (times relative to the span), each with its text.

    Segments are clipped to the span and to each other (no overlap); one longer than
    ``max_segment_s`` is cut into equal pieces, each with the words whose middle falls in it.
    A span whose transcript has no segment is kept whole, with an empty text.
    """
    out: list[SpeechSpan] = []
    last = 0
    for segment in transcript.segments:
        begin = max(last, min(len(span.samples), round(float(segment.start) * SAMPLE_RATE)))
        end = max(begin, min(len(span.samples), round(float(segment.end) * SAMPLE_RATE)))
        if end <= begin:
            continue
        pieces = max(1, int(np.ceil((end - begin) / (max_segment_s * SAMPLE_RATE))))
        edges = np.linspace(begin, end, pieces + 1).round().astype(int)
        middles = [((s + e) / 2 * SAMPLE_RATE, w) for s, e, w in _words(segment) if w]
        for k, (a, b) in enumerate(pairwise(edges)):
            if pieces == 1:
                text = str(segment.text).strip()
            else:  # words before the first piece go to it, words after the last to the last
                text = " ".join(w for m, w in middles if (k == 0 or m >= a) and (k == pieces - 1 or m < b))
            out.append(SpeechSpan(span.start + int(a), span.samples[a:b].copy(), text))
        last = end
    return out or [SpeechSpan(span.start, span.samples, "")]
