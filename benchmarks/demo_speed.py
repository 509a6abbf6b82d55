"""``scenesense demo`` one variant after another against its variants in parallel processes, in one run.

Runs the demo twice from scratch in fresh folders under ``--work-dir``: first with ``--workers 1``
(every variant in this process, torch's default thread count: the demo before it trained in
parallel), then with the default workers (one process per CPU core, one thread each when there are
as many variants as cores or more). Prints the wall time of each, the ratio serial / parallel, both
comparison tables, and whether the conclusions agree: every cross-attention variant above every
pooled one on the co-occurrence classes, and the cross-attention minus concat margin of each. The
two modes train with different thread counts, so their scores differ in the last digits and the
near-chance pooled variants may swap places among themselves.

    .venv/bin/python benchmarks/demo_speed.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from scenesense.demo import default_workers, run_demo
from scenesense.demo_report import comparison_table
from scenesense.recipes import SCENE_SENSE_RECIPES


def main() -> None:
    """Time both demo modes; print the tables, the ratio and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="runs/benchmarks/demo_speed")
    args = parser.parse_args()
    work = Path(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    results = {}
    for label, workers in (("serial", 1), ("parallel", default_workers(len(SCENE_SENSE_RECIPES)))):
        start = time.perf_counter()
        result = run_demo(work / label, workers=workers)
        results[label] = {"workers": workers, "seconds": time.perf_counter() - start, "margin": result.margin,
                          "order": [r["variant"] for r in sorted(result.rows, key=lambda r: -r["co_occurrence_f1"])],
                          "rows": result.rows}
        print(f"{label} ({workers} worker{'s' if workers > 1 else ''}): {results[label]['seconds']:.1f} s\n"
              f"{comparison_table(result.rows)}\ncross-attention minus concat, co-occurrence F1: "
              f"{result.margin:+.3f}\n")
    serial, parallel = results["serial"], results["parallel"]
    print(f"serial / parallel wall time: {serial['seconds'] / parallel['seconds']:.2f}")
    for label, r in results.items():
        crossed = [v["co_occurrence_f1"] for v in r["rows"] if "cross_attention" in v["variant"]]
        pooled = [v["co_occurrence_f1"] for v in r["rows"] if "cross_attention" not in v["variant"]]
        print(f"{label}: every cross-attention variant above every pooled one on co-occurrence F1: "
              f"{min(crossed) > max(pooled)}; margin {r['margin']:+.3f}; order {', '.join(r['order'])}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
