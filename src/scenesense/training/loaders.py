"""The data loaders of `scenesense.training.trainer.Trainer`.

A train loader is built per epoch and shuffled by a generator seeded with ``(seed, epoch)``: plainly,
in length buckets (``trainer.bucket_batches``) or, on several ranks, by a ``DistributedSampler``. An
evaluation loader gives every rank the whole set, in the batches of `sorted_eval_batches` (length-sorted
single samples, less padding) or else in dataset order. On a CUDA device the batches are built in
page-locked memory (``pin_memory``); ``trainer.num_workers`` reads them in worker processes while
the model trains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from lightning_fabric import Fabric
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from scenesense.config import TrainerConfig
from scenesense.training.sampling import LengthBucketBatchSampler, length_sorted_batches
from scenesense.types import Batch
from scenesense.utils.seed import derive_seed, seed_worker

CollateFn = Callable[[list[Any]], Batch]


def sorted_eval_batches(dataset: Dataset, batch_size: int) -> list[list[int]] | None:
    """Length-sorted evaluation batches for a dataset of single samples; ``None``: dataset order."""
    lengths = getattr(dataset, "sequence_lengths", None)
    return None if lengths is None else length_sorted_batches(lengths(), batch_size)


def build_loader(cfg: TrainerConfig, fabric: Fabric, dataset: Dataset, collate_fn: CollateFn,
                 epoch: int | None = None, eval_batches: list[list[int]] | None = None) -> DataLoader:
    """Eval loader (every rank sees all data, in ``eval_batches``, default dataset order) or,
    with 1-based ``epoch``, a shuffled train loader; either set up by ``fabric``.

    Raises:
        ValueError: ``cfg.bucket_batches`` with a dataset that has no ``sequence_lengths()``.
    """
    kwargs: dict[str, Any] = {"batch_size": cfg.batch_size, "collate_fn": collate_fn,
                              "num_workers": cfg.num_workers,
                              "worker_init_fn": seed_worker if cfg.num_workers else None,
                              "pin_memory": fabric.device.type == "cuda"}  # page-locked batches copy faster
    if epoch is None and eval_batches is not None:
        kwargs.pop("batch_size")
        loader = DataLoader(dataset, batch_sampler=eval_batches, **kwargs)
    elif epoch is None:
        loader = DataLoader(dataset, shuffle=False, **kwargs)
    elif cfg.bucket_batches:
        lengths = getattr(dataset, "sequence_lengths", None)
        if lengths is None:
            raise ValueError(f"trainer.bucket_batches needs a dataset of single samples with "
                             f"sequence_lengths(), not {type(dataset).__name__} (e.g. whole dialogues "
                             f"for model.context); set bucket_batches: 0")
        batches = LengthBucketBatchSampler(lengths(), cfg.batch_size, cfg.bucket_batches,
                                           derive_seed(cfg.seed, epoch), fabric.global_rank, fabric.world_size)
        kwargs.pop("batch_size")
        loader = DataLoader(dataset, batch_sampler=batches, **kwargs)
    elif fabric.world_size > 1:
        # the epoch is folded into the seed: Fabric calls set_epoch(0) on a fresh loader's sampler
        sampler: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=fabric.world_size, rank=fabric.global_rank, shuffle=True,
            seed=derive_seed(cfg.seed, epoch))
        loader = DataLoader(dataset, sampler=sampler, **kwargs)
    else:
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, epoch))
        loader = DataLoader(dataset, shuffle=True, generator=generator, **kwargs)
    return cast(DataLoader, fabric.setup_dataloaders(loader, use_distributed_sampler=False))
