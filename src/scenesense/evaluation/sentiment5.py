"""5-class sentiment scores: the Acc-5 / F1 / MAE / Corr of the TMT and AMW papers' tables.

The classes are `scenesense.data.labels.SENTIMENT5` (ids 0..4), formed from a score by
`scenesense.data.labels.sentiment5_ids` with rule ``round`` (MOSI / MOSEI) or ``sims`` (CH-SIMS).

**5-class classifier** (``data.params.label: sentiment5``), class ids ``t`` (truth) and ``p`` (the
arg-max of the logits) over ``N`` items:

- ``acc5 = mean [p == t]`` (TMT's ``Mult_acc_5``; equals ``accuracy``);
- ``f1_5``: F1 over the 5 classes, weighted as TMT's published code weights it: it calls
  scikit-learn's ``f1_score(pred, true, average="weighted")`` with the predictions first, so each
  class's F1 is weighted by how often it is *predicted* (``weighted_f1`` weights by true support);
- ``mae = mean |p - t|`` and ``corr`` = Pearson of ``(p, t)`` on the class scale (``id - 2``, i.e.
  -2 .. 2; 0 when either side is constant). TMT's code reports no MAE or Corr for its classifier;
  these are this package's definitions. With rule ``round`` a class id - 2 is the score rounded
  and clipped to [-2, 2], so ``mae`` is in score units, against the rounded truths.

**Regression** (one score per item) on data with a 5-class rule: ``acc5`` and ``f1_5`` as above on
the classes of truth and prediction by that rule (``round``: the usual Acc-5; ``sims``: MMSA's
CH-SIMS intervals); with rule ``sims`` also ``mae_clipped`` / ``corr_clipped``, MAE and Pearson after
clipping both sides to [-1, 1], as MMSA's and TMT's CH-SIMS metrics compute them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from scenesense.data.labels import SENTIMENT5, sentiment5_ids
from scenesense.evaluation.regression import pearson


def _class_ids(values: Any, name: str) -> np.ndarray:
    ids = np.asarray(values)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D array of class ids, got {ids.dtype} {ids.shape}")
    bad = ids[(ids < 0) | (ids >= SENTIMENT5.num_classes)]
    if bad.size:
        raise ValueError(f"{name} has ids outside [0, 5): {sorted(set(bad.tolist()))[:10]}")
    return ids.astype(np.int64)


def f1_weighted_by_prediction(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Per-class F1 averaged with weights = each class's share of the *predictions* (module docstring).

    Exactly ``sklearn.metrics.f1_score(y_pred, y_true, average="weighted", zero_division=0)``.
    """
    return float(f1_score(np.asarray(y_pred), np.asarray(y_true), average="weighted", zero_division=0))


def sentiment5_classification_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
                                      ) -> dict[str, float]:
    """Acc-5, F1 and class-scale MAE / Corr of a 5-class classifier (module docstring).

    Args:
        y_true: ``[N]`` true `SENTIMENT5` class ids.
        y_pred: ``[N]`` predicted class ids.

    Returns:
        ``{"acc5", "f1_5", "mae", "corr"}``.

    Raises:
        ValueError: shapes differ, empty input, or ids outside [0, 5).
    """
    t, p = _class_ids(y_true, "y_true"), _class_ids(y_pred, "y_pred")
    if p.shape != t.shape:
        raise ValueError(f"y_true and y_pred must have equal length, got {t.shape} and {p.shape}")
    return {"acc5": float((t == p).mean()), "f1_5": f1_weighted_by_prediction(t, p),
            "mae": float(np.abs(p - t).mean()), "corr": pearson(t - 2, p - 2)}


def sentiment5_regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray,
                                  rule: str) -> dict[str, float]:
    """Acc-5 and F1 of scores binned into 5 classes by ``rule`` (and, for ``sims``, clipped MAE / Corr).

    Args:
        y_true: ``[N]`` true scores.
        y_pred: ``[N]`` predicted scores.
        rule: the `scenesense.data.labels.sentiment5_ids` rule, ``"round"`` or ``"sims"``.

    Returns:
        ``{"acc5", "f1_5"}``, plus ``"mae_clipped", "corr_clipped"`` for ``sims``.

    Raises:
        ValueError: shapes differ, empty input, non-finite values or an unknown rule.
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.shape != t.shape or t.size == 0:
        raise ValueError(f"y_true and y_pred must be 1-D of equal, non-zero length, got {t.shape} and {p.shape}")
    ct, cp = sentiment5_ids(t, rule), sentiment5_ids(p, rule)
    out = {"acc5": float((ct == cp).mean()), "f1_5": f1_weighted_by_prediction(ct, cp)}
    if rule == "sims":
        tc, pc = np.clip(t, -1.0, 1.0), np.clip(p, -1.0, 1.0)
        out |= {"mae_clipped": float(np.abs(tc - pc).mean()), "corr_clipped": pearson(tc, pc)}
    return out
