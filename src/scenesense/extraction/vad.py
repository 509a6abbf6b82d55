"""Voice activity detection over streamed 16 kHz audio: the speech spans of a recording of any length.

`SileroVAD` scores 32 ms frames (512 samples at 16 kHz) with the Silero VAD model that the
``silero-vad`` package ships (its ONNX sequence model, run with ONNX Runtime; both come with the
``speech`` extra: ``pip install "scenesense[speech]"``); its recurrent state is carried from one
call to the next, so scoring a recording chunk by chunk gives the same probabilities as scoring
it whole. `VADSegmenter` turns the probabilities into speech spans as chunks of audio arrive
(`VADSegmenter.feed`, then `VADSegmenter.finish`), with the hysteresis of Silero's own
``get_speech_timestamps``: speech starts at a frame scoring ``>= threshold`` and ends after
``min_silence_s`` of frames scoring below ``threshold - 0.15``; spans shorter than
``min_speech_s`` are dropped, and each span is padded by ``pad_s`` on both sides. A span reaching
``max_segment_s`` is cut at its latest short pause (or, without one, where it is) and goes on
as the next span. Only the audio of the span in progress is held (at most ``max_segment_s``
plus ``min_silence_s``), so memory does not grow with the length of the recording.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from scenesense.utils.extras import Needs

SAMPLE_RATE = 16000
"""The rate every VAD here works at (Hz)."""

FRAME = 512
"""Samples per scored frame (32 ms at 16 kHz), as Silero VAD takes them."""

VAD_NEEDS = Needs("speech", ("silero_vad", "onnxruntime"), "voice activity detection (Silero VAD)")
"""What `SileroVAD` imports: the silero-vad package (its model file) and ONNX Runtime."""

_SILERO_CONTEXT = 64  # samples of the previous frame the model sees before each frame
_SILERO_MODEL = "silero_vad_16k_sequence.onnx"  # frames [N, 64 + 512] -> probabilities [N], LSTM state h, c
_PAUSE_FRAMES = 3  # a pause inside speech this long (96 ms) is where a too-long span is cut
_NEG_OFFSET = 0.15  # speech ends below threshold - 0.15 (Silero's hysteresis)
_SCORE_FRAMES = 16  # frames scored per model call (0.5 s): one call per decoded chunk costs 4x more


class SpeechProbabilities(Protocol):
    """A frame scorer: ``[N, FRAME]`` float32 16 kHz frames, in recording order, to ``[N]``
    speech probabilities; its state carries over from one call to the next until `reset`."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Score the next ``N`` frames of the recording."""

    def reset(self) -> None:
        """Forget the state (the next frame is a recording's first)."""


