"""RAVDESS (speech, 8 emotions): every fusion recipe over ``configs/ravdess.yaml``, dev accuracy per seed.

Each recipe of ``scenesense list recipes`` (the five Scene Sense models and the companion papers'
fusions) is layered over ``configs/ravdess.yaml`` (eGeMAPS LLD audio sequence + per-clip action-unit
vector, speaker-normalised, actors 1-16 train / 17-20 dev) and trained once per seed; model
selection uses dev loss only. RAVDESS has one sequence modality here, so the cross-attention
recipes get ``vector_tokens: true`` (the AU vector joins as a one-step sequence). Finished
(recipe, seed) pairs are kept in ``--results`` and skipped when the script is run again, so a killed
benchmark resumes. Each run then gets the robustness suite and the efficiency profile (one thread,
one run after another; skipped where already done). Prints a Markdown table (mean ± sample std over
the seeds) and writes the experiment report of all these runs (``scenesense report``: paired tests
against ``concat``, robustness and cost tables) to ``--report``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ravdess_fusions.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

METRICS = ("accuracy", "weighted_f1", "macro_f1")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ravdess.yaml"


def _recipes() -> list[str]:
    from scenesense.recipes import COMPANION_RECIPES, SCENE_SENSE_RECIPES

    return [*SCENE_SENSE_RECIPES, *COMPANION_RECIPES]


# TMT at the width of the RAVDESS config's encoders (d_model 64, 4 heads, FFN 128) instead of the
# published 256 / 8 x 64 / 512, which costs about 4x the time per epoch on 960 clips.
TMT_RAVDESS = {"dim": 64, "num_heads": 4, "head_dim": 16, "mlp_dim": 128, "mutual_mlp_dim": 128}


def ravdess_extra(recipe: str) -> dict[str, Any]:
    """What RAVDESS's modality kinds (and TMT's width) need on top of the recipe."""
    if "cross_attention" in recipe:
        return {"model": {"fusion": {"vector_tokens": True}}}
    return {"model": {"fusion": TMT_RAVDESS}} if recipe.startswith("tmt") else {}


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def _table(results: dict[str, dict[str, dict[str, Any]]], recipes: list[str], seeds: list[int]) -> str:
    lines = ["| recipe | fusion | accuracy | weighted F1 | macro F1 | parameters | s / run |",
             "|---|---|---|---|---|---|---|"]
    for recipe in recipes:
        runs = [results[recipe][str(s)] for s in seeds if str(s) in results.get(recipe, {})]
        if not runs:
            continue
        cells = [_cell([r[k] for r in runs]) for k in METRICS]
        seconds = statistics.fmean(r["seconds"] for r in runs)
        lines.append(f"| `{recipe}` | `{runs[0]['fusion']}` | {' | '.join(cells)} | {runs[0]['parameters']:,} "
                     f"| {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Train every recipe for every seed (resuming from ``--results``) and print the dev table."""
    from scenesense import api
    from scenesense.config import build_config, load_yaml
    from scenesense.recipes import recipe_delta
    from scenesense.utils.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_RAVDESS_ROOT"), required="SCENESENSE_RAVDESS_ROOT" not in os.environ, help="RAVDESS folder (audio/ + AU table)")
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG), help="base config (YAML)")
    parser.add_argument("--recipes", nargs="+", default=None, help="recipe names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output-dir", default="runs/benchmarks")
    parser.add_argument("--results", default="runs/benchmarks/ravdess_fusions.json")
    parser.add_argument("--report", default="runs/benchmarks/ravdess_fusions_report", help="report folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    recipes = args.recipes or _recipes()
    results_path = Path(args.results)
    results: dict[str, dict[str, dict[str, Any]]] = (
        json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {})
    base = [load_yaml(args.config), {"output_dir": args.output_dir, "data": {"root": args.root}}]
    for seed in args.seeds:  # seed-major, so a partial run already covers every recipe
        for recipe in recipes:
            if str(seed) in results.get(recipe, {}):
                continue
            cfg = build_config(*base, recipe_delta(recipe), ravdess_extra(recipe),
                               {"name": f"ravdess_{recipe}", "trainer": {"seed": seed, "progress": False}})
            start = time.perf_counter()
            run = api.train(cfg)
            results.setdefault(recipe, {})[str(seed)] = {
                **{k: run.metrics[k] for k in METRICS}, "fusion": cfg.model.fusion.name,
                "parameters": run.metrics["parameters"], "best_epoch": run.metrics["best_epoch"],
                "seconds": time.perf_counter() - start, "run_dir": str(run.run_dir), "n": run.metrics["n"]}
            write_json(results_path, results)
            print(f"{recipe} seed {seed}: acc {run.metrics['accuracy']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\nRAVDESS dev = actors 17-20; base config {args.config}; seeds {args.seeds}\n")
    print(_table(results, recipes, args.seeds))
    run_dirs = [results[r][str(s)]["run_dir"] for r in recipes for s in args.seeds if str(s) in results.get(r, {})]
    _robustness_and_cost([Path(d) for d in run_dirs])
    _report(run_dirs, Path(args.report))


def _robustness_and_cost(run_dirs: list[Path]) -> None:
    from scenesense.evaluation.efficiency import profile_run
    from scenesense.evaluation.robustness import evaluate_robustness

    for run_dir in run_dirs:
        if not (run_dir / "robustness.json").exists():
            evaluate_robustness(run_dir)
    for run_dir in run_dirs:
        if not (run_dir / "efficiency.json").exists():
            profile_run(run_dir, threads=1)


def _report(run_dirs: list[str], folder: Path) -> None:
    from scenesense.evaluation.experiment_report import build_report, write_report
    from scenesense.runs import load_runs

    files = write_report(build_report(load_runs(run_dirs), baseline="ravdess_concat"), folder)
    print(f"\nreport (Table 4: paired tests against concat): {files['html']}")


if __name__ == "__main__":
    main()
