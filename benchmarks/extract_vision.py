"""Speed of face feature extraction per stage, against decode + sample alone, on generated clips.

Clips are written first (H.264, ``--size`` at 25 fps, ``--seconds`` long): a portrait
(matplotlib's ``grace_hopper.jpg``) drifting over a grey background, its face about a third of
the frame height, like a close shot in a TV series. Then, in one process and on the same files,
every stage runs ``--repeats`` times (the median is printed):

1. ``decode+sample`` (the baseline): :func:`~scenesense.extraction.video.iter_frames` at ``--fps``;
2. ``+detect``: the same frames through the Haar face detector;
3. ``face (no embedding)``: :class:`~scenesense.extraction.vision.FaceExtractor` with ``embedding=False``
   (detection + crop + fer expression model);
4. ``face (default)``: the registered default, with the 128-d embedding;
5. ``face_mesh``: the optional MediaPipe extractor, when ``mediapipe`` is importable.

Frames/s counts sampled frames; ``x baseline`` is the stage's time over the baseline's time.
Pin the run to 2 cores as the project's reference machine::

    OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/extract_vision.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/extract_vision.py --clips 2 --seconds 1   # a quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "extraction"))
import video_fixtures as fx  # noqa: E402  (the test clip writers)

from scenesense.extraction.base import FeatureExtractor  # noqa: E402
from scenesense.extraction.faces import HaarFaceDetector  # noqa: E402
from scenesense.extraction.video import iter_frames  # noqa: E402
from scenesense.extraction.vision import FaceExtractor  # noqa: E402


def make_clips(folder: Path, n: int, width: int, height: int, seconds: float) -> list[Path]:
    """``n`` clips of a portrait drifting over a grey background, 25 fps."""
    portrait_h = int(height * 0.8)
    portrait = fx.resize(fx.face_image(), int(portrait_h * 512 / 600) // 2 * 2, portrait_h)
    paths = []
    for c in range(n):
        frames = []
        for i in range(round(seconds * 25)):
            frame = np.full((height, width, 3), 70 + 10 * c, np.uint8)
            x = int((width - portrait.shape[1]) * (0.5 + 0.3 * np.sin(i / 15 + c)))
            y = int((height - portrait_h) * (0.5 + 0.4 * np.cos(i / 20)))
            frame[y:y + portrait_h, x:x + portrait.shape[1]] = portrait
            frames.append(frame)
        paths.append(fx.write_video(folder / f"clip{c}.mp4", np.stack(frames)))
    return paths


def timed(run: Callable[[Path], int], clips: list[Path], repeats: int) -> tuple[float, int]:
    """Median seconds over ``repeats`` passes of ``run`` over every clip, and the frames it counted."""
    times, frames = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        frames = sum(run(path) for path in clips)
        times.append(time.perf_counter() - start)
    return statistics.median(times), frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6, help="generated clips (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length (default %(default)s)")
    parser.add_argument("--size", default="1280x720", help="clip WxH (default %(default)s)")
    parser.add_argument("--fps", type=float, default=5.0, help="sampling rate (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per stage (default %(default)s)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        clips = make_clips(Path(tmp), args.clips, width, height, args.seconds)
        print(f"{args.clips} clips, {width}x{height}, {args.seconds:g} s at 25 fps, sampled at {args.fps:g} fps "
              f"(written in {time.perf_counter() - start:.1f} s); median of {args.repeats} passes")

        detector = HaarFaceDetector()
        plain, default = FaceExtractor(fps=args.fps, embedding=False), FaceExtractor(fps=args.fps)

        def decode(path: Path) -> int:
            return sum(1 for _ in iter_frames(path, args.fps))

        def detect(path: Path) -> int:
            return sum(1 for _, image in iter_frames(path, args.fps) if detector.detect(image) or True)

        def extract(extractor: FeatureExtractor) -> Callable[[Path], int]:
            (name,) = extractor.outputs()
            return lambda path: len(extractor.extract_one(str(path))[name])

        stages: list[tuple[str, Callable[[Path], int]]] = [
            ("decode+sample", decode), ("+detect", detect),
            ("face (no embedding)", extract(plain)), ("face (default)", extract(default))]
        if importlib.util.find_spec("mediapipe") is not None:
            from scenesense.extraction.vision import FaceMeshExtractor

            stages.append(("face_mesh", extract(FaceMeshExtractor(fps=args.fps))))
        for _, run in stages:
            run(clips[0])  # warm up: imports, model loading

        baseline = None
        print(f"{'stage':<22}{'frames':>8}{'s':>8}{'frames/s':>10}{'items/s':>9}{'x baseline':>12}")
        for name, run in stages:
            seconds, frames = timed(run, clips, args.repeats)
            baseline = baseline or seconds
            print(f"{name:<22}{frames:>8}{seconds:>8.2f}{frames / seconds:>10.1f}{len(clips) / seconds:>9.2f}"
                  f"{seconds / baseline:>12.2f}")
        print("frames counted: sampled frames for decode/detect, frames with a face for the extractors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
