"""Task losses (registered in `LOSSES`), class weights and class priors.

A loss is an ``nn.Module`` called as ``loss_fn(logits, label) -> scalar``; the trainer adds the
model's ``aux_losses`` to it. With ``p = softmax(z)`` for logits ``z`` and true class ``y``:

- ``"cross_entropy"``: ``l = -log p_y``.
- ``"focal"`` (Lin et al. 2017): ``l = (1 - p_y)^gamma * (-log p_y)``; ``gamma = 0`` is cross-entropy.
- ``"logit_adjusted"`` (Menon et al. 2021, loss form): ``l = -log softmax(z + tau * log pi)_y`` for
  class priors ``pi``; inference uses the raw logits ``z``, so no post-hoc step is needed.
  The post-hoc form, for a model trained without it, is `adjust_logits` (``z - tau * log pi``).
- ``"l1"`` / ``"mse"``: ``|p - t|`` / ``(p - t)^2`` for one regression target ``t``.

The classification losses reduce by the plain mean over the batch, or, with ``class_weights``
``w``, by the weighted mean ``sum_i w[y_i] * l_i / sum_i w[y_i]`` (0 when all ``w[y_i]`` are 0).
The trainer derives ``class_weights`` and ``class_priors`` from the training set
(`class_weights_from_dataset`, `class_priors_from_dataset`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from scenesense.registry import Registry

LOSSES: Registry[type[nn.Module]] = Registry("loss")
"""Every loss class by name; an instance is called as ``loss_fn(logits, label) -> scalar``."""

DERIVED_LOSS_PARAMS = ("class_priors", "class_weights")
"""Loss constructor arguments the trainer computes from the training set, never set in ``loss_params``."""


# --------------------------------------------------------------------------- labels -> weights, priors
def _label_counts(labels: Sequence[int] | np.ndarray | Tensor, num_classes: int) -> np.ndarray:
    """``[C]`` float64 counts of validated class ids (see `class_weights_from_labels`)."""
    y = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of class ids, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(f"labels outside [0, {num_classes}): {sorted(set(bad.tolist()))[:10]}")
    return np.bincount(y, minlength=num_classes).astype(np.float64)


def _dataset_labels(dataset: Dataset, what: str) -> tuple[np.ndarray, int]:
    """A training set's labels and class count (see `class_weights_from_dataset`)."""
    space = getattr(dataset, "label_space", None)
    num_classes = getattr(space, "num_classes", None) or getattr(dataset, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"{type(dataset).__name__} has no `label_space` or `num_classes`, so {what} "
                         "cannot be computed; pass loss_fn=... with them to the Trainer instead")
    labels = getattr(dataset, "labels", None)
    if labels is None:  # generic fallback: read every sample once
        labels = [dataset[i]["label"] for i in range(len(dataset))]  # type: ignore[arg-type]
    return np.asarray(labels), int(num_classes)


def class_weights_from_labels(labels: Sequence[int] | np.ndarray | Tensor, num_classes: int) -> Tensor:
    """Inverse-frequency class weights, normalised to mean 1 over the classes that occur.

    ``w_c = (1 / n_c) / mean_k(1 / n_k)`` over the classes ``k`` with ``n_k > 0`` training samples,
    so the weights of those classes average exactly 1 (a balanced set gives all ones). A class
    absent from ``labels`` gets weight **0**: the model cannot learn it from this data, and an
    infinite weight would make the loss undefined.

    Args:
        labels: ``[N]`` integer class ids in ``[0, num_classes)``.
        num_classes: ``C``, the size of the label space.

    Returns:
        ``[C]`` float32 weights.

    Raises:
        ValueError: if ``labels`` is empty, not 1-D, or holds ids outside ``[0, num_classes)``.
    """
    counts = _label_counts(labels, num_classes)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    inverse = 1.0 / counts[present]
    weights[present] = inverse / inverse.mean()
    return torch.as_tensor(weights, dtype=torch.float32)


