"""Trainer: fit, early stopping, seeding, class weights, resume exactness, NaN errors, checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

import scenesense.training.trainer as trainer_module
from scenesense.config import TrainerConfig
from scenesense.training.checkpoint import load_checkpoint, load_weights
from scenesense.training.losses import CrossEntropyLoss
from scenesense.training.optim import lr_factor
from scenesense.training.trainer import Trainer
from scenesense.types import Batch, ModelOutput, Sample

C, D = 3, 4


# --------------------------------------------------------------------------- tiny data and model
class ToyDataset(Dataset):
    """Variable-length ``audio`` sequences; labels from a fixed linear rule or at random."""

    def __init__(self, n: int, seed: int, learnable: bool = True, nan_at: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        rule = np.random.default_rng(123).normal(size=(D, C))
        self.x = [rng.normal(size=(int(rng.integers(2, 6)), D)).astype(np.float32) for _ in range(n)]
        if nan_at is not None:
            self.x[nan_at][0, 0] = np.nan
        self.labels = (np.array([x.mean(0) @ rule for x in self.x]).argmax(1) if learnable
                       else rng.integers(0, C, size=n))
        self.num_classes = C
        self.reads = 0

    def __len__(self) -> int:
        return len(self.x)

    def sequence_lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.x])

    def __getitem__(self, i: int) -> Sample:
        self.reads += 1
        return Sample(id=f"u{i}", dialogue_id="", position=-1, speaker="", inputs={"audio": self.x[i]},
                      present={"audio": True}, label=int(self.labels[i]))


class SimulatedKillError(Exception):
    """Stands in for SIGKILL in the middle of an epoch."""


class KillAfter(ToyDataset):
    """A ToyDataset that dies once ``limit`` samples have been read."""

    def __init__(self, limit: int, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.limit = limit

    def __getitem__(self, i: int) -> Sample:
        if self.reads >= self.limit:
            raise SimulatedKillError
        return super().__getitem__(i)


class RecordingDataset(ToyDataset):
    """A ToyDataset that remembers the order in which samples were read."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.order: list[int] = []

    def __getitem__(self, i: int) -> Sample:
        self.order.append(i)
        return super().__getitem__(i)


def collate(samples: list[Sample]) -> Batch:
    lengths = [len(s["inputs"]["audio"]) for s in samples]
    x = torch.zeros(len(samples), max(lengths), D)
    for j, s in enumerate(samples):
        x[j, : lengths[j]] = torch.from_numpy(s["inputs"]["audio"])
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]  # [B, T]
    return Batch(ids=[s["id"] for s in samples], inputs={"audio": x}, masks={"audio": mask},
                 present={"audio": torch.ones(len(samples), dtype=torch.bool)},
                 label=torch.tensor([s["label"] for s in samples]))


class StubModel(nn.Module):
    """Masked mean pooling -> MLP with dropout; implements the model interface."""

    def __init__(self, dropout: float = 0.0, aux: float | None = None) -> None:
        super().__init__()
        self.hidden = nn.Linear(D, 16)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(16, C)
        self.aux = aux

    def forward(self, inputs: dict[str, Tensor], masks: dict[str, Tensor],
                present: dict[str, Tensor]) -> ModelOutput:
        m = masks["audio"].unsqueeze(-1).float()  # [B, T, 1]
        pooled = (inputs["audio"] * m).sum(1) / m.sum(1).clamp_min(1.0)  # [B, D]
        fused = self.drop(torch.relu(self.hidden(pooled)))
        aux = {} if self.aux is None else {"const": torch.tensor(self.aux)}
        weights = {"audio": present["audio"].float()}
        return ModelOutput(self.head(fused), fused, weights, None, aux)


def make_model(init_seed: int = 0, **kwargs: float | None) -> StubModel:
    torch.manual_seed(init_seed)
    return StubModel(**kwargs)


def config(**overrides: object) -> TrainerConfig:
    base: dict[str, object] = dict(epochs=2, batch_size=8, lr=1e-2, patience=100, progress=False)
    return TrainerConfig(**{**base, **overrides})  # type: ignore[arg-type]


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "epoch_time"} for h in history]


