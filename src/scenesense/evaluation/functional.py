"""Classification metrics of a run, from scikit-learn, at full float64 precision.

Conventions (scikit-learn's with ``labels=range(C)`` and ``zero_division=0``):

- a ratio whose denominator is 0 (precision of a never-predicted class, recall of a class absent
  from the truth) is 0.0;
- macro averages run over **all** ``C`` classes of the label space, including classes absent from
  both truth and predictions (they contribute 0), so scores are comparable across splits;
- weighted averages weight each class by its true support.

Rounding belongs to reports, never to this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means for model selection."""

    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo(True, "fraction of correct predictions"),
    "weighted_f1": MetricInfo(True, "F1 averaged over classes, weighted by true support"),
    "macro_f1": MetricInfo(True, "unweighted mean F1 over all classes"),
    "weighted_precision": MetricInfo(True, "precision averaged over classes, weighted by true support"),
    "macro_precision": MetricInfo(True, "unweighted mean precision over all classes"),
    "weighted_recall": MetricInfo(True, "recall weighted by support (equals accuracy)"),
    "macro_recall": MetricInfo(True, "unweighted mean recall over all classes (UAR)"),
    "loss": MetricInfo(False, "mean cross-entropy"),
}


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better; ``KeyError`` lists the known metrics."""
    try:
        return METRICS[name].higher_is_better
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def _validate_labels(y_true: Any, y_pred: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
    """Return both as int64 ``[N]`` arrays or raise ``ValueError`` naming the problem."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.shape != t.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got shapes {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("y_true is empty")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class ids, got dtype {a.dtype}")
        bad = a[(a < 0) | (a >= num_classes)]
        if bad.size:
            raise ValueError(f"{name} has ids outside [0, {num_classes}): {sorted(set(bad.tolist()))[:10]}")
    return t.astype(np.int64), p.astype(np.int64)


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs.

    Args:
        y_true: ``[N]`` true class ids in ``[0, C)``.
        y_pred: ``[N]`` predicted class ids in ``[0, C)``.
        num_classes: ``C``.

    Returns:
        ``[C, C]`` int64 matrix; row = true class, column = predicted class.
    """
    t, p = _validate_labels(y_true, y_pred, num_classes)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                           label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, weighted/macro precision, recall and F1, per-class scores and the confusion matrix.

    Args:
        y_true: ``[N]`` true class ids in ``[0, C)``.
        y_pred: ``[N]`` predicted class ids in ``[0, C)``.
        label_names: ``C`` class names, in class-id order.

    Returns:
        ``{"accuracy", "weighted_f1", "macro_f1", "weighted_precision", "macro_precision",
        "weighted_recall", "macro_recall"}`` as floats, ``"per_class"``: ``{name: {"precision",
        "recall", "f1", "support"}}`` and ``"confusion_matrix"``: ``C`` lists of ``C`` ints. See
        `METRICS` for ``higher_is_better``.

    Raises:
        ValueError: for mismatched shapes, non-integer ids, ids outside the label space or
            duplicate names.
    """
    names = [str(n) for n in label_names]
    if len(set(names)) != len(names):
        raise ValueError(f"label_names must be unique, got {names}")
    t, p = _validate_labels(y_true, y_pred, len(names))
    precision, recall, f1, support = skm.precision_recall_fscore_support(t, p, labels=np.arange(len(names)),
                                                                         zero_division=0)
    # weighted averages as ``support / N @ score`` rather than ``average="weighted"``: the same number,
    # summed so that metrics.json keeps the last bit it had before scikit-learn computed the scores
    weight = support / support.sum()
    return {
        "accuracy": float(skm.accuracy_score(t, p)),
        "weighted_f1": float(weight @ f1),
        "macro_f1": float(f1.mean()),
        "weighted_precision": float(weight @ precision),
        "macro_precision": float(precision.mean()),
        "weighted_recall": float(weight @ recall),
        "macro_recall": float(recall.mean()),
        "per_class": {name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                             "support": int(support[c])} for c, name in enumerate(names)},
        "confusion_matrix": confusion_matrix(t, p, len(names)).tolist(),
    }
