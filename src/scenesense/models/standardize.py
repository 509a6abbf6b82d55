"""Per-dimension z-scoring of each modality's input features, fitted on the train split.

The statistics live in the model as buffers, so a saved run applies exactly the train split's
standardisation when it is evaluated or used for prediction on other data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from scenesense.types import Sample

MIN_STD = 1e-6  # a dimension whose train std is below this is only centred (std set to 1)


class FeatureStandardizer(nn.Module):
    """``x -> (x - mean_m) / std_m`` per modality; padded steps of a sequence stay zero.

    Args:
        feature_dims: modality -> feature size ``D``; buffers start as mean 0, std 1 (identity)
            until `set_statistics` (or loading a checkpoint) fills them.
    """

    def __init__(self, feature_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.modalities = tuple(sorted(feature_dims))
        for m in self.modalities:
            self.register_buffer(f"mean_{m}", torch.zeros(feature_dims[m]))
            self.register_buffer(f"std_{m}", torch.ones(feature_dims[m]))

    def set_statistics(self, stats: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Copy ``{modality: (mean [D], std [D])}`` into the buffers (std floored, see MIN_STD)."""
        for m in self.modalities:
            mean, std = stats[m]
            std = np.where(np.asarray(std) < MIN_STD, 1.0, std)
            getattr(self, f"mean_{m}").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"std_{m}").copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Standardise ``inputs`` (``[B, T, D]`` or ``[B, D]``); modalities it does not know pass through.

        ``masks``: per sequence modality ``[B, T]``, True = real step; padded steps are re-zeroed.
        """
        out = dict(inputs)
        for m in self.modalities:
            if m not in inputs:
                continue
            x = (inputs[m] - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")
            if x.dim() == 3 and m in masks:
                x = x * masks[m].unsqueeze(-1).to(x.dtype)
            out[m] = x
        return out


def feature_statistics(samples: Iterable[Sample], modalities: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and (population) std per dimension of each modality over present samples' real steps.

    Sums are accumulated in float64 in one pass, so any dataset size fits in memory.

    Raises:
        ValueError: a modality has no present sample to fit on.
    """
    names = tuple(modalities)
    count = dict.fromkeys(names, 0)
    total: dict[str, np.ndarray] = {}
    squares: dict[str, np.ndarray] = {}
    for sample in samples:
        for m in names:
            if not sample["present"][m]:
                continue
            rows = np.asarray(sample["inputs"][m], dtype=np.float64).reshape(-1, sample["inputs"][m].shape[-1])
            if m not in total:
                total[m] = np.zeros(rows.shape[1])
                squares[m] = np.zeros(rows.shape[1])
            count[m] += rows.shape[0]
            total[m] += rows.sum(axis=0)
            squares[m] += np.square(rows).sum(axis=0)
    stats = {}
    for m in names:
        if count[m] == 0:
            raise ValueError(f"cannot standardise modality {m!r}: no train sample has it")
        mean = total[m] / count[m]
        var = np.maximum(squares[m] / count[m] - np.square(mean), 0.0)
        stats[m] = (mean.astype(np.float32), np.sqrt(var).astype(np.float32))
    return stats
