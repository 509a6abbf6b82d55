"""Media files for the predict tests: WAVs (a tone, a voice-like signal, a truncated file) and tiny mp4s
(PyAV; a test needing one skips without it), and a reader of their audio."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from scenesense.extraction.base import ItemError


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples and rate: WAVs through ``wave``, other files' audio track through PyAV."""
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                raw = w.readframes(w.getnframes())
                rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        except (wave.Error, EOFError, OSError) as err:
            raise ItemError(f"{path}: unreadable audio ({err})") from None
        if width != 2:
            raise ItemError(f"{path}: unsupported sample width {width}")
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32).reshape(-1, channels).mean(axis=1) / 32768
        return x, rate
    av = pytest.importorskip("av")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ItemError(f"{path}: no audio track")
            chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
            rate = container.streams.audio[0].rate
    except av.FFmpegError as err:
        raise ItemError(f"{path}: unreadable media ({err})") from None
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), rate



def write_wav(path: Path, amplitude: float, freq: float = 220.0, seconds: float = 0.25,
              rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def voice(seconds: float, f0: float, amplitude: float = 0.3, rate: int = 16000) -> np.ndarray:
    """A voice-like test signal ``[S]``: 4 harmonics of ``f0`` with a slow vibrato and a 3 Hz swell."""
    t = np.arange(round(seconds * rate)) / rate
    phase = 2 * np.pi * f0 * (t + 0.02 * np.sin(2 * np.pi * 1.5 * t))
    tone = sum(np.sin(k * phase) / k for k in range(1, 5)) * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return amplitude * tone / np.abs(tone).max()


def write_samples(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Mono samples in ``[-1, 1]`` as a 16-bit PCM WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def truncate_wav(path: Path, seconds: float) -> Path:
    """Cut a 16 kHz mono 16-bit WAV to ``seconds`` of audio, its RIFF size rewritten to the cut file
    (the data chunk still declares the whole length), as a tool that fixes only that field leaves it."""
    data = bytearray(path.read_bytes()[:44 + int(seconds * 16000) * 2])
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def write_video(path: Path, brightness: int, amplitude: float | None = 0.5, frames: int = 6) -> Path:
    """An H.264 mp4 of flat 32x32 frames, with a 0.5 s AAC tone unless ``amplitude`` is None."""
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=8)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        audio = None if amplitude is None else container.add_stream("aac", rate=16000)
        if audio is not None:
            audio.layout = "mono"
        for i in range(frames):
            image = np.full((32, 32, 3), min(255, brightness + 4 * i), np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if audio is not None:
            tone = amplitude * np.sin(2 * np.pi * 330 * np.arange(8000) / 16000)
            frame = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], format="flt", layout="mono")
            frame.sample_rate = 16000
            container.mux(audio.encode(frame))
            container.mux(audio.encode())
    return path


def mux_grey_mp4(path: Path, greys: Sequence[int], fps: int, samples: np.ndarray, rate: int,
                 size: int = 32) -> Path:
    """An MP4: H.264 ``size`` x ``size`` frames, flat at each grey level of ``greys`` in turn, at
    ``fps``; AAC mono ``samples`` (float32 in ``[-1, 1]``) at ``rate``, encoded a codec frame at a time."""
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for grey in greys:
            image = np.full((size, size, 3), grey, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        step = sound.codec_context.frame_size or 1024
        for start in range(0, samples.size, step):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + step], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    return path
