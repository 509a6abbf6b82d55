"""Weighted auxiliary losses: the optimised loss, weight resolution, history rows, loggers, resume."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import scenesense.training.trainer as trainer_module
from scenesense import api
from scenesense.config import ConfigError, build_config
from scenesense.fusions import FUSIONS
from scenesense.fusions.concat import ConcatFusion
from scenesense.training.aux_losses import LossWeights, history_names
from scenesense.training.checkpoint import load_checkpoint
from scenesense.training.trainer import Trainer
from scenesense.types import EncoderOutput, FusionOutput, ModelOutput
from tests.support.figures import catch_saved_figures, covered
from tests.training.test_trainer import (
    KillAfter,
    SimulatedKillError,
    StubModel,
    ToyDataset,
    collate,
    config,
    make_model,
    without_time,
)

OLD_KEYS = ["epoch", "train_loss", "dev_loss", "dev_accuracy", "epoch_time"]


class AuxStubModel(StubModel):
    """StubModel with two auxiliary terms: ``energy``, the batch mean of each sample's mean squared
    input (no parameters: its epoch mean is the mean over samples in any batch order), and
    ``head``, the squared norm of the head's weights (a gradient to check)."""

    def __init__(self, defaults: dict[str, float] | None = None, **kwargs: float | None) -> None:
        super().__init__(**kwargs)
        self.defaults = defaults

    def forward(self, inputs: dict[str, Tensor], masks: dict[str, Tensor],
                present: dict[str, Tensor]) -> ModelOutput:
        out = super().forward(inputs, masks, present)
        m = masks["audio"].float()  # [B, T]
        energy = ((inputs["audio"] ** 2).mean(-1) * m).sum(1) / m.sum(1)  # [B]
        return out._replace(aux_losses={"energy": energy.mean(), "head": (self.head.weight ** 2).sum()})

    def aux_loss_weights(self) -> dict[str, float]:
        return dict(self.defaults or {})


def make_aux(init_seed: int = 0, **kwargs: object) -> AuxStubModel:
    torch.manual_seed(init_seed)
    return AuxStubModel(**kwargs)  # type: ignore[arg-type]


def sample_energy(data: ToyDataset) -> np.ndarray:
    """Each sample's mean squared input, in float64."""
    return np.array([(x.astype(np.float64) ** 2).mean() for x in data.x])


@pytest.fixture
def data() -> tuple[ToyDataset, ToyDataset]:
    return ToyDataset(48, seed=1), ToyDataset(24, seed=2)


class GradientRecordingAdam(torch.optim.Adam):
    """Adam that keeps a copy of every parameter's gradient at each step."""

    grads: ClassVar[list[list[Tensor]]] = []

    def step(self, closure=None):
        GradientRecordingAdam.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


