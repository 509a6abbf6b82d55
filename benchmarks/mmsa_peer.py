"""MMSA side by side: MMSA 2.2.1's TFN, LMF and MulT next to our recipes, on one store, same split.

One store is exported to MMSA's pickle (``scenesense.data.export.export_mmsa``). MMSA's models
train in their own virtual environment through ``benchmarks/mmsa_runner.py`` (``MMSA_run`` with
MMSA's own ``mosi`` hyper-parameters and batch sizes, plus the runner's CPU shims); ours train
through ``scenesense.api.train`` in this process. Both sides use the same seeds, the same thread
count (``--threads``, default 1: torch's default 2 threads made MMSA 4-11x slower here), the same
epoch cap and the same patience on the validation loss, with model selection on ``dev`` (MMSA's
``valid``), and both are scored on ``test`` by our metric functions from their raw test outputs
(MMSA's own numbers are kept in the JSON). Time per epoch is one training pass plus the validation
pass, averaged over the epochs run. Ratios are against our ``concat`` recipe in the same run.

What is compared. A classification store (the synthetic benchmark, RAVDESS, MELD emotions) trains
MMSA in its classification mode (``train_mode="classification"``, ``num_classes=K``; cross-entropy
on the class ids that the export writes into ``regression_labels``) and reports accuracy and
weighted F1. A regression store trains MMSA in its default regression mode (L1 loss) and reports
MAE and Pearson correlation.

Data: the synthetic benchmark by default (``generate_synthetic``: 600/200/200 samples; text and
vision sequences, audio a vector that becomes a length-1 sequence for MMSA). ``--config FILE``
uses that config's dataset instead (its modalities; MMSA gets zeros for the others; speaker
normalisation is switched off so that both sides see the same features; a store without a test
split is scored on dev).

Setup, once (never install MMSA into ``.venv``)::

    python3 -m venv .venv-mmsa
    .venv-mmsa/bin/pip install torch==2.13.0
    echo "torch==2.13.0" > /tmp/mmsa-constraints.txt
    .venv-mmsa/bin/pip install -c /tmp/mmsa-constraints.txt MMSA==2.2.1

Run::

    .venv/bin/python benchmarks/mmsa_peer.py
    .venv/bin/python benchmarks/mmsa_peer.py --config configs/ravdess.yaml --root path/to/RAVDESS --max-epochs 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MMSA_NAMES = {"tfn": "TFN", "lmf": "LMF", "mult": "MulT", "lf_dnn": "LF_DNN"}
SYNTHETIC = {"n_train": 600, "n_dev": 200, "n_test": 200, "seed": 0}


def build_store(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Any], str]:
    """The store, our base config layer (data + model) and a one-line description of the data."""
    from scenesense.config import build_config, load_yaml
    from scenesense.data.synthetic import generate_synthetic
    from scenesense.demo import DEMO_DELTA

    if args.config is None:
        store = generate_synthetic(work / "store", **SYNTHETIC)
        base = {**DEMO_DELTA, "data": {"dataset": "store", "root": str(store)}}
        sizes = "/".join(str(SYNTHETIC[k]) for k in ("n_train", "n_dev", "n_test"))
        return store, base, f"synthetic benchmark {sizes}"
    from scenesense import api

    layer = load_yaml(args.config)
    cfg = build_config(layer, {"data": {"root": args.root}} if args.root else {})
    store = api.prepare_store(cfg)
    data = {"dataset": "store", "root": str(store), "features": dict(cfg.data.features),
            "speaker_norm": False}
    return Path(store), {**layer, "data": data}, f"{args.config} ({cfg.data.dataset}, store {store})"


def run_mmsa(args: argparse.Namespace, pkl: Path, export: Any, work: Path) -> dict[str, Any]:  # noqa: ANN401
    """Train MMSA's models in their venv; return the runner's result."""
    job = {"pkl": str(pkl), "models": args.mmsa_models, "seeds": args.seeds,
           "num_classes": export.num_classes, "seq_lens": export.seq_lens, "early_stop": args.patience,
           "max_epochs": args.max_epochs, "work_dir": str(work / "mmsa"),
           "result": str(work / "mmsa_result.json")}
    (work / "mmsa_job.json").write_text(json.dumps(job, indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    log = work / "mmsa_runner.log"
    with log.open("w") as out:
        done = subprocess.run([args.mmsa_python, str(REPO / "benchmarks" / "mmsa_runner.py"),
                               str(work / "mmsa_job.json")], env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"MMSA runner failed (exit {done.returncode}); last lines of {log}:\n"
                         + "\n".join(tail))
    return json.loads((work / "mmsa_result.json").read_text())


def run_ours(args: argparse.Namespace, base: dict[str, Any], store: Path, test_split: str,
             work: Path) -> list[dict[str, Any]]:
    """Train and score each recipe x seed; return one row per run."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.recipes import recipe_delta

    rows = []
    for recipe in args.recipes:
        for seed in args.seeds:
            cfg = build_config(base, recipe_delta(recipe), {
                "name": f"peer_{recipe}", "output_dir": str(work / "ours"),
                "trainer": {"seed": seed, "epochs": args.max_epochs, "patience": args.patience,
                            "progress": False}})
            result = api.train(cfg, run_dir=work / "ours" / f"{recipe}-s{seed}")
            scored = api.evaluate(result.run_dir, store=store, split=test_split)
            history = result.metrics["history"]
            rows.append({"model": recipe, "framework": "scenesense", "seed": seed, "metrics": scored.metrics,
                         "epochs": len(history), "parameters": result.metrics["parameters"],
                         "epoch_seconds": statistics.fmean(h["epoch_time"] for h in history)})
    return rows


