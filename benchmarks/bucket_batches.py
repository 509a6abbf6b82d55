"""Train-epoch time of MiniLM fine-tuning with random vs length-bucketed batches (``trainer.bucket_batches``).

The lengths are real: the MiniLM word-pieces (incl. ``[CLS]``/``[SEP]``) of every MELD train
utterance, from ``--csv`` (tokenised here) or read from a store split (``--store``, e.g. one made
with ``data.params.context``). For each way of batching, the trainer's epoch-0 batches of
``--batch`` are drawn (random: a seeded permutation cut into batches; bucketed:
:class:`~scenesense.training.sampling.LengthBucketBatchSampler` with pools of ``--pool``
batches), and the first ``--steps`` of them are run as training steps of the ``minilm`` encoder
(all six layers, ``from_layer=0``) with a linear head, cross-entropy, backward and Adam, on
random hidden states of exactly those lengths, zero padded to the batch's longest. Printed: the
padded steps per real step over the whole epoch, the median wall time per step, the implied
epoch time (mean step time x batches) and its ratio to random batches, all from one process::

    OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/bucket_batches.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scenesense.encoders.minilm import MiniLMEncoder
from scenesense.training.sampling import LengthBucketBatchSampler



def _from_env(var: str, name: str) -> str | None:
    """``$var/name`` when the environment variable ``var`` names a dataset folder, else None."""
    return os.path.join(os.environ[var], name) if os.environ.get(var) else None

def _lengths(csv: Path, store: Path | None) -> np.ndarray:
    if store is not None:
        import h5py

        with h5py.File(store, "r") as f:
            return f["features"]["text"]["lengths"][:].astype(np.int64)
    from scenesense.data.meld import read_meld_csv
    from scenesense.extraction.text import MiniLMTextExtractor

    pieces = MiniLMTextExtractor().count_tokens([u.text for u in read_meld_csv(csv)])
    return np.array(pieces, dtype=np.int64) + 2  # [CLS] and [SEP]


def _random_batches(n: int, batch: int, seed: int) -> list[list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i:i + batch] for i in range(0, n, batch)]


def _time(batches: list[list[int]], lengths: np.ndarray, steps: int, warmup: int) -> list[float]:
    """Wall seconds of each of the first ``steps`` batches run as training steps (after ``warmup``)."""
    torch.manual_seed(0)
    encoder = MiniLMEncoder(384, 256, from_layer=0, freeze_epochs=0).train()
    head = nn.Linear(256, 7)
    groups = [{"params": g["params"], "lr": 1e-4 * g["lr_scale"]} for g in encoder.parameter_groups()]
    optimizer = torch.optim.Adam([*groups, {"params": list(head.parameters()), "lr": 1e-4}])
    g = torch.Generator().manual_seed(1)
    walls = []
    for k, rows in enumerate(batches[:warmup + steps]):
        n = torch.as_tensor(lengths[rows])  # [B]
        mask = torch.arange(int(n.max())).unsqueeze(0) < n.unsqueeze(1)  # [B, T]
        x = torch.randn(len(rows), mask.shape[1], 384, generator=g) * mask.unsqueeze(-1)  # [B, T, 384]
        y = torch.randint(0, 7, (len(rows),), generator=g)
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(head(encoder(x, mask).pooled), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if k >= warmup:
            walls.append(time.perf_counter() - start)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, default=_from_env("SCENESENSE_MELD_ROOT", "train_sent_emo.csv"),
                        help="MELD train CSV (default: $SCENESENSE_MELD_ROOT/train_sent_emo.csv)")
    parser.add_argument("--store", type=Path, help="a store split file; its text lengths replace --csv")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pool", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.csv is None and args.store is None:
        parser.error("give --csv path/to/MELD/train_sent_emo.csv, --store, or set SCENESENSE_MELD_ROOT")
    lengths = _lengths(args.csv, args.store)
    print(f"{len(lengths)} utterances, word-pieces mean {lengths.mean():.1f} max {lengths.max()}; "
          f"torch threads {torch.get_num_threads()}, batch {args.batch}, {args.steps} timed steps each")
    ways = {"random": _random_batches(len(lengths), args.batch, args.seed),
            f"bucketed (pool {args.pool})": list(LengthBucketBatchSampler(lengths, args.batch, args.pool, args.seed))}
    print(f"{'batches':>20} {'padded/real':>11} {'s/step':>8} {'epoch min':>9} {'x random':>8}")
    base = None
    for name, batches in ways.items():
        padded = sum(len(b) * int(lengths[b].max()) for b in batches) / lengths.sum()
        walls = _time(batches, lengths, args.steps, args.warmup)
        epoch = statistics.fmean(walls) * len(batches) / 60
        base = epoch if base is None else base
        print(f"{name:>20} {padded:>11.2f} {statistics.median(walls):>8.3f} {epoch:>9.1f} {epoch / base:>8.2f}")


if __name__ == "__main__":
    main()