@pytest.mark.parametrize(("configured", "defaults", "expected"), [
    ({}, {}, {"energy": 1.0, "head": 1.0}),  # neither: 1
    ({}, {"energy": 0.5, "head": 2.0}, {"energy": 0.5, "head": 2.0}),  # the model's defaults
    ({"head": 3.0}, {"energy": 0.5, "head": 2.0}, {"energy": 0.5, "head": 3.0}),  # configured wins
    ({"head": 0.0}, {}, {"energy": 1.0, "head": 0.0}),  # weight 0: logged, not optimised
])
def test_the_optimised_loss_is_the_weighted_sum(monkeypatch, data, configured, defaults, expected):
    monkeypatch.setattr(trainer_module, "Adam", GradientRecordingAdam)
    GradientRecordingAdam.grads = []
    train, dev = data
    cfg = config(epochs=1, batch_size=64, grad_clip=0.0, task_loss_weight=10.0, aux_loss_weights=configured)
    initial = make_aux(defaults=defaults)
    result = Trainer(cfg).fit(make_aux(defaults=defaults), train, dev, collate)
    assert result.aux_loss_weights == expected

    batch = collate([train[i] for i in range(len(train))])  # one batch: the whole training set
    out = initial(batch["inputs"], batch["masks"], batch["present"])
    task = nn.functional.cross_entropy(out.logits, batch["label"])
    loss = 10.0 * task + sum(w * out.aux_losses[k] for k, w in expected.items())
    loss.backward()
    [grads] = GradientRecordingAdam.grads
    for got, p in zip(grads, initial.parameters(), strict=True):
        torch.testing.assert_close(got, p.grad)
    row = result.history[0]
    assert row["train_loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert row["train_task_loss"] == pytest.approx(task.item(), rel=1e-6)
    assert row["train_aux_head"] == pytest.approx(out.aux_losses["head"].item(), rel=1e-6)
    assert row["train_aux_energy"] == pytest.approx(sample_energy(train).mean(), rel=1e-6)


def test_history_rows_hold_the_unweighted_means_of_every_term(data):
    train, dev = data
    cfg = config(epochs=3, task_loss_weight=2.0, aux_loss_weights={"energy": 0.25, "head": 0.1})
    model = make_aux()
    result = Trainer(cfg).fit(model, train, dev, collate)
    for row in result.history:
        assert list(row) == ["epoch", "train_loss", "train_task_loss", "train_aux_energy", "train_aux_head",
                             "dev_loss", "dev_aux_energy", "dev_aux_head", "dev_accuracy", "epoch_time"]
        # sample-weighted means over batches of 8: the energy mean is the mean over all samples
        assert row["train_aux_energy"] == pytest.approx(sample_energy(train).mean(), rel=1e-6)
        assert row["dev_aux_energy"] == pytest.approx(sample_energy(dev).mean(), rel=1e-6)
        weighted = 2.0 * row["train_task_loss"] + 0.25 * row["train_aux_energy"] + 0.1 * row["train_aux_head"]
        assert row["train_loss"] == pytest.approx(weighted, rel=1e-6)
    # dev: the best weights (restored in the model), in eval mode; the dev loss stays the task loss alone
    best = result.history[result.best_epoch - 1]
    batch = collate([dev[i] for i in range(len(dev))])
    with torch.no_grad():
        out = model.eval()(batch["inputs"], batch["masks"], batch["present"])
    assert best["dev_aux_head"] == pytest.approx(out.aux_losses["head"].item(), rel=1e-6)
    assert best["dev_loss"] == pytest.approx(nn.functional.cross_entropy(out.logits, batch["label"]).item(),
                                             rel=1e-5)
    assert history_names(result.history) == ["energy", "head"]


def test_a_model_without_aux_terms_keeps_the_old_rows(data):
    result = Trainer(config(aux_loss_weights={})).fit(make_model(), *data, collate)
    assert [list(row) for row in result.history] == [OLD_KEYS, OLD_KEYS]
    assert result.aux_loss_weights == {}


def test_a_configured_name_the_model_never_returned_is_refused_after_the_first_pass(tmp_path, data):
    cfg = config(aux_loss_weights={"energy": 1.0, "hed": 0.1})
    with pytest.raises(ConfigError, match=r"trainer.aux_loss_weights names \['hed'\], but the model returned "
                                          r"no such auxiliary loss during the first epoch; it returned "
                                          r"\['energy', 'head'\]"):
        Trainer(cfg, run_dir=tmp_path).fit(make_aux(), *data, collate)
    assert not (tmp_path / "last.pt").exists()  # nothing of the run was saved
    with pytest.raises(ConfigError, match=r"names \['energy'\].*it returned none"):
        Trainer(config(aux_loss_weights={"energy": 1.0})).fit(make_model(), *data, collate)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"aux_loss_weights": {"head": -0.1}},
     r"trainer.aux_loss_weights must be finite numbers >= 0, got \{'head': -0.1\}"),
    ({"aux_loss_weights": {"head": math.nan}}, "aux_loss_weights must be finite"),
    ({"aux_loss_weights": {"head": math.inf}}, "aux_loss_weights must be finite"),
    ({"task_loss_weight": 0.0}, r"trainer.task_loss_weight must be a finite number > 0, got 0.0"),
    ({"task_loss_weight": -1.0}, "task_loss_weight must be a finite number > 0"),
    ({"task_loss_weight": math.inf}, "task_loss_weight must be a finite number > 0"),
])
def test_invalid_weights_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(config(**overrides))
    [key] = overrides
    with pytest.raises(ConfigError, match=f"config.trainer.{key}|trainer.{key} must be"):  # and before a run
        build_config({"trainer": overrides})


