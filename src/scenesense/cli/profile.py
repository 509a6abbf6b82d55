"""``scenesense profile``: what each trained model costs (size, FLOPs, latency, memory, epoch time)."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from scenesense.cli.common import print_json
from scenesense.utils.io import folder_lock


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="measure parameters, FLOPs, latency, throughput and peak memory "
                                       "of runs (writes <run_dir>/efficiency.json)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="finished run directories (have checkpoint.pt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32], metavar="B",
                   help="batch sizes to time (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=20, help="timed forward passes per batch size "
                                                           "(default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed forward passes first (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch CPU threads while profiling (default: leave as is)")
    p.add_argument("--store", help="a feature store folder or one split file to draw inputs from "
                                   "(default: the run's own store, else synthetic inputs)")
    p.add_argument("--split", help="split name inside the store folder (default: the run's dev split)")
    p.add_argument("--json", action="store_true", help="print one JSON object: run_dir -> profile")
    p.set_defaults(handler=run)


def _label(run_dir: str) -> str:
    """``<modalities>/<variant>/s<seed>`` from the run's ``cell.json``, else the folder name."""
    from scenesense.runs import CELL_FILE

    cell = Path(run_dir) / CELL_FILE
    if cell.exists():
        c = json.loads(cell.read_text(encoding="utf-8"))
        return f"{'+'.join(sorted(c['modalities']))}/{c['variant']}/s{c['seed']}"
    return Path(run_dir).name or run_dir


def _labels(run_dirs: list[str]) -> list[str]:
    labels = [_label(d) for d in run_dirs]
    return [n if labels.count(n) == 1 else d for n, d in zip(labels, run_dirs, strict=True)]


def comparison_rows(profiles: dict[str, dict[str, Any]],
                    labels: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows and columns; ``ratio@b`` is each run's median latency over the first run's."""
    first = next(iter(profiles.values()))["latency_ms"]
    sizes = list(first)
    rows = []
    for label, prof in zip(labels, profiles.values(), strict=True):
        flops = prof["flops_per_sample"]
        row: dict[str, Any] = {"run": label, "params": prof["parameters"],
                               "MFLOPs": None if flops is None else flops / 1e6}
        for b in sizes:
            row[f"ms@{b}"] = prof["latency_ms"][b]["median"]
        for b in sizes:
            base = first[b]["median"]
            row[f"ratio@{b}"] = prof["latency_ms"][b]["median"] / base if base > 0 else None
        row.update({"samples/s": prof["throughput_per_s"], "peak MiB": prof["peak_memory_mb"],
                    "epoch s": prof["epoch_seconds"], "inputs": prof["batch_source"]})
        rows.append(row)
    columns = ["run", "params", "MFLOPs", *(f"ms@{b}" for b in sizes), *(f"ratio@{b}" for b in sizes),
               "samples/s", "peak MiB", "epoch s", "inputs"]
    return rows, columns


def run(args: argparse.Namespace) -> int:
    from scenesense.evaluation.efficiency import profile_run
    from scenesense.evaluation.report import format_metrics_table

    profiles = {}
    for d in args.run_dirs:
        with folder_lock(d) if Path(d).is_dir() else nullcontext():  # it writes <run_dir>/efficiency.json
            profiles[d] = profile_run(d, device=args.device, batch_sizes=args.batch_sizes,
                                      repeats=args.repeats, warmup=args.warmup, threads=args.threads,
                                      store=args.store, split=args.split)
    if args.json:
        print_json(profiles)
        return 0
    rows, columns = comparison_rows(profiles, _labels(list(profiles)))
    first = next(iter(profiles.values()))
    print(f"device {first['device']}, {first['threads']} torch threads, {args.repeats} timed passes "
          f"after {args.warmup} warm-up; medians in ms; ratio = latency / first run's (same process)")
    print(format_metrics_table(rows, columns, digits=3))
    return 0
