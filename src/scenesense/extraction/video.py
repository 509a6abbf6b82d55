"""Sample RGB frames from a video (or image) file at a fixed rate with PyAV (FFmpeg).

Frames are picked on a time grid, not by index, so variable-frame-rate files are sampled evenly:
grid point ``k`` is ``t0 + k / fps`` (``t0`` = the first frame's presentation time) and the frame
kept for it is the first decoded frame at or after it. A frame is kept at most once, so asking
for more frames per second than the file holds returns every frame. Times are presentation
timestamps in seconds (``pts * time_base``), as stored in the file. A rotation stored in the
stream's display matrix (phone videos) is applied, so frames come out upright.

Anything FFmpeg decodes works: MP4/MOV/MKV/AVI/WebM video, and still images (JPEG, PNG, BMP, ...),
which give one frame at time 0. PyAV comes with the ``vision`` extra
(``pip install "scenesense[vision]"``). Every problem is an
`scenesense.extraction.base.ItemError` with one line naming the file: missing file,
unreadable/corrupt/unsupported file, no video stream, a decoding error, no decodable frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scenesense.extraction.base import ItemError
from scenesense.utils.extras import require_extra

_GRID_TOLERANCE_S = 1e-3  # a frame this close before a grid point still counts as on it (float pts)


class Frames(NamedTuple):
    """Sampled frames of one file.

    Fields:
        images: ``[T, H, W, 3]`` uint8 RGB (``T >= 1``).
        times: ``[T]`` float64 presentation times in seconds, increasing.
    """

    images: np.ndarray
    times: np.ndarray


def check_sampling(fps: float, max_frames: int) -> None:
    """Raise ``ValueError`` unless ``fps`` is a positive finite number and ``max_frames`` a positive int."""
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"max_frames must be a positive int, got {max_frames!r}")


def _error_text(err: Exception) -> str:
    """FFmpeg's own short reason (``strerror``), without the path PyAV appends."""
    return str(getattr(err, "strerror", None) or err).splitlines()[0]


def _upright(frame: Any) -> np.ndarray:  # noqa: ANN401  (an av.VideoFrame)
    """``[H, W, 3]`` uint8 RGB of a decoded frame, rotated as its display matrix says."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise degrees
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb


def iter_frames(path: str | Path, fps: float = 5.0, max_frames: int = 300) -> Iterator[tuple[float, np.ndarray]]:
    """Decode the first video stream and yield the sampled frames one by one (memory stays flat).

    Args:
        path: a video or image file.
        fps: sampling rate in frames per second (on the presentation-time grid).
        max_frames: stop after this many frames.

    Yields:
        ``(time, image)``: presentation time in seconds, ``[H, W, 3]`` uint8 RGB.

    Raises:
        ItemError: missing/unreadable file, no video stream, a decoding error, or no frame at all
            (raised when iteration reaches it).
        ValueError: ``fps`` or ``max_frames`` is not positive.
        MissingExtraError: PyAV is not installed.
    """
    check_sampling(fps, max_frames)
    path = Path(path)
    if not path.is_file():
        raise ItemError(f"{path}: {'a folder, not a video file' if path.is_dir() else 'no such video file'}")
    av = require_extra("av", "vision", "decoding video")  # heavy (FFmpeg libraries): loaded on first use

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise ItemError(f"{path}: not a readable video or image file ({_error_text(err)})") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise ItemError(f"{path}: no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads in the decoder
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        start: float | None = None
        next_index = 0  # grid point still waiting for a frame
        kept = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else (index / rate if rate else None)
                if time is None:
                    raise ItemError(f"{path}: video frames carry no timestamps and the stream no frame rate")
                if start is None:
                    start = time
                if time < start + next_index / fps - _GRID_TOLERANCE_S:
                    continue
                yield time, _upright(frame)
                kept += 1
                if kept >= max_frames:
                    return
                next_index = math.floor((time - start) * fps + _GRID_TOLERANCE_S * fps) + 1
        except (av.FFmpegError, ValueError) as err:
            raise ItemError(f"{path}: corrupt or unsupported video ({_error_text(err)})") from None
        if kept == 0:
            raise ItemError(f"{path}: the video stream holds no decodable frame")


def read_frames(path: str | Path, fps: float = 5.0, max_frames: int = 300) -> Frames:
    """All sampled frames of a file at once (see `iter_frames`; mind the memory: ``T*H*W*3`` bytes).

    Frames whose size differs from the first one (a stream that changes resolution) are resized
    to the first frame's size so that they stack.

    Returns:
        `Frames`: ``images [T, H, W, 3]`` uint8 RGB and ``times [T]`` seconds, ``1 <= T <= max_frames``.

    Raises:
        ItemError: see `iter_frames`.
        ValueError: ``fps`` or ``max_frames`` is not positive.
    """
    times, images = [], []
    for time, image in iter_frames(path, fps, max_frames):
        if images and image.shape != images[0].shape:
            from PIL import Image

            size = (images[0].shape[1], images[0].shape[0])
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        times.append(time)
        images.append(image)
    return Frames(np.stack(images), np.asarray(times, dtype=np.float64))
