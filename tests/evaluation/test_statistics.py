from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from scenesense.evaluation.functional import classification_metrics
from scenesense.evaluation.statistics import (
    METRICS,
    PairedTest,
    accuracy,
    bootstrap_interval,
    macro_f1_present_labels,
    mcnemar_test,
    paired_permutation_test,
    seed_summary,
    verdict,
    weighted_f1_present_labels,
)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        t, p = rng.integers(0, 5, 50), rng.integers(0, 6, 50)  # class 5 only predicted
        assert METRICS["accuracy"](t, p) == pytest.approx(accuracy_score(t, p))
        for average in ("weighted", "macro"):
            assert METRICS[f"{average}_f1"](t, p) == pytest.approx(
                f1_score(t, p, average=average, zero_division=0))


@pytest.mark.parametrize("seed", range(30))
def test_fast_scorers_are_scikit_learn_over_the_labels_present_exactly(seed):
    rng = np.random.default_rng(seed)
    c, n = int(rng.integers(2, 9)), int(rng.integers(1, 200))
    present = rng.choice(c, size=int(rng.integers(1, c + 1)), replace=False)  # some classes absent
    t = rng.choice(present, size=n)
    p = np.where(rng.random(n) < rng.random(), t, rng.integers(0, c, size=n))
    labels = np.unique(np.concatenate([t, p]))
    assert accuracy(t, p) == accuracy_score(t, p)
    assert weighted_f1_present_labels(t, p) == f1_score(t, p, labels=labels, average="weighted",
                                                         zero_division=0)
    assert macro_f1_present_labels(t, p) == f1_score(t, p, labels=labels, average="macro", zero_division=0)
    assert [METRICS[k] for k in ("accuracy", "weighted_f1", "macro_f1")] == [
        accuracy, weighted_f1_present_labels, macro_f1_present_labels]


def test_macro_f1_present_labels_differs_from_the_all_classes_macro_f1_of_metrics_json():
    t, p = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # class 2 of 3 absent from both
    every_class = classification_metrics(t, p, ["a", "b", "c"])["macro_f1"]
    assert macro_f1_present_labels(t, p) == pytest.approx(every_class * 3 / 2)
    assert every_class == f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0)


def test_seed_summary_uses_the_sample_std():
    s = seed_summary([0.80, 0.84, 0.88])
    assert s.mean == pytest.approx(0.84) and s.std == pytest.approx(0.04) and s.n == 3
    assert seed_summary([0.5]).std == 0.0
    with pytest.raises(ValueError, match="finite"):
        seed_summary([0.5, float("nan")])


def test_mcnemar_exact_hand_computed():
    # 10 utterances: both right on 2, only A right on 5, only B right on 1, both wrong on 2
    t = np.zeros(10, dtype=int)
    a = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    b = np.array([0, 0, 1, 1, 1, 1, 1, 0, 1, 1])
    result = mcnemar_test(t, a, b)
    # two-sided binomial, 5 of 6 discordant: 2 * P(X <= 1 | n=6, 1/2) = 2 * (1 + 6) / 64
    assert result.p_value == pytest.approx(14 / 64)
    assert result.difference == pytest.approx(0.7 - 0.3) and result.n == 10
    assert mcnemar_test(t, a, a).p_value == 1.0


def test_paired_permutation_exact_hand_computed():
    t = np.arange(12) % 3
    right, wrong = t, (t + 1) % 3
    result = paired_permutation_test(t, right, wrong, metric="accuracy")
    # 2^12 = 4096 swaps are all enumerated; only "no swap" and "swap all" reach |difference| = 1
    assert result.difference == 1.0 and result.p_value == pytest.approx(2 / 4096)
    same = paired_permutation_test(t, right, right, metric="weighted_f1")
    assert same.difference == 0.0 and same.p_value == pytest.approx(1.0)


def test_bootstrap_interval_brackets_the_value_and_shrinks_with_data():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 400)
    p = np.where(rng.random(400) < 0.7, t, (t + 1) % 3)
    small = bootstrap_interval(t[:100], p[:100], "accuracy", n_resamples=1000)
    large = bootstrap_interval(t, p, "accuracy", n_resamples=1000)
    for iv in (small, large):
        assert iv.low < iv.value < iv.high and iv.confidence == 0.95
    assert large.high - large.low < small.high - small.low
    # normal approximation of a proportion: half-width ~ 1.96 sqrt(q (1 - q) / n)
    half = 1.96 * np.sqrt(large.value * (1 - large.value) / 400)
    assert (large.high - large.low) / 2 == pytest.approx(half, rel=0.2)
    perfect = bootstrap_interval(t, t, "macro_f1", n_resamples=200)
    assert (perfect.value, perfect.low, perfect.high) == (1.0, 1.0, 1.0)


def test_errors_and_verdicts():
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        bootstrap_interval([0, 1], [0, 1], "auc")
    with pytest.raises(ValueError, match="do not pair"):
        mcnemar_test([0, 1, 1], [0, 1], [0, 1, 1])
    win = PairedTest("weighted_f1", -0.031, 0.004, "permutation", 300)
    assert verdict("concat", "tacfn", win) == "tacfn beats concat on weighted_f1 by +0.031 (permutation p = 0.004, n = 300)"
    tie = PairedTest("accuracy", 0.01, 0.41, "mcnemar", 300)
    assert verdict("a", "b", tie).startswith("no significant difference between a and b on accuracy (+0.010")
