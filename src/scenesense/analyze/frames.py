"""The frames of a segment: a video decoded once, in step with the segments, into a clip per segment.

`FrameCursor` walks the sampled frames of a video (`scenesense.extraction.video.iter_frames`)
forward as segments come in time order, and `FrameCursor.write_clip` encodes the frames of one
segment's span, as they are decoded, into a short lossless video (FFV1 in Matroska): memory
holds one frame, however long the recording and its frames. The run's vision extractor reads a
segment's clip as it reads any video file, so a segment's features are those of the frames in
its span.
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
_MS = Fraction(1, 1000)  # Matroska's time base


def _av() -> Any:  # noqa: ANN401
    return require_extra("av", "vision", "reading the frames of a video")


def has_video(path: str | Path) -> bool:
    """True when ``path`` has a video stream that is not just a cover picture (as MP3s carry)."""
    av = require_extra("av", "audio", "decoding media")
    try:
        with av.open(str(path)) as container:
            return any(not (int(s.disposition) & int(av.stream.Disposition.attached_pic))
                       for s in container.streams.video)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


class _ClipWriter:
    """An FFV1 Matroska file written frame by frame, opened at the first frame (its size is the clip's)."""

    def __init__(self, path: Path, fps: float | None) -> None:
        self.path, self.fps = path, fps
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._start = 0.0

    def add(self, time: float, image: np.ndarray) -> None:
        av = _av()
        if self._container is None:
            rate = Fraction(self.fps or 25.0).limit_denominator(1001)
            self._container = av.open(str(self.path), "w")
            self._stream = self._container.add_stream("ffv1", rate=rate)
            self._stream.height, self._stream.width = image.shape[:2]
            self._stream.pix_fmt, self._start = "bgr0", time
            if not self.fps:
                self._stream.codec_context.time_base = _MS  # frames keep their own times, to the millisecond
        if image.shape[:2] != (self._stream.height, self._stream.width):
            return  # a stream that changes size mid-segment: the first size is kept
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if self.fps:  # on the sampling grid, as the extractor samples it again
            frame.pts, frame.time_base = self.frames, 1 / Fraction(self.fps).limit_denominator(1001)
        else:  # every frame, at its own time
            frame.pts, frame.time_base = round((time - self._start) * 1000), _MS
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())
            self._container.close()


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

    def frames(self, start: float, end: float) -> Iterator[tuple[float, np.ndarray]]:
        """The sampled frames with presentation time in ``[start, end)`` seconds, as they are decoded;
        earlier frames are dropped.

        Segments must be asked for in time order: a frame before ``start`` is gone.
        """
        while (frame := self._advance()) is not None and frame[0] < end:
            self._next = None
            if frame[0] >= start:
                yield frame

    def write_clip(self, path: str | Path, start: float, end: float) -> Path | None:
        """Encode the frames of ``[start, end)`` into a lossless video at ``path``, one frame held at a time.

        Frames are timed from 0: at the sampling rate, or, sampling every frame, at their own times.

        Returns:
            ``path``, or ``None`` when no frame falls in the span.
        """
        writer = _ClipWriter(Path(path), self.fps)
        try:
            for time, image in self.frames(start, end):
                writer.add(time, image)
        finally:
            writer.close()
        return Path(path) if writer.frames else None

    def close(self) -> None:
        """Stop decoding (closes the file)."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        self._done = True