def assert_same_state(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def dev_loss(trainer: Trainer, model: nn.Module, dev: ToyDataset) -> float:
    logits = torch.from_numpy(trainer.predict(model, dev, collate).logits)
    return float(nn.functional.cross_entropy(logits, torch.from_numpy(dev.labels)))


@pytest.fixture
def data() -> tuple[ToyDataset, ToyDataset]:
    return ToyDataset(48, seed=1), ToyDataset(24, seed=2)


# --------------------------------------------------------------------------- tests
def test_two_epoch_fit(data):
    result = Trainer(config()).fit(make_model(), *data, collate)
    assert [h["epoch"] for h in result.history] == [1, 2]
    for h in result.history:
        assert set(h) == {"epoch", "train_loss", "dev_loss", "dev_accuracy", "epoch_time"}
        assert math.isfinite(h["train_loss"])
        assert math.isfinite(h["dev_loss"])
        assert 0 <= h["dev_accuracy"] <= 1
    assert result.best_dev_loss == min(h["dev_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["dev_loss"] == result.best_dev_loss
    assert not result.stopped_early
    assert result.resumed_from_epoch is None
    assert result.checkpoint_path is None


def test_loss_decreases_on_learnable_toy():
    train, dev = ToyDataset(96, seed=1), ToyDataset(48, seed=2)
    result = Trainer(config(epochs=20)).fit(make_model(), train, dev, collate)
    assert result.history[-1]["train_loss"] < 0.2 * result.history[0]["train_loss"]
    assert result.history[-1]["dev_accuracy"] >= 0.85  # chance is about 1/3


def test_early_stopping_restores_best_epoch_weights(tmp_path):
    train, dev = ToyDataset(16, seed=3, learnable=False), ToyDataset(16, seed=4, learnable=False)
    cfg = config(epochs=40, lr=1e-2, patience=2)
    model = make_model()
    result = Trainer(cfg, run_dir=tmp_path).fit(model, train, dev, collate)
    assert result.stopped_early
    assert result.best_epoch > 1
    assert len(result.history) == result.best_epoch + 2 < 40
    restored = model.state_dict()
    last = load_checkpoint(tmp_path / "last.pt")["model"]
    assert any(not torch.equal(restored[k], last[k]) for k in last)  # restoring changed something
    replay = make_model()  # same seed, stopped exactly at the best epoch
    Trainer(replace(cfg, epochs=result.best_epoch)).fit(replay, train, dev, collate)
    assert_same_state(restored, replay.state_dict())
    assert_same_state(restored, load_checkpoint(tmp_path / "checkpoint.pt")["model"])
    assert dev_loss(Trainer(cfg), model, dev) == pytest.approx(result.best_dev_loss, rel=1e-6)


def test_train_order_is_a_fresh_seeded_shuffle_each_epoch(data):
    orders = []
    for _ in range(2):
        train = RecordingDataset(48, seed=1)
        Trainer(config()).fit(make_model(), train, data[1], collate)
        orders.append(train.order)
    first, second = orders[0][:48], orders[0][48:]
    assert sorted(first) == sorted(second) == list(range(48))
    assert first != second
    assert orders[0] == orders[1]


def test_bucketed_batches_pad_little_and_resume_exactly(tmp_path, data):
    train, dev = RecordingDataset(48, seed=1), data[1]
    cfg = config(epochs=3, patience=3, bucket_batches=100)  # one pool: globally sorted batches
    full = Trainer(cfg, run_dir=tmp_path / "full").fit(make_model(dropout=0.3), train, dev, collate)
    lengths = train.sequence_lengths()
    epoch = [train.order[i:i + 8] for i in range(0, 48, 8)]  # the first epoch's batches, as read
    assert sorted(i for b in epoch for i in b) == list(range(48))
    assert sum(8 * lengths[b].max() for b in epoch) == sum(8 * c.max() for c in np.sort(lengths).reshape(6, 8))
    assert train.order[:48] != train.order[48:96]  # a new order every epoch
    killable = KillAfter(2 * 48 + 5, 48, seed=1)
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path / "killed").fit(make_model(dropout=0.3), killable, dev, collate)
    resumed = Trainer(cfg, run_dir=tmp_path / "killed").fit(make_model(dropout=0.3), data[0], dev, collate)
    assert without_time(resumed.history) == without_time(full.history)
    with pytest.raises(ValueError, match="bucket_batches needs a dataset of single samples with "
                                         "sequence_lengths\\(\\), not Subset"):
        Trainer(cfg).fit(make_model(), torch.utils.data.Subset(train, range(48)), dev, collate)


def test_predict_reads_length_sorted_batches_and_returns_dataset_order(data):
    model = make_model()
    Trainer(config(epochs=1)).fit(model, *data, collate)
    dev = RecordingDataset(24, seed=2)
    pred = Trainer(config(batch_size=5)).predict(model, dev, collate)
    lengths = dev.sequence_lengths()
    assert dev.order == np.argsort(lengths, kind="stable").tolist()  # read shortest first
    assert pred.ids == [f"u{i}" for i in range(24)]
    np.testing.assert_array_equal(pred.labels, dev.labels)
    in_order = Trainer(config(batch_size=5)).predict(model, torch.utils.data.Subset(dev, range(24)), collate)
    assert dev.order[24:] == list(range(24))  # no sequence_lengths(): dataset order
    np.testing.assert_allclose(pred.logits, in_order.logits, atol=1e-6)
    np.testing.assert_allclose(pred.probs, in_order.probs, atol=1e-6)


def test_same_seed_same_history_other_seed_differs(data):
    runs = [Trainer(config(epochs=3, seed=s)).fit(make_model(dropout=0.3), *data, collate) for s in (7, 7, 8)]
    assert without_time(runs[0].history) == without_time(runs[1].history)
    assert without_time(runs[0].history) != without_time(runs[2].history)


def test_class_weighted_loss_matches_hand_computation():
    train, dev = ToyDataset(40, seed=5), ToyDataset(20, seed=6)
    trainer = Trainer(config(epochs=1, batch_size=64, class_weighted_loss=True))
    model = make_model()
    result = trainer.fit(model, train, dev, collate)
    counts = np.bincount(train.labels, minlength=C).astype(float)
    inverse = np.where(counts > 0, 1 / np.maximum(counts, 1), 0)
    expected_w = inverse / inverse[counts > 0].mean()
    np.testing.assert_allclose(trainer.loss_fn_.class_weights.numpy(), expected_w, rtol=1e-6)
    logits = trainer.predict(model, dev, collate).logits.astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    nll = -log_p[np.arange(len(dev)), dev.labels]
    w = expected_w[dev.labels]
    assert result.history[0]["dev_loss"] == pytest.approx((w * nll).sum() / w.sum(), rel=1e-5)


def test_aux_losses_are_added_to_the_training_loss(data):
    plain = Trainer(config()).fit(make_model(), *data, collate)
    with_aux = Trainer(config()).fit(make_model(aux=0.5), *data, collate)
    for a, b in zip(plain.history, with_aux.history, strict=False):
        assert b["train_loss"] == pytest.approx(a["train_loss"] + 0.5, abs=1e-5)


def test_killed_run_resumes_to_identical_weights_and_history(tmp_path, data):
    train, dev = data
    cfg = config(epochs=5, patience=3)
    full_model = make_model(dropout=0.3)
    full = Trainer(cfg, run_dir=tmp_path / "full").fit(full_model, train, dev, collate)

    killable = KillAfter(2 * len(train) + 5, 48, seed=1)  # dies 5 samples into epoch 3
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path / "killed").fit(make_model(dropout=0.3), killable, dev, collate)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["state"]["epoch"] == 2

    resumed_model = make_model(init_seed=99, dropout=0.3)  # weights must come from last.pt
    resumed = Trainer(cfg, run_dir=tmp_path / "killed").fit(resumed_model, train, dev, collate)
    assert resumed.resumed_from_epoch == 2
    assert without_time(resumed.history) == without_time(full.history)
    assert (resumed.best_epoch, resumed.best_dev_loss) == (full.best_epoch, full.best_dev_loss)
    assert_same_state(resumed_model.state_dict(), full_model.state_dict())
    assert_same_state(load_checkpoint(tmp_path / "killed" / "last.pt")["model"],
                      load_checkpoint(tmp_path / "full" / "last.pt")["model"])


def test_finished_run_returns_stored_result_without_training(tmp_path, data):
    train, dev = data
    first = Trainer(config(), run_dir=tmp_path).fit(make_model(), train, dev, collate)
    untouchable = KillAfter(0, 48, seed=1)
    model = make_model(init_seed=5)
    again = Trainer(config(), run_dir=tmp_path).fit(model, untouchable, dev, collate)
    assert again.history == first.history
    assert again.best_epoch == first.best_epoch
    assert again.resumed_from_epoch == 2
    assert untouchable.reads == 0
    assert_same_state(model.state_dict(), load_checkpoint(tmp_path / "checkpoint.pt")["model"])


def test_resume_with_other_config_is_refused(tmp_path, data):
    Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    with pytest.raises(ValueError, match="run_dir was created with a different trainer config.*lr"):
        Trainer(config(epochs=1, lr=1e-3), run_dir=tmp_path).fit(make_model(), *data, collate)
    Trainer(config(epochs=1, progress=True), run_dir=tmp_path).fit(make_model(), *data, collate)  # UI only


def test_run_saved_before_a_setting_existed_resumes_only_with_its_default(tmp_path, data):
    Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    saved = load_checkpoint(tmp_path / "last.pt")  # rewrite it as written before lr_schedule/warmup existed
    old = {k: v for k, v in saved["trainer_config"].items() if k not in ("lr_schedule", "warmup")}
    saved["trainer_config"] = old
    saved["fingerprint"] = hashlib.sha256(json.dumps(old, sort_keys=True).encode("utf-8")).hexdigest()
    torch.save(saved, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"lr_schedule: 'constant' -> 'linear'"):
        Trainer(config(epochs=1, lr_schedule="linear"), run_dir=tmp_path).fit(make_model(), *data, collate)
    again = Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    assert again.resumed_from_epoch == 1


def test_nan_loss_raises_with_epoch_and_batch(data):
    train = ToyDataset(48, seed=1, nan_at=7)
    with pytest.raises(RuntimeError, match=r"non-finite train loss \(nan\) at epoch 1, batch \d+/6"):
        Trainer(config()).fit(make_model(), train, data[1], collate)


def test_checkpoint_loads_into_fresh_model_with_identical_logits(tmp_path, data):
    train, dev = data
    model = make_model()
    trainer = Trainer(config(), run_dir=tmp_path)
    trainer.fit(model, train, dev, collate)
    fresh = load_weights(make_model(init_seed=42), tmp_path / "checkpoint.pt")
    before, after = trainer.predict(model, dev, collate), Trainer(config()).predict(fresh, dev, collate)
    np.testing.assert_array_equal(before.logits, after.logits)
    assert before.ids == [f"u{i}" for i in range(len(dev))]
    np.testing.assert_array_equal(before.labels, dev.labels)
    np.testing.assert_allclose(before.probs.sum(1), 1.0, rtol=1e-12)
    assert before.modality_weights is not None
    assert before.modality_weights["audio"].shape == (len(dev),)


def test_explicit_loss_fn_is_used(data):
    weights = torch.tensor([0.0, 0.0, 1.0])
    trainer = Trainer(config(epochs=1), loss_fn=CrossEntropyLoss(weights))
    trainer.fit(make_model(), *data, collate)
    assert torch.equal(trainer.loss_fn_.class_weights, weights)


def test_progress_bar_on_stderr_and_epoch_lines_in_log(data, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="scenesense"):
        Trainer(config(epochs=1, progress=True)).fit(make_model(), *data, collate)
    assert "epoch 1/1" in capsys.readouterr().err
    assert any(r.name.startswith("scenesense") and "dev_loss" in r.getMessage() for r in caplog.records)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="patience"):
        Trainer(config(patience=0))
    with pytest.raises(ValueError, match="lr_schedule in"):
        Trainer(config(lr_schedule="step"))
    with pytest.raises(ValueError, match="0 <= warmup < 1"):
        Trainer(config(warmup=1.5))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_fit_and_cpu_checkpoint(tmp_path, data):
    cfg = config(accelerator="cuda", precision="bf16-mixed")
    model = make_model(aux=0.1)
    result = Trainer(cfg, run_dir=tmp_path).fit(model, *data, collate)
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    fresh = load_weights(make_model(), tmp_path / "checkpoint.pt")
    assert next(fresh.parameters()).device.type == "cpu"
    assert Trainer(config()).predict(fresh, data[1], collate).logits.shape == (len(data[1]), C)