def test_the_model_s_defaults_must_be_weights(data):
    with pytest.raises(ValueError, match=r"AuxStubModel.aux_loss_weights\(\): weights must be finite numbers "
                                         r">= 0, got \{'head': -1.0\}"):
        Trainer(config(epochs=1)).fit(make_aux(defaults={"head": -1.0}), *data, collate)


def test_loss_weights_resolve_configured_then_default_then_one():
    weights = LossWeights(2.0, {"a": 0.5}, {"a": 3.0, "b": 4.0})
    assert weights.resolved(["c", "b", "a"]) == {"a": 0.5, "b": 4.0, "c": 1.0}
    total = weights.total(torch.tensor(1.0), {"a": torch.tensor(2.0), "b": torch.tensor([3.0]),
                                              "c": torch.tensor(5.0)})
    assert total.item() == 2.0 + 0.5 * 2.0 + 4.0 * 3.0 + 5.0
    assert total.shape == ()
    with pytest.raises(ValueError, match=r"auxiliary loss 'a' must be a scalar, got shape \(2,\)"):
        weights.total(torch.tensor(1.0), {"a": torch.ones(2)})


def test_csv_logger_and_checkpoint_record_the_aux_terms(tmp_path, data):
    cfg = config(loggers=("csv",), aux_loss_weights={"head": 0.5})
    result = Trainer(cfg, run_dir=tmp_path).fit(make_aux(defaults={"energy": 0.2}), *data, collate)
    with (tmp_path / "logs" / "csv" / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {"train_task_loss", "train_aux_energy", "train_aux_head", "dev_aux_energy", "dev_aux_head"} \
        <= set(rows[0])
    assert [float(r["train_aux_head"]) for r in rows] == pytest.approx(
        [h["train_aux_head"] for h in result.history])
    meta = load_checkpoint(tmp_path / "checkpoint.pt")["meta"]
    assert meta["aux_loss_weights"] == {"energy": 0.2, "head": 0.5}
    assert meta["trainer_config"]["aux_loss_weights"] == {"head": 0.5}


def test_a_model_without_aux_terms_writes_the_old_checkpoint_meta(tmp_path, data):
    Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    assert "aux_loss_weights" not in load_checkpoint(tmp_path / "checkpoint.pt")["meta"]


def test_killed_run_with_aux_terms_resumes_to_the_same_history(tmp_path, data):
    train, dev = data
    cfg = config(epochs=4, patience=3, task_loss_weight=3.0, aux_loss_weights={"head": 0.05})
    full = Trainer(cfg, run_dir=tmp_path / "full").fit(make_aux(dropout=0.3), train, dev, collate)
    killable = KillAfter(2 * 48 + 5, 48, seed=1)  # dies 5 samples into epoch 3
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path / "killed").fit(make_aux(dropout=0.3), killable, dev, collate)
    resumed_model = make_aux(init_seed=99, dropout=0.3)  # weights must come from last.pt
    resumed = Trainer(cfg, run_dir=tmp_path / "killed").fit(resumed_model, train, dev, collate)
    assert resumed.resumed_from_epoch == 2
    assert without_time(resumed.history) == without_time(full.history)
    assert resumed.aux_loss_weights == full.aux_loss_weights == {"energy": 1.0, "head": 0.05}
    finished = Trainer(cfg, run_dir=tmp_path / "killed").fit(make_aux(), train, dev, collate)  # all done
    assert finished.aux_loss_weights == {"energy": 1.0, "head": 0.05}
    assert without_time(finished.history) == without_time(full.history)


