"""Decode the audio of any media file into a float32 waveform with PyAV (FFmpeg), whole or window by window.

`load_audio` reads WAV (8/16/24/32-bit PCM, float), FLAC, MP3, Ogg (Vorbis/Opus), AAC/M4A
and the audio track of video files (MP4, MKV, AVI, ...): whatever the FFmpeg build inside the
``av`` wheel decodes. The first audio stream is decoded, converted to float32 in ``[-1, 1]`` and
resampled by PyAV's resampler (libswresample); channels are then averaged into mono, so a stereo
file whose channels are equal gives the same level as its mono copy (FFmpeg's own stereo->mono
downmix adds 3 dB). One item holds at most ``max_seconds`` of audio (`MAX_AUDIO_SECONDS`,
10 minutes, by default), so a long recording never fills the memory: decoding stops there. PyAV comes
with the ``audio`` extra (``pip install "scenesense[audio]"``) and is imported on first use.

`audio_windows` streams a recording of any length from disk in consecutive windows,
holding at most one and a half windows of samples at a time (``scenesense predict`` cuts long
media this way); `audio_chunks` streams it as mono chunks at a fixed rate, as decoded
(``scenesense analyze`` reads recordings this way); `write_wav` writes a window back as a 16-bit PCM WAV.

Every problem is an `scenesense.extraction.base.ItemError` with a one-line message naming
the file: missing file, unreadable/corrupt/unsupported file, no audio stream, a WAV shorter than
its header says, too long, no samples, non-finite samples, or silence (peak amplitude below
``min_peak``, by default `SILENCE_PEAK`). FFmpeg decodes a cut MP3 or FLAC as far as it goes
when the cut falls on a frame boundary; such a file is read as a shorter one.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scenesense.extraction.base import ItemError
from scenesense.utils.extras import require_extra

SILENCE_PEAK = 1e-4
"""Default silence threshold: a peak absolute amplitude below 1e-4 (-80 dBFS, about 3 steps of
16-bit PCM) counts as silent; an all-zero file is always silent."""

MAX_AUDIO_SECONDS = 600.0
"""Default longest audio `load_audio` decodes for one item (10 minutes: 38 MB at 16 kHz);
longer recordings are predicted window by window (`audio_windows`)."""

_STREAMED_SIZE = 0xFFFFFFFF  # a data chunk size left at 0 or about 0xFFFFFFFF by a streaming writer
_QUICK_PROBE = {"probesize": str(64 << 10)}  # FFmpeg reads 5 MB by default to find the streams


class AudioWindow(NamedTuple):
    """One window of a recording: ``samples [C, n]`` float32 from ``start`` (in samples) at ``rate`` Hz."""

    start: int
    samples: np.ndarray
    rate: int


def load_audio(path: str | Path, sample_rate: int | None = 16000, mono: bool = True,
               min_peak: float = SILENCE_PEAK, max_seconds: float | None = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Decode the first audio stream of a media file.

    Args:
        path: an audio or video file.
        sample_rate: output rate in Hz (``None``: the file's own rate).
        mono: average the channels into one.
        min_peak: silence threshold on the peak absolute amplitude (``0`` turns the check off).
        max_seconds: longest audio accepted (``None``: no limit); decoding stops past it.

    Returns:
        float32 waveform in ``[-1, 1]``: ``[S]`` when ``mono``, else ``[C, S]`` with the file's
        ``C`` channels.

    Raises:
        ItemError: one line naming the file and the problem (see the module docstring).
        ValueError: ``sample_rate`` is not a positive int, ``min_peak`` is negative or
            ``max_seconds`` is not positive.
    """
    _check_rate(sample_rate)
    if min_peak < 0:
        raise ValueError(f"min_peak must be >= 0, got {min_peak!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0 or None, got {max_seconds!r}")
    path = _check_file(path)
    chunks: list[np.ndarray] = []
    held = 0
    for chunk, rate in _decode_chunks(path, sample_rate):  # [C, n] each
        chunks.append(chunk)
        held += chunk.shape[1]
        if max_seconds is not None and held > max_seconds * rate:
            raise ItemError(f"{path}: more than {max_seconds:g} s of audio, too long for one item; cut it, "
                            f"or let `scenesense predict` cut it into windows")
    signal = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), dtype=np.float32)  # [C, S]
    if signal.shape[1] == 0:
        raise ItemError(f"{path}: the audio stream holds no samples (empty)")
    if not np.isfinite(signal).all():
        raise ItemError(f"{path}: the audio holds NaN or inf samples")
    peak = float(np.abs(signal).max())
    if peak < min_peak or peak == 0.0:
        raise ItemError(f"{path}: silent audio (peak amplitude {peak:.3g}, silence threshold {min_peak:g})")
    return signal.mean(axis=0, dtype=np.float32) if mono else signal


