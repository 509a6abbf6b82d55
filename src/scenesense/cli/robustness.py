"""``scenesense robustness``: score runs with a modality removed, zeroed, noised or with frames dropped."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from scenesense.cli.common import print_json
from scenesense.utils.io import folder_lock


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robustness", help="score runs under missing or corrupted modalities "
                                          "(writes <run_dir>/robustness.json)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="finished run directories (have checkpoint.pt)")
    p.add_argument("--store", help="a feature store folder or one split file (default: the run's own store)")
    p.add_argument("--split", help="split name inside the store folder (default: the run's dev split)")
    p.add_argument("--snr", type=float, nargs="+", default=[20.0, 10.0, 5.0, 0.0], metavar="DB",
                   help="Gaussian-noise SNRs in dB (default: %(default)s)")
    p.add_argument("--drop", type=float, nargs="+", default=[0.25, 0.5, 0.75], metavar="FRACTION",
                   help="fractions of frames dropped from sequence modalities (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="prediction batch size (default: %(default)s)")
    p.add_argument("--metric", choices=("accuracy", "weighted_f1", "macro_f1"), default="weighted_f1",
                   help="metric shown in the table (default: %(default)s); `scenesense report` draws the curves")
    p.add_argument("--json", action="store_true", help="print one JSON object: run_dir -> result")
    p.set_defaults(handler=run)


def _column_names(run_dirs: list[str]) -> list[str]:
    """Each run's folder name, or the path as given where two folder names collide."""
    names = [Path(d).name or d for d in run_dirs]
    return [n if names.count(n) == 1 else d for n, d in zip(names, run_dirs, strict=True)]


def run(args: argparse.Namespace) -> int:
    from scenesense.evaluation.report import format_metrics_table
    from scenesense.evaluation.robustness import evaluate_robustness

    results = {}
    for d in args.run_dirs:
        with folder_lock(d) if Path(d).is_dir() else nullcontext():  # it writes <run_dir>/robustness.json
            results[d] = evaluate_robustness(d, store=args.store, split=args.split, snr_db=args.snr,
                                             drop_fractions=args.drop, seed=args.seed,
                                             batch_size=args.batch_size)
    columns = _column_names(list(results))
    if args.json:
        print_json(results)
        return 0
    rows: dict[str, dict[str, object]] = {"clean": {"condition": "clean"}}
    for col, result in zip(columns, results.values(), strict=True):
        rows["clean"][col] = result["clean"][args.metric]
        for c in result["conditions"]:
            rows.setdefault(c["label"], {"condition": c["label"]})[col] = c[args.metric]
    print(f"{args.metric} ({next(iter(results.values()))['split']} split, seed {args.seed})")
    print(format_metrics_table(list(rows.values()), ["condition", *columns]))
    return 0
