"""Losses: inverse-frequency class weights and the registered cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scenesense.registry import LOSSES
from scenesense.training.losses import CrossEntropyLoss, class_weights_from_dataset, class_weights_from_labels


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
    assert isinstance(loss, CrossEntropyLoss)
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
    with pytest.raises(ValueError, match="class_weighted_loss applies to cross_entropy"):
        Trainer(TrainerConfig(loss="l1", class_weighted_loss=True))