def score_mmsa(result: dict[str, Any], test_file: Path) -> list[dict[str, Any]]:
    """Our metrics on MMSA's raw test outputs, matched to the store's labels by id."""
    import numpy as np

    from scenesense.data.store import open_store_split
    from scenesense.evaluation.functional import classification_metrics
    from scenesense.evaluation.regression import regression_metrics

    split = open_store_split(test_file)
    label_of = dict(zip(split.ids, split.labels.tolist()))
    rows = []
    for run in result["runs"]:
        if sorted(run["ids"]) != sorted(split.ids):
            raise SystemExit(f"MMSA {run['model']}: test ids differ from {test_file}")
        y_true = np.array([label_of[i] for i in run["ids"]])
        outputs = np.asarray(run["outputs"], dtype=np.float64)
        if split.label_space.is_classification:
            metrics = classification_metrics(y_true, outputs.argmax(axis=1), list(split.label_space.names))
        else:
            metrics = regression_metrics(y_true, outputs)
        rows.append({"model": MMSA_NAMES.get(run["model"], run["model"]), "framework": "MMSA 2.2.1",
                     "seed": run["seed"], "metrics": metrics, "epochs": run["epochs"],
                     "parameters": run["parameters"], "epoch_seconds": statistics.fmean(run["epoch_seconds"]),
                     "mmsa_metrics": run["mmsa_metrics"]})
    return rows


def uniform_notes(result: dict[str, Any], num_classes: int) -> list[str]:
    """A line for each MMSA classification run whose validation loss stayed at ``ln K`` (no learning)."""
    if not num_classes:
        return []
    chance = math.log(num_classes)
    return [f"note: MMSA {MMSA_NAMES.get(r['model'], r['model'])} (seed {r['seed']}) kept predicting the "
            f"uniform distribution: validation loss ln {num_classes} = {chance:.4f} after each of its "
            f"{r['epochs']} epochs" for r in result["runs"]
            if all(abs(loss - chance) < 1e-3 for loss in r["valid_loss"])]