def audio_windows(path: str | Path, window_s: float) -> Iterator[AudioWindow]:
    """Stream the first audio stream of a media file in consecutive windows, at the file's own rate.

    Every window holds ``window_s`` seconds except the last, which takes the rest: between half
    a window and one and a half windows (a rest shorter than half a window is merged into the
    window before it; a whole recording shorter than that is one window). At most one and a
    half windows of samples (plus one decoded frame) are held at a time, whatever the length of
    the recording. Silence is not checked here (the extractors check each window).

    Args:
        path: an audio or video file.
        window_s: window length in seconds (> 0).

    Yields:
        `AudioWindow` per window, in order.

    Raises:
        ItemError: as `load_audio` (unreadable, truncated, no audio stream, corrupt data,
            NaN/inf samples, no samples); raised when met, so windows before a corrupt part
            have been yielded.
        ValueError: ``window_s`` is not positive.
    """
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    path = _check_file(path)
    pending: list[np.ndarray] = []  # [C, n] chunks not yet yielded
    held, start, rate = 0, 0, 0
    for chunk, rate in _decode_chunks(path, None):
        if not np.isfinite(chunk).all():
            raise ItemError(f"{path}: the audio holds NaN or inf samples (at {start / rate:.1f} s or later)")
        pending.append(chunk)
        held += chunk.shape[1]
        size = max(1, round(window_s * rate))
        while held > size + size // 2:  # the rest after this window is over half a window: cut it off
            buffer = np.concatenate(pending, axis=1)  # [C, held]
            yield AudioWindow(start, buffer[:, :size], rate)
            pending, held, start = [buffer[:, size:]], held - size, start + size
    if held == 0 and start == 0:
        raise ItemError(f"{path}: the audio stream holds no samples (empty)")
    if held:
        yield AudioWindow(start, np.concatenate(pending, axis=1), rate)


