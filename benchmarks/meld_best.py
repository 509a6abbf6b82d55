"""MELD: train the best small configuration on train (selected on dev), then score any MELD-format CSV.

The configuration is ``configs/meld_best.yaml`` (all six MiniLM layers fine-tuned end to end, the
best measured on dev per training minute; see the README); ``-c`` takes any other. Training
resumes where a killed run stopped (the run folder is fixed per seed). Prints dev accuracy,
weighted F1, macro F1 and the F1 of every class, the training time, and the same for each CSV
given with ``--evaluate``; each ``--logit-adjust`` strength scores dev and those CSVs again with
post-hoc logit adjustment.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/meld_best.py --root path/to/MELD \
        --evaluate path/to/test_sent_emo.csv
"""

from __future__ import annotations

import argparse
import os
import json
import logging
import time
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "meld_best.yaml"


def _summary(name: str, metrics: dict[str, Any]) -> str:
    per_class = metrics["per_class"]
    classes = "  ".join(f"{c} {v['f1']:.3f}" for c, v in per_class.items())
    return (f"{name}: n {metrics['n']}  accuracy {metrics['accuracy']:.4f}  weighted F1 {metrics['weighted_f1']:.4f}  "
            f"macro F1 {metrics['macro_f1']:.4f}\n  per-class F1: {classes}")


def main() -> None:
    """Train (or resume) the run, print its dev scores, then score each ``--evaluate`` CSV."""
    from scenesense import api
    from scenesense.config import build_config, load_yaml, parse_override

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_MELD_ROOT"), required="SCENESENSE_MELD_ROOT" not in os.environ, help="folder with the MELD train/dev CSVs")
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG), help="model config (YAML)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", nargs="*", default=[], metavar="CSV", help="MELD-format CSVs to score")
    parser.add_argument("--output-dir", default="runs/benchmarks/meld_best")
    parser.add_argument("--set", action="append", default=[], help="config overrides, key.path=value")
    parser.add_argument("--logit-adjust", nargs="*", type=float, default=[], metavar="TAU",
                        help="also score dev and every --evaluate CSV with post-hoc logit adjustment TAU")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cfg = build_config(load_yaml(args.config), {"data": {"root": args.root}, "trainer": {"seed": args.seed,
                                                                                          "progress": False}},
                       *(parse_override(o) for o in args.set))
    run_dir = Path(args.output_dir) / f"s{args.seed}"
    start = time.perf_counter()
    result = api.train(cfg, run_dir)
    wall = time.perf_counter() - start
    print(_summary(f"dev ({cfg.data.dev_split})", result.metrics))
    print(f"  training: {result.metrics['train_seconds'] / 60:.1f} min over {result.metrics['epochs_run']} epochs "
          f"(best epoch {result.metrics['best_epoch']}); this call took {wall / 60:.1f} min; run in {run_dir}")
    keys = ("n", "accuracy", "weighted_f1", "macro_f1", "per_class")
    scores = {"dev": {k: result.metrics[k] for k in keys}}
    store = api.prepare_store(cfg) if args.logit_adjust else None
    for tau in args.logit_adjust:
        evaluated = api.evaluate(run_dir, store=store, split=cfg.data.dev_split, logit_adjust=tau)
        print(_summary(f"dev, logit adjustment tau {tau:g}", evaluated.metrics))
        scores[f"dev-tau{tau:g}"] = {k: evaluated.metrics[k] for k in keys}
    for csv in args.evaluate:
        for tau in [None, *args.logit_adjust]:
            evaluated = api.evaluate(run_dir, csv=csv, logit_adjust=tau)
            name = Path(csv).name + ("" if tau is None else f"-tau{tau:g}")
            print(_summary(name, evaluated.metrics))
            scores[name] = {k: evaluated.metrics[k] for k in keys}
    (run_dir / "benchmark.json").write_text(json.dumps(scores, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
