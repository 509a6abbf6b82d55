"""Task losses (registered in :data:`scenesense.registry.LOSSES`) and class weighting.

A loss is an ``nn.Module`` called as ``loss_fn(logits, label) -> scalar``; the trainer adds the
model's ``aux_losses`` to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from scenesense.registry import LOSSES


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
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    inverse = 1.0 / counts[present]
    weights[present] = inverse / inverse.mean()
    return torch.as_tensor(weights, dtype=torch.float32)


def class_weights_from_dataset(dataset: Dataset) -> Tensor:
    """:func:`class_weights_from_labels` for a training set.

    Labels come from ``dataset.labels`` when it exists, otherwise from every sample's ``"label"``;
    the class count from ``dataset.label_space.num_classes`` or ``dataset.num_classes``.

    Returns:
        ``[C]`` float32 weights.

    Raises:
        ValueError: if the dataset exposes no class count.
    """
    space = getattr(dataset, "label_space", None)
    num_classes = getattr(space, "num_classes", None) or getattr(dataset, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"{type(dataset).__name__} has no `label_space` or `num_classes`, so class weights "
                         "cannot be computed; pass loss_fn=CrossEntropyLoss(class_weights=...) instead")
    labels = getattr(dataset, "labels", None)
    if labels is None:  # generic fallback: read every sample once
        labels = [dataset[i]["label"] for i in range(len(dataset))]  # type: ignore[arg-type]
    return class_weights_from_labels(np.asarray(labels), int(num_classes))


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(nn.Module):
    """Cross-entropy over class logits, optionally class-weighted.

    With weights the loss is the weighted mean ``sum_i w[y_i] * nll_i / sum_i w[y_i]`` (as
    ``torch.nn.CrossEntropyLoss(weight=w)``), except that a batch whose samples all have weight 0
    (only classes absent from training) gives 0 instead of NaN.

    Args:
        class_weights: ``[C]`` non-negative weights, e.g. from :func:`class_weights_from_labels`;
            ``None`` for the plain mean.
    """

    def __init__(self, class_weights: Tensor | Sequence[float] | None = None) -> None:
        super().__init__()
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        if weights is not None and (weights.ndim != 1 or bool((weights < 0).any()) or
                                    not bool(torch.isfinite(weights).all())):
            raise ValueError(f"class_weights must be a 1-D tensor of finite values >= 0, got {weights}")
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", weights)

    def forward(self, logits: Tensor, label: Tensor) -> Tensor:
        """Mean (or weighted mean) negative log-likelihood.

        Args:
            logits: ``[B, C]`` class scores.
            label: ``[B]`` class ids (long).

        Returns:
            Scalar loss.
        """
        if logits.ndim != 2 or label.shape != logits.shape[:1]:
            raise ValueError(f"expected logits [B, C] and label [B], got {tuple(logits.shape)} and "
                             f"{tuple(label.shape)}")
        if self.class_weights is None:
            return F.cross_entropy(logits, label)
        if self.class_weights.numel() != logits.shape[1]:
            raise ValueError(f"{self.class_weights.numel()} class weights for {logits.shape[1]} classes")
        nll = F.cross_entropy(logits, label, reduction="none")  # [B]
        w = self.class_weights.to(nll.dtype)[label]  # [B]
        total = w.sum()
        return (w * nll).sum() / torch.where(total > 0, total, torch.ones_like(total))


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
