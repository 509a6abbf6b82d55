"""``scenesense demo``: the main job on the built-in synthetic benchmark."""

from __future__ import annotations

import argparse

from scenesense.cli.common import print_json
from scenesense.config import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="compare the five Scene Sense variants on the built-in benchmark")
    p.add_argument("--output-dir", default="runs/demo", help="where runs and report go (%(default)s)")
    p.add_argument("-s", "--seed", type=int, default=0, help="seed of every run (%(default)s)")
    p.add_argument("--epochs", type=int, help="override the maximum number of epochs")
    p.add_argument("--quick", action="store_true", help="small benchmark, for a smoke test")
    p.add_argument("--workers", type=int, help="variants trained at once, in separate processes "
                                               "(default: one per CPU core, at most 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenesense.demo import run_demo
    from scenesense.demo_report import comparison_table, scope_line

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    result = run_demo(args.output_dir, seed=args.seed, epochs=args.epochs, quick=args.quick, workers=args.workers)
    if args.json:
        print_json({"rows": result.rows, "report": str(result.report), "margin": result.margin})
        return 0
    print(f"scores: {scope_line(args.seed)}\n")
    print(comparison_table(result.rows))
    print(f"\ncross-attention minus concat, co-occurrence F1 (test): {result.margin:+.3f}")
    print(f"report: {result.report}")
    return 0
