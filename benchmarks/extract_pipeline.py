"""``extract_manifest`` throughput: 1 worker (in-process) vs N worker processes, MiniLM on texts.

Each configuration runs in a fresh Python process, so every one pays the same imports and model
load, as a ``scenesense extract`` command would. Timed: the whole process (wall and CPU seconds
of all its processes, the latter less sensitive to other load on the machine) and the
extraction alone (model load included). ``--workers 0`` is the baseline: the extractor's
``extract_batch`` called directly on the same batches, without the pipeline (no journal, no
store). Texts are generated (seeded) from a small vocabulary.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/extract_pipeline.py --texts 500 2000 --workers 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_RUN = """
import json, sys, time
from scenesense.extraction.manifest import read_manifest_csv
from scenesense.extraction.pipeline import extract_manifest
from scenesense.extraction.text import MiniLMTextExtractor
m = read_manifest_csv(sys.argv[1])
workers, batch = int(sys.argv[3]), int(sys.argv[4])
if workers == 0:  # baseline: the extractor called directly, same batches, no pipeline
    start, texts = time.perf_counter(), [i.text for i in m.items]
    extractor = MiniLMTextExtractor(max_tokens=50)
    rows = sum(len(extractor.extract_batch(texts[i:i + batch])) for i in range(0, len(texts), batch))
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "failures": 0}))
else:
    r = extract_manifest(m.items, {"text": ("minilm", {"max_tokens": 50})}, sys.argv[2], workers=workers,
                         batch_size=batch, progress=False)
    print(json.dumps({"seconds": r.seconds, "rows": sum(r.rows.values()), "failures": len(r.failures)}))
"""

_WORDS = ("I really think we should go there tomorrow , but honestly nobody ever listens to what "
          "she said about the party last night ? oh my god that is amazing ! no way , you are kidding "
          "me . well maybe it was not such a great idea after all").split()


def write_manifest(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = ["id,label,text"]
    for i in range(n):
        words = rng.choice(_WORDS, size=int(rng.integers(3, 30)))
        text = " ".join(words).replace('"', "")
        lines.append(f'u{i},{"joy" if i % 2 else "neutral"},"{text}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(manifest: Path, out: Path, workers: int, batch_size: int) -> dict[str, float]:
    """One configuration in a fresh process: its report, wall seconds and CPU seconds (all processes)."""
    start, cpu = time.perf_counter(), _children_cpu()
    argv = [sys.executable, "-c", _RUN, str(manifest), str(out), str(workers), str(batch_size)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall, "cpu": _children_cpu() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, nargs="+", default=[500], help="manifest sizes (%(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="worker counts; 0 = direct extractor calls (%(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="items per extractor call (%(default)s)")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} cpus={os.cpu_count()} "
          f"load average={os.getloadavg()[0]:.2f} batch_size={args.batch_size}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.texts:
            manifest = Path(tmp) / f"m{n}.csv"
            write_manifest(manifest, n)
            base = None
            for workers in args.workers:
                r = run(manifest, Path(tmp) / f"s{n}-{workers}", workers, args.batch_size)
                assert r["rows"] == n and r["failures"] == 0, r
                rate, wall_rate = n / r["seconds"], n / r["wall"]
                base = base or (rate, wall_rate)
                name = "direct (no pipeline)" if workers == 0 else f"workers={workers}"
                print(f"texts={n} {name}: extraction {r['seconds']:.1f} s = {rate:.1f} items/s "
                      f"(x{rate / base[0]:.2f}); whole process {r['wall']:.1f} s = {wall_rate:.1f} items/s "
                      f"(x{wall_rate / base[1]:.2f}), CPU {r['cpu']:.1f} s")


if __name__ == "__main__":
    main()
