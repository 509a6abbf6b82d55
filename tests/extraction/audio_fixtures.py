"""Audio written by the tests: voiced tones as 16/24-bit WAV (stdlib :mod:`wave`), and FLAC, MP3,
Ogg and video files with or without an audio track (PyAV encoders)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def voiced(seconds: float, rate: int, f0: float = 180.0, amplitude: float = 0.3) -> np.ndarray:
    """A speech-like test signal ``[S]`` float64: a harmonic tone (5 partials) whose pitch glides
    +-15 % around ``f0`` at 1.5 Hz and whose loudness swells at 3 Hz, so pitch, loudness and
    spectral features all vary. Defined in continuous time: the same signal at any rate."""
    t = np.arange(int(round(seconds * rate))) / rate
    phase = 2 * np.pi * f0 * (t - 0.15 * np.cos(2 * np.pi * 1.5 * t) / (2 * np.pi * 1.5))
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return amplitude * tone / np.abs(tone).max()


def write_wav(path: Path, signal: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write ``[S]`` (mono) or ``[C, S]`` samples in ``[-1, 1]`` as 16-bit (``width=2``) or 24-bit
    (``width=3``) PCM."""
    data = np.atleast_2d(signal).T  # [S, C]
    full = 2 ** (8 * width - 1) - 1
    ints = np.round(np.clip(data, -1, 1) * full).astype("<i4")
    raw = ints.astype("<i2").tobytes() if width == 2 else ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def _encode_audio(container, stream, signal: np.ndarray, rate: int) -> None:  # noqa: ANN001
    """Encode mono samples: as 16-bit integers for FLAC (so it holds exactly the WAV's values),
    else as float frames that PyAV converts to the codec's sample format."""
    import av

    exact = stream.codec_context.name == "flac"
    data = np.atleast_1d(signal)[None, :]  # [1, S]
    data = np.round(np.clip(data, -1, 1) * 32767).astype(np.int16) if exact else data.astype(np.float32)
    step = stream.codec_context.frame_size or 1024
    for start in range(0, data.shape[1], step):
        chunk = np.ascontiguousarray(data[:, start:start + step])
        frame = av.AudioFrame.from_ndarray(chunk, format="s16" if exact else "fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio(path: Path, signal: np.ndarray, rate: int, codec: str, container_format: str | None = None) -> Path:
    """Encode mono ``[S]`` samples with a PyAV audio encoder (``flac``, ``aac``, ``libmp3lame``, ``libopus``)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        if codec == "flac":
            stream.codec_context.format = "s16"
        _encode_audio(container, stream, signal, rate)
    return path


def write_video(path: Path, seconds: float, audio: np.ndarray | None = None, rate: int = 16000,
                audio_codec: str = "aac") -> Path:
    """A 32x32, 10 fps video (``mpeg4``) of ``seconds``, with a mono audio track when ``audio`` is given."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        sound = None if audio is None else container.add_stream(audio_codec, rate=rate, layout="mono")
        for i in range(max(1, int(seconds * 10))):
            image = np.full((32, 32, 3), (i * 25) % 256, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            _encode_audio(container, sound, audio, rate)
    return path


def dominant_frequency(signal: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the largest FFT bin of a mono signal."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[int(np.argmax(spectrum))])
