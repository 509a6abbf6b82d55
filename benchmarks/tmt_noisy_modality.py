"""Does AMW inside TMT move weight away from a modality that carries only noise? (RAVDESS)

The claim of the Adaptive Modality Weighting paper, tested on the ``configs/ravdess.yaml`` data:
one modality (``--modality``, default ``vision``, the action units) is replaced by Gaussian noise
in every split, at every real step of every clip that has it (``present``, lengths and labels
unchanged), so it carries no information at train, dev or evaluation time. ``tmt`` and
``tmt_amw`` (the RAVDESS widths of ``benchmarks/ravdess_fusions.py``) are trained on that store for
each seed and compared with their clean runs from ``ravdess_fusions.py`` (``--clean``, the same
recipes and seeds): dev accuracy and weighted F1, the drop from clean to noisy, and AMW's mean
weight per modality (``metrics.json`` ``modality_weights``) in both. Finished (recipe, seed) pairs
are kept in ``--results`` and skipped when run again.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ravdess_fusions.py --root path/to/RAVDESS \\
        --recipes tmt tmt_amw --seeds 0 1 2 --results runs/benchmarks/ravdess_tmt.json
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/tmt_noisy_modality.py --root path/to/RAVDESS \\
        --seeds 0 1 2 --clean runs/benchmarks/ravdess_tmt.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ravdess_fusions import DEFAULT_CONFIG, ravdess_extra

METRICS = ("accuracy", "weighted_f1")


def write_noisy_store(store: Path, out: Path, modality: str, seed: int = 0) -> Path:
    """Copy ``store`` to ``out`` with every feature set of ``modality`` replaced by N(0, 1) noise at
    its real steps (zeros elsewhere, as the store pads); done once, the folder appears complete or not at all."""
    if out.exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(store, tmp)
    rng = np.random.default_rng(seed)
    for split in sorted(tmp.glob("*.h5")):
        with h5py.File(split, "r+") as f:
            for name, group in f["features"].items():
                if group.attrs["modality"] != modality:
                    continue
                data = group["data"]
                real = np.asarray(group["present"], dtype=bool)  # [N]
                noise = rng.standard_normal(data.shape).astype(np.float32)
                if data.ndim == 3:  # sequences: only the real steps of each clip
                    lengths = np.asarray(group["lengths"])
                    steps = np.arange(data.shape[1])[None, :] < lengths[:, None]  # [N, T]
                    noise *= steps[:, :, None]
                noise[~real] = 0.0
                data[...] = noise
                print(f"{split.name}: {name} ({modality}) replaced by noise, shape {data.shape}", flush=True)
    os.replace(tmp, out)
    return out


def _cell(values: list[float]) -> str:
    return f"{values[0]:.4f}" if len(values) == 1 else f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def _weights(runs: list[dict[str, Any]]) -> str:
    weights = [r["modality_weights"] for r in runs if r.get("modality_weights")]
    if not weights:
        return ""
    return ", ".join(f"{m} {statistics.fmean(w[m] for w in weights):.3f}" for m in sorted(weights[0]))


def main() -> None:
    """Write the noisy store, train the recipes per seed, print the clean-vs-noisy table."""
    from scenesense import api
    from scenesense.config import build_config, load_yaml
    from scenesense.recipes import recipe_delta
    from scenesense.utils.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_RAVDESS_ROOT"),
                        required="SCENESENSE_RAVDESS_ROOT" not in os.environ, help="RAVDESS folder")
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG), help="base config (YAML)")
    parser.add_argument("--modality", default="vision", choices=("audio", "vision"), help="modality made noise")
    parser.add_argument("--recipes", nargs="+", default=["tmt", "tmt_amw"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--clean", default="runs/benchmarks/ravdess_tmt.json", help="ravdess_fusions.py results")
    parser.add_argument("--output-dir", default="runs/benchmarks")
    parser.add_argument("--results", default=None, help="default: <output-dir>/tmt_noisy_<modality>.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    base = load_yaml(args.config)
    store = api.prepare_store(build_config(base, {"data": {"root": args.root}}))
    noisy = write_noisy_store(store, Path(args.output_dir) / f"ravdess_store_noisy_{args.modality}", args.modality)
    results_path = Path(args.results or Path(args.output_dir) / f"tmt_noisy_{args.modality}.json")
    results: dict[str, dict[str, Any]] = json.loads(results_path.read_text()) if results_path.exists() else {}
    on_noise = {**base, "data": {"dataset": "store", "root": str(noisy), "speaker_norm": base["data"]["speaker_norm"]}}
    for seed in args.seeds:
        for recipe in args.recipes:
            if str(seed) in results.get(recipe, {}):
                continue
            cfg = build_config(on_noise, recipe_delta(recipe), ravdess_extra(recipe), {
                "name": f"ravdess_noisy_{args.modality}_{recipe}", "output_dir": args.output_dir,
                "trainer": {"seed": seed, "progress": False}})
            run = api.train(cfg)
            results.setdefault(recipe, {})[str(seed)] = {
                **{k: run.metrics[k] for k in METRICS}, "modality_weights": run.metrics.get("modality_weights"),
                "run_dir": str(run.run_dir)}
            write_json(results_path, results)
            print(f"{recipe} seed {seed}: acc {run.metrics['accuracy']:.4f}", flush=True)
    clean_path = Path(args.clean)
    clean: dict[str, dict[str, Any]] = json.loads(clean_path.read_text()) if clean_path.exists() else {}
    print(f"\nRAVDESS dev (actors 17-20), {args.modality} replaced by noise; seeds {args.seeds}\n")
    print(f"| recipe | clean accuracy | noisy accuracy | Δ accuracy | clean weighted F1 | noisy weighted F1 "
          f"| AMW weights clean | AMW weights, {args.modality} = noise |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        noisy_runs = [results[recipe][str(s)] for s in args.seeds if str(s) in results.get(recipe, {})]
        clean_runs = [json.loads((Path(clean[recipe][str(s)]["run_dir"]) / "metrics.json").read_text())
                      for s in args.seeds if str(s) in clean.get(recipe, {})]
        if not noisy_runs:
            continue
        acc_n = [r["accuracy"] for r in noisy_runs]
        acc_c = [r["accuracy"] for r in clean_runs]
        drop = f"{statistics.fmean(acc_n) - statistics.fmean(acc_c):+.4f}" if acc_c else ""
        print(f"| `{recipe}` | {_cell(acc_c) if acc_c else ''} | {_cell(acc_n)} | {drop} "
              f"| {_cell([r['weighted_f1'] for r in clean_runs]) if clean_runs else ''} "
              f"| {_cell([r['weighted_f1'] for r in noisy_runs])} | {_weights(clean_runs)} | {_weights(noisy_runs)} |")


if __name__ == "__main__":
    main()