# --------------------------------------------------------------------------- losses from the config
def tiny_labelled_set(labels: list[int], is_classification: bool = True) -> object:
    """Just what ``Trainer._build_loss`` reads: ``labels`` and ``label_space``."""
    from types import SimpleNamespace

    space = SimpleNamespace(num_classes=3, is_classification=is_classification)
    return SimpleNamespace(labels=np.array(labels), label_space=space)


def test_trainer_builds_focal_and_logit_adjusted_losses_from_config():
    from scenesense.training.losses import FocalLoss, LogitAdjustedLoss

    train = tiny_labelled_set([0, 0, 0, 1, 2, 2])  # counts [3, 1, 2]
    focal = Trainer(TrainerConfig(loss="focal", loss_params={"gamma": 1.0}, class_weighted_loss=True))
    loss_fn = focal._build_loss(train)
    assert isinstance(loss_fn, FocalLoss) and loss_fn.gamma == 1.0
    # inverse counts [1/3, 1, 1/2], mean 11/18
    torch.testing.assert_close(loss_fn.class_weights, torch.tensor([6 / 11, 18 / 11, 9 / 11]))
    unweighted = Trainer(TrainerConfig(loss="focal"))._build_loss(train)
    assert unweighted.gamma == 2.0 and unweighted.class_weights is None

    adjusted = Trainer(TrainerConfig(loss="logit_adjusted", loss_params={"tau": 0.5}))._build_loss(train)
    assert isinstance(adjusted, LogitAdjustedLoss) and adjusted.tau == 0.5
    torch.testing.assert_close(adjusted.class_priors, torch.tensor([3 / 6, 1 / 6, 2 / 6]))

    weighted_ce = Trainer(TrainerConfig(loss="cross_entropy", class_weighted_loss=True))._build_loss(train)
    assert type(weighted_ce) is CrossEntropyLoss  # not a subclass such as FocalLoss
    torch.testing.assert_close(weighted_ce.class_weights, torch.tensor([6 / 11, 18 / 11, 9 / 11]))


