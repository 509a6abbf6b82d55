from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from scenesense.evaluation.regression import pearson, regression_metrics


def test_hand_computed_case():
    t = [2.6, -1.0, 0.0, 0.4]
    p = [1.6, -0.2, 0.5, -0.4]
    m = regression_metrics(t, p)
    assert m["mae"] == pytest.approx((1.0 + 0.8 + 0.5 + 0.8) / 4)
    assert m["mse"] == pytest.approx((1.0 + 0.64 + 0.25 + 0.64) / 4)
    # t > 0 = [1, 0, 0, 1] and p > 0 = [1, 0, 1, 0]: 2 of 4 right
    assert m["acc2"] == pytest.approx(0.5)
    # MMSA has-zero: t >= 0 = [1, 0, 1, 1] and p >= 0 = [1, 0, 1, 0]: 3 of 4 right
    assert m["acc2_has0"] == pytest.approx(0.75)
    # without the zero truth: [1,0,1] vs [1,0,0]: 2 of 3
    assert m["acc2_nonzero"] == pytest.approx(2 / 3) and m["n_nonzero"] == 3
    # Acc-5: clip to [-2,2], round: t -> [2,-1,0,0], p -> [2,-0,0,-0] -> 3 of 4 equal
    assert m["acc5"] == pytest.approx(0.75)
    # Acc-7: t -> [3,-1,0,0], p -> [2,-0,0,-0] -> 2 of 4 equal
    assert m["acc7"] == pytest.approx(0.5)


def test_agrees_with_scipy_and_sklearn():
    rng = np.random.default_rng(0)
    t = np.round(rng.uniform(-3, 3, 200) * 3) / 3
    p = t + rng.normal(0, 0.8, 200)
    m = regression_metrics(t, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(t, p))
    assert m["corr"] == pytest.approx(pearsonr(t, p)[0])
    assert m["acc2"] == pytest.approx(accuracy_score(t > 0, p > 0))
    assert m["f1"] == pytest.approx(f1_score(t > 0, p > 0, average="weighted"))
    assert m["acc2_has0"] == pytest.approx(accuracy_score(t >= 0, p >= 0))
    assert m["f1_has0"] == pytest.approx(f1_score(t >= 0, p >= 0, average="weighted"))
    assert m["acc2_has0"] != m["acc2"]  # the fixture has zero truths, so the conventions differ
    nz = t != 0
    assert m["acc2_nonzero"] == pytest.approx(accuracy_score(t[nz] > 0, p[nz] > 0))
    assert m["f1_nonzero"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))


def test_constant_prediction_has_zero_correlation_and_errors_are_clear():
    assert pearson([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        regression_metrics([], [])
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