def class_weights_from_dataset(dataset: Dataset) -> Tensor:
    """`class_weights_from_labels` for a training set.

    Labels come from ``dataset.labels`` when it exists, otherwise from every sample's ``"label"``;
    the class count from ``dataset.label_space.num_classes`` or ``dataset.num_classes``.

    Returns:
        ``[C]`` float32 weights.

    Raises:
        ValueError: if the dataset exposes no class count.
    """
    return class_weights_from_labels(*_dataset_labels(dataset, "class weights"))


def class_priors_from_labels(labels: Sequence[int] | np.ndarray | Tensor, num_classes: int) -> Tensor:
    """Empirical class priors ``pi_c = n_c / N`` (0 for a class absent from ``labels``).

    Args:
        labels: ``[N]`` integer class ids in ``[0, num_classes)``.
        num_classes: ``C``, the size of the label space.

    Returns:
        ``[C]`` float32 probabilities summing to 1.

    Raises:
        ValueError: if ``labels`` is empty, not 1-D, or holds ids outside ``[0, num_classes)``.
    """
    counts = _label_counts(labels, num_classes)
    return torch.as_tensor(counts / counts.sum(), dtype=torch.float32)


def class_priors_from_dataset(dataset: Dataset) -> Tensor:
    """`class_priors_from_labels` for a training set, read as in `class_weights_from_dataset`.

    Returns:
        ``[C]`` float32 probabilities.

    Raises:
        ValueError: if the dataset exposes no class count.
    """
    return class_priors_from_labels(*_dataset_labels(dataset, "class priors"))


