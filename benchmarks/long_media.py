"""Bounded memory on long media: ``scenesense predict`` on a generated 1-hour WAV, against 1 minute.

The script writes a synthetic 16 kHz mono 16-bit WAV of ``--minutes`` (default 60) to a temporary
folder, block by block (a voice-like harmonic tone whose pitch changes every 8 s, a 3 Hz swell,
light noise and a pause now and then), and its first ``--baseline-minutes`` (default 1) as a
second file. Unless ``--run`` names a finished run, it trains a small RAVDESS-like audio run first,
as the tests do (``tests/test_predict.py``, the LLD run): eGeMAPSv02 low-level descriptors with
``max_frames`` unset (the run the issue reported: ~60k frames for 10 minutes), the transformer
encoder of ``configs/ravdess.yaml``, feature standardisation and speaker normalisation, two pitch
classes on 1-s clips.

Each file, and a 2-second clip that measures the fixed cost (start-up, imports, loading the
run), is then predicted by ``scenesense predict RUN FILE --out CSV`` in a child process with
``OMP_NUM_THREADS`` set to ``--threads``; the child reports its own peak RSS (``VmHWM`` of
``/proc/self/status`` as it exits; ``ru_maxrss`` would also count the parent's memory copied at
fork). Printed: wall seconds, seconds per minute of audio (net of the fixed cost), peak RSS and
windows predicted for each file, and the ratios long / baseline (net seconds per minute: ~1 means
linear time; RSS: ~1 means memory does not grow with the length). Exit 1 if the long file's peak
RSS reaches ``--limit-mb`` (default 1536, i.e. 1.5 GB).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/long_media.py              # 1 hour, ~2 cores
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_media.py --minutes 10 # a quicker check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from cli_child import run_cli

RATE = 16000
BLOCK_S = 8.0  # one pitch per block of the synthetic recording


def voice(seconds: float, f0: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``[S]`` float: 4 harmonics of ``f0`` with a slow vibrato and a 3 Hz swell, plus light noise."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * f0 * (t + 0.02 * np.sin(2 * np.pi * 1.5 * t))
    tone = sum(np.sin(k * phase) / k for k in range(1, 5)) * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return amplitude * tone / np.abs(tone).max() + rng.normal(0, 0.003, t.size)


def write_recording(path: Path, minutes: float, seed: int = 0) -> Path:
    """A ``minutes``-long synthetic recording, written ``BLOCK_S`` seconds at a time (never held whole)."""
    rng = np.random.default_rng(seed)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for start in np.arange(0.0, minutes * 60, BLOCK_S):
            seconds = min(BLOCK_S, minutes * 60 - start)
            if rng.random() < 0.1 and start > 0:  # a pause
                block = rng.normal(0, 0.001, round(seconds * RATE))
            else:
                block = voice(seconds, rng.choice([rng.uniform(100, 130), rng.uniform(240, 300)]),
                              rng.uniform(0.1, 0.5), rng)
            w.writeframes(np.round(np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def build_run(root: Path, seed: int = 0) -> Path:
    """Train the small RAVDESS-like audio run (see the module docstring) under ``root``; its run dir."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.data.labels import LabelSpace
    from scenesense.data.store import FeatureSpec, StoreWriter
    from scenesense.extraction import EXTRACTORS

    extractor, rng = EXTRACTORS.create("egemaps_lld"), np.random.default_rng(seed)
    specs = {"audio": FeatureSpec("audio", "sequence", 25, max_len=400, provenance=extractor.provenance())}
    (root / "clips").mkdir(parents=True)
    for split, n in (("train", 48), ("dev", 16)):
        labels = [i % 2 for i in range(n)]  # 0 low pitch, 1 high pitch
        clips = []
        for i, y in enumerate(labels):
            f0 = rng.uniform(240, 300) if y else rng.uniform(100, 130)
            clip = voice(rng.uniform(0.8, 1.5), f0, rng.uniform(0.1, 0.5), rng)
            clips.append(root / "clips" / f"{split}{i}.wav")
            with wave.open(str(clips[-1]), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes(np.round(np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
        features = [r["lld"] for r in extractor.extract_batch([str(p) for p in clips])]
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("low", "high")),
                         features=specs, source={"dataset": "long_media_benchmark"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels, {"audio": features},
                     speakers=[f"spk{i % 4}" for i in range(n)])
    cfg = build_config({
        "name": "long_media", "modalities": ["audio"],
        "data": {"dataset": "store", "root": str(root / "store"), "speaker_norm": True},
        "model": {"standardize": True, "out_dim": 128, "head_hidden_dim": 128,
                  "sequence_encoder": {"name": "transformer", "params": {  # as configs/ravdess.yaml
                      "d_model": 64, "num_layers": 2, "num_heads": 4, "dim_feedforward": 128,
                      "dropout": 0.2}}},
        "trainer": {"epochs": 10, "batch_size": 16, "lr": 1e-3, "progress": False, "seed": seed}})
    return api.train(cfg, root / "run").run_dir


def measure(run: Path, wav: Path, out: Path, threads: int, window: float) -> dict[str, float | int | str]:
    """Predict ``wav`` in a child process: wall seconds, the child's peak RSS (MB), windows, label."""
    child = run_cli(["predict", str(run), str(wav), "--out", str(out), "--window", str(window)], threads)
    with wave.open(str(wav), "rb") as w:
        minutes = w.getnframes() / w.getframerate() / 60
    rows = list(csv.DictReader(out.open()))
    return {"minutes": minutes, "seconds": child.wall, "peak_rss_mb": child.peak_rss_mb,
            "windows": sum(1 for r in rows if r.get("start")), "label": rows[0]["label"],
            "windows_failed": sum(1 for r in rows if r.get("start") and r["ok"] == "0")}


def main() -> None:
    """Generate the recordings, build (or take) the run, predict both, print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished audio run to predict with (default: train a small one)")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="length of the long recording (%(default)s)")
    parser.add_argument("--baseline-minutes", type=float, default=1.0,
                        help="length of the baseline recording (%(default)s)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                        help="OMP_NUM_THREADS of the predict processes (default: $OMP_NUM_THREADS, else 2)")
    parser.add_argument("--window", type=float, default=4.0, help="predict --window, seconds (%(default)s)")
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="peak RSS limit (%(default)s MB)")
    parser.add_argument("--keep", help="keep the files in this folder instead of a temporary one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="scenesense-long-media-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run = Path(args.run) if args.run else build_run(folder / "train")
        print(f"run: {run} ({'given' if args.run else f'trained in {time.perf_counter() - start:.0f} s'})",
              flush=True)
        start = time.perf_counter()
        files = {"clip": write_recording(folder / "clip.wav", 2 / 60),
                 "baseline": write_recording(folder / "baseline.wav", args.baseline_minutes),
                 "long": write_recording(folder / "long.wav", args.minutes)}
        print(f"recordings written in {time.perf_counter() - start:.0f} s "
              f"({files['long'].stat().st_size / 2**20:.0f} MB long)", flush=True)
        results: dict[str, dict] = {}
        for name, wav in files.items():
            r = results[name] = measure(run, wav, folder / f"{name}.csv", args.threads, args.window)
            r["net_seconds_per_minute"] = (r["seconds"] - results["clip"]["seconds"]) / r["minutes"]
            print(f"{name:>8}: {r['minutes']:6.2f} min  {r['seconds']:7.1f} s  "
                  f"{r['net_seconds_per_minute']:6.2f} s/min net of the fixed cost  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB  {r['windows']} windows "
                  f"({r['windows_failed']} failed)  overall {r['label']}", flush=True)
    long_r, base_r = results["long"], results["baseline"]
    ratios = {"net_seconds_per_minute": long_r["net_seconds_per_minute"] / base_r["net_seconds_per_minute"],
              "peak_rss": long_r["peak_rss_mb"] / base_r["peak_rss_mb"]}
    print(f"fixed cost (2 s clip) {results['clip']['seconds']:.1f} s; ratio long/baseline: net seconds "
          f"per minute {ratios['net_seconds_per_minute']:.2f} (1 = linear time), peak RSS "
          f"{ratios['peak_rss']:.2f} (1 = memory independent of the length); "
          f"OMP_NUM_THREADS={args.threads}, window {args.window:g} s")
    ok = long_r["peak_rss_mb"] < args.limit_mb
    print(f"peak RSS {long_r['peak_rss_mb']:.0f} MB {'<' if ok else '>='} limit {args.limit_mb:.0f} MB: "
          f"{'PASS' if ok else 'FAIL'}")
    print(json.dumps({"results": results, "ratios": ratios, "threads": args.threads, "window": args.window}))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
