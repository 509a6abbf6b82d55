"""5-class sentiment scores (Acc-5, TMT's F1, class-scale MAE / Corr) against scikit-learn / numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from scenesense.evaluation.sentiment5 import (
    f1_weighted_by_prediction,
    sentiment5_classification_metrics,
    sentiment5_regression_metrics,
)


def test_classifier_scores_match_a_direct_computation():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, size=40), rng.integers(0, 5, size=40)
    m = sentiment5_classification_metrics(t, p)
    assert m["acc5"] == pytest.approx(accuracy_score(t, p))
    assert m["f1_5"] == pytest.approx(f1_score(p, t, average="weighted"))
    assert m["mae"] == pytest.approx(mean_absolute_error(t - 2, p - 2))
    assert m["corr"] == pytest.approx(np.corrcoef(t, p)[0, 1])


def test_f1_is_weighted_by_the_predicted_classes_as_tmt_computes_it():
    t, p = np.array([0, 0, 0, 1, 2]), np.array([0, 1, 1, 1, 1])
    per_class = f1_score(t, p, average=None, labels=[0, 1, 2], zero_division=0)  # [0.5, 0.4, 0]
    # predicted shares 0.2 / 0.8 / 0 (TMT's weights), true shares 0.6 / 0.2 / 0.2 (the usual ones)
    assert f1_weighted_by_prediction(t, p) == pytest.approx(0.2 * per_class[0] + 0.8 * per_class[1])
    assert f1_score(t, p, average="weighted") == pytest.approx(0.6 * per_class[0] + 0.2 * per_class[1])


def test_a_constant_prediction_has_zero_correlation_and_its_class_f1():
    m = sentiment5_classification_metrics([0, 1, 2, 3, 4], [2, 2, 2, 2, 2])
    assert m["corr"] == 0.0 and m["acc5"] == pytest.approx(0.2) and m["mae"] == pytest.approx(1.2)
    assert m["f1_5"] == pytest.approx(1 / 3)  # class 2's F1 (2 * 1 / (1 + 5)), all the weight


def test_classifier_ids_outside_the_five_classes_are_refused():
    with pytest.raises(ValueError, match=r"y_pred has ids outside \[0, 5\): \[5\]"):
        sentiment5_classification_metrics([0, 1], [0, 5])
    with pytest.raises(ValueError, match="class ids"):
        sentiment5_classification_metrics([0.0, 1.0], [0, 1])


def test_regression_round_rule_bins_mosi_scores():
    t = np.array([-2.6, -1.2, -0.4, 0.0, 0.6, 1.4, 2.8])
    p = np.array([-1.9, -0.9, 0.3, 0.2, 1.6, 1.4, 1.2])
    m = sentiment5_regression_metrics(t, p, "round")
    ct, cp = np.round(np.clip(t, -2, 2)), np.round(np.clip(p, -2, 2))
    assert m == pytest.approx({"acc5": accuracy_score(ct, cp), "f1_5": f1_score(cp, ct, average="weighted")})


def test_regression_sims_rule_bins_by_the_sims_intervals_and_clips_mae():
    t = np.array([-1.0, -0.6, -0.2, 0.0, 0.2, 0.6, 1.0, 0.8])
    p = np.array([-1.4, -0.75, 0.05, -0.1, 0.1, 0.71, 0.69, 1.3])
    m = sentiment5_regression_metrics(t, p, "sims")
    ct, cp = np.array([0, 1, 1, 2, 3, 3, 4, 4]), np.array([0, 0, 2, 1, 2, 4, 3, 4])  # -0.1 is in (-0.7, -0.1]
    assert m["acc5"] == pytest.approx(accuracy_score(ct, cp))
    assert m["f1_5"] == pytest.approx(f1_score(cp, ct, average="weighted"))
    assert m["mae_clipped"] == pytest.approx(mean_absolute_error(t, np.clip(p, -1, 1)))
    assert m["corr_clipped"] == pytest.approx(np.corrcoef(t, np.clip(p, -1, 1))[0, 1])


def test_regression_rejects_an_unknown_rule_and_mismatched_shapes():
    with pytest.raises(ValueError, match="unknown 5-class rule 'thirds'"):
        sentiment5_regression_metrics([0.0], [0.0], "thirds")
    with pytest.raises(ValueError, match="equal, non-zero length"):
        sentiment5_regression_metrics([0.0, 1.0], [0.0], "round")
