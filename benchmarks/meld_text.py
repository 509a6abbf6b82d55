"""MELD text: a Scene Sense text model vs a logistic-regression probe on the same MiniLM features.

Both are fitted on MELD train and scored on MELD dev (the test split is withheld). The probe uses
the 384-d MiniLM sentence vectors; the model uses the MiniLM token sequences (<= 50 word-pieces)
through the residual transformer text encoder configured in ``configs/meld_text.yaml`` (the
paper's training settings), selected on dev. With several seeds it prints each run and the mean
and standard deviation.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/meld_text.py --root path/to/MELD --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import json
import logging
import statistics
import time
from pathlib import Path

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

METRICS = ("accuracy", "weighted_f1", "macro_f1")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "meld_text.yaml"


def _sentence_vectors(split_file: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(split_file, "r") as f:
        return f["features/text_sentence/data"][:], f["meta/label"][:]


def probe(store: Path, seed: int) -> dict[str, float]:
    """Logistic regression on sentence vectors: fit on train, score on dev."""
    x_tr, y_tr = _sentence_vectors(store / "train.h5")
    x_dev, y_dev = _sentence_vectors(store / "dev.h5")
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_tr, y_tr)
    pred = clf.predict(x_dev)
    return {"accuracy": accuracy_score(y_dev, pred), "weighted_f1": f1_score(y_dev, pred, average="weighted"),
            "macro_f1": f1_score(y_dev, pred, average="macro")}


def _mean_std(rows: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = [r[key] for r in rows]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    """Extract (or reuse) the MELD text store, fit the probe and the model per seed, print both on dev."""
    from scenesense import api
    from scenesense.config import build_config, load_yaml, parse_override

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_MELD_ROOT"), required="SCENESENSE_MELD_ROOT" not in os.environ, help="folder with MELD CSVs")
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG), help="model config (YAML)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output-dir", default="runs/benchmarks")
    parser.add_argument("--set", action="append", default=[], help="config overrides for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # per-epoch lines

    base = [load_yaml(args.config), {"output_dir": args.output_dir, "data": {"root": args.root}},
            *(parse_override(s) for s in args.set)]
    start = time.perf_counter()
    store = api.prepare_store(build_config(*base))
    extract_s = time.perf_counter() - start
    probes, models = [], []
    for seed in args.seeds:
        cfg = build_config(*base, {"trainer": {"seed": seed}})
        probes.append(probe(store, seed))
        start = time.perf_counter()
        result = api.train(cfg)
        models.append({**{k: result.metrics[k] for k in METRICS}, "seed": seed,
                       "best_epoch": result.metrics["best_epoch"], "seconds": time.perf_counter() - start,
                       "run_dir": str(result.run_dir)})

    print(f"MELD dev (n={result.metrics['n']}), config {args.config}, seeds {args.seeds}; "
          f"feature extraction/cache {extract_s:.0f} s")
    print(f"{'model':<44} {'acc':>15} {'wF1':>15} {'mF1':>15}")
    for name, rows in (("logistic regression (sentence vectors)", probes),
                       ("scenesense text transformer (tokens)", models)):
        cells = [f"{m:.4f} ± {s:.4f}" for m, s in (_mean_std(rows, k) for k in METRICS)]
        print(f"{name:<44} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15}")
    for m in models:
        print(f"  seed {m['seed']}: acc {m['accuracy']:.4f}  wF1 {m['weighted_f1']:.4f}  mF1 {m['macro_f1']:.4f}"
              f"  best epoch {m['best_epoch']}  {m['seconds']:.0f} s  {m['run_dir']}")
    ratio = _mean_std(models, "weighted_f1")[0] / _mean_std(probes, "weighted_f1")[0]
    print(f"mean weighted F1 ratio model/probe: {ratio:.3f}")
    print(json.dumps({"probe": probes, "model": models, "weighted_f1_ratio": ratio}))


if __name__ == "__main__":
    main()