def test_auto_loss_is_unchanged():
    from scenesense.training.losses import L1Loss

    train = tiny_labelled_set([0, 1, 2])
    auto = Trainer(TrainerConfig(class_weighted_loss=True))._build_loss(train)
    assert type(auto) is CrossEntropyLoss
    torch.testing.assert_close(auto.class_weights, torch.ones(3))
    regression = tiny_labelled_set([0, 1, 2], is_classification=False)
    assert isinstance(Trainer(TrainerConfig(class_weighted_loss=True))._build_loss(regression), L1Loss)
    with pytest.raises(ValueError, match=r"unknown loss_params \['gamma'\] for loss 'cross_entropy'"):
        Trainer(TrainerConfig(loss_params={"gamma": 2.0}))._build_loss(train)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"loss": "focal", "loss_params": {"class_weights": [1.0, 2.0, 3.0]}},
     r"loss_params may not set \['class_weights'\]"),
    ({"loss": "logit_adjusted", "loss_params": {"class_priors": [0.5, 0.5]}},
     r"loss_params may not set \['class_priors'\]"),
    ({"loss": "logit_adjusted", "loss_params": {"gamma": 2.0}},
     r"unknown loss_params \['gamma'\] for loss 'logit_adjusted'; its parameters are \['tau'\]"),
    ({"loss": "logit_adjusted", "class_weighted_loss": True},
     r"class_weighted_loss applies to losses that take class_weights \(cross_entropy, focal\), "
     r"not to loss 'logit_adjusted'"),
])
def test_invalid_loss_config_is_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        Trainer(TrainerConfig(**overrides))


