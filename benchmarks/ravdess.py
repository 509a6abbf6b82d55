"""RAVDESS (speech, 8 emotions): audio-only, action-unit-only and fused models vs logistic regression.

Features (``configs/ravdess.yaml``): eGeMAPSv02 low-level descriptors extracted from the WAVs with
openSMILE (audio, 64 frames x 25) and the OpenFace action units of ``openface_au_mfcc.csv``
(vision, 35-d). The logistic regression reads the same features, a sequence pooled to its
per-dimension mean and standard deviation over time. Speaker independent: fit on
actors 1-16, select and score on actors 17-20 (the other actors are withheld). For each modality
set the script fits a standardised logistic regression on exactly the features the model reads,
both raw and speaker-normalised (each actor z-scored with their own clips, ``data.speaker_norm``),
then trains the scenesense model of ``configs/ravdess.yaml`` restricted to that modality set, per
seed, and prints dev accuracy / weighted F1 / macro F1 side by side with the ratio model / LR.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ravdess.py --root path/to/RAVDESS --seeds 0 1 2

``-c`` takes another RAVDESS config, e.g. ``configs/ravdess_whisper.yaml`` (Whisper tiny.en encoder
frames for audio); the table names the audio features by the config's ``data.params.audio``.
"""

from __future__ import annotations

import argparse
import os
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

METRICS = ("accuracy", "weighted_f1", "macro_f1")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ravdess.yaml"
MODALITY_SETS = (("audio",), ("vision",), ("audio", "vision"))


def _matrix(split_file: Path, modalities: tuple[str, ...], speaker_norm: bool) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated vector features ``[N, sum D]`` and labels ``[N]``, read like the model reads them."""
    from scenesense.data.dataset import FeatureStoreDataset

    data = FeatureStoreDataset(split_file, modalities, speaker_norm=speaker_norm)
    samples = data.__getitems__(range(len(data)))
    if not all(all(s["present"].values()) for s in samples):
        raise SystemExit(f"{split_file}: some clips miss a modality; the LR baseline needs them all")
    x = np.stack([np.concatenate([_pooled(s["inputs"][m]) for m in data.modalities]) for s in samples])
    return x, np.array([s["label"] for s in samples])


def _pooled(x: np.ndarray) -> np.ndarray:
    """A vector ``[D]`` as is; a sequence ``[T, D]`` as its mean and std over time ``[2D]``."""
    return x if x.ndim == 1 else np.concatenate([x.mean(axis=0), x.std(axis=0)])


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(y, pred)), "weighted_f1": float(f1_score(y, pred, average="weighted")),
            "macro_f1": float(f1_score(y, pred, average="macro"))}


def logistic_regression(store: Path, modalities: tuple[str, ...], speaker_norm: bool) -> dict[str, float]:
    """Standardised multinomial logistic regression (C = 1): fit on train, score on dev."""
    x_tr, y_tr = _matrix(store / "train.h5", modalities, speaker_norm)
    x_dev, y_dev = _matrix(store / "dev.h5", modalities, speaker_norm)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0)).fit(x_tr, y_tr)
    return _scores(y_dev, clf.predict(x_dev))


def _mean_std(rows: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = [r[key] for r in rows]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(rows: list[dict[str, float]], key: str) -> str:
    mean, std = _mean_std(rows, key)
    return f"{mean:.4f}" if len(rows) == 1 else f"{mean:.4f} ± {std:.4f}"


def main() -> None:
    """Convert (or reuse) the RAVDESS store, fit the baselines and the models, print the dev table."""
    from scenesense import api
    from scenesense.config import build_config, load_yaml, parse_override

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_RAVDESS_ROOT"), required="SCENESENSE_RAVDESS_ROOT" not in os.environ, help="RAVDESS folder (audio/ + AU table)")
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG), help="model config (YAML)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output-dir", default="runs/benchmarks")
    parser.add_argument("--set", action="append", default=[], help="config overrides for the models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")

    base = [load_yaml(args.config), {"output_dir": args.output_dir, "data": {"root": args.root}},
            *(parse_override(s) for s in args.set)]
    start = time.perf_counter()
    store = api.prepare_store(build_config(*base))
    prepare_s = time.perf_counter() - start
    norm = build_config(*base).data.speaker_norm
    audio = str(build_config(*base).data.params.get("audio", "table"))
    audio_name = {"egemaps_lld": "eGeMAPS LLD"}.get(audio, audio)  # the features' name in the table
    results = []
    for modalities in MODALITY_SETS:
        lr_raw = logistic_regression(store, modalities, speaker_norm=False)
        lr_norm = logistic_regression(store, modalities, speaker_norm=True)
        runs = []
        for seed in args.seeds:
            cfg = build_config(*base, {"modalities": list(modalities), "name": "ravdess_" + "_".join(modalities),
                                       "trainer": {"seed": seed, "progress": False}})
            t0 = time.perf_counter()
            result = api.train(cfg)
            runs.append({**{k: result.metrics[k] for k in METRICS}, "seed": seed, "best_epoch": result.metrics["best_epoch"],
                         "seconds": time.perf_counter() - t0, "run_dir": str(result.run_dir)})
        results.append({"modalities": list(modalities), "lr_raw": lr_raw, "lr_speaker_norm": lr_norm, "model": runs})
        print(f"done {'+'.join(modalities)}: model acc {_cell(runs, 'accuracy')}", flush=True)

    print(f"\nRAVDESS dev = actors 17-20 (n={result.metrics['n']}); config {args.config} (speaker_norm={norm}); "
          f"seeds {args.seeds}; store prepared in {prepare_s:.0f} s")
    print(f"{'features':<18} {'model':<38} {'acc':>16} {'wF1':>16} {'mF1':>16}")
    for r in results:
        name = "+".join("AU" if m == "vision" else audio_name for m in r["modalities"])
        for label, rows in (("logistic regression, raw features", [r["lr_raw"]]),
                            ("logistic regression, speaker-norm", [r["lr_speaker_norm"]]),
                            (f"scenesense ({Path(args.config).name})", r["model"])):
            print(f"{name:<18} {label:<38} " + " ".join(f"{_cell(rows, k):>16}" for k in METRICS))
        acc = _mean_std(r["model"], "accuracy")[0]
        print(f"{'':<18} accuracy ratio model / LR raw {acc / r['lr_raw']['accuracy']:.3f}, "
              f"model / LR speaker-norm {acc / r['lr_speaker_norm']['accuracy']:.3f}")
    for r in results:
        for m in r["model"]:
            print(f"  {'+'.join(r['modalities'])} seed {m['seed']}: acc {m['accuracy']:.4f} best epoch {m['best_epoch']} "
                  f"{m['seconds']:.0f} s {m['run_dir']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
