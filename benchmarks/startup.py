"""Start-up: `scenesense --help`, `--version` and a one-sentence `predict` with a text run, from process start.

Every command runs ``--repeats`` times (in rounds: each command once per round), each in a fresh
process, timed from before the process starts to its exit (wall seconds; the median is reported, the
minimum beside it). In the same run and the same way: ``python -c pass`` (the interpreter alone) and
``python -c "import torch"`` (the floor of any command that loads a model), with each command's
ratio to them. ``--run`` takes any finished run that reads text (e.g. one of
``configs/meld_text.yaml``); without it the script first builds a small one in ``--work-dir``: 90
generated sentences in three classes, MiniLM token features (``scenesense extract``), one epoch of
``scenesense train``.

``predict`` is timed twice: with the traced MiniLM in the cache (the fast path, which does not import
sentence-transformers) and with ``SCENESENSE_TRACE=0`` (sentence-transformers, as before the trace
cache existed), with the ratio of the two. The scenesense commands use ``--cache-dir`` as
``SCENESENSE_CACHE`` (default ``<work-dir>/cache``). A first ``predict``, reported apart, fills it:
with an empty cache that call builds and verifies the trace. The load average before and after is
printed: another busy process slows every number.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/startup.py [--run path/to/text_run] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SENTENCE = "I can't believe you did that, this is wonderful!"
_WORDS = {"joy": ["great", "wonderful", "lovely"], "anger": ["awful", "outrageous", "infuriating"],
          "neutral": ["fine", "on the table", "at noon"]}
_FRAMES = ["this is {}", "well, that was {}", "I think it is {}", "honestly it is {}", "they said it was {}",
           "you know it is {}", "the report is {}", "oh, it is {}", "so it is {}", "and then it was {}"]


def _scenesense(*args: str) -> list[str]:
    return [sys.executable, "-m", "scenesense", *args]


def _timed(cmd: list[str], repeats: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of ``cmd`` in a fresh process, ``repeats`` times (exits on the first failure)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[2:])} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return times


def _build_text_run(work: Path, env: dict[str, str]) -> Path:
    """A small finished MiniLM text run in ``work/run`` (reused when it is there)."""
    run = work / "run"
    if (run / "metrics.json").exists():
        return run
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "sentences.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "label", "text"])
        for label, words in _WORDS.items():
            for i, (frame, word) in enumerate((f, w) for f in _FRAMES for w in words):
                writer.writerow([f"{label}{i}", "dev" if i % 5 == 0 else "train", label, frame.format(word)])
    store = work / "store"
    for cmd in (_scenesense("extract", "--manifest", str(manifest), "--features", "text=minilm", "--out", str(store)),
                _scenesense("train", "--dataset", "store", "--root", str(store), "--modalities", "text",
                            "--epochs", "1", "--run-dir", str(run))):
        subprocess.run(cmd, check=True, capture_output=True, env=env)
    return run


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run that reads text (default: build a small one)")
    parser.add_argument("--work-dir", default="runs/benchmarks/startup", help="where the small run is built")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache-dir", help="SCENESENSE_CACHE of the scenesense commands "
                                            "(default <work-dir>/cache)")
    args = parser.parse_args()
    cache = Path(args.cache_dir or Path(args.work_dir) / "cache").resolve()
    traced = {**os.environ, "SCENESENSE_CACHE": str(cache)}
    traced.pop("SCENESENSE_TRACE", None)
    untraced = {**traced, "SCENESENSE_TRACE": "0"}
    run = Path(args.run) if args.run else _build_text_run(Path(args.work_dir), traced)
    predict = _scenesense("predict", str(run), SENTENCE)

    load_before = _load()
    had_trace = any(cache.glob("traced-text/*/trace.json"))
    first = _timed(predict, 1, traced)[0]
    if not any(cache.glob("traced-text/*/trace.json")):
        raise SystemExit(f"no traced model in {cache / 'traced-text'} after a predict: "
                         "does the run read MiniLM text?")
    rows = [("python -c pass", [sys.executable, "-c", "pass"], None),
            ('python -c "import torch"', [sys.executable, "-c", "import torch"], None),
            ("scenesense --version", _scenesense("--version"), traced),
            ("scenesense --help", _scenesense("--help"), traced),
            ("scenesense predict RUN '<one sentence>'", predict, traced),
            ("SCENESENSE_TRACE=0 scenesense predict RUN '<one sentence>'", predict, untraced)]
    times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    for _ in range(args.repeats):  # in rounds, so that a change of load touches every command alike
        for name, cmd, env in rows:
            times[name] += _timed(cmd, 1, env)
    floor, torch_s = (statistics.median(times[n]) for n, _, _ in rows[:2])
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {args.repeats} runs each, "
          f"run {run}, {os.cpu_count()} CPUs, load average (1/5/15 min) {load_before} before, "
          f"{_load()} after")
    print(f"first predict ({'trace already cached' if had_trace else 'built and verified the trace'}, "
          f"cache {cache}): {first:.2f} s")
    print("| command | median wall (s) | min (s) | / python alone | / import torch |")
    print("|---|---:|---:|---:|---:|")
    for name, _, _ in rows:
        med = statistics.median(times[name])
        print(f"| `{name}` | {med:.2f} | {min(times[name]):.2f} | {med / floor:.1f} | {med / torch_s:.2f} |")
    fast, slow = (statistics.median(times[name]) for name, _, _ in rows[-2:])
    print(f"predict: sentence-transformers / traced = {slow / fast:.2f}x ({slow:.2f} s -> {fast:.2f} s)")


if __name__ == "__main__":
    main()
