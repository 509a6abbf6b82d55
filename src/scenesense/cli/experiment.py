"""``scenesense experiment``: a grid of modality sets x variants x seeds, in parallel, resumable, then a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from scenesense.cli.common import print_json
from scenesense.config import ExperimentConfig, load_yaml, parse_override
from scenesense.utils.io import folder_lock

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a grid of modality sets x fusion recipes x seeds and report it")
    p.add_argument("-c", "--config", help="base YAML config (e.g. configs/synthetic.yaml, configs/ravdess.yaml)")
    p.add_argument("--root", help="dataset root (default: data.root, else $SCENESENSE_<DATASET>_ROOT)")
    p.add_argument("--sets", nargs="+", metavar="MODS",
                   help="modality sets such as text audio+text (default: every subset of the config's modalities)")
    p.add_argument("--variants", nargs="+", metavar="RECIPE",
                   help="recipes (default: the five Scene Sense fusions on multimodal sets); recipes "
                        "without a fusion (base, context_*, focal, ...) also run on one-modality sets")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    p.add_argument("--workers", type=int, default=1, help="cells trained at once (processes or Ray tasks)")
    p.add_argument("--threads", type=int, help="torch threads per cell (default: CPU count / workers)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local process pool, or Ray (pip install 'scenesense[ray]'; RAY_ADDRESS for a cluster)")
    p.add_argument("--epochs", type=int, help="maximum epochs per cell")
    p.add_argument("--output-dir", required=True, help="the experiment folder (re-run the command to resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the base config")
    p.add_argument("--no-robustness", action="store_true", help="skip the robustness suite on each cell")
    p.add_argument("--no-profile", action="store_true", help="skip the efficiency profile of each cell")
    p.add_argument("--no-report", action="store_true", help="train only; build the report later")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the result")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenesense.experiment import parse_modality_set
    from scenesense.recipes import resolve_config

    layers: list[dict[str, Any]] = [load_yaml(args.config)] if args.config else []
    if args.epochs is not None:
        layers.append({"trainer": {"epochs": args.epochs}})
    if args.root is not None:
        layers.append({"data": {"root": args.root}})
    layers.extend(parse_override(s) for s in args.set)
    base = resolve_config(*layers, {"trainer": {"progress": False}})
    sets = [parse_modality_set(s) for s in args.sets] if args.sets else None
    with folder_lock(args.output_dir):  # one process per experiment folder
        return _run(args, base, sets)


def _run(args: argparse.Namespace, base: ExperimentConfig, sets: list[tuple[str, ...]] | None) -> int:
    from scenesense.experiment import is_regression_run, run_experiment
    from scenesense.runs import EFFICIENCY_FILE, ROBUSTNESS_FILE

    result = run_experiment(base, Path(args.output_dir), sets=sets, variants=args.variants, seeds=args.seeds,
                            workers=args.workers, threads=args.threads, backend=args.backend,
                            robustness=not args.no_robustness)
    summary: dict[str, Any] = {"folder": str(result.folder), "cells": len(result.run_dirs),
                               "trained": result.trained, "skipped": result.skipped}
    classified = {c: d for c, d in result.run_dirs.items() if not is_regression_run(d)}
    if len(classified) < len(result.run_dirs):
        log.warning("%d regression cells: no robustness suite or report for them (classification only); "
                    "their metrics.json holds MAE, correlation and the Acc-k scores",
                    len(result.run_dirs) - len(classified))
    if not args.no_robustness:  # cells trained now were stressed in their worker; earlier ones here
        summary["robustness"] = _each_missing(classified, ROBUSTNESS_FILE, _robustness)
    if not args.no_profile:  # one process, one after another: latencies are comparable
        summary["profiled"] = _each_missing(result.run_dirs, EFFICIENCY_FILE, _profile(args.threads or 1))
    if not args.no_report and classified:
        summary["report"] = _report(result.folder, list(classified.values()))
    if args.json:
        print_json(summary)
    else:
        print(f"{result.folder}: {len(result.run_dirs)} cells ({len(result.trained)} trained now, "
              f"{len(result.skipped)} already finished)")
        if "report" in summary:
            print(f"report: {summary['report']}")
    return 0


def _each_missing(run_dirs: dict[str, Path], file: str, action: Any) -> list[str]:  # noqa: ANN401
    """Run ``action(run_dir)`` on every cell without ``file`` (so a resumed experiment skips done work)."""
    done = []
    for cell, run_dir in run_dirs.items():
        if not (run_dir / file).exists():
            action(run_dir)
            done.append(cell)
    return done


def _robustness(run_dir: Path) -> None:
    from scenesense.evaluation.robustness import evaluate_robustness

    evaluate_robustness(run_dir)


def _profile(threads: int) -> Any:  # noqa: ANN401
    from scenesense.evaluation.efficiency import profile_run

    return lambda run_dir: profile_run(run_dir, threads=threads)


def _report(folder: Path, run_dirs: list[Path]) -> str:
    from scenesense.evaluation.experiment_report import build_report, write_report
    from scenesense.runs import load_runs

    files = write_report(build_report(load_runs(run_dirs)), folder / "report")
    return str(files.get("html", folder / "report"))