def audio_chunks(path: str | Path, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """Stream the first audio stream of a media file as mono float32 chunks, as FFmpeg decodes them.

    Nothing but the chunk being yielded is held, whatever the length of the recording (chunks
    are a decoded frame each, typically 20-130 ms). Channels are averaged into mono, as
    `load_audio` does. Silence is not checked.

    Args:
        path: an audio or video file.
        sample_rate: output rate in Hz.

    Yields:
        ``[n]`` float32 samples in ``[-1, 1]`` at ``sample_rate``, in order.

    Raises:
        ItemError: as `audio_windows`; raised when met, so the chunks before it have been yielded.
        ValueError: ``sample_rate`` is not a positive int.
    """
    _check_rate(sample_rate)
    path = _check_file(path)
    held = 0
    for chunk, _ in _decode_chunks(path, sample_rate):  # [C, n]
        if not np.isfinite(chunk).all():
            raise ItemError(f"{path}: the audio holds NaN or inf samples (at {held / sample_rate:.1f} s or "
                            f"later)")
        held += chunk.shape[1]
        yield chunk.mean(axis=0, dtype=np.float32)
    if held == 0:
        raise ItemError(f"{path}: the audio stream holds no samples (empty)")


def audio_seconds(path: str | Path) -> float | None:
    """How long the first audio stream of a media file lasts, read from its headers (nothing is
    decoded); ``None`` when the file cannot be opened, has no audio stream or records no length."""
    av = _av()

    try:
        container = _open(Path(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return None if container.duration is None else container.duration / av.time_base


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """Write ``[C, n]`` (or mono ``[n]``) samples in ``[-1, 1]`` as a 16-bit PCM WAV; returns the path."""
    frames = np.atleast_2d(samples).T  # [n, C]
    ints = np.round(np.clip(frames, -1.0, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return Path(path)


def _av() -> Any:  # noqa: ANN401
    """PyAV, imported on first use (it loads the FFmpeg libraries); it comes with the ``audio`` extra.

    Raises:
        MissingExtraError: PyAV is not installed.
    """
    return require_extra("av", "audio", "decoding audio")


def _check_rate(sample_rate: int | None) -> None:
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                    or sample_rate < 1):
        raise ValueError(f"sample_rate must be a positive int or None, got {sample_rate!r}")


def _check_file(path: str | Path) -> Path:
    """``path`` as a Path, once it is a readable, complete (for WAV) file; else an ItemError."""
    path = Path(path)
    if not path.is_file():
        raise ItemError(f"{path}: {'a folder, not an audio file' if path.is_dir() else 'no such audio file'}")
    _check_wav_length(path)
    return path


def _error_text(err: BaseException) -> str:
    """FFmpeg's own short reason (``strerror``), without the path PyAV appends; never empty."""
    lines = str(getattr(err, "strerror", None) or err).splitlines()
    return lines[0] if lines and lines[0].strip() else type(err).__name__


def _decode_chunks(path: Path, sample_rate: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """The first audio stream as planar float32 chunks ``[C, n]`` at ``sample_rate`` (``None``:
    the file's own), each with its rate, as they are decoded."""
    av = _av()

    try:
        container = _open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise ItemError(f"{path}: not a readable audio or video file ({_error_text(err)})") from None
    with container:
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise ItemError(f"{path}: no audio stream (streams: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)  # keeps the channels
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().astype(np.float32, copy=False), out.sample_rate
            for out in resampler.resample(None):  # flush the resampler
                yield out.to_ndarray().astype(np.float32, copy=False), out.sample_rate
        except (av.FFmpegError, ValueError) as err:
            raise ItemError(f"{path}: corrupt or unsupported audio ({_error_text(err)})") from None


def _open(path: Path) -> Any:
    """``av.open`` probing the first 64 KiB only (headers of audio files and common containers, 4-8x
    faster on a 48 kHz WAV); the full default probe when that finds no audio stream with a known
    rate and channel count (streams that start late, as in MPEG-TS)."""
    av = _av()

    container = av.open(str(path), container_options=_QUICK_PROBE)
    audio = container.streams.audio
    if audio and audio[0].codec_context.sample_rate and audio[0].codec_context.channels:
        return container
    container.close()
    return av.open(str(path))


def _wav_data_chunk(path: Path) -> tuple[int, int, int, int] | None:
    """``(data offset, data size, block align, rate)`` read from a RIFF/WAVE header, or ``None``
    when the file is no WAV or its header cannot be walked up to the data chunk (left to FFmpeg)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = rate = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                return f.tell(), length, block, rate
            if name == b"fmt " and length >= 16:
                fmt = f.read(14)  # format tag, channels, rate, bytes per second, block align
                if len(fmt) < 14:
                    return None
                _, _, rate, _, block = struct.unpack("<HHIIH", fmt)
                length -= 14
            if f.tell() + length > size:
                return None
            f.seek(length + (length & 1), 1)  # chunks are word-aligned


def _amount(size: int, block: int, rate: int) -> str:
    """``size`` bytes of PCM as seconds (``"0.200 s"``, ``"10.0 s"``), or as bytes without a usable format."""
    if not block or not rate:
        return f"{size} bytes"
    seconds = size / (block * rate)
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.3f} s"


def _check_wav_length(path: Path) -> None:
    """A WAV must hold every byte of audio its header declares (FFmpeg would silently read fewer).

    Files that are no WAV, or whose header is broken before the audio data, are left to FFmpeg;
    a data size left at 0 or 0xFFFFFFFF (a streaming writer's placeholder) is not checked.
    """
    found = _wav_data_chunk(path)
    if found is None:
        return
    offset, declared, block, rate = found
    held = path.stat().st_size - offset
    if declared == 0 or declared >= _STREAMED_SIZE - max(block, 1) or held >= declared:
        return

    raise ItemError(f"{path}: WAV header says {_amount(declared, block, rate)} of audio but the file holds "
                    f"{_amount(max(held, 0), block, rate)} (truncated?)")