def test_run_saved_before_the_loss_weights_existed_resumes_with_their_defaults(tmp_path, data):
    Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    saved = load_checkpoint(tmp_path / "last.pt")  # rewrite it as written before the two settings existed
    new_keys = ("task_loss_weight", "aux_loss_weights")
    old = {k: v for k, v in saved["trainer_config"].items() if k not in new_keys}
    saved["trainer_config"] = old
    saved["fingerprint"] = hashlib.sha256(json.dumps(old, sort_keys=True).encode("utf-8")).hexdigest()
    torch.save(saved, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"task_loss_weight: 1.0 -> 2.0"):
        Trainer(config(epochs=1, task_loss_weight=2.0), run_dir=tmp_path).fit(make_model(), *data, collate)
    with pytest.raises(ValueError, match=r"aux_loss_weights.x: None -> 0.5"):
        Trainer(config(epochs=1, aux_loss_weights={"x": 0.5}), run_dir=tmp_path).fit(make_model(), *data,
                                                                                      collate)
    again = Trainer(config(epochs=1), run_dir=tmp_path).fit(make_model(), *data, collate)
    assert again.resumed_from_epoch == 1


# --------------------------------------------------------------------------- a whole run
class SpreadConcat(ConcatFusion):
    """Concatenation with one auxiliary loss, ``spread`` (mean squared fused value), default weight 0.5."""

    def __init__(self, modality_dims: dict[str, int]) -> None:
        super().__init__(modality_dims)
        self.aux_loss_weights = {"spread": 0.5}

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        fused = super().forward(encoded).fused
        return FusionOutput(fused=fused, aux_losses={"spread": (fused ** 2).mean()})


@pytest.fixture
def spread_fusion() -> Iterator[None]:
    """Register ``test_spread`` for one test only (the registry has no public unregister)."""
    FUSIONS.register("test_spread")(SpreadConcat)
    yield
    FUSIONS._items.pop("test_spread", None)


def test_a_run_records_the_weights_and_plots_the_aux_terms(tmp_path, monkeypatch, spread_fusion):
    figures = catch_saved_figures(monkeypatch)
    config = {"name": "tiny", "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                                       "params": {"n_train": 24, "n_dev": 12, "n_test": 8}},
              "model": {"out_dim": 8, "head_hidden_dim": 8, "fusion": {"name": "test_spread"}},
              "trainer": {"epochs": 2, "batch_size": 12, "progress": False, "task_loss_weight": 2.0}}
    api.train(build_config(config), run_dir=tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["loss_weights"] == {"task": 2.0, "aux": {"spread": 0.5}}  # the fusion's default
    new_keys = {"train_task_loss", "train_aux_spread", "dev_aux_spread"}
    assert all(new_keys <= set(h) for h in metrics["history"])
    [loss] = [fig for fig in figures if "loss" in fig.axes[0].get_title()]
    assert [ax.get_ylabel() for ax in loss.axes] == ["cross-entropy loss", "auxiliary loss (unweighted)"]
    assert [line.get_label() for line in loss.axes[1].get_lines()][:2] == ["train spread", "dev spread"]
    assert covered(loss) == []


def test_a_run_without_aux_terms_writes_no_loss_weights(synthetic_run):
    metrics = json.loads((synthetic_run / "metrics.json").read_text(encoding="utf-8"))
    assert "loss_weights" not in metrics
    assert all(list(h) == OLD_KEYS for h in metrics["history"])


class NanAuxModel(StubModel):
    """StubModel whose auxiliary term ``broken`` is NaN."""

    def forward(self, inputs: dict[str, Tensor], masks: dict[str, Tensor],
                present: dict[str, Tensor]) -> ModelOutput:
        return super().forward(inputs, masks, present)._replace(aux_losses={"broken": torch.tensor(math.nan)})


def test_a_non_finite_aux_term_is_named_even_with_weight_zero(data):
    with pytest.raises(RuntimeError, match=r"non-finite train 'broken' auxiliary loss \(nan\) at epoch 1, "
                                           r"batch 1/6"):
        Trainer(config(aux_loss_weights={"broken": 0.0})).fit(NanAuxModel(), *data, collate)