class SileroVAD:
    """Silero VAD (the ONNX sequence model shipped in the ``silero-vad`` package), one thread.

    The model and ONNX Runtime load on the first call.

    Args:
        num_threads: ONNX Runtime threads (1 is fastest for this small model).

    Raises:
        MissingExtraError: the ``speech`` extra (silero-vad, onnxruntime) is not installed.
    """

    def __init__(self, num_threads: int = 1) -> None:
        VAD_NEEDS.check()
        self.num_threads = num_threads
        self._session: Any = None
        self.reset()

    @staticmethod
    def model_path() -> Path:
        """The model file inside the installed silero-vad package.

        Raises:
            MissingExtraError: silero-vad is not installed.
            FileNotFoundError: this silero-vad release does not ship the sequence model.
        """
        VAD_NEEDS.check()
        spec = find_spec("silero_vad")
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in folders:
            path = Path(folder) / "data" / _SILERO_MODEL
            if path.is_file():
                return path
        raise FileNotFoundError(f"the installed silero-vad ({_version('silero-vad')}) ships no "
                                f"{_SILERO_MODEL}; silero-vad 6 does: pip install -U silero-vad")

    def _load(self) -> Any:  # noqa: ANN401
        if self._session is None:
            ort = VAD_NEEDS.require("onnxruntime")
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.num_threads
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(self.model_path()), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def reset(self) -> None:
        """Forget the recurrent state and the previous frame's tail."""
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_SILERO_CONTEXT, np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``[N, FRAME]`` float32 frames -> ``[N]`` float32 speech probabilities."""
        if len(frames) == 0:
            return np.zeros(0, np.float32)
        frames = np.asarray(frames, np.float32)
        tails = np.concatenate([self._context[None], frames[:-1, -_SILERO_CONTEXT:]])  # [N, 64]
        inputs = np.concatenate([tails, frames], axis=1)  # [N, 64 + 512]
        probs, self._h, self._c = self._load().run(None, {"input": inputs, "h": self._h, "c": self._c})
        self._context = frames[-1, -_SILERO_CONTEXT:].copy()
        return np.asarray(probs, np.float32).reshape(-1)

    def provenance(self) -> dict[str, Any]:
        """The model and package version, for a record of how segments were found."""
        return {"model": f"Silero VAD ({_SILERO_MODEL})", "silero-vad": _version("silero-vad"),
                "onnxruntime": _version("onnxruntime")}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class SpeechSpan(NamedTuple):
    """A stretch of a recording: ``samples [n]`` float32 at 16 kHz from sample ``start``.

    Fields:
        start: first sample, counted from the recording's start.
        samples: ``[n]`` float32 mono audio.
        text: what was said in it, when a transcription made the span (else ``None``).
    """

    start: int
    samples: np.ndarray
    text: str | None = None

    @property
    def end(self) -> int:
        """One past the last sample."""
        return self.start + len(self.samples)

    @property
    def start_s(self) -> float:
        """Start in seconds."""
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        """End in seconds."""
        return self.end / SAMPLE_RATE


def _check_vad_params(threshold: float, min_speech_s: float, min_silence_s: float, pad_s: float,
                      max_segment_s: float) -> None:
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    for name, value in (("min_speech_s", min_speech_s), ("min_silence_s", min_silence_s),
                        ("max_segment_s", max_segment_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if not 0 <= pad_s <= min_silence_s / 2:
        raise ValueError(f"pad_s must be in [0, min_silence_s / 2] = [0, {min_silence_s / 2:g}] (padded "
                         f"spans must not overlap), got {pad_s!r}")
    shortest = max(min_speech_s, 2 * pad_s + 2 * FRAME / SAMPLE_RATE)
    if max_segment_s < shortest:
        raise ValueError(f"max_segment_s must be at least {shortest:g} s (min_speech_s, and two frames with "
                         f"their padding), got {max_segment_s!r}")


class VADSegmenter:
    """Speech spans of a recording fed chunk by chunk (see the module docstring).

    Args:
        model: the frame scorer (default: `SileroVAD`, built on first use).
        threshold: speech probability at which speech starts.
        min_speech_s: shortest span kept (shorter ones are dropped).
        min_silence_s: silence that ends a span (shorter pauses stay inside it).
        pad_s: audio added before and after each span (at most ``min_silence_s / 2``, so padded
            spans never overlap).
        max_segment_s: longest span; a longer stretch of speech is cut into several.

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(self, model: SpeechProbabilities | None = None, *, threshold: float = 0.5,
                 min_speech_s: float = 0.25, min_silence_s: float = 0.5, pad_s: float = 0.1,
                 max_segment_s: float = 10.0) -> None:
        _check_vad_params(threshold, min_speech_s, min_silence_s, pad_s, max_segment_s)
        self.model = model
        self.threshold, self.neg_threshold = threshold, max(threshold - _NEG_OFFSET, 0.01)
        self.min_speech_s, self.min_silence_s = min_speech_s, min_silence_s
        self.pad_s, self.max_segment_s = pad_s, max_segment_s
        self._min_speech = round(min_speech_s * SAMPLE_RATE)  # samples
        self._min_silence = max(1, math.ceil(min_silence_s * SAMPLE_RATE / FRAME))  # frames
        self._pad = round(pad_s * SAMPLE_RATE)  # samples
        self._max = max(2, math.floor((max_segment_s * SAMPLE_RATE - 2 * self._pad) / FRAME))  # frames + pads
        self._held: list[np.ndarray] = []  # audio from sample _held_from on
        self._held_from = 0
        self._tail = np.zeros(0, np.float32)  # samples not yet scored (fewer than _SCORE_FRAMES frames)
        self._received = 0  # samples fed
        self._frame = 0  # frames scored
        self._speech_from: int | None = None  # first frame of the span in progress
        self._silence_from: int | None = None  # first frame of the silence in progress inside it
        self._pause: int | None = None  # the middle frame of its latest short pause
        self._continued = False  # the span in progress continues one cut at max_segment_s
        self._last_end = 0  # end sample of the latest span (the next one's padding stops there)
        self._finished = False

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._received / SAMPLE_RATE

    def params(self) -> dict[str, float]:
        """The segmentation parameters, for a record of how segments were found."""
        return {"threshold": self.threshold, "min_speech_s": self.min_speech_s,
                "min_silence_s": self.min_silence_s, "pad_s": self.pad_s, "max_segment_s": self.max_segment_s}

    def _scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        if self.model is None:
            self.model = SileroVAD()
        return self.model

    def feed(self, chunk: np.ndarray) -> list[SpeechSpan]:
        """Take the next ``[n]`` float32 16 kHz samples; returns the spans they complete, in order.

        Raises:
            RuntimeError: called after `finish`.
        """
        if self._finished:
            raise RuntimeError("this segmenter has finished; make a new one for another recording")
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        if not chunk.size:
            return []
        self._held.append(chunk)
        self._received += chunk.size
        tail = np.concatenate([self._tail, chunk]) if self._tail.size else chunk
        n = tail.size // FRAME
        if n < _SCORE_FRAMES:  # wait for more frames: fewer, larger model calls (the spans are the same)
            self._tail = tail
            return []
        self._tail = tail[n * FRAME:].copy()
        spans = self._score(tail[:n * FRAME].reshape(n, FRAME))
        self._drop_unneeded()
        return spans

    def finish(self) -> list[SpeechSpan]:
        """The spans left when the recording ends (the last partial frame is scored zero-padded)."""
        if self._finished:
            return []
        spans: list[SpeechSpan] = []
        if self._tail.size:
            n = -(-self._tail.size // FRAME)  # the last frame zero-padded
            spans += self._score(np.pad(self._tail, (0, n * FRAME - self._tail.size)).reshape(n, FRAME))
        if self._speech_from is not None:
            end = self._silence_from if self._silence_from is not None else self._frame
            spans += self._close(end)
        self._finished = True
        self._held, self._tail = [], np.zeros(0, np.float32)
        return spans

    def _score(self, frames: np.ndarray) -> list[SpeechSpan]:
        """Advance the state machine over scored frames (``[N, FRAME]``)."""
        spans: list[SpeechSpan] = []
        for p in self._scorer()(frames):
            i = self._frame
            self._frame += 1
            if p >= self.threshold:
                if self._silence_from is not None:  # a pause shorter than min_silence_s: speech goes on
                    if i - self._silence_from >= _PAUSE_FRAMES:
                        self._pause = (self._silence_from + i) // 2
                    self._silence_from = None
                if self._speech_from is None:
                    self._speech_from, self._pause, self._continued = i, None, False
            elif p < self.neg_threshold and self._speech_from is not None:
                if self._silence_from is None:
                    self._silence_from = i
                if i + 1 - self._silence_from >= self._min_silence:
                    spans += self._close(self._silence_from)
                    continue
            if self._speech_from is not None and i + 1 - self._speech_from >= self._max:
                spans += self._cut(i + 1)
        return spans

    def _cut(self, now: int) -> list[SpeechSpan]:
        """The span in progress is ``max_segment_s`` long: end it in the silence under way, else cut
        it at its latest pause in its second half, else at frame ``now``; speech goes on after a cut."""
        assert self._speech_from is not None
        if self._silence_from is not None:
            return self._close(self._silence_from)
        pause = self._pause
        cut = pause if pause is not None and pause - self._speech_from >= self._max // 2 else now
        start = max(self._speech_from * FRAME - (0 if self._continued else self._pad), self._last_end)
        span = SpeechSpan(start, self._audio(start, cut * FRAME))
        self._last_end = cut * FRAME
        self._speech_from, self._pause, self._continued = cut, None, True
        return [span]

    def _close(self, end_frame: int) -> list[SpeechSpan]:
        """End the span in progress at ``end_frame`` (its first silent frame), padded."""
        assert self._speech_from is not None
        begin, continued = self._speech_from, self._continued
        self._speech_from, self._silence_from, self._pause, self._continued = None, None, None, False
        if (end_frame - begin) * FRAME < self._min_speech:
            return []
        start = max(begin * FRAME - (0 if continued else self._pad), self._last_end, 0)
        end = min(end_frame * FRAME + self._pad, self._received)
        self._last_end = end
        return [SpeechSpan(start, self._audio(start, end))] if end > start else []

    def _audio(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` of the recording (they are held)."""
        held = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        self._held = [held]
        return held[start - self._held_from:end - self._held_from].copy()

    def _drop_unneeded(self) -> None:
        """Forget audio no span can use any more: before the span in progress (with its padding),
        or, in silence, before the padding of a span that would start at the next frame."""
        first = self._speech_from if self._speech_from is not None else self._frame
        keep = max(first * FRAME - self._pad, self._last_end, 0)
        if keep <= self._held_from:
            return
        held = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        self._held = [held[keep - self._held_from:]]
        self._held_from = keep
