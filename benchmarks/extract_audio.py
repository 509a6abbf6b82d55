"""Speed of the openSMILE audio extractors against decoding alone (PyAV), on RAVDESS or generated clips.

Clips: with ``--root``, ``--n`` WAVs of a RAVDESS tree (``audio/Actor_XX/*.wav``), taken at an even
stride over the sorted file list so every actor (48 kHz and 16 kHz ones) is represented; without
it, ``--n`` generated speech-like tones of ``--seconds`` (half 48 kHz stereo, half 16 kHz mono,
like RAVDESS). In one process and on the same files, each stage runs ``--repeats`` times (the
median is printed), after one warm-up item (library loading and config parsing are reported
apart, as ``init``):

1. ``decode`` (the baseline): :func:`~scenesense.extraction.audio_io.load_audio` (decode, resample
   to 16 kHz, mono);
2. every registered openSMILE extractor (``egemaps``, ``compare``, ``egemaps_lld``,
   ``compare_lld``), which includes that decoding.

``items/s`` counts files; ``RTF`` (real-time factor) is processing (wall-clock) seconds over audio
seconds (below 1 is faster than real time); ``x decode`` is the stage's time over the baseline's;
``cpu s`` is the process's CPU time, which other load on the machine inflates less than wall time.
Pin the run to 2 cores, the project's reference machine::

    OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/extract_audio.py --root path/to/RAVDESS --n 100
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/extract_audio.py --n 4 --repeats 1   # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "extraction"))
import audio_fixtures as fx  # noqa: E402  (the test audio writers)

from scenesense.extraction import EXTRACTORS  # noqa: E402
from scenesense.extraction.audio_io import load_audio  # noqa: E402
from scenesense.extraction.base import package_versions  # noqa: E402

EXTRACTOR_NAMES = ("egemaps", "compare", "egemaps_lld", "compare_lld")


def ravdess_clips(root: Path, n: int) -> list[Path]:
    """``n`` WAVs at an even stride over the sorted RAVDESS tree."""
    files = sorted(p for p in (root / "audio").rglob("*.wav") if not p.name.startswith("."))
    if not files:
        raise SystemExit(f"{root}: no audio/Actor_XX/*.wav files")
    picks = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
    return [files[i] for i in dict.fromkeys(picks.tolist())]


def generated_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    """``n`` tones of ``seconds``: even ones 48 kHz stereo, odd ones 16 kHz mono."""
    paths = []
    for i in range(n):
        f0 = 110.0 + 15 * i
        if i % 2 == 0:
            signal = fx.voiced(seconds, 48000, f0=f0)
            paths.append(fx.write_wav(folder / f"clip{i}.wav", np.stack([signal, signal]), 48000))
        else:
            paths.append(fx.write_wav(folder / f"clip{i}.wav", fx.voiced(seconds, 16000, f0=f0), 16000))
    return paths


def timed(run: Callable[[Path], object], clips: list[Path], repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds over ``repeats`` passes of ``run`` over every clip."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for path in clips:
            run(path)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="a RAVDESS folder (default: generated clips)")
    parser.add_argument("--n", type=int, default=20, help="clips (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.7,
                        help="generated clip length (default %(default)s, RAVDESS's mean)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per stage (default %(default)s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        clips = ravdess_clips(args.root, args.n) if args.root else generated_clips(Path(tmp), args.n, args.seconds)
        audio_seconds = sum(load_audio(p).size for p in clips) / 16000
        what = f"{len(clips)} RAVDESS clips from {args.root}" if args.root else f"{len(clips)} generated clips"
        print(f"{what}: {audio_seconds:.1f} s of audio (mean {audio_seconds / len(clips):.2f} s); "
              f"median of {args.repeats} passes; {package_versions(('opensmile', 'av'))}")
        print(f"{'stage':<12} {'init s':>7} {'total s':>8} {'items/s':>8} {'RTF':>7} {'x decode':>9} {'cpu s':>7}")
        baseline, cpu = timed(load_audio, clips, args.repeats)
        print(f"{'decode':<12} {'-':>7} {baseline:8.2f} {len(clips) / baseline:8.1f} "
              f"{baseline / audio_seconds:7.4f} {1.0:9.2f} {cpu:7.2f}")
        for name in EXTRACTOR_NAMES:
            extractor = EXTRACTORS.create(name)
            start = time.perf_counter()
            extractor.extract_one(str(clips[0]))  # warm-up: imports opensmile, parses the config
            init = time.perf_counter() - start
            seconds, cpu = timed(lambda p, e=extractor: e.extract_one(str(p)), clips, args.repeats)
            print(f"{name:<12} {init:7.2f} {seconds:8.2f} {len(clips) / seconds:8.1f} "
                  f"{seconds / audio_seconds:7.4f} {seconds / baseline:9.2f} {cpu:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
