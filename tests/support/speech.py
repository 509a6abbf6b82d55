"""Speech with known words for the tests: espeak-ng WAVs and MP4s (espeak-ng audio + flat frames, PyAV).

`requires_espeak` skips a test when the ``espeak-ng`` program is absent; `speak` returns the
samples of a sentence; `write_speech_wav` and `write_speech_mp4` write files of one or more
sentences, with optional pauses between them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.support.media import mux_grey_mp4

ESPEAK = shutil.which("espeak-ng")
requires_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
"""Marker: the test generates speech with espeak-ng."""

VOICE = "en-us"
WORDS_PER_MINUTE = 150


def speak(text: str, voice: str = VOICE, speed: int = WORDS_PER_MINUTE) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: mono float32 samples ``[S]`` in ``[-1, 1]`` and their rate (22050 Hz)."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed")
    with tempfile.TemporaryDirectory(prefix="speech-") as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                       capture_output=True)
        with wave.open(str(path), "rb") as w:
            raw, rate = w.readframes(w.getnframes()), w.getframerate()
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768, rate


def speech(sentences: Sequence[str], pause_s: float = 0.0, lead_s: float = 0.0) -> tuple[np.ndarray, int]:
    """The sentences one after another, ``pause_s`` of silence between them, ``lead_s`` before the first."""
    parts = [speak(s) for s in sentences]
    rate = parts[0][1]
    gap = np.zeros(round(pause_s * rate), np.float32)
    joined = [np.zeros(round(lead_s * rate), np.float32)]
    for k, (samples, _) in enumerate(parts):
        joined += [gap, samples] if k else [samples]
    return np.concatenate(joined), rate


def write_speech_wav(path: Path, sentences: str | Sequence[str], pause_s: float = 0.0) -> Path:
    """A 16-bit mono WAV of the sentences (espeak-ng's 22050 Hz)."""
    samples, rate = speech([sentences] if isinstance(sentences, str) else sentences, pause_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return path


def write_speech_mp4(path: Path, sentences: str | Sequence[str], pause_s: float = 0.0, fps: int = 8,
                     size: int = 32) -> Path:
    """An MP4 (H.264 frames of a slowly brightening grey, AAC audio at 22050 Hz) of the sentences spoken."""
    samples, rate = speech([sentences] if isinstance(sentences, str) else sentences, pause_s)
    greys = [60 + i % 150 for i in range(max(1, round(samples.size / rate * fps)))]
    return mux_grey_mp4(path, greys, fps, samples, rate, size)
