"""Sniff an uploaded file by decoding it (PyAV): is it audio or video, and how long does it last?

The suffix of a file name says nothing about its content: a file is accepted only once FFmpeg
opens it, finds the stream it needs (an audio stream for an audio file; audio or video for a
video file) and decodes a frame of it. Its length comes from the container's headers; when they
record none, the stream is decoded up to the limit to measure it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenesense.serve.uploads import UploadError
from scenesense.utils.extras import require_extra


@dataclass(frozen=True)
class MediaInfo:
    """What an uploaded file holds.

    Fields:
        seconds: its length (of the audio stream when it has one, else of the video stream).
        has_audio, has_video: whether it has an audio or a video stream.
    """

    seconds: float
    has_audio: bool
    has_video: bool


def _header_seconds(container: Any, stream: Any, time_base: int) -> float | None:  # noqa: ANN401
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None if container.duration is None else container.duration / time_base


def _frame_end(frame: Any) -> float:  # noqa: ANN401
    start = float(frame.time or 0.0)
    rate = getattr(frame, "sample_rate", None)
    return start + (frame.samples / rate if rate else 0.0)


def _too_long(name: str, seconds: float, max_seconds: float) -> UploadError:
    return UploadError(413, f"{name}: the clip lasts {seconds:.1f} s, longer than the {max_seconds:g} s "
                            f"this server accepts")


def inspect_media(path: Path, kind: str, name: str, max_seconds: float) -> MediaInfo:
    """Open and decode the uploaded file at ``path`` (see the module docstring).

    Args:
        path: the file in the request's temporary folder.
        kind: ``"audio"`` or ``"video"``, from its name's suffix.
        name: its name for messages (the client's, last component only).
        max_seconds: the longest clip accepted.

    Raises:
        UploadError: 415 for a file FFmpeg cannot read or decode, or without the stream it
            needs; 413 for a clip longer than ``max_seconds``.
        MissingExtraError: PyAV is not installed.
    """
    av = require_extra("av", "audio", "reading uploaded audio and video")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise UploadError(415, f"{name}: not a readable audio or video file") from None
    with container:
        audio, video = container.streams.audio, container.streams.video
        if kind == "audio" and not audio:
            raise UploadError(415, f"{name}: no audio stream in this file")
        if not audio and not video:
            raise UploadError(415, f"{name}: no audio or video stream in this file")
        stream = audio[0] if audio else video[0]
        seconds = _header_seconds(container, stream, av.time_base)
        if seconds is not None and seconds > max_seconds:
            raise _too_long(name, seconds, max_seconds)
        decoded, end = False, 0.0
        try:
            for frame in container.decode(stream):
                decoded, end = True, max(end, _frame_end(frame))
                if seconds is not None:
                    break  # one frame shows that it decodes; the headers gave the length
                if end > max_seconds:
                    raise _too_long(name, end, max_seconds)
        except (av.FFmpegError, ValueError):
            raise UploadError(415, f"{name}: corrupt or unsupported {stream.type} data") from None
        if not decoded:
            raise UploadError(415, f"{name}: no {stream.type} could be decoded from this file")
    return MediaInfo(end if seconds is None else seconds, bool(audio), bool(video))