def _mean_std(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def format_table(rows: list[dict[str, Any]], classification: bool) -> str:
    """Markdown table: one line per (framework, model), seeds averaged; ratios vs our concat."""
    keys = ("accuracy", "weighted_f1") if classification else ("mae", "corr")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["framework"]), []).append(row)
    concat = groups.get(("concat", "scenesense"))
    ref = {k: statistics.fmean(r["metrics"][k] for r in concat) for k in keys} if concat else {}
    ref_time = statistics.fmean(r["epoch_seconds"] for r in concat) if concat else None
    quality = keys[1]
    head = ["model", "framework", *keys, "s/epoch", "epochs", "params", f"{quality} / concat",
            "s/epoch / concat"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (model, framework), runs in groups.items():
        values = {k: [r["metrics"][k] for r in runs] for k in keys}
        seconds = [r["epoch_seconds"] for r in runs]
        cells = [model, framework, *(_mean_std(values[k], 3) for k in keys), _mean_std(seconds, 2),
                 _mean_std([float(r["epochs"]) for r in runs], 0 if len(runs) == 1 else 1),
                 f"{runs[0]['parameters']:,}",
                 f"{statistics.fmean(values[quality]) / ref[quality]:.2f}" if ref and ref[quality] else "-",
                 f"{statistics.fmean(seconds) / ref_time:.2f}" if ref_time else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, export, train both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a scenesense config whose dataset to use (default: synthetic)")
    parser.add_argument("--root", help="the data.root of that config's dataset, e.g. path/to/RAVDESS")
    parser.add_argument("--mmsa-models", nargs="+", default=["tfn", "lmf", "mult"],
                        choices=sorted(MMSA_NAMES))
    parser.add_argument("--recipes", nargs="+", default=["concat", "tacfn", "mult"], help="our recipes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1111], help="MMSA's first default seed")
    parser.add_argument("--max-epochs", type=int, default=8, help="epoch cap for both sides")
    parser.add_argument("--patience", type=int, default=3, help="early stopping patience (MMSA's early_stop)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS / torch threads, both sides")
    parser.add_argument("--mmsa-python", default=str(REPO / ".venv-mmsa" / "bin" / "python"))
    parser.add_argument("--work-dir", default=str(REPO / "runs" / "mmsa_peer"),
                        help="folder this benchmark owns (its store/, ours/ and mmsa/ are replaced)")
    args = parser.parse_args()
    if not Path(args.mmsa_python).exists():
        parser.error(f"{args.mmsa_python} not found: create MMSA's venv first (see the module docstring)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch is imported, for this process
    import torch

    from scenesense.data.export import export_mmsa
    from scenesense.data.store import find_store_splits

    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    for sub in ("store", "ours", "mmsa"):
        shutil.rmtree(work / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    store, base, described = build_store(args, work)
    test_split = "test" if "test" in find_store_splits(store) else "dev"
    modalities = base.get("modalities") or ["audio", "text", "vision"]
    export = export_mmsa(store, work / "mmsa.pkl", splits={"test": test_split},
                         features=base["data"].get("features"), modalities=modalities, missing="zeros")
    mmsa = run_mmsa(args, export.path, export, work)
    rows = run_ours(args, base, store, test_split, work) + score_mmsa(mmsa, store / f"{test_split}.h5")
    (work / "results.json").write_text(json.dumps({"rows": rows, "export": export.to_dict(),
                                                   "versions": mmsa["versions"]}, indent=1, default=str))
    classification = export.task == "classification"
    scored = "test" if test_split == "test" else "dev (no test split: dev selects and scores)"
    print(f"data: {described}; modalities {sorted(modalities)}; scored on {scored}, "
          f"{export.rows['test']} samples; MMSA T x D: "
          + ", ".join(f"{m} {export.seq_lens[m]}x{export.feature_dims[m]}" for m in export.seq_lens))
    print(f"seeds {args.seeds}; threads {args.threads}; at most {args.max_epochs} epochs, patience "
          f"{args.patience}; MMSA {mmsa['versions']['MMSA']} ("
          + (f"classification mode, {export.num_classes} classes" if classification else "regression mode")
          + f"), torch {torch.__version__}; total {time.perf_counter() - start:.0f} s")
    print(format_table(rows, classification))
    for line in uniform_notes(mmsa, export.num_classes):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
