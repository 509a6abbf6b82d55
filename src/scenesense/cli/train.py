"""``scenesense train``: one configured run (or several seeds), selected on the dev split."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from typing import Any

from scenesense.cli.common import headline_keys, print_json, summary_row
from scenesense.config import (
    ConfigError,
    ExperimentConfig,
    dump_yaml,
    load_yaml,
    parse_override,
    validate_config,
)
from scenesense.types import MODALITIES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and write a run directory")
    p.add_argument("-c", "--config", help="YAML config file (values over the defaults)")
    p.add_argument("--recipe", help="named model recipe: concat, residual_cross_attention, ... (`scenesense list recipes`)")
    p.add_argument("--dataset", help="dataset source: synthetic, meld, store, ... (`scenesense list datasets`)")
    p.add_argument("--root", help="dataset root (e.g. a folder with MELD CSVs, or a store folder)")
    p.add_argument("--modalities", nargs="+", choices=MODALITIES, help="modalities to use")
    p.add_argument("--fusion", help="fusion name (`scenesense list fusions`)")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("-s", "--seed", type=int, help="random seed")
    p.add_argument("--seeds", type=int, nargs="+", help="run several seeds and report mean and std")
    p.add_argument("--device", help="accelerator for Lightning Fabric: cpu, cuda, gpu, mps, auto")
    p.add_argument("--name", help="experiment name (run folder <output-dir>/<name>/...)")
    p.add_argument("--output-dir", help="parent folder of run directories (default: runs)")
    p.add_argument("--run-dir", help="exact run directory; an unfinished run there is resumed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set trainer.lr=3e-4 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object with the metrics")
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Resolve defaults < --config < --recipe < flags < --set into a checked config (``resolve_config``)."""
    from scenesense.recipes import RECIPES, resolve_config

    layers: list[dict[str, Any]] = []
    if args.config:
        layers.append(load_yaml(args.config))
    if args.recipe:
        if args.recipe not in RECIPES:
            raise ConfigError(f"--recipe: unknown recipe {args.recipe!r}; choose from {RECIPES.names()}")
        layers.append(RECIPES.get(args.recipe).delta)
    flags: dict[str, Any] = {}
    data = {k: v for k, v in (("dataset", args.dataset), ("root", args.root)) if v is not None}
    if data:
        flags["data"] = data
    if args.modalities:
        flags["modalities"] = list(args.modalities)
    if args.fusion:
        flags["model"] = {"fusion": {"name": args.fusion}}
    trainer = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed), ("accelerator", args.device))
               if v is not None}
    if trainer:
        flags["trainer"] = trainer
    for key, value in (("name", args.name or args.recipe), ("output_dir", args.output_dir)):
        if value is not None:
            flags[key] = value
    layers.append(flags)
    layers.extend(parse_override(s) for s in args.set)
    return resolve_config(*layers)


def run(args: argparse.Namespace) -> int:
    from scenesense import api

    cfg = config_from_args(args)
    if args.dry_run:
        print(dump_yaml(cfg), end="")
        return 0
    seeds = args.seeds or [cfg.trainer.seed]
    if args.run_dir and len(seeds) > 1:
        raise ConfigError("--run-dir takes one seed; use --output-dir with --seeds")
    configs = [replace(cfg, trainer=replace(cfg.trainer, seed=seed)) for seed in seeds]
    for seeded in configs:  # every seed is checked before the first run starts
        validate_config(seeded)
    rows, results = [], []
    for seed, seeded in zip(seeds, configs, strict=True):
        result = api.train(seeded, run_dir=args.run_dir)
        results.append(result)
        rows.append({**summary_row(str(result.run_dir), result.metrics), "seed": seed})
    out: dict[str, Any] = {"split": cfg.data.dev_split, "runs": rows}
    keys = headline_keys(results[0].metrics)
    if len(rows) > 1:
        out["mean"] = {k: statistics.mean(r[k] for r in rows) for k in keys}
        out["std"] = {k: statistics.stdev(r[k] for r in rows) for k in keys}
    if args.json:
        out["metrics"] = results[0].metrics if len(results) == 1 else None
        print_json(out)
        return 0
    from scenesense.evaluation.report import format_metrics_table

    print(f"dev split: {cfg.data.dev_split}")
    print(format_metrics_table(rows, ["run", "seed", "n", *keys]))
    if len(rows) > 1:
        print("mean ± std: " + ", ".join(f"{k} {out['mean'][k]:.4f} ± {out['std'][k]:.4f}" for k in out["mean"]))
    return 0

