"""Statistics over runs: seed spread, bootstrap confidence intervals and paired tests between models.

Everything resamples *utterances* (the unit the metrics average over) with SciPy's reference
implementations: `scipy.stats.bootstrap` (percentile intervals), `scipy.stats.permutation_test`
(paired: each utterance's two predictions are swapped at random) and `scipy.stats.binomtest`
(exact McNemar on the discordant pairs). All are seeded, so a report is reproducible.
"""

from __future__ import annotations

import statistics as pystats
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def _f1_per_present_label(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 ``2 tp / (2 tp + fp + fn)`` (0 where undefined) and support ``[K]``, over the ``K``
    labels present in ``t`` or ``p`` (sorted)."""
    classes, inverse = np.unique(np.concatenate([t, p]), return_inverse=True)
    k = len(classes)
    ti, pi = inverse[: t.size], inverse[t.size:]
    tp = np.bincount(ti[ti == pi], minlength=k)
    support, predicted = np.bincount(ti, minlength=k), np.bincount(pi, minlength=k)
    denominator = support + predicted
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0), support


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of ``[N]`` predictions equal to the truth (``sklearn.metrics.accuracy_score``)."""
    return float(np.mean(y_true == y_pred))


def weighted_f1_present_labels(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 averaged over the labels present in either ``[N]`` array, weighted by true support.

    Exactly ``f1_score(y_true, y_pred, labels=<labels present>, average="weighted", zero_division=0)``;
    a class absent from the truth weighs 0, so the value is also the weighted F1 over all classes.
    """
    f1, support = _f1_per_present_label(y_true, y_pred)
    return float((f1 * support).sum() / support.sum())


def macro_f1_present_labels(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the labels present in either ``[N]`` array.

    Exactly ``f1_score(y_true, y_pred, labels=<labels present>, average="macro", zero_division=0)``.
    Unlike `scenesense.evaluation.functional.classification_metrics`' ``macro_f1`` (the mean
    over all ``C`` classes of the label space), a class absent from both arrays is not averaged in.
    """
    return float(_f1_per_present_label(y_true, y_pred)[0].mean())


METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "weighted_f1": weighted_f1_present_labels,
    "macro_f1": macro_f1_present_labels,
}
"""The scorers the resampling tests call thousands of times, by name: ``metric(y_true [N], y_pred [N])
-> float`` over the labels present in either array (bincounts, not scikit-learn's validating
implementation; ``tests/evaluation/test_statistics.py`` checks them against it exactly). Note that
``"macro_f1"`` here is `macro_f1_present_labels`, not the all-classes macro F1 of
``metrics.json``."""


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample standard deviation (``ddof=1``; 0 for one seed) of a metric over seeds."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap confidence interval ``[low, high]``."""

    value: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class PairedTest:
    """Model A vs model B on the same utterances.

    Fields:
        metric: metric name.
        difference: ``metric(A) - metric(B)``.
        p_value: two-sided p-value of the paired test.
        test: ``"permutation"`` or ``"mcnemar"``.
        n: number of paired utterances.
    """

    metric: str
    difference: float
    p_value: float
    test: str
    n: int


def seed_summary(values: Sequence[float]) -> SeedSummary:
    """Mean and sample std of one metric over seeds.

    Raises:
        ValueError: if ``values`` is empty or holds a non-finite number.
    """
    values = [float(v) for v in values]
    if not values or not all(np.isfinite(values)):
        raise ValueError(f"seed_summary needs finite values, got {values!r}")
    return SeedSummary(pystats.fmean(values), pystats.stdev(values) if len(values) > 1 else 0.0, len(values))


def _labels(y_true: Sequence[int] | np.ndarray, *preds: Sequence[int] | np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in (y_true, *preds)]
    if arrays[0].ndim != 1 or arrays[0].size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {arrays[0].shape}")
    for a in arrays[1:]:
        if a.shape != arrays[0].shape:
            raise ValueError(f"predictions of shape {a.shape} do not pair with y_true of shape {arrays[0].shape}")
    return arrays


def bootstrap_interval(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                       metric: str = "accuracy", *, confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``metric`` over utterances (resampled with replacement).

    Args:
        y_true: ``[N]`` class ids.
        y_pred: ``[N]`` predicted class ids.
        metric: a name of `METRICS`.
        confidence: interval coverage.
        n_resamples: bootstrap resamples.
        seed: random seed.

    Returns:
        `Interval` (the point value is the metric on all utterances).

    Raises:
        ValueError: unknown metric, or arrays that do not pair.
    """
    t, p = _labels(y_true, y_pred)
    fn = _metric(metric)
    result = stats.bootstrap((t, p), fn, paired=True, vectorized=False, n_resamples=n_resamples,
                             confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(fn(t, p), float(ci.low), float(ci.high), confidence)


def paired_permutation_test(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
                            pred_b: Sequence[int] | np.ndarray, metric: str = "weighted_f1", *,
                            n_resamples: int = 5000, seed: int = 0) -> PairedTest:
    """Two-sided paired permutation test of ``metric(A) - metric(B)``.

    Under the null hypothesis the two models are exchangeable on each utterance, so each
    utterance's pair of predictions is swapped with probability 1/2.

    Args:
        y_true: ``[N]`` class ids.
        pred_a: ``[N]`` model A's predictions on the same utterances, in the same order.
        pred_b: ``[N]`` model B's predictions.
        metric: a name of `METRICS`.
        n_resamples: random permutations (all ``2^N`` when fewer).
        seed: random seed.

    Returns:
        `PairedTest` with ``test="permutation"``.
    """
    t, a, b = _labels(y_true, pred_a, pred_b)
    fn = _metric(metric)

    def difference(x: np.ndarray, y: np.ndarray) -> float:
        return fn(t, x) - fn(t, y)

    result = stats.permutation_test((a, b), difference, permutation_type="samples", vectorized=False,
                                    n_resamples=n_resamples, alternative="two-sided",
                                    rng=np.random.default_rng(seed))
    return PairedTest(metric, difference(a, b), float(result.pvalue), "permutation", int(t.size))


def mcnemar_test(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
                 pred_b: Sequence[int] | np.ndarray) -> PairedTest:
    """Exact McNemar test on accuracy: a two-sided binomial test on the discordant utterances.

    With ``n_ab`` utterances only A gets right and ``n_ba`` only B gets right, the p-value is
    that of ``n_ab`` successes in ``n_ab + n_ba`` fair coin flips (1.0 without discordant pairs).

    Returns:
        `PairedTest` with ``metric="accuracy"``, ``test="mcnemar"``.
    """
    t, a, b = _labels(y_true, pred_a, pred_b)
    right_a, right_b = a == t, b == t
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p_value = 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return PairedTest("accuracy", float(right_a.mean() - right_b.mean()), p_value, "mcnemar", int(t.size))


def verdict(name_a: str, name_b: str, test: PairedTest, alpha: float = 0.05) -> str:
    """A sentence that claims a winner only when the test says so.

    Returns:
        ``"A beats B on weighted_f1 by +0.031 (permutation p = 0.004)"`` when ``p < alpha``,
        else ``"no significant difference between A and B on ... (p = 0.41)"``.
    """
    if test.p_value < alpha and test.difference != 0:
        winner, loser = (name_a, name_b) if test.difference > 0 else (name_b, name_a)
        return (f"{winner} beats {loser} on {test.metric} by {abs(test.difference):+.3f} "
                f"({test.test} p = {test.p_value:.3g}, n = {test.n})")
    return (f"no significant difference between {name_a} and {name_b} on {test.metric} "
            f"({test.difference:+.3f}, {test.test} p = {test.p_value:.3g}, n = {test.n})")


def _metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}")
    return METRICS[name]