def test_logit_adjusted_fit_dev_loss_matches_hand_computation():
    train, dev = ToyDataset(40, seed=5), ToyDataset(20, seed=6)
    trainer = Trainer(config(epochs=1, batch_size=64, loss="logit_adjusted", loss_params={"tau": 0.5}))
    model = make_model()
    result = trainer.fit(model, train, dev, collate)
    counts = np.bincount(train.labels, minlength=C).astype(float)
    priors = counts / counts.sum()
    np.testing.assert_allclose(trainer.loss_fn_.class_priors.numpy(), priors, rtol=1e-6)
    log_prior = np.log(np.where(priors > 0, priors, priors[priors > 0].min()))
    logits = trainer.predict(model, dev, collate).logits.astype(np.float64) + 0.5 * log_prior
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -log_p[np.arange(len(dev)), dev.labels].mean()
    assert result.history[0]["dev_loss"] == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- per-group learning rates
class GroupedStubModel(StubModel):
    """StubModel whose ``hidden`` layer is "pretrained": lr scaled, frozen for the first epochs."""

    def __init__(self, frozen_epochs: int = 1, groups: str = "ok", **kwargs: float | None) -> None:
        super().__init__(**kwargs)
        self.frozen_epochs, self.groups = frozen_epochs, groups

    def parameter_groups(self) -> list[dict]:
        hidden = {"params": list(self.hidden.parameters()), "lr_scale": 0.5,
                  "frozen_epochs": self.frozen_epochs}
        head = {"params": list(self.head.parameters()), "lr_scale": 1.0, "frozen_epochs": 0}
        if self.groups == "missing":
            return [hidden]
        if self.groups == "twice":
            return [hidden, head, {"params": [self.head.bias], "lr_scale": 1.0, "frozen_epochs": 0}]
        return [hidden, head]


