"""``trainer.compile`` against eager training, per fusion recipe, measured in one process.

For each recipe the script trains the model of ``scenesense train --recipe R`` on a synthetic
feature store (three sequence modalities, ``--dim`` features, 20-``--max-len`` steps, ``--n-train``
samples) for ``--epochs`` epochs twice: eagerly, then with ``trainer.compile=true`` (backend
``--backend``). Epoch 1 of the compiled run includes compiling (the model is compiled again for
new sequence lengths, then with dynamic shapes); later epochs are steady state. Prints seconds per
epoch, the eager / compiled ratio of the steady epochs (> 1: compiling is faster) and both runs'
dev accuracy.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/compile_speed.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/compile_speed.py --recipes mult --epochs 3
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

from scenesense import api
from scenesense.recipes import RECIPES, resolve_config


def _config(recipe: str, root: Path, args: argparse.Namespace, compiled: bool) -> Any:  # noqa: ANN401
    data = {"dataset": "synthetic", "cache_dir": str(root / "cache"),
            "params": {"dim": args.dim, "max_len": args.max_len, "min_len": 20,
                       "n_train": args.n_train, "n_dev": 64, "n_test": 32}}
    trainer = {"epochs": args.epochs, "patience": args.epochs, "progress": False, "compile": compiled,
               "compile_backend": args.backend}
    return resolve_config({"data": data, "output_dir": str(root / "runs")}, RECIPES.get(recipe).delta,
                          {"trainer": trainer})


def measure(recipe: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Epoch seconds and dev accuracy of an eager and a compiled run of ``recipe``."""
    row: dict[str, Any] = {"recipe": recipe}
    for label, compiled in (("eager", False), ("compiled", True)):
        result = api.train(_config(recipe, root, args, compiled), root / "runs" / f"{recipe}-{label}")
        row[label] = {"epoch_s": [h["epoch_time"] for h in result.fit.history],
                      "dev_accuracy": result.metrics["accuracy"]}
    steady = {k: statistics.mean(row[k]["epoch_s"][1:]) for k in ("eager", "compiled")}
    row["steady_ratio"] = steady["eager"] / steady["compiled"]
    return row


def main() -> None:
    """Train each recipe eagerly and compiled; print the table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["concat", "mult"])
    parser.add_argument("--epochs", type=int, default=2, help=">= 2: epoch 1 compiles, the rest are timed")
    parser.add_argument("--n-train", type=int, default=640)
    parser.add_argument("--dim", type=int, default=128, help="features per modality")
    parser.add_argument("--max-len", type=int, default=50, help="longest sequence (shortest: 20)")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (epoch 1 includes compiling)")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(r, Path(tmp), args) for r in args.recipes]
    print("| recipe | eager s per epoch (1st, later) | compiled s per epoch (1st, later) | eager / compiled, "
          "later epochs | dev accuracy eager, compiled |\n|---|---|---|---:|---|")
    for r in rows:
        e, c = r["eager"], r["compiled"]
        print(f"| {r['recipe']} | {e['epoch_s'][0]:.1f}, {statistics.mean(e['epoch_s'][1:]):.1f} | "
              f"{c['epoch_s'][0]:.1f}, {statistics.mean(c['epoch_s'][1:]):.1f} | {r['steady_ratio']:.2f} | "
              f"{e['dev_accuracy']:.3f}, {c['dev_accuracy']:.3f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
