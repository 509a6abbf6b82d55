"""MELD text: a Scene Sense text model vs a logistic-regression probe on the same MiniLM features.

Both are fitted on MELD train and scored on MELD dev (the test split is withheld). The probe uses
the 384-d MiniLM sentence vectors; the model uses the MiniLM token sequences (<= 50 word-pieces)
through the paper's transformer text encoder, trained with the paper's settings, selected on dev.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/meld_text.py --root ../shared/data/meld
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def _sentence_vectors(split_file: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(split_file, "r") as f:
        return f["features/text_sentence/data"][:], f["meta/label"][:]


def probe(store: Path, seed: int) -> dict[str, float]:
    """Logistic regression on sentence vectors: fit on train, score on dev."""
    x_tr, y_tr = _sentence_vectors(store / "train.h5")
    x_dev, y_dev = _sentence_vectors(store / "dev.h5")
    start = time.perf_counter()
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_tr, y_tr)
    pred = clf.predict(x_dev)
    return {"accuracy": accuracy_score(y_dev, pred), "weighted_f1": f1_score(y_dev, pred, average="weighted"),
            "macro_f1": f1_score(y_dev, pred, average="macro"), "seconds": time.perf_counter() - start}


def main() -> None:
    """Extract (or reuse) the MELD text store, fit the probe and the model, print both on dev."""
    from scenesense import api
    from scenesense.config import build_config, parse_override

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/meld", help="folder with MELD CSVs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/benchmarks")
    parser.add_argument("--set", action="append", default=[], help="config overrides for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # per-epoch lines

    cfg = build_config({"name": "meld_text", "modalities": ["text"], "output_dir": args.output_dir,
                        "data": {"dataset": "meld", "root": args.root}, "trainer": {"seed": args.seed}},
                       *(parse_override(s) for s in args.set))
    start = time.perf_counter()
    store = api.prepare_store(cfg)
    extract_s = time.perf_counter() - start
    lr = probe(store, args.seed)
    start = time.perf_counter()
    result = api.train(cfg)
    train_s = time.perf_counter() - start
    m = result.metrics
    rows = [("logistic regression (sentence vectors)", lr["accuracy"], lr["weighted_f1"], lr["macro_f1"]),
            ("scenesense text transformer (tokens)", m["accuracy"], m["weighted_f1"], m["macro_f1"])]
    print(f"MELD dev (n={m['n']}), seed {args.seed}; feature extraction/cache {extract_s:.0f} s, "
          f"model training {train_s:.0f} s, best epoch {m['best_epoch']}")
    print(f"{'model':<42} {'acc':>6} {'wF1':>6} {'mF1':>6}")
    for name, acc, wf1, mf1 in rows:
        print(f"{name:<42} {acc:6.4f} {wf1:6.4f} {mf1:6.4f}")
    print(f"weighted F1 ratio model/probe: {m['weighted_f1'] / lr['weighted_f1']:.3f}")
    print(json.dumps({"probe": lr, "model": {k: m[k] for k in ("accuracy", "weighted_f1", "macro_f1")},
                      "run_dir": str(result.run_dir)}))


if __name__ == "__main__":
    main()
