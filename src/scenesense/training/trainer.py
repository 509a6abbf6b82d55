"""One generic trainer for every model that follows the ``ModelOutput`` contract.

Lightning Fabric owns devices, precision and data parallelism; this short loop owns the paper's
recipe done properly: cross-entropy, Adam (optionally with linear warm-up and decay per step),
gradient clipping, early stopping on dev loss with the best weights restored, seeding, and
checkpoints from which a killed run resumes to exactly the weights and history of an
uninterrupted one, and experiment logging through Fabric's loggers (``trainer.loggers``, see
`scenesense.training.tracking`). Reproducibility: the global generators are seeded when `Trainer.fit`
starts, epoch ``e``'s train order comes from a generator seeded with ``(seed, e)``, and the global
random states are saved in ``last.pt`` after every epoch. Models are built *before* ``fit``: seed
before building them (`scenesense.utils.seed.seed_everything`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from lightning_fabric import Fabric
from lightning_fabric.wrappers import is_wrapped
from torch import Tensor, nn
from torch.optim import Adam, Optimizer
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

import scenesense.training.checkpoint as ckpt
from scenesense.config import LR_SCHEDULES, ConfigError, TrainerConfig, check_loss_weights, to_dict
from scenesense.training import tracking
from scenesense.training.aux_losses import (
    EpochSums,
    LossWeights,
    check_names,
    check_scalars,
    history_names,
    model_defaults,
    read_scalars,
)
from scenesense.training.compiling import check_compile_config, compile_model, eager_fallback
from scenesense.training.loaders import CollateFn, build_loader, sorted_eval_batches
from scenesense.training.losses import (
    LOSSES,
    check_loss_params,
    class_priors_from_dataset,
    class_weights_from_dataset,
    loss_parameters,
)
from scenesense.training.optim import epoch_learning_rates, lr_factor, param_groups
from scenesense.types import Batch, ModelOutput
from scenesense.utils.seed import seed_everything

log = logging.getLogger(__name__)  # a child of the "scenesense" logger


@dataclass(frozen=True)
class FitResult:
    """What `Trainer.fit` returns.

    Fields:
        history: one dict per finished epoch with ``epoch`` (1-based), ``train_loss`` (sample-weighted
            mean of the optimised loss), ``dev_loss`` (sample-weighted mean of the unweighted task
            loss), ``dev_accuracy`` (``None`` for non-integer labels) and ``epoch_time`` (seconds).
            An epoch in which the model returned auxiliary losses also has ``train_task_loss`` and
            ``train_aux_<name>`` after ``train_loss``, and ``dev_aux_<name>`` after ``dev_loss``
            (sample-weighted means of the unweighted terms, see `scenesense.training.aux_losses`).
        best_epoch: 1-based epoch with the lowest dev loss; its weights are in the model.
        best_dev_loss: that dev loss.
        stopped_early: True if early stopping ended the run before ``cfg.epochs``.
        resumed_from_epoch: last finished epoch read from ``last.pt``; ``None`` for a fresh run.
        checkpoint_path: ``<run_dir>/checkpoint.pt`` with the best weights; ``None`` without run_dir.
        aux_loss_weights: the weight each auxiliary loss of the history was trained with
            (configured, else the model's default, else 1); empty for a model without them.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    best_dev_loss: float
    stopped_early: bool
    resumed_from_epoch: int | None = None
    checkpoint_path: Path | None = None
    aux_loss_weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Predictions:
    """What `Trainer.predict` returns, in dataset order.

    Fields:
        ids: ``N`` utterance keys.
        labels: ``[N]`` true labels.
        logits: ``[N, C]`` float32 class scores.
        probs: ``[N, C]`` float64 softmax of ``logits``.
        modality_weights: per modality ``[N]`` or ``[N, D]`` fusion weights, if the model gives them.
    """

    ids: list[str]
    labels: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    modality_weights: dict[str, np.ndarray] | None = None


def _validate_config(cfg: TrainerConfig) -> None:
    """Raise `ConfigError` for settings no run can use (checked before anything is trained)."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.patience < 1:
        raise ConfigError(f"epochs, batch_size and patience must be >= 1, got {cfg.epochs}, "
                          f"{cfg.batch_size}, {cfg.patience}")
    if cfg.loss != "auto" and cfg.loss not in LOSSES:
        raise ConfigError(f"unknown loss {cfg.loss!r}; choose 'auto' or one of {LOSSES.names()}")
    if cfg.loss != "auto":  # "auto" is checked once the training set names the loss
        _check_loss_params(cfg.loss, cfg.loss_params)
        if cfg.class_weighted_loss and "class_weights" not in loss_parameters(cfg.loss):
            weighted = ", ".join(n for n in LOSSES.names() if "class_weights" in loss_parameters(n))
            raise ConfigError(f"class_weighted_loss applies to losses that take class_weights ({weighted}), "
                              f"not to loss {cfg.loss!r}")
    if cfg.lr_schedule not in LR_SCHEDULES or not 0.0 <= cfg.warmup < 1.0:
        raise ConfigError(f"need lr_schedule in {list(LR_SCHEDULES)} and 0 <= warmup < 1; got "
                          f"{cfg.lr_schedule!r}, {cfg.warmup}")
    if not cfg.lr > 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0:
        raise ConfigError(f"need lr > 0, grad_clip >= 0, weight_decay >= 0; got {cfg.lr}, {cfg.grad_clip}, "
                          f"{cfg.weight_decay}")
    check_loss_weights(cfg)
    check_compile_config(cfg)


def _check_loss_params(name: str, params: dict[str, Any]) -> None:
    """`check_loss_params` as a `ConfigError` (``trainer.loss_params`` is configuration)."""
    try:
        check_loss_params(name, params)
    except ValueError as err:
        raise ConfigError(f"trainer.loss_params: {err}") from None


def forward(model: nn.Module, batch: Batch) -> ModelOutput:
    """``model(inputs, masks, present)``, plus ``dialogues=`` for a batch of whole dialogues."""
    if "dialogues" in batch:
        return model(batch["inputs"], batch["masks"], batch["present"], dialogues=batch["dialogues"])
    return model(batch["inputs"], batch["masks"], batch["present"])


def _check_finite(loss: Tensor | float, where: str, epoch: int, batch: int, n_batches: int) -> float:
    value = loss if isinstance(loss, float) else loss.item()
    if not math.isfinite(value):
        raise RuntimeError(f"non-finite {where} loss ({value}) at epoch {epoch}, batch {batch}/{n_batches}; "
                           "check the inputs for NaN/inf, lower the learning rate or use precision='32-true'")
    return value


class Trainer:
    """Fit, early-stop, checkpoint and predict any model that returns `ModelOutput`.

    The model is called as ``model(batch["inputs"], batch["masks"], batch["present"])`` (plus
    ``dialogues=batch["dialogues"]`` for batches of whole dialogues, see `forward`); the
    training loss is ``cfg.task_loss_weight * loss_fn(logits, label) + sum_k w_k * aux_losses[k]``
    (``w_k``: ``cfg.aux_loss_weights``, else the model's ``aux_loss_weights()``, else 1; see
    `scenesense.training.aux_losses`) and the dev loss (early stopping) is ``loss_fn`` alone,
    unweighted. Evaluation runs every rank over the whole dev set, so all ranks take the same
    early-stopping decision.

    Args:
        cfg: optimisation, early stopping and hardware settings.
        run_dir: where ``last.pt`` (resume state) and ``checkpoint.pt`` (best weights) go; a run_dir
            that already holds ``last.pt`` is resumed. ``None`` writes nothing.
        loss_fn: task loss ``(logits [B, C], label [B]) -> scalar``, used as given (then
            ``cfg.class_weighted_loss`` is ignored). ``None``: ``cfg.loss`` from ``LOSSES`` with
            ``cfg.loss_params``; ``"auto"`` is ``"l1"`` for a regression training set and otherwise
            ``"cross_entropy"``. Class weights go to a loss that takes them if ``cfg.class_weighted_loss``;
            class priors always go to a loss that takes them (see ``_build_loss``).
        hparams: the nested config the loggers record as hyper-parameters, with ``seed``
            (`scenesense.training.tracking.hyperparameters`); ``None``: ``{"trainer": cfg}``.
        name: the experiment name, MLflow's experiment unless ``cfg.mlflow.experiment`` is set.

    The loggers of ``cfg.loggers`` write under ``<run_dir>/logs`` (none without ``run_dir``): the
    hyper-parameters when `fit` starts, each epoch's history row (step = epoch), and what
    `log_final` is given. They are closed by `log_final`, or when `fit` fails.

    Raises:
        ConfigError: a setting no run can use.
        MissingExtraError: a logger's package is not installed.
    """

    def __init__(self, cfg: TrainerConfig, run_dir: Path | str | None = None,
                 loss_fn: nn.Module | None = None, *, hparams: Mapping[str, Any] | None = None,
                 name: str = "scenesense") -> None:
        _validate_config(cfg)
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.loss_fn = loss_fn
        self.hparams = tracking.hyperparameters(hparams if hparams is not None else {"trainer": to_dict(cfg)},
                                                cfg.seed)
        loggers = [] if self.run_dir is None else tracking.build_loggers(cfg, self.run_dir, name)
        self._last_epoch = 0  # the step of log_final: the last epoch of the latest fit
        # Fabric validates the accelerator, devices and precision and names the valid ones
        precision: Any = cfg.precision
        try:
            self.fabric = Fabric(accelerator=cfg.accelerator, devices=cfg.devices, precision=precision,
                                 loggers=loggers)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"trainer (accelerator={cfg.accelerator!r}, devices={cfg.devices}, "
                              f"precision={cfg.precision!r}): {' '.join(str(err).split())}") from None

    def _log(self, msg: str, *args: object) -> None:
        if self.fabric.is_global_zero:  # one line per run, not one per rank
            log.info(msg, *args)

    def _build_loss(self, train_set: Dataset) -> nn.Module:
        """``cfg.loss`` with ``cfg.loss_params``, plus the arguments derived from ``train_set``.

        ``class_weights`` go to a loss that takes them when ``cfg.class_weighted_loss``;
        ``class_priors`` always go to a loss that takes them (``"logit_adjusted"``).
        """
        if self.loss_fn is not None:
            return self.loss_fn.to(self.fabric.device)
        name = self.cfg.loss
        if name == "auto":
            space = getattr(train_set, "label_space", None)
            name = "l1" if space is not None and not space.is_classification else "cross_entropy"
        _check_loss_params(name, self.cfg.loss_params)
        kwargs = dict(self.cfg.loss_params)
        if self.cfg.class_weighted_loss and "class_weights" in loss_parameters(name):
            kwargs["class_weights"] = class_weights_from_dataset(train_set)
        if "class_priors" in loss_parameters(name):
            kwargs["class_priors"] = class_priors_from_dataset(train_set)
        loss_fn: nn.Module = LOSSES.create(name, **kwargs)
        return loss_fn.to(self.fabric.device)

    def _train_epoch(self, model: nn.Module, optimizer: Optimizer, loss_fn: nn.Module, weights: LossWeights,
                     loader: DataLoader, epoch: int, lrs: list[float]) -> tuple[float, dict[str, float]]:
        """One pass over ``loader``; ``lrs``: each group's epoch learning rate, times `lr_factor`.

        Returns:
            The mean optimised loss, and the means of the unweighted task loss and auxiliary terms
            (`EpochSums.train_row`: empty when the model returned none).
        """
        cfg, fabric = self.cfg, self.fabric
        model.train()
        total, count, terms = 0.0, 0, EpochSums()
        steps = cfg.epochs * len(loader)  # every epoch has the same number of batches
        warmup, first = round(cfg.warmup * steps), (epoch - 1) * len(loader)
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", file=sys.stderr, leave=False,
                   disable=not (cfg.progress and fabric.is_global_zero), dynamic_ncols=True)
        for i, batch in enumerate(bar, start=1):
            factor = lr_factor(first + i - 1, steps, warmup, cfg.lr_schedule)
            for group, lr in zip(optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr * factor
            out = forward(model, batch)
            task, aux = loss_fn(out.logits, batch["label"]), out.aux_losses or {}
            loss = weights.total(task, aux)
            n = len(batch["ids"])
            if aux:  # one read from the device for all the values
                value, task_value, *aux_values = read_scalars([loss, task, *aux.values()])
                for name, aux_value in zip(aux, aux_values, strict=True):
                    _check_finite(aux_value, f"train {name!r} auxiliary", epoch, i, len(loader))
                terms.add(n, task_value, dict(zip(aux, aux_values, strict=True)))
            value = _check_finite(value if aux else loss, "train", epoch, i, len(loader))
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            if cfg.grad_clip > 0:
                fabric.clip_gradients(model, optimizer, max_norm=cfg.grad_clip)
            optimizer.step()
            total, count = total + value * n, count + n
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        if fabric.world_size > 1:  # DDP: every rank saw a different shard
            sums = fabric.all_reduce(torch.tensor([total, count], device=fabric.device), reduce_op="sum")
            total, count = cast(Tensor, sums).tolist()
            terms.all_reduce(fabric)
        return total / count, terms.train_row(count)

    @torch.no_grad()
    def _outputs(self, model: nn.Module, loader: DataLoader) -> Iterator[tuple[Batch, ModelOutput]]:
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                yield batch, forward(model, batch)
        finally:
            model.train(was_training)

    def _evaluate(self, model: nn.Module, loss_fn: nn.Module, loader: DataLoader,
                  epoch: int) -> tuple[float, float | None, dict[str, float]]:
        """Dev loss (sample-weighted mean of batch losses), accuracy (``None`` for float labels) and
        the means of the unweighted auxiliary terms (`EpochSums.dev_row`: empty when the model
        returned none)."""
        total, correct, count, is_classification, terms = 0.0, 0, 0, True, EpochSums()
        for i, (batch, out) in enumerate(self._outputs(model, loader), start=1):
            label, n, aux = batch["label"], len(batch["ids"]), out.aux_losses or {}
            total += _check_finite(loss_fn(out.logits, label), "dev", epoch, i, len(loader)) * n
            if aux:
                check_scalars(aux)
                values = dict(zip(aux, read_scalars(list(aux.values())), strict=True))
                for name, value in values.items():
                    _check_finite(value, f"dev {name!r} auxiliary", epoch, i, len(loader))
                terms.add(n, 0.0, values)
            is_classification = is_classification and not label.is_floating_point()
            if is_classification:
                correct += int((out.logits.argmax(dim=1) == label).sum())
            count += n
        return total / count, (correct / count if is_classification else None), terms.dev_row(count)

    def _save_last(self, state: ckpt.TrainingState, model: nn.Module, optimizer: Optimizer) -> None:
        if self.run_dir is not None:
            if self.fabric.is_global_zero:
                ckpt.save_last(self.run_dir / ckpt.LAST_FILE, state, model, optimizer, self.cfg)
            self.fabric.barrier()

    def _finish(self, state: ckpt.TrainingState, model: nn.Module, resumed: int | None,
                weights: LossWeights) -> FitResult:
        """Restore the best weights, write ``checkpoint.pt`` and build the result."""
        if state.best_state is None:
            raise RuntimeError("no epoch finished, so there are no best weights to restore")
        model.load_state_dict(state.best_state)
        aux_weights = weights.resolved(history_names(state.history))
        path = None if self.run_dir is None else self.run_dir / ckpt.CHECKPOINT_FILE
        if path is not None and self.fabric.is_global_zero:
            meta = {"best_epoch": state.best_epoch, "best_dev_loss": state.best_dev_loss,
                    "epochs_run": state.epoch, "stopped_early": state.stopped_early,
                    "trainer_config": ckpt.fingerprinted_config(self.cfg)}
            ckpt.save_checkpoint(path, state.best_state, {**meta, **({"aux_loss_weights": aux_weights}
                                                                      if aux_weights else {})})
        self.fabric.barrier()
        self._last_epoch = state.epoch
        return FitResult(list(state.history), state.best_epoch, state.best_dev_loss, state.stopped_early,
                         resumed, path, aux_weights)

    def _log_epoch(self, row: dict[str, Any]) -> None:
        """One history row to the loggers (step = epoch), written out at once."""
        if self.fabric.loggers:
            self.fabric.log_dict(tracking.epoch_metrics(row), step=row["epoch"])
            for logger in self.fabric.loggers:
                logger.save()

    def log_final(self, metrics: Mapping[str, Any]) -> None:
        """Log the numbers in ``metrics`` as ``final/<name>`` at the last epoch's step, then close
        the loggers (MLflow adds the run folder's files as artifacts).

        Call it once the run folder is complete, e.g. with ``best_epoch`` and the selected model's
        dev metrics. Nothing happens without loggers.
        """
        if self.fabric.loggers:
            tracking.finish(self.fabric.loggers, self.hparams, metrics, self._last_epoch)

    def close_loggers(self, err: BaseException) -> None:
        """Close the loggers of a failed run (in `fit`, or after it before `log_final`); a failure to close is logged, ``err`` is what propagates."""
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        try:
            tracking.close(self.fabric.loggers, status)
        except Exception as close_err:  # noqa: BLE001 - keep the fit's own error
            log.warning("could not close the experiment loggers: %s", close_err)

    def fit(self, model: nn.Module, train_set: Dataset, dev_set: Dataset, collate_fn: CollateFn) -> FitResult:
        """Train ``model`` in place, early-stopping on dev loss; the best weights end up in ``model``.

        Args:
            model: ``model(inputs, masks, present) -> ModelOutput``, not yet set up by Fabric.
            train_set: map-style dataset of samples for ``collate_fn``.
            dev_set: dataset used for early stopping (never the test split).
            collate_fn: list of samples -> `scenesense.types.Batch`.

        Returns:
            FitResult (history, best epoch and dev loss, whether it stopped early or resumed).

        Raises:
            ValueError: if a dataset is empty or ``run_dir`` holds a run with another trainer config.
            RuntimeError: if a loss is NaN or infinite (names the epoch and batch).
        """
        fabric = self.fabric
        sizes = len(train_set), len(dev_set)  # type: ignore[arg-type]
        if 0 in sizes:
            raise ValueError(f"empty dataset: {sizes[0]} train and {sizes[1]} dev samples")
        fabric.launch()
        try:
            with eager_fallback(self.cfg.compile):
                return self._fit(model, train_set, dev_set, collate_fn)
        except BaseException as err:
            if fabric.loggers:
                self.close_loggers(err)
            raise

    def _fit(self, model: nn.Module, train_set: Dataset, dev_set: Dataset, collate_fn: CollateFn) -> FitResult:
        cfg, fabric = self.cfg, self.fabric
        saved = None if self.run_dir is None else ckpt.load_last(self.run_dir / ckpt.LAST_FILE, cfg)
        state: ckpt.TrainingState = saved["state"] if saved is not None else ckpt.TrainingState()
        resumed = state.epoch if saved is not None else None
        tracking.start(fabric.loggers, self.hparams, resumed)
        weights = LossWeights(cfg.task_loss_weight, cfg.aux_loss_weights, model_defaults(model))
        if saved is not None and (state.stopped_early or state.epoch >= cfg.epochs):
            self._log("run in %s already finished (epoch %d); nothing to train", self.run_dir, state.epoch)
            return self._finish(state, model, resumed, weights)

        seed_everything(cfg.seed)
        self.loss_fn_ = loss_fn = self._build_loss(train_set)
        grouped = param_groups(model, cfg.lr)  # per-group learning rates if the model defines them
        params: Any = model.parameters() if grouped is None else grouped[0]
        optimizer = Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        fmodel, foptimizer = fabric.setup(compile_model(model, cfg.compile_backend) if cfg.compile else model,
                                          optimizer)
        if saved is not None:
            fmodel.load_state_dict(saved["model"])
            foptimizer.load_state_dict(saved["optimizer"])
            ckpt.restore_rng_state(saved["rng"])
            self._log("resuming %s after epoch %d", self.run_dir, state.epoch)
        dev_loader = build_loader(cfg, fabric, dev_set, collate_fn,
                                  eval_batches=sorted_eval_batches(dev_set, cfg.batch_size))

        while state.epoch < cfg.epochs and not state.stopped_early:
            epoch, start = state.epoch + 1, time.perf_counter()
            lrs = epoch_learning_rates(foptimizer, None if grouped is None else grouped[1], cfg.lr, epoch)
            train_loader = build_loader(cfg, fabric, train_set, collate_fn, epoch)
            train_loss, train_terms = self._train_epoch(fmodel, foptimizer, loss_fn, weights, train_loader,
                                                        epoch, lrs)
            if epoch == 1:  # before anything of the run is saved: a typo costs one training pass
                self._check_aux_names(weights, history_names([train_terms]))
            dev_loss, dev_accuracy, dev_terms = self._evaluate(fmodel, loss_fn, dev_loader, epoch)
            state.epoch = epoch
            state.history.append({"epoch": epoch, "train_loss": train_loss, **train_terms,
                                  "dev_loss": dev_loss, **dev_terms, "dev_accuracy": dev_accuracy,
                                  "epoch_time": time.perf_counter() - start})
            improved = dev_loss < state.best_dev_loss
            if improved:
                state.best_epoch, state.best_dev_loss, state.bad_epochs = epoch, dev_loss, 0
                state.best_state = ckpt.cpu_state_dict(fmodel)
            else:
                state.bad_epochs += 1
                state.stopped_early = state.bad_epochs >= cfg.patience and epoch < cfg.epochs
            acc = "-" if dev_accuracy is None else f"{dev_accuracy:.4f}"
            mark = "  *best" if improved else ""
            terms = "".join(f"  {k} {v:.4f}" for k, v in {**train_terms, **dev_terms}.items())
            self._log("epoch %d/%d  train_loss %.4f  dev_loss %.4f  dev_acc %s%s  %.1fs%s", epoch, cfg.epochs,
                     train_loss, dev_loss, acc, terms, state.history[-1]["epoch_time"], mark)
            self._save_last(state, fmodel, foptimizer)
            self._log_epoch(state.history[-1])  # after last.pt: a resumed run does not log an epoch twice
        if state.stopped_early:
            self._log("early stopping after epoch %d (patience %d); best epoch %d", state.epoch, cfg.patience,
                     state.best_epoch)
        return self._finish(state, fmodel, resumed, weights)

    def _check_aux_names(self, weights: LossWeights, returned: list[str]) -> None:
        """After the first training pass: refuse configured weights of terms the model never returned
        (`check_names`), and log the weights of those it did."""
        check_names(self.cfg.aux_loss_weights, returned)
        if returned:
            self._log("auxiliary losses (weight): %s; task loss weight %g",
                      ", ".join(f"{k} {w:g}" for k, w in weights.resolved(returned).items()), weights.task)

    def predict(self, model: nn.Module, dataset: Dataset, collate_fn: CollateFn) -> Predictions:
        """Run ``model`` over ``dataset`` (eval mode, no gradients); outputs in dataset order.

        Single samples are run in length-sorted batches (less padding), then put back in order.

        Returns:
            Predictions with ids, labels ``[N]``, logits ``[N, C]``, probs ``[N, C]`` and, if the
            model outputs them, pooled modality weights.
        """
        self.fabric.launch()
        fmodel = model if is_wrapped(model) else self.fabric.setup_module(model)
        batches = sorted_eval_batches(dataset, self.cfg.batch_size)
        ids: list[str] = []
        labels: list[Tensor] = []
        logits: list[Tensor] = []
        weights: dict[str, list[Tensor]] = {}
        loader = build_loader(self.cfg, self.fabric, dataset, collate_fn, eval_batches=batches)
        for batch, out in self._outputs(fmodel, loader):
            ids.extend(batch["ids"])
            labels.append(batch["label"].cpu())
            logits.append(out.logits.float().cpu())
            for name, w in (out.modality_weights or {}).items():
                weights.setdefault(name, []).append(w.float().cpu())
        order = np.argsort(np.concatenate(batches)) if batches else np.arange(len(ids))
        all_logits = torch.cat(logits)[order]
        return Predictions([ids[i] for i in order], torch.cat(labels).numpy()[order], all_logits.numpy(),
                           torch.softmax(all_logits.double(), dim=1).numpy(),
                           {k: torch.cat(v).numpy()[order] for k, v in sorted(weights.items())} or None)
