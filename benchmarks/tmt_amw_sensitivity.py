"""How much do TMT + AMW's learned modality weights matter? Force them and rescore dev.

For each trained run of a static-AMW TMT recipe in ``--results`` (written by
``benchmarks/ravdess_fusions.py``), the dev split is scored with the learned weights, then with
the AMW logits replaced so that every feature gives the first modality (sorted: audio on RAVDESS)
the weight ``w`` and the other(s) the rest, for each ``w`` of ``--weights``. If accuracy hardly
moves, the model does not depend on its weights (the mutual transformers normalise their inputs).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/tmt_amw_sensitivity.py \\
        --results runs/benchmarks/ravdess_tmt.json --recipe tmt_amw
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    """Print dev accuracy per run and forced weight, and the mean over runs."""
    from scenesense import api
    from scenesense.runs.folder import load_run
    from scenesense.runs.scoring import batching, open_scored_split, scored_data_file
    from scenesense.training.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="runs/benchmarks/ravdess_tmt.json")
    parser.add_argument("--recipe", default="tmt_amw", help="a TMT recipe with static AMW")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.9, 0.99, 0.1, 0.01],
                        help="forced weight of the first modality")
    args = parser.parse_args()
    runs = json.loads(Path(args.results).read_text(encoding="utf-8"))[args.recipe]
    table: dict[str, list[float]] = {}
    for seed, entry in sorted(runs.items()):
        cfg, spec, model = load_run(entry["run_dir"])
        dataset = open_scored_split(cfg, spec, scored_data_file(cfg, spec, store=api.prepare_store(cfg),
                                                                split=cfg.data.dev_split)[0])
        trainer = Trainer(replace(cfg.trainer, progress=False), run_dir=None)
        logits = model.fusion.amw_logits  # [M, d]
        learned = logits.detach().clone()
        m = logits.shape[0]
        for w in [None, *args.weights]:
            with torch.no_grad():
                if w is not None:  # softmax([z, 0, ..., 0]) gives the first modality w
                    z = math.log(w * (m - 1) / (1 - w))
                    logits.copy_(torch.zeros_like(logits))
                    logits[0] = z
                pred = trainer.predict(model, *batching(cfg, spec, dataset))
                logits.copy_(learned)
            accuracy = float(np.mean(pred.probs.argmax(axis=1) == pred.labels))
            table.setdefault("learned" if w is None else f"{w:g}", []).append(accuracy)
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in table.items()), flush=True)
    first = model.fusion.modalities[0]  # sorted
    print(f"\n| weight of {first} | dev accuracy (mean over {len(runs)} runs) |\n|---|---|")
    for key, values in table.items():
        print(f"| {key} | {statistics.fmean(values):.4f} |")


if __name__ == "__main__":
    main()
