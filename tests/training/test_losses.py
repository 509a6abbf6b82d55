"""Losses: class weights and priors, the registered cross-entropy, focal and logit-adjusted losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scenesense.training import LOSSES
from scenesense.training.losses import (
    CrossEntropyLoss,
    FocalLoss,
    LogitAdjustedLoss,
    adjust_logits,
    check_loss_params,
    class_priors_from_dataset,
    class_priors_from_labels,
    class_weights_from_dataset,
    class_weights_from_labels,
    loss_parameters,
)


def test_class_weights_hand_computed():
    # counts [3, 1, 0, 2]: inverse [1/3, 1, -, 1/2], mean over present classes 11/18
    w = class_weights_from_labels([0, 0, 0, 1, 3, 3], num_classes=4)
    expected = torch.tensor([(1 / 3) / (11 / 18), 1 / (11 / 18), 0.0, (1 / 2) / (11 / 18)])
    torch.testing.assert_close(w, expected)
    assert w.dtype == torch.float32
    assert w[w > 0].mean().item() == pytest.approx(1.0)


def test_class_weights_balanced_are_ones_and_accept_arrays_and_tensors():
    labels = np.array([0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(class_weights_from_labels(labels, 3), torch.ones(3))
    torch.testing.assert_close(class_weights_from_labels(torch.from_numpy(labels), 3), torch.ones(3))


@pytest.mark.parametrize(("labels", "match"), [([], "non-empty"), ([0, 5], "outside"), ([0.5], "integer"),
                                               ([[0, 1]], "1-D")])
def test_class_weights_reject_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        class_weights_from_labels(labels, 3)


def test_class_weights_from_dataset_reads_labels_and_class_count():
    class WithSpace:
        class label_space:  # noqa: N801
            num_classes = 3

        labels = [0, 0, 1]

    class SamplesOnly:
        num_classes = 2

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> dict:
            return {"label": [0, 1, 1][i]}

    torch.testing.assert_close(class_weights_from_dataset(WithSpace()), torch.tensor([2 / 3, 4 / 3, 0.0]))
    torch.testing.assert_close(class_weights_from_dataset(SamplesOnly()), torch.tensor([4 / 3, 2 / 3]))
    with pytest.raises(ValueError, match="num_classes"):
        class_weights_from_dataset([{"label": 0}])


def test_weighted_cross_entropy_hand_computed():
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    label = torch.tensor([0, 1])
    loss = CrossEntropyLoss(class_weights=[1.0, 3.0])(logits, label)
    nll0, nll1 = math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))
    assert loss.item() == pytest.approx((1 * nll0 + 3 * nll1) / 4, rel=1e-6)
    assert CrossEntropyLoss()(logits, label).item() == pytest.approx((nll0 + nll1) / 2, rel=1e-6)


def test_weighted_cross_entropy_matches_torch_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(17, 5, generator=g, requires_grad=True)
    label = torch.randint(0, 5, (17,), generator=g)
    weights = torch.rand(5, generator=g) + 0.1
    ours = CrossEntropyLoss(weights)(logits, label)
    torch.testing.assert_close(ours, torch.nn.CrossEntropyLoss(weight=weights)(logits, label))
    ours.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()


def test_zero_weight_batch_gives_zero_not_nan():
    loss = CrossEntropyLoss([0.0, 1.0])(torch.randn(3, 2), torch.tensor([0, 0, 0]))
    assert loss.item() == 0.0


def test_registered_and_validated():
    assert "cross_entropy" in LOSSES.names()
    loss = LOSSES.create("cross_entropy", class_weights=torch.tensor([1.0, 2.0]))
    assert type(loss) is CrossEntropyLoss
    assert "class_weights" in dict(loss.named_buffers())
    with pytest.raises(ValueError, match="class_weights"):
        CrossEntropyLoss([-1.0, 1.0])
    with pytest.raises(ValueError, match="3 class weights for 2 classes"):
        CrossEntropyLoss([1.0, 1.0, 1.0])(torch.randn(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"logits \[B, C\]"):
        CrossEntropyLoss()(torch.randn(2, 2), torch.tensor([0]))


def test_regression_losses_hand_computed_and_shape_checked():
    from scenesense.training.losses import L1Loss, MSELoss

    pred, target = torch.tensor([[1.0], [-2.0]]), torch.tensor([0.5, 1.0])
    assert L1Loss()(pred, target).item() == pytest.approx((0.5 + 3.0) / 2)
    assert MSELoss()(pred, target).item() == pytest.approx((0.25 + 9.0) / 2)
    with pytest.raises(ValueError, match=r"expected predictions \[B, 1\]"):
        L1Loss()(torch.zeros(2, 3), target)


def test_trainer_rejects_unknown_or_incompatible_losses():
    from scenesense.config import TrainerConfig
    from scenesense.training.trainer import Trainer

    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        Trainer(TrainerConfig(loss="hinge"))
    with pytest.raises(ValueError, match=r"class_weighted_loss applies to losses that take class_weights "
                                         r"\(cross_entropy, focal\), not to loss 'l1'"):
        Trainer(TrainerConfig(loss="l1", class_weighted_loss=True))


# --------------------------------------------------------------------------- class priors
def test_class_priors_hand_computed_and_validated():
    # counts [3, 1, 0, 2] of N = 6
    priors = class_priors_from_labels([0, 0, 0, 1, 3, 3], num_classes=4)
    torch.testing.assert_close(priors, torch.tensor([3 / 6, 1 / 6, 0.0, 2 / 6]))
    assert priors.dtype == torch.float32
    with pytest.raises(ValueError, match="outside"):  # the same label checks as the class weights
        class_priors_from_labels([0, 3], 3)


def test_class_priors_from_dataset_reads_labels_and_class_count():
    class WithSpace:
        class label_space:  # noqa: N801
            num_classes = 3

        labels = [0, 0, 1, 0]

    torch.testing.assert_close(class_priors_from_dataset(WithSpace()), torch.tensor([0.75, 0.25, 0.0]))
    with pytest.raises(ValueError, match="class priors cannot be computed"):
        class_priors_from_dataset([{"label": 0}])


# --------------------------------------------------------------------------- focal loss
# logits are log-probabilities up to a constant, so the softmax is exact by hand:
#   sample 0: [0, ln 2, 0]  -> p = [1/4, 1/2, 1/4], y = 1: p_y = 1/2
#   sample 1: [ln 3, 0, 0]  -> p = [3/5, 1/5, 1/5], y = 2: p_y = 1/5
FOCAL_LOGITS = torch.tensor([[0.0, math.log(2), 0.0], [math.log(3), 0.0, 0.0]])
FOCAL_LABEL = torch.tensor([1, 2])


def test_focal_loss_hand_computed():
    # gamma = 2: l0 = (1 - 1/2)^2 * ln 2 = ln(2) / 4 = 0.1732868
    #            l1 = (1 - 1/5)^2 * ln 5 = 16 ln(5) / 25 = 1.0300403;  mean 0.6016636
    l0, l1 = math.log(2) / 4, 16 * math.log(5) / 25
    loss = FocalLoss(gamma=2.0)(FOCAL_LOGITS, FOCAL_LABEL)
    assert loss.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert loss.item() == pytest.approx(0.6016636, rel=1e-6)
    # weights [1, 2, 3]: w[y] = [2, 3], (2 * 0.1732868 + 3 * 1.0300403) / 5 = 3.4366945 / 5 = 0.6873389
    weighted = FocalLoss(gamma=2.0, class_weights=[1.0, 2.0, 3.0])(FOCAL_LOGITS, FOCAL_LABEL)
    assert weighted.item() == pytest.approx((2 * l0 + 3 * l1) / 5, rel=1e-6)
    assert weighted.item() == pytest.approx(0.6873389, rel=1e-6)
    # gamma = 1: (1/2) ln 2 and (4/5) ln 5
    one = FocalLoss(gamma=1.0)(FOCAL_LOGITS, FOCAL_LABEL)
    assert one.item() == pytest.approx((math.log(2) / 2 + 0.8 * math.log(5)) / 2, rel=1e-6)


@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 0.0, 1.0, 3.0]])
def test_focal_gamma_zero_equals_cross_entropy_exactly(weights):
    g = torch.Generator().manual_seed(0)
    logits, label = torch.randn(13, 5, generator=g), torch.randint(0, 5, (13,), generator=g)
    assert torch.equal(FocalLoss(0.0, weights)(logits, label), CrossEntropyLoss(weights)(logits, label))


def test_weighted_focal_matches_manual_weighted_mean_and_has_gradients():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(17, 4, generator=g, requires_grad=True)
    label = torch.randint(0, 4, (17,), generator=g)
    weights = torch.rand(4, generator=g) + 0.1
    p = torch.softmax(logits.double(), 1)[torch.arange(17), label]
    per_sample = (1 - p) ** 1.5 * -p.log()
    w = weights.double()[label]
    loss = FocalLoss(1.5, weights)(logits, label)
    assert loss.item() == pytest.approx(((w * per_sample).sum() / w.sum()).item(), rel=1e-5)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_focal_zero_weight_batch_and_saturated_logits_stay_finite():
    assert FocalLoss(2.0, [0.0, 1.0])(torch.randn(3, 2), torch.tensor([0, 0, 0])).item() == 0.0
    # p_y rounds to 1: (1 - p_y)^0.5 has an infinite slope at 0, the clamp keeps gradients finite
    logits = torch.tensor([[200.0, 0.0], [0.0, 3.0]], requires_grad=True)
    loss = FocalLoss(0.5)(logits, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("gamma", [-0.5, math.inf, math.nan, "2", True])
def test_focal_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        FocalLoss(gamma=gamma)


def test_focal_checks_shapes_and_weight_count():
    with pytest.raises(ValueError, match="2 class weights for 3 classes"):
        FocalLoss(class_weights=[1.0, 1.0])(FOCAL_LOGITS, FOCAL_LABEL)
    with pytest.raises(ValueError, match=r"logits \[B, C\]"):
        FocalLoss()(FOCAL_LOGITS, torch.tensor([0]))


# --------------------------------------------------------------------------- logit-adjusted loss
def test_logit_adjusted_hand_computed():
    # zero logits + 1 * log [1/2, 1/4, 1/4] -> softmax = the priors; y = [0, 1]: (ln 2 + ln 4) / 2 = 1.5 ln 2
    loss = LogitAdjustedLoss([0.5, 0.25, 0.25])(torch.zeros(2, 3), torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(1.5 * math.log(2), rel=1e-6)
    # tau = 2 squares the priors: softmax = [1/4, 1/16, 1/16] / (3/8) = [2/3, 1/6, 1/6]; (ln 1.5 + ln 6) / 2
    loss = LogitAdjustedLoss([0.5, 0.25, 0.25], tau=2.0)(torch.zeros(2, 3), torch.tensor([0, 1]))
    assert loss.item() == pytest.approx((math.log(1.5) + math.log(6)) / 2, rel=1e-6)


def test_logit_adjusted_matches_shifted_cross_entropy_and_tau_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(2)
    logits, label = torch.randn(11, 4, generator=g), torch.randint(0, 4, (11,), generator=g)
    priors = torch.tensor([0.1, 0.2, 0.3, 0.4])
    expected = F.cross_entropy(logits + 0.7 * priors.log(), label)
    torch.testing.assert_close(LogitAdjustedLoss(priors, tau=0.7)(logits, label), expected)
    plain = LogitAdjustedLoss(priors, tau=0.0)(logits, label)
    torch.testing.assert_close(plain, F.cross_entropy(logits, label))


def test_logit_adjusted_prior_zero_class_gets_smallest_positive_prior():
    logits = torch.zeros(1, 3, requires_grad=True)
    loss_fn = LogitAdjustedLoss([0.6, 0.4, 0.0])
    loss = loss_fn(logits, torch.tensor([2]))
    # prior 0 -> 0.4: softmax = [0.6, 0.4, 0.4] / 1.4, so the loss is ln(1.4 / 0.4) = ln 3.5
    assert loss.item() == pytest.approx(math.log(3.5), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(loss_fn.class_priors, torch.tensor([0.6, 0.4, 0.0]))  # kept as given


@pytest.mark.parametrize(("priors", "tau", "match"), [
    ([0.5, 0.6], 1.0, "sum to 1"),
    ([1.2, -0.2], 1.0, ">= 0"),
    ([[0.5, 0.5]], 1.0, "1-D"),
    ([], 1.0, "non-empty"),
    ([0.5, math.nan], 1.0, "finite"),
    ([0.5, 0.5], -1.0, "tau must be a finite number >= 0"),
])
def test_logit_adjusted_rejects_bad_arguments(priors, tau, match):
    with pytest.raises(ValueError, match=match):
        LogitAdjustedLoss(priors, tau=tau)


def test_logit_adjusted_checks_prior_count():
    with pytest.raises(ValueError, match="2 class priors for 3 classes"):
        LogitAdjustedLoss([0.5, 0.5])(torch.zeros(2, 3), torch.tensor([0, 1]))


# --------------------------------------------------------------------------- post-hoc logit adjustment
def test_adjust_logits_hand_computed():
    # priors [1/2, 1/4, 1/4]: z - tau * log pi adds tau ln 2 to class 0 and tau ln 4 to classes 1, 2
    logits = torch.tensor([[1.0, 0.5, 0.0]])
    ln2 = math.log(2)
    full = adjust_logits(logits, [0.5, 0.25, 0.25], tau=1.0)
    torch.testing.assert_close(full, torch.tensor([[1 + ln2, 0.5 + 2 * ln2, 2 * ln2]]))
    assert full.argmax(1).item() == 1  # 1.886 > 1.693: the rarer class wins
    half = adjust_logits(logits, [0.5, 0.25, 0.25], tau=0.5)
    torch.testing.assert_close(half, torch.tensor([[1 + ln2 / 2, 0.5 + ln2, ln2]]))
    assert half.argmax(1).item() == 0  # 1.347 > 1.193: a milder tau keeps the frequent class
    torch.testing.assert_close(adjust_logits(logits, [0.5, 0.25, 0.25], tau=0.0), logits)


def test_adjust_logits_is_the_inverse_shift_of_the_loss_and_fills_zero_priors():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, generator=g, dtype=torch.float64)
    priors = [0.6, 0.4, 0.0]
    loss_fn = LogitAdjustedLoss(priors, tau=0.8)
    out = adjust_logits(logits, priors, tau=0.8)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, logits - 0.8 * loss_fn.log_priors.double())  # prior 0 read as 0.4
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("logits", "priors", "tau", "match"), [
    (torch.zeros(2, 3), [0.5, 0.5], 1.0, r"logits \[N, 2\]"),
    (torch.zeros(3), [0.5, 0.25, 0.25], 1.0, r"logits \[N, 3\]"),
    (torch.zeros(2, 2), [0.5, 0.6], 1.0, "sum to 1"),
    (torch.zeros(2, 2), [0.5, 0.5], -0.5, "tau must be a finite number >= 0"),
    (torch.zeros(2, 2), [0.5, 0.5], math.inf, "tau must be a finite number >= 0"),
])
def test_adjust_logits_rejects_bad_arguments(logits, priors, tau, match):
    with pytest.raises(ValueError, match=match):
        adjust_logits(logits, priors, tau)


# --------------------------------------------------------------------------- registry and loss_params
def test_new_losses_are_registered_with_their_parameters():
    assert {"focal", "logit_adjusted"} <= set(LOSSES.names())
    assert isinstance(LOSSES.create("focal", gamma=1.0), FocalLoss)
    assert isinstance(LOSSES.create("logit_adjusted", class_priors=[0.5, 0.5]), LogitAdjustedLoss)
    assert loss_parameters("focal") == ("gamma", "class_weights")
    assert loss_parameters("logit_adjusted") == ("class_priors", "tau")
    assert loss_parameters("cross_entropy") == ("class_weights",)
    assert loss_parameters("l1") == ()


def test_check_loss_params_rejects_derived_and_unknown_keys():
    check_loss_params("focal", {"gamma": 1.0})
    check_loss_params("l1", {})
    with pytest.raises(ValueError, match=r"loss_params may not set \['class_weights'\]"):
        check_loss_params("focal", {"class_weights": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"loss_params may not set \['class_priors'\]"):
        check_loss_params("logit_adjusted", {"class_priors": [0.5, 0.5], "tau": 1.0})
    with pytest.raises(ValueError, match=r"unknown loss_params \['alpha'\] for loss 'focal'; "
                                         r"its parameters are \['gamma'\]"):
        check_loss_params("focal", {"alpha": 0.25, "gamma": 2.0})
    with pytest.raises(ValueError, match=r"its parameters are \[\]"):
        check_loss_params("cross_entropy", {"gamma": 2.0})