# --------------------------------------------------------------------------- config -> constructor arguments
def loss_parameters(name: str) -> tuple[str, ...]:
    """Keyword arguments of registered loss ``name``'s constructor (derived ones included)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in inspect.signature(LOSSES.get(name)).parameters.values() if p.kind in kinds)


def check_loss_params(name: str, params: Mapping[str, Any]) -> None:
    """Reject ``loss_params`` (from ``trainer.loss_params``) that loss ``name`` cannot take from a config.

    Raises:
        ValueError: if ``params`` sets a derived argument (`DERIVED_LOSS_PARAMS`) or one that the
            loss's constructor does not take; the message names the valid parameters.
    """
    derived = sorted(set(params) & set(DERIVED_LOSS_PARAMS))
    if derived:
        raise ValueError(f"loss_params may not set {derived}: they are computed from the training set "
                         "(class_weights with class_weighted_loss: true; class_priors for logit_adjusted)")
    valid = [p for p in loss_parameters(name) if p not in DERIVED_LOSS_PARAMS]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown loss_params {unknown} for loss {name!r}; its parameters are {valid}")


# --------------------------------------------------------------------------- classification losses
def _check_inputs(logits: Tensor, label: Tensor, per_class: Tensor | None, what: str) -> None:
    if logits.ndim != 2 or label.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [B, C] and label [B], got {tuple(logits.shape)} and "
                         f"{tuple(label.shape)}")
    if per_class is not None and per_class.numel() != logits.shape[1]:
        raise ValueError(f"{per_class.numel()} {what} for {logits.shape[1]} classes")


def _as_weights(class_weights: Tensor | Sequence[float] | None) -> Tensor | None:
    weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    if weights is not None and (weights.ndim != 1 or bool((weights < 0).any()) or
                                not bool(torch.isfinite(weights).all())):
        raise ValueError(f"class_weights must be a 1-D tensor of finite values >= 0, got {weights}")
    return weights


def _reduce(losses: Tensor, label: Tensor, weights: Tensor | None) -> Tensor:
    """``[B]`` per-sample losses -> mean, or ``sum w[y] l / sum w[y]`` (0 if that sum is 0)."""
    if weights is None:
        return losses.mean()
    w = weights.to(losses.dtype)[label]  # [B]
    total = w.sum()
    return (w * losses).sum() / torch.where(total > 0, total, torch.ones_like(total))


def _check_non_negative(name: str, value: float) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(nn.Module):
    """Cross-entropy over class logits, optionally class-weighted.

    With weights the loss is the weighted mean ``sum_i w[y_i] * nll_i / sum_i w[y_i]`` (as
    ``torch.nn.CrossEntropyLoss(weight=w)``), except that a batch whose samples all have weight 0
    (only classes absent from training) gives 0 instead of NaN.

    Args:
        class_weights: ``[C]`` non-negative weights, e.g. from `class_weights_from_labels`;
            ``None`` for the plain mean.
    """

    def __init__(self, class_weights: Tensor | Sequence[float] | None = None) -> None:
        super().__init__()
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", _as_weights(class_weights))

    def forward(self, logits: Tensor, label: Tensor) -> Tensor:
        """Mean (or weighted mean) negative log-likelihood.

        Args:
            logits: ``[B, C]`` class scores.
            label: ``[B]`` class ids (long).

        Returns:
            Scalar loss.
        """
        _check_inputs(logits, label, self.class_weights, "class weights")
        return _reduce(self.per_sample(logits, label), label, self.class_weights)

    def per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """``[B]`` unreduced losses ``-log p_y``."""
        return F.cross_entropy(logits, label, reduction="none")


@LOSSES.register("focal")
class FocalLoss(CrossEntropyLoss):
    """Focal loss ``(1 - p_y)^gamma * (-log p_y)`` (Lin et al. 2017), optionally class-weighted.

    The factor ``(1 - p_y)^gamma`` shrinks the loss of well-classified samples, so training
    concentrates on hard (often minority-class) ones. ``gamma = 0`` is exactly
    `CrossEntropyLoss`; the reduction (mean, or weighted mean) is the same. Computed from
    ``log_softmax``, with ``1 - p_y = -expm1(log p_y)``, for stability.

    Args:
        gamma: focusing parameter ``>= 0`` (2 in the paper).
        class_weights: ``[C]`` non-negative weights as in `CrossEntropyLoss`; ``None`` for
            the plain mean.

    Raises:
        ValueError: if ``gamma`` is negative or not finite, or the weights are invalid.
    """

    def __init__(self, gamma: float = 2.0, class_weights: Tensor | Sequence[float] | None = None) -> None:
        super().__init__(class_weights)
        self.gamma = _check_non_negative("gamma", gamma)

    def per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """``[B]`` unreduced focal losses (reduced by `CrossEntropyLoss.forward`)."""
        log_p = F.log_softmax(logits, dim=1).gather(1, label[:, None])[:, 0]  # [B] log p_y
        # clamped away from 0 so that 0 < gamma < 1 has finite gradients when p_y rounds to 1
        one_minus_p = (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny)
        return one_minus_p.pow(self.gamma) * -log_p


def _check_priors(class_priors: Tensor | Sequence[float]) -> Tensor:
    priors = torch.as_tensor(class_priors, dtype=torch.float64)
    if priors.ndim != 1 or priors.numel() == 0 or not bool(torch.isfinite(priors).all()):
        raise ValueError(f"class_priors must be a non-empty 1-D tensor of finite values, got {priors}")
    if bool((priors < 0).any()) or abs(priors.sum().item() - 1.0) > 1e-4:
        raise ValueError(f"class_priors must be >= 0 and sum to 1, got {priors.tolist()} "
                         f"(sum {priors.sum().item():.6g})")
    return priors


def _log_priors(priors: Tensor) -> Tensor:
    """``log pi``, a prior of 0 (class absent from training) read as the smallest positive prior."""
    return torch.where(priors > 0, priors, priors[priors > 0].min()).log()


def adjust_logits(logits: Tensor, class_priors: Tensor | Sequence[float], tau: float) -> Tensor:
    """Post-hoc logit adjustment ``z - tau * log pi`` (Menon et al. 2021, post-hoc form).

    Moves the decision of a model trained with plain cross-entropy towards the balanced
    (prior-free) posterior, without retraining: rare classes gain ``-tau * log pi_c``. Do not
    combine with `LogitAdjustedLoss`, which already makes the raw logits prior-free. A
    class with prior 0 is given the smallest positive prior, as in the loss.

    Args:
        logits: ``[N, C]`` class scores (or log-probabilities: the argmax is the same).
        class_priors: ``[C]`` training class probabilities, e.g. `class_priors_from_dataset`.
        tau: adjustment strength ``>= 0`` (1 targets balanced error; 0 changes nothing).

    Returns:
        ``[N, C]`` adjusted scores, dtype of ``logits``.

    Raises:
        ValueError: priors that are not a probability vector of ``C`` classes, or ``tau < 0``.
    """
    tau = _check_non_negative("tau", tau)
    priors = _check_priors(class_priors)
    if logits.ndim != 2 or logits.shape[1] != priors.numel():
        raise ValueError(f"expected logits [N, {priors.numel()}] for {priors.numel()} class priors, "
                         f"got {tuple(logits.shape)}")
    return logits - (tau * _log_priors(priors)).to(device=logits.device, dtype=logits.dtype)


@LOSSES.register("logit_adjusted")
class LogitAdjustedLoss(nn.Module):
    """Logit-adjusted cross-entropy ``-log softmax(z + tau * log pi)_y`` (Menon et al. 2021).

    Adding ``tau * log pi`` during training only makes the model's raw logits ``z`` estimate the
    balanced (prior-free) posterior, so predictions use ``z`` unchanged. A class with prior 0
    (absent from the training set) is given the smallest positive prior of the other classes, so
    the loss stays finite.

    Args:
        class_priors: ``[C]`` class probabilities (``>= 0``, summing to 1), e.g. from
            `class_priors_from_labels`.
        tau: adjustment strength ``>= 0`` (1 in the paper; 0 is plain cross-entropy).

    Raises:
        ValueError: if the priors are not a 1-D probability vector, or ``tau`` is negative.
    """

    def __init__(self, class_priors: Tensor | Sequence[float], tau: float = 1.0) -> None:
        super().__init__()
        self.tau = _check_non_negative("tau", tau)
        priors = _check_priors(class_priors)
        self.class_priors: Tensor
        self.log_priors: Tensor
        self.register_buffer("class_priors", priors.float())
        self.register_buffer("log_priors", _log_priors(priors).float())  # [C]

    def forward(self, logits: Tensor, label: Tensor) -> Tensor:
        """Mean cross-entropy of the adjusted logits.

        Args:
            logits: ``[B, C]`` class scores.
            label: ``[B]`` class ids (long).

        Returns:
            Scalar loss.
        """
        _check_inputs(logits, label, self.log_priors, "class priors")
        return F.cross_entropy(logits + self.tau * self.log_priors, label)


# --------------------------------------------------------------------------- regression losses
def _regression_input(logits: Tensor, target: Tensor) -> Tensor:
    if logits.ndim != 2 or logits.shape[1] != 1 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected predictions [B, 1] and targets [B], got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    return logits[:, 0]


@LOSSES.register("l1")
class L1Loss(nn.Module):
    """Mean absolute error of a one-target regression (the MulT / MMSA sentiment loss)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Args: logits ``[B, 1]`` predictions, target ``[B]`` floats. Returns the scalar mean ``|p - t|``."""
        return F.l1_loss(_regression_input(logits, target), target.to(logits.dtype))


@LOSSES.register("mse")
class MSELoss(nn.Module):
    """Mean squared error of a one-target regression."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Args: logits ``[B, 1]`` predictions, target ``[B]`` floats. Returns the scalar mean ``(p - t)^2``."""
        return F.mse_loss(_regression_input(logits, target), target.to(logits.dtype))
