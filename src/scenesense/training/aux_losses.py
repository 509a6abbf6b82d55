"""Weighted auxiliary losses: the weight of each named term, and their per-epoch means.

A model may return named, *unweighted* scalar regularisers in ``ModelOutput.aux_losses`` (a
fusion's, e.g. ``{"orthogonality": ..., "similarity": ...}``). The trainer optimises

    task_loss_weight * task_loss + sum_k weight_k * aux_k

where ``weight_k`` is ``trainer.aux_loss_weights[k]`` if set, else the model's default
(``model.aux_loss_weights()[k]``, an optional method), else 1. A term of weight 0 is logged but
not optimised. The history of an epoch in which the model returned auxiliary terms gains the
unweighted means `TASK_KEY` (``train_task_loss``), ``train_aux_<name>`` and ``dev_aux_<name>``
(`EpochSums`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from lightning_fabric import Fabric
from lightning_fabric.wrappers import is_wrapped
from torch import Tensor, nn

from scenesense.config import ConfigError

TASK_KEY = "train_task_loss"  # history: mean unweighted task loss of the training pass
TRAIN_PREFIX = "train_aux_"  # history: train_aux_<name>, mean unweighted term of the training pass
DEV_PREFIX = "dev_aux_"  # history: dev_aux_<name>, mean unweighted term over the dev set (eval mode)


def _is_weight(value: Any) -> bool:  # noqa: ANN401
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value >= 0


def model_defaults(model: nn.Module) -> dict[str, float]:
    """The model's default weights, ``model.aux_loss_weights()``; ``{}`` without that method.

    Raises:
        ValueError: a default that is not a finite number >= 0.
    """
    base = cast(nn.Module, model.module) if is_wrapped(model) else model
    make = getattr(base, "aux_loss_weights", None)
    defaults = dict(make()) if callable(make) else {}
    bad = {k: v for k, v in defaults.items() if not _is_weight(v)}
    if bad:
        raise ValueError(f"{type(base).__name__}.aux_loss_weights(): weights must be finite numbers >= 0, "
                         f"got {bad}")
    return {str(k): float(v) for k, v in defaults.items()}


@dataclass(frozen=True)
class LossWeights:
    """The weights of a run's loss terms.

    Fields:
        task: weight of the task loss (``trainer.task_loss_weight``).
        configured: ``trainer.aux_loss_weights``: auxiliary term name -> weight.
        defaults: the model's defaults (`model_defaults`), used for names not configured.
    """

    task: float = 1.0
    configured: Mapping[str, float] | None = None
    defaults: Mapping[str, float] | None = None

    def of(self, name: str) -> float:
        """The weight of auxiliary term ``name``: configured, else the model's default, else 1."""
        for source in (self.configured or {}, self.defaults or {}):
            if name in source:
                return float(source[name])
        return 1.0

    def resolved(self, names: Iterable[str]) -> dict[str, float]:
        """``{name: weight}`` for the terms ``names``, sorted by name."""
        return {name: self.of(name) for name in sorted(names)}

    def total(self, task: Tensor, aux: Mapping[str, Tensor]) -> Tensor:
        """The optimised loss ``task * task_loss + sum_k w_k * aux_k`` (terms of weight 0 left out).

        Args:
            task: scalar task loss.
            aux: named scalar auxiliary terms.

        Raises:
            ValueError: an auxiliary term that is not a scalar.
        """
        check_scalars(aux)
        loss = task if self.task == 1.0 else self.task * task
        for name, term in aux.items():
            weight = self.of(name)
            if weight != 0.0:
                loss = loss + (term.reshape(()) if weight == 1.0 else weight * term.reshape(()))
        return loss


def check_scalars(aux: Mapping[str, Tensor]) -> None:
    """Raise `ValueError` naming an auxiliary term that is not a scalar (one element)."""
    for name, term in aux.items():
        if term.numel() != 1:
            raise ValueError(f"auxiliary loss {name!r} must be a scalar, got shape {tuple(term.shape)}")


def read_scalars(tensors: Sequence[Tensor]) -> list[float]:
    """The values of one-element tensors as floats, read from their device at once."""
    return cast(list[float], torch.stack([t.detach().float().reshape(()) for t in tensors]).tolist())


def check_names(configured: Iterable[str], returned: Iterable[str]) -> None:
    """Refuse configured weights for terms the model never returned (typos).

    Raises:
        ConfigError: naming the unknown names and those the model returned.
    """
    returned = sorted(returned)
    unknown = sorted(set(configured) - set(returned))
    if unknown:
        raise ConfigError(f"trainer.aux_loss_weights names {unknown}, but the model returned no such "
                          f"auxiliary loss during the first epoch; it returned {returned or 'none'}")


class EpochSums:
    """Sample-weighted sums of one pass's unweighted task loss and auxiliary terms.

    A batch that does not return a term adds 0 to it, so each mean is over every sample of the
    pass, and ``train_loss == task_weight * train_task_loss + sum_k w_k * train_aux_k``.
    """

    def __init__(self) -> None:
        self.task = 0.0
        self.aux: dict[str, float] = {}

    def add(self, n: int, task: float, aux: Mapping[str, float]) -> None:
        """Add one batch of ``n`` samples: its mean task loss and mean auxiliary terms."""
        self.task += task * n
        for name, value in aux.items():
            self.aux[name] = self.aux.get(name, 0.0) + value * n

    def all_reduce(self, fabric: Fabric) -> None:
        """Sum over the processes of a multi-device run, for every auxiliary name any of them saw."""
        names = sorted({name for rank in range(fabric.world_size)
                        for name in fabric.broadcast(sorted(self.aux), src=rank)})
        if names:
            local = torch.tensor([self.task, *(self.aux.get(k, 0.0) for k in names)], dtype=torch.float64,
                                 device=fabric.device)
            task, *aux = cast(Tensor, fabric.all_reduce(local, reduce_op="sum")).tolist()
            self.task, self.aux = task, dict(zip(names, aux, strict=True))

    def train_row(self, count: float) -> dict[str, float]:
        """``train_task_loss`` and ``train_aux_<name>`` (means over ``count`` samples); ``{}`` without
        auxiliary terms."""
        if not self.aux:
            return {}
        aux = {f"{TRAIN_PREFIX}{k}": v / count for k, v in sorted(self.aux.items())}
        return {TASK_KEY: self.task / count, **aux}

    def dev_row(self, count: float) -> dict[str, float]:
        """``dev_aux_<name>`` (means over ``count`` samples); ``{}`` without auxiliary terms."""
        return {f"{DEV_PREFIX}{k}": v / count for k, v in sorted(self.aux.items())}


def history_names(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """The auxiliary term names of a history (its ``train_aux_<name>`` and ``dev_aux_<name>`` keys),
    sorted."""
    names = {key[len(prefix):] for row in history for key in row for prefix in (TRAIN_PREFIX, DEV_PREFIX)
             if key.startswith(prefix)}
    return sorted(names)
