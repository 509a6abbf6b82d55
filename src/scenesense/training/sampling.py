"""Batches of similar length: shuffled for training (``trainer.bucket_batches``), sorted for evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Shuffled batches whose samples have similar lengths, reproducible from a seed.

    The samples are shuffled, cut into pools of ``pool`` batches, each pool is sorted by length
    (ties keep the shuffled order) and cut into batches, and the order of all batches is
    shuffled again. Every sample is in exactly one batch per epoch; a pool's last batch may be
    smaller. A batch then pads to nearly its own length instead of the longest of ``batch_size``
    random samples, which is most of the cost of a sequence model: MELD train transcripts
    (MiniLM word-pieces) in random batches of 32 pad to 2.59x their real steps, in pools of 50
    batches to 1.06x (``benchmarks/bucket_batches.py``).

    With ``world_size > 1`` (data parallelism) every rank builds the same batches and takes every
    ``world_size``-th one, starting at ``rank``; the last ``len % world_size`` batches of the
    epoch are left out so every rank runs the same number of steps.

    Args:
        lengths: ``[N]`` cost of each sample (e.g. its real sequence steps).
        batch_size: samples per batch.
        pool: batches per sorted pool (``1``: no sorting across the batch boundary is possible,
            only within each batch; large: nearly global sorting, less randomness).
        seed: generator seed; the trainer derives one per epoch.
        rank: this process's rank.
        world_size: the number of processes.

    Raises:
        ValueError: a non-positive ``batch_size``/``pool``/``world_size``, a rank outside
            ``0 .. world_size - 1``, or lengths that are not a 1-d sequence.
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, batch_size: int, pool: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        costs = np.asarray(lengths)
        if costs.ndim != 1:
            raise ValueError(f"lengths must be 1-d, got shape {costs.shape}")
        if batch_size < 1 or pool < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size, pool, world_size >= 1 and 0 <= rank < world_size; got "
                             f"{batch_size}, {pool}, {world_size}, {rank}")
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(costs), generator=generator).numpy()
        batches: list[list[int]] = []
        span = batch_size * pool
        for start in range(0, len(order), span):
            part = order[start:start + span]
            part = part[np.argsort(costs[part], kind="stable")]
            batches += [part[i:i + batch_size].tolist() for i in range(0, len(part), batch_size)]
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        usable = len(batches) - len(batches) % world_size
        self.batches = [batches[shuffled[i]] for i in range(rank, usable, world_size)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[list[int]]:
    """Evaluation batches: the sample indices sorted by length (stable), cut into ``batch_size``.

    Every sample is in one batch and a batch pads only to its own longest sample. The caller
    puts the outputs back in dataset order (``np.argsort`` of the concatenated batches).

    Args:
        lengths: ``[N]`` cost of each sample (e.g. its real sequence steps).
        batch_size: samples per batch (the last batch may be smaller).

    Raises:
        ValueError: a non-positive ``batch_size`` or lengths that are not a 1-d sequence.
    """
    costs = np.asarray(lengths)
    if costs.ndim != 1 or batch_size < 1:
        raise ValueError(f"need 1-d lengths and batch_size >= 1, got shape {costs.shape} and {batch_size}")
    order = np.argsort(costs, kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
