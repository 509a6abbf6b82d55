"""The frames of a segment: a video decoded once, in step with the segments, and a clip per segment.

`FrameCursor` walks the sampled frames of a video (`scenesense.extraction.video.iter_frames`)
forward as segments come in time order, keeping only the frames of the segment asked for, so a
recording of any length is read once with memory for one segment's frames. `write_clip` writes
a segment's frames as a short lossless video (FFV1 in Matroska, at the sampling rate), which the
run's vision extractor reads as it reads any video file: the features of a segment are those of
the frames in its span.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.extraction.base import ItemError
from scenesense.extraction.video import iter_frames
from scenesense.utils.extras import require_extra

_EVERY_FRAME_FPS = 1000.0  # a sampling rate above any video's: every frame is kept
_NO_LIMIT = 10**9  # frames


def _av() -> Any:  # noqa: ANN401
    return require_extra("av", "vision", "reading the frames of a video")


def has_video(path: str | Path) -> bool:
    """True when ``path`` has a video stream that is not just a cover picture (as MP3s carry)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            return any(not (int(s.disposition) & int(av.stream.Disposition.attached_pic))
                       for s in container.streams.video)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


class FrameCursor:
    """The sampled frames of one video, handed out segment by segment, in time order.

    Args:
        path: a video file.
        fps: frames sampled per second (``None``: every frame).

    Attributes:
        error: why frames stopped (the video could not be read further), or ``None``.
    """

    def __init__(self, path: str | Path, fps: float | None) -> None:
        self.path = Path(path)
        self.fps = fps
        self._frames: Iterator[tuple[float, np.ndarray]] = iter_frames(path, fps or _EVERY_FRAME_FPS,
                                                                       _NO_LIMIT)
        self._next: tuple[float, np.ndarray] | None = None
        self._done = False
        self.error: str | None = None

    def _advance(self) -> tuple[float, np.ndarray] | None:
        if self._next is None and not self._done:
            try:
                self._next = next(self._frames)
            except StopIteration:
                self._done = True
            except ItemError as err:
                self._done, self.error = True, str(err)
        return self._next

    def frames(self, start: float, end: float) -> list[tuple[float, np.ndarray]]:
        """The sampled frames with presentation time in ``[start, end)`` seconds; earlier frames are dropped.

        Segments must be asked for in time order: a frame before ``start`` is gone.
        """
        out = []
        while (frame := self._advance()) is not None and frame[0] < end:
            if frame[0] >= start:
                out.append(frame)
            self._next = None
        return out

    def close(self) -> None:
        """Stop decoding (closes the file)."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        self._done = True


def write_clip(path: str | Path, frames: list[tuple[float, np.ndarray]], fps: float | None) -> Path:
    """Write ``frames`` (``(time, [H, W, 3] uint8 RGB)``, same size) as a lossless FFV1 Matroska video.

    Frames are timed at ``fps`` (``None``: at the rate of their own times), from 0.

    Returns:
        ``path``.
    """
    av = _av()
    if fps is None:
        steps = np.diff([t for t, _ in frames])
        fps = float(1 / np.median(steps)) if steps.size and np.median(steps) > 0 else 25.0
    rate = Fraction(fps).limit_denominator(1001)
    height, width = frames[0][1].shape[:2]
    frames = [f for f in frames if f[1].shape == frames[0][1].shape]  # a stream that changes size: the first
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i, (_, image) in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return Path(path)
