"""Evaluation time in dataset order vs length-sorted batches (what ``Trainer.predict`` now does).

Builds the model of ``--config`` (default ``configs/meld_context_tokens.yaml``: six MiniLM layers
over MELD utterances with their dialogue context) on the store split ``--split`` of that config
(built or read from the cache), and times ``Trainer.predict`` over it ``--repeats`` times each way,
alternating, in one process: the dataset wrapped in a ``Subset`` (no ``sequence_lengths``, so the
batches follow the dataset order, as before) against the dataset itself (length-sorted batches).
Prints the padded steps per real step of both batchings, the median seconds per pass, the ratio,
and the largest difference between the two ways' probabilities::

    OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/eval_order.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from scenesense import api
from scenesense.config import build_config, load_yaml
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.models.builders import build_model
from scenesense.training.sampling import length_sorted_batches
from scenesense.training.trainer import Trainer

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "meld_context_tokens.yaml"


def _padded_per_real(lengths: np.ndarray, batches: list[list[int]]) -> float:
    return sum(len(b) * int(lengths[b].max()) for b in batches) / lengths.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--root", default=os.environ.get("SCENESENSE_MELD_ROOT"), required="SCENESENSE_MELD_ROOT" not in os.environ)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = build_config(load_yaml(args.config), {"data": {"root": args.root}, "trainer": {"progress": False}})
    store = api.prepare_store(cfg)
    dataset = FeatureStoreDataset(store / f"{args.split}.h5", cfg.modalities, dict(cfg.data.features))
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, dataset.feature_dims, dataset.feature_kinds,
                        dataset.label_space.num_outputs).eval()
    trainer = Trainer(cfg.trainer, run_dir=None)
    lengths, bs = dataset.sequence_lengths(), cfg.trainer.batch_size
    in_order = [list(range(i, min(i + bs, len(dataset)))) for i in range(0, len(dataset), bs)]
    print(f"{args.split}: {len(dataset)} samples, mean length {lengths.mean():.1f}; torch threads "
          f"{torch.get_num_threads()}, batch {bs}; padded/real steps: dataset order "
          f"{_padded_per_real(lengths, in_order):.2f}, sorted {_padded_per_real(lengths, length_sorted_batches(lengths, bs)):.2f}")
    ways = {"dataset order": Subset(dataset, range(len(dataset))), "length-sorted": dataset}
    walls: dict[str, list[float]] = {name: [] for name in ways}
    probs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, data in ways.items():
            start = time.perf_counter()
            probs[name] = trainer.predict(model, data, collate).probs
            walls[name].append(time.perf_counter() - start)
    base = statistics.median(walls["dataset order"])
    for name, w in walls.items():
        print(f"{name:>14}: median {statistics.median(w):.1f} s per pass ({', '.join(f'{x:.1f}' for x in w)}), "
              f"x dataset order {statistics.median(w) / base:.2f}")
    print(f"largest probability difference: {np.abs(probs['dataset order'] - probs['length-sorted']).max():.2e}")


if __name__ == "__main__":
    main()