def make_grouped(init_seed: int = 0, **kwargs: object) -> GroupedStubModel:
    torch.manual_seed(init_seed)
    return GroupedStubModel(**kwargs)  # type: ignore[arg-type]


def test_parameter_groups_freeze_first_then_scale_the_lr(tmp_path, data):
    cfg = config(weight_decay=0.1)  # lr 1e-2; with lr 0 even weight decay must not move a parameter
    initial = make_grouped().state_dict()
    saved = {}
    for epochs in (1, 2):
        trainer = Trainer(replace(cfg, epochs=epochs), run_dir=tmp_path / str(epochs))
        trainer.fit(make_grouped(), *data, collate)
        saved[epochs] = load_checkpoint(tmp_path / str(epochs) / "last.pt")
    after_1, after_2 = saved[1]["model"], saved[2]["model"]
    for k in ("hidden.weight", "hidden.bias"):
        assert torch.equal(after_1[k], initial[k]), k  # bit-identical through the frozen epoch
        assert not torch.equal(after_2[k], initial[k]), k
    assert not torch.equal(after_1["head.weight"], initial["head.weight"])
    assert [g["lr"] for g in saved[1]["optimizer"]["param_groups"]] == [0.0, 1e-2]
    assert [g["lr"] for g in saved[2]["optimizer"]["param_groups"]] == [0.5 * 1e-2, 1e-2]


def test_models_without_parameter_groups_keep_one_group(tmp_path, data):
    Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    groups = load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"]
    assert len(groups) == 1
    assert groups[0]["lr"] == 1e-2
    assert len(groups[0]["params"]) == 4


