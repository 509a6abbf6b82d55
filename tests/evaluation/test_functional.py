"""Metrics: one exact hand-computed case, and random cases against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from scenesense.evaluation.functional import (
    METRICS,
    classification_metrics,
    confusion_matrix,
    higher_is_better,
)

NAMES = ["neutral", "joy", "anger", "fear"]


def test_hand_computed_case():
    # class 3 ("fear") is absent from truth and predictions; class 2 is never predicted.
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 1]
    m = classification_metrics(y_true, y_pred, NAMES)
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    # precision: 2/3, 1/3, 0 (never predicted), 0; recall: 2/3, 1/2, 0, 0 (no support)
    # f1 = 2tp / (support + predicted): 4/6, 2/5, 0, 0
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["per_class"]["neutral"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["joy"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 2, "f1": 2 / 5, "support": 2})
    assert m["per_class"]["anger"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["fear"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 5) / 4)  # averaged over all 4 classes
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 2 / 5) / 6)
    assert m["macro_precision"] == pytest.approx((2 / 3 + 1 / 3) / 4)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 / 2) / 4)
    assert m["weighted_recall"] == pytest.approx(m["accuracy"])
    assert m["weighted_precision"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 3) / 6)


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 8))
    n = int(rng.integers(1, 60))
    present = rng.choice(c, size=int(rng.integers(1, c + 1)), replace=False)  # some classes may be absent
    y_true = rng.choice(present, size=n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, c, size=n))
    names = [f"c{i}" for i in range(c)]
    labels = list(range(c))
    m = classification_metrics(y_true, y_pred, names)

    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    for avg in ("weighted", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg,
                                                         zero_division=0)
        assert m[f"{avg}_precision"] == pytest.approx(p, abs=1e-12)
        assert m[f"{avg}_recall"] == pytest.approx(r, abs=1e-12)
        assert m[f"{avg}_f1"] == pytest.approx(f, abs=1e-12)
        assert m[f"{avg}_f1"] == pytest.approx(
            skm.f1_score(y_true, y_pred, labels=labels, average=avg, zero_division=0), abs=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(names):
        assert m["per_class"][name] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}, abs=1e-12)


def test_confusion_matrix_rows_are_truth():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 1]), 3)
    assert cm.dtype.kind == "i"
    assert cm.tolist() == [[0, 1, 0], [0, 2, 0], [0, 0, 0]]


@pytest.mark.parametrize(("y_true", "y_pred", "match"), [
    ([0, 1], [0], "equal length"),
    ([], [], "empty"),
    ([0, 4], [0, 1], r"y_true has ids outside \[0, 4\): \[4\]"),
    ([0, 1], [0.0, 1.0], "y_pred must hold integer"), ([[0]], [[0]], "1-D"),
])
def test_bad_inputs_raise_with_the_offending_values(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y_true, y_pred, NAMES)


def test_duplicate_names_rejected_and_metric_directions_declared():
    with pytest.raises(ValueError, match="unique"):
        classification_metrics([0], [0], ["a", "a"])
    m = classification_metrics([0, 1], [0, 1], ["a", "b"])
    assert all(k in METRICS and higher_is_better(k) for k in m if k not in ("per_class", "confusion_matrix"))
    assert not higher_is_better("loss")
    with pytest.raises(KeyError, match="known"):
        higher_is_better("nope")
