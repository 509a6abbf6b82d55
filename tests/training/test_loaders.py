"""The trainer's data loaders: page-locked batches on CUDA only, workers as configured."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import TensorDataset

from scenesense.config import TrainerConfig
from scenesense.training.loaders import build_loader


class _Fabric(SimpleNamespace):
    """The part of Lightning Fabric a loader needs, on a device of our choice (no GPU needed)."""

    def setup_dataloaders(self, loader, use_distributed_sampler=True):  # noqa: ARG002
        return loader


@pytest.mark.parametrize(("device", "pinned"), [("cpu", False), ("cuda", True)])
@pytest.mark.parametrize("epoch", [None, 1])
def test_batches_are_pinned_on_cuda_only(device, pinned, epoch):
    fabric = _Fabric(device=torch.device(device), world_size=1, global_rank=0)
    dataset = TensorDataset(torch.arange(6.0))
    loader = build_loader(TrainerConfig(batch_size=2), fabric, dataset, collate_fn=list, epoch=epoch)
    assert loader.pin_memory is pinned
    assert loader.num_workers == 0


def test_workers_as_configured():
    fabric = _Fabric(device=torch.device("cpu"), world_size=1, global_rank=0)
    loader = build_loader(TrainerConfig(batch_size=2, num_workers=1), fabric, TensorDataset(torch.arange(4.0)),
                          collate_fn=list, epoch=1)
    assert loader.num_workers == 1 and loader.worker_init_fn is not None
    assert sum(len(b) for b in loader) == 4