def test_killed_run_with_parameter_groups_resumes_exactly(tmp_path, data):
    train, dev = data
    cfg = config(epochs=4, patience=3)
    full_model = make_grouped(frozen_epochs=2, dropout=0.3)
    full = Trainer(cfg, run_dir=tmp_path / "full").fit(full_model, train, dev, collate)

    killable = KillAfter(2 * len(train) + 5, 48, seed=1)  # dies 5 samples into epoch 3 (the first unfrozen)
    killed = make_grouped(frozen_epochs=2, dropout=0.3)
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path / "killed").fit(killed, killable, dev, collate)
    assert [g["lr"] for g in load_checkpoint(tmp_path / "killed" / "last.pt")["optimizer"]["param_groups"]] \
        == [0.0, 1e-2]  # saved while frozen: the resumed run must set epoch 3's lr itself

    resumed_model = make_grouped(init_seed=99, frozen_epochs=2, dropout=0.3)
    resumed = Trainer(cfg, run_dir=tmp_path / "killed").fit(resumed_model, train, dev, collate)
    assert resumed.resumed_from_epoch == 2
    assert without_time(resumed.history) == without_time(full.history)
    assert_same_state(resumed_model.state_dict(), full_model.state_dict())
    assert_same_state(load_checkpoint(tmp_path / "killed" / "last.pt")["model"],
                      load_checkpoint(tmp_path / "full" / "last.pt")["model"])


def test_parameter_groups_must_hold_every_parameter_exactly_once(data):
    with pytest.raises(ValueError, match=r"leaves out 2 parameter\(s\), e.g. \['head.weight', 'head.bias'\]"):
        Trainer(config(epochs=1)).fit(make_grouped(groups="missing"), *data, collate)
    with pytest.raises(ValueError, match="head.bias is in groups 1 and 2"):
        Trainer(config(epochs=1)).fit(make_grouped(groups="twice"), *data, collate)


# --------------------------------------------------------------------------- learning-rate schedule
def test_lr_factor_hand_cases():
    linear = [lr_factor(s, 10, 2, "linear") for s in range(10)]
    assert linear == pytest.approx([0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    assert [lr_factor(s, 10, 2, "constant") for s in range(10)] == [0.5] + [1.0] * 9
    assert [lr_factor(s, 4, 0, "linear") for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert [lr_factor(s, 4, 0, "constant") for s in range(4)] == [1.0] * 4


class RecordingAdam(torch.optim.Adam):
    """Adam that records every group's learning rate at each step."""

    steps: list[list[float]] = []

    def step(self, closure=None):  # noqa: ANN001, ANN201
        RecordingAdam.steps.append([g["lr"] for g in self.param_groups])
        return super().step(closure)


def test_linear_schedule_with_warmup_sets_every_steps_lr(monkeypatch, data):
    monkeypatch.setattr(trainer_module, "Adam", RecordingAdam)
    RecordingAdam.steps = []
    cfg = config(epochs=3, lr_schedule="linear", warmup=1 / 6)  # 6 batches an epoch: 18 steps, 3 of warm-up
    Trainer(cfg).fit(make_grouped(frozen_epochs=1), *data, collate)
    factors = [(s + 1) / 3 for s in range(3)] + [(18 - s) / 15 for s in range(3, 18)]
    expected = [[0.0 if s < 6 else 0.5e-2 * f, 1e-2 * f] for s, f in enumerate(factors)]
    assert len(RecordingAdam.steps) == 18
    for got, want in zip(RecordingAdam.steps, expected, strict=True):
        assert got == pytest.approx(want)


def test_killed_run_with_linear_schedule_resumes_exactly(tmp_path, data):
    train, dev = data
    cfg = config(epochs=3, patience=3, lr_schedule="linear", warmup=0.2)
    full_model = make_grouped(frozen_epochs=1, dropout=0.3)
    full = Trainer(cfg, run_dir=tmp_path / "full").fit(full_model, train, dev, collate)
    killed = make_grouped(frozen_epochs=1, dropout=0.3)
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path / "killed").fit(killed, KillAfter(len(train) + 13, 48, seed=1), dev,
                                                       collate)
    resumed_model = make_grouped(init_seed=99, frozen_epochs=1, dropout=0.3)
    resumed = Trainer(cfg, run_dir=tmp_path / "killed").fit(resumed_model, train, dev, collate)
    assert resumed.resumed_from_epoch == 1
    assert without_time(resumed.history) == without_time(full.history)
    assert_same_state(resumed_model.state_dict(), full_model.state_dict())
    constant = Trainer(replace(cfg, lr_schedule="constant", warmup=0.0))
    unscheduled = constant.fit(make_grouped(frozen_epochs=1, dropout=0.3), train, dev, collate)
    assert without_time(unscheduled.history) != without_time(full.history)  # the schedule changed training
