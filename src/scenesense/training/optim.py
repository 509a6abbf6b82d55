"""The optimiser's parameter groups and the learning-rate schedule of `scenesense.training.trainer.Trainer`.

A model may split its parameters into groups with their own learning rate and a number of frozen
epochs (``parameter_groups()``, see `param_groups`); every group's learning rate is then scaled per
optimizer step by `lr_factor` (``trainer.lr_schedule`` with ``trainer.warmup``).
"""

from __future__ import annotations

from typing import Any, cast

from lightning_fabric.wrappers import is_wrapped
from torch import nn
from torch.optim import Optimizer

Schedule = list[tuple[float, int]]  # (lr_scale, frozen_epochs) per optimizer param group


def param_groups(model: nn.Module, lr: float) -> tuple[list[dict[str, Any]], Schedule] | None:
    """Adam param groups and their schedule from ``model.parameter_groups()``; ``None`` without it.

    The contract: ``parameter_groups()`` returns dicts with ``params`` (parameters), ``lr_scale``
    (learning rate relative to ``lr``) and ``frozen_epochs`` (learning rate 0 during the first
    ``frozen_epochs`` epochs), and every parameter of the model is in exactly one of them.

    Raises:
        ValueError: a parameter is in no group, in two groups, or not in the model.
    """
    base = cast(nn.Module, model.module) if is_wrapped(model) else model
    make = getattr(base, "parameter_groups", None)
    if not callable(make):
        return None
    names = {id(p): name for name, p in base.named_parameters()}
    seen: dict[int, int] = {}
    groups: list[dict[str, Any]] = []
    schedule: Schedule = []
    for i, group in enumerate(make()):
        params = list(group["params"])
        for p in params:
            if id(p) not in names:
                raise ValueError(f"parameter_groups(): group {i} holds a parameter that is not in the model")
            if id(p) in seen:
                raise ValueError(f"parameter_groups(): {names[id(p)]} is in groups {seen[id(p)]} and {i}")
            seen[id(p)] = i
        groups.append({"params": params, "lr": lr * float(group["lr_scale"])})
        schedule.append((float(group["lr_scale"]), int(group["frozen_epochs"])))
    missing = [name for key, name in names.items() if key not in seen]
    if missing:
        raise ValueError(f"parameter_groups() leaves out {len(missing)} parameter(s), e.g. {missing[:3]}; "
                         "every parameter must be in exactly one group")
    return groups, schedule


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The multiplier of every group's learning rate at 0-based optimizer ``step`` of ``total``.

    ``warmup`` steps rise linearly, ``(step + 1) / warmup``; then ``"constant"`` stays at 1 and
    ``"linear"`` falls as ``(total - step) / (total - warmup)``, to ``1 / (total - warmup)`` on the
    last step (the usual transformer fine-tuning schedule).
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "linear":
        return (total - step) / (total - warmup)
    return 1.0


def epoch_learning_rates(optimizer: Optimizer, grouped: Schedule | None, lr: float, epoch: int) -> list[float]:
    """Each group's learning rate for 1-based ``epoch`` before the step schedule (0 while frozen)."""
    if grouped is None:
        return [lr for _ in optimizer.param_groups]
    return [0.0 if epoch <= frozen_epochs else lr * scale for scale, frozen_epochs in grouped]
