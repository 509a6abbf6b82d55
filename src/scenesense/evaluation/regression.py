"""Regression metrics of the sentiment-intensity benchmarks (CMU-MOSI/MOSEI in [-3, 3], SIMS in [-1, 1]).

With truths ``t`` and predictions ``p`` over ``N`` items (``[.]`` is 1 when true, else 0):

- ``mae = mean |t - p|``, ``mse = mean (t - p)^2``;
- ``corr`` = Pearson ``sum (t - t_bar)(p - p_bar) / sqrt(sum (t - t_bar)^2 sum (p - p_bar)^2)``
  (0 when either side is constant);
- ``acc2`` / ``f1``: accuracy / support-weighted F1 of ``[p > 0]`` against ``[t > 0]`` over all
  items, zeros counted as negative (MulT's ``eval_mosei_senti`` without ``exclude_zero``,
  formats.md §5);
- ``acc2_has0`` / ``f1_has0``: the same with ``[p >= 0]`` against ``[t >= 0]``, zeros counted as
  non-negative (MMSA's ``Has0_acc_2`` / ``Has0_F1_score``, the "has-zero" numbers of anchors.md);
- ``acc2_nonzero`` / ``f1_nonzero``: ``[p > 0]`` against ``[t > 0]`` over the items with ``t != 0``
  only (MMSA's ``Non0``; MulT with ``exclude_zero``); ``n_nonzero`` counts them;
- ``acc5`` / ``acc7``: ``mean [round(clip(p, -2, 2)) == round(clip(t, -2, 2))]``, and the same on
  [-3, 3] (``numpy.round``: halves go to the even integer, as in MulT and MMSA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scenesense.evaluation.functional import classification_metrics


def _validate(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.shape != t.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got shapes {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("y_true is empty")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("regression targets and predictions must be finite")
    return t, p


def pearson(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (undefined correlation)."""
    t, p = _validate(y_true, y_pred)
    dt, dp = t - t.mean(), p - p.mean()
    den = np.sqrt((dt * dt).sum() * (dp * dp).sum())
    return float((dt * dp).sum() / den) if den > 0 else 0.0


def _binary(t: np.ndarray, p: np.ndarray, zero_is_positive: bool = False) -> tuple[float, float]:
    if t.size == 0:
        return 0.0, 0.0
    positive = np.greater_equal if zero_is_positive else np.greater
    m = classification_metrics(positive(t, 0).astype(np.int64), positive(p, 0).astype(np.int64),
                               ["negative", "positive"])
    return float(m["accuracy"]), float(m["weighted_f1"])


def regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
                       ) -> dict[str, Any]:
    """MAE, correlation, Acc-2 and F1 (three zero conventions), Acc-5, Acc-7 and MSE (module docstring).

    Args:
        y_true: ``[N]`` targets.
        y_pred: ``[N]`` predictions.

    Returns:
        ``{"mae", "mse", "corr", "acc2", "f1", "acc2_has0", "f1_has0", "acc2_nonzero", "f1_nonzero",
        "acc5", "acc7", "n_nonzero"}``.

    Raises:
        ValueError: shapes differ, empty input, or non-finite values.
    """
    t, p = _validate(y_true, y_pred)
    acc2, f1 = _binary(t, p)
    nonzero = t != 0
    acc2_nz, f1_nz = _binary(t[nonzero], p[nonzero])
    acc2_has0, f1_has0 = _binary(t, p, zero_is_positive=True)
    return {
        "mae": float(np.abs(t - p).mean()),
        "mse": float(((t - p) ** 2).mean()),
        "corr": pearson(t, p),
        "acc2": acc2, "f1": f1, "acc2_has0": acc2_has0, "f1_has0": f1_has0, "acc2_nonzero": acc2_nz, "f1_nonzero": f1_nz, "n_nonzero": int(nonzero.sum()),
        "acc5": float((np.round(np.clip(t, -2, 2)) == np.round(np.clip(p, -2, 2))).mean()),
        "acc7": float((np.round(np.clip(t, -3, 3)) == np.round(np.clip(p, -3, 3))).mean()),
    }
