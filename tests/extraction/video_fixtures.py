"""Media files written in the tests with PyAV: face clips (a moving crop of matplotlib's
``grace_hopper.jpg``, a frontal face), face-free clips, variable-frame-rate clips, audio-only
files and corrupt files. Nothing is read from the network or from real datasets."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

FACE_BOX = (155, 105, 222, 222)  # x, y, w, h of the face in grace_hopper.jpg (512 x 600)


def face_image() -> np.ndarray:
    """matplotlib's ``grace_hopper.jpg`` as ``[600, 512, 3]`` uint8 RGB."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def face_frames(n: int, size: int = 160, side: int = 360) -> np.ndarray:
    """``[n, size, size, 3]``: a ``side``-pixel window that drifts over the portrait (face always inside)."""
    image = face_image()
    frames = []
    for i in range(n):
        x = 80 + round(40 * np.sin(i / 4))  # window x in 40..120, face spans 155..377
        y = 40 + round(20 * np.cos(i / 5))
        frames.append(resize(image[y:y + side, x:x + side], size, size))
    return np.stack(frames)


def noise_frames(n: int, size: int = 160, seed: int = 0) -> np.ndarray:
    """``[n, size, size, 3]`` smooth random colour blobs (no face), half of them flat grey."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        if i % 2:
            frames.append(np.full((size, size, 3), 90 + i, np.uint8))
        else:
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            frames.append(resize(small, size, size))
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray | Sequence[np.ndarray], fps: int = 25,
                times: Sequence[float] | None = None, codec: str = "libx264",
                display_rotation: int | None = None) -> Path:
    """Encode RGB frames ``[T, H, W, 3]`` (even sizes) to ``path``.

    ``times`` (seconds) gives each frame's presentation time (a variable frame rate), else frame
    ``i`` is at ``i / fps``; ``display_rotation`` (counter-clockwise degrees) is stored in the
    stream's display matrix, as phones do.
    """
    import av

    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps if times is None else 1000)  # 1 ms ticks for VFR
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        if display_rotation is not None:
            stream.set_display_rotation(display_rotation)
        if times is not None:
            stream.time_base = time_base
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[i] * 1000), time_base
            else:
                frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_image(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A mono 16-bit WAV holding a 440 Hz tone (no video stream)."""
    import av

    samples = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_corrupt(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """Random bytes under a video file name."""
    return write_bytes(path, np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
