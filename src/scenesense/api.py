"""The library API: ``train``, ``evaluate``, ``extract_meld`` and ``demo``. The CLI is a thin shell over it."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenesense.config import (
    ExperimentConfig,
    TrainerConfig,
    diff_mappings,
    dump_yaml,
    to_dict,
    validate_config,
)
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.dialogues import SpeakerVocabulary
from scenesense.data.labels import SENTIMENT5, SENTIMENT5_RULES, LabelSpace
from scenesense.datasets.sources import prepare_dataset
from scenesense.evaluation.functional import classification_metrics
from scenesense.evaluation.plots import (
    mean_modality_weights,
    plot_attention_maps,
    plot_confusion_matrix,
    plot_loss_curves,
    plot_modality_weights,
    sample_attention_maps,
)
from scenesense.evaluation.regression import regression_metrics
from scenesense.evaluation.report import write_predictions_csv, write_regression_predictions_csv
from scenesense.evaluation.sentiment5 import sentiment5_classification_metrics, sentiment5_regression_metrics
from scenesense.models.builders import build_model
from scenesense.models.standardize import feature_statistics
from scenesense.runs import (
    ATTENTION_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CONFUSION_MATRIX_FILE,
    EVAL_DIR,
    LAST_FILE,
    LOSS_CURVES_FILE,
    METRICS_FILE,
    MODALITY_WEIGHTS_FILE,
    PREDICTIONS_FILE,
    SPEC_FILE,
    TRAIN_LOG,
    RunSpec,
    batching,
    load_run,
    open_scored_split,
    read_config,
    require_labels,
    scored_data_file,
    split_file,
    training_class_priors,
    write_spec,
)
from scenesense.training.losses import adjust_logits
from scenesense.training.trainer import FitResult, Predictions, Trainer
from scenesense.utils.io import atomic_write_text, folder_lock, write_json
from scenesense.utils.seed import seed_everything

log = logging.getLogger("scenesense")


@dataclass(frozen=True)
class RunResult:
    """A finished training run: where it lives and what it measured on the dev split."""

    run_dir: Path
    metrics: dict[str, Any]
    fit: FitResult


@dataclass(frozen=True)
class EvalResult:
    """Metrics of a trained run on some labelled data."""

    metrics: dict[str, Any]
    predictions_csv: Path


def prepare_store(cfg: ExperimentConfig) -> Path:
    """Materialise the configured dataset as a feature store folder and return it."""
    return prepare_dataset(cfg.data)


def _make_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output_dir) / cfg.name / f"{stamp}-s{cfg.trainer.seed}"
    run_dir, k = base, 1
    while run_dir.exists():
        run_dir, k = base.with_name(f"{base.name}-{k}"), k + 1
    return run_dir


def _metrics_for(pred: Predictions, label_space: LabelSpace, source: dict[str, Any]) -> dict[str, Any]:
    """The scores of ``pred``; 5-class sentiment data (`SENTIMENT5` labels, or scores whose store
    ``source`` names a ``five_class`` rule) adds `scenesense.evaluation.sentiment5`'s."""
    if not label_space.is_classification:
        metrics = regression_metrics(pred.labels, pred.logits[:, 0])
        if source.get("five_class") in SENTIMENT5_RULES:
            metrics |= sentiment5_regression_metrics(pred.labels, pred.logits[:, 0], source["five_class"])
        return metrics
    y_pred = pred.probs.argmax(axis=1)
    metrics = classification_metrics(pred.labels, y_pred, list(label_space.names))
    if label_space == SENTIMENT5:
        metrics |= sentiment5_classification_metrics(pred.labels, y_pred)
    return metrics


def _write_eval_outputs(out_dir: Path, pred: Predictions, label_space: LabelSpace,
                        metrics: dict[str, Any], title: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / PREDICTIONS_FILE
    if not label_space.is_classification:
        return write_regression_predictions_csv(csv_path, pred.ids, pred.labels, pred.logits[:, 0])
    write_predictions_csv(csv_path, pred.ids, pred.labels, pred.probs, list(label_space.names))
    plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), list(label_space.names),
                          out_dir / CONFUSION_MATRIX_FILE, title=title)
    return csv_path


def train(cfg: ExperimentConfig, run_dir: str | Path | None = None) -> RunResult:
    """Train one model as configured, select it on the dev split and write a run directory.

    The run directory is locked for the whole run (another process gets
    `scenesense.utils.io.FolderInUseError` at once). One that holds finished epochs
    (``last.pt``) is resumed, and must have been started with the same config (the refusal lists
    the differences); one where no epoch finished is started afresh with ``cfg``. A run directory
    this call creates is removed again if it fails before an epoch finishes.

    Returns:
        RunResult with the dev metrics (accuracy, weighted/macro F1, per-class scores, confusion).

    Raises:
        ConfigError: an invalid config value.
        FolderInUseError: another process is using the run directory.
        ValueError: the run directory holds epochs trained with another config.
    """
    validate_config(cfg)
    run_path = Path(run_dir) if run_dir is not None else _make_run_dir(cfg)
    created, primary = not run_path.exists(), _is_first_rank()
    with folder_lock(run_path) if primary else nullcontext():
        try:
            _check_same_config(run_path, cfg)
            atomic_write_text(run_path / CONFIG_FILE, dump_yaml(cfg))
            with _train_log(run_path):
                return _train(cfg, run_path)
        except BaseException:
            if primary and created and not (run_path / LAST_FILE).exists():
                shutil.rmtree(run_path, ignore_errors=True)  # nothing to resume: leave nothing behind
            raise


def _is_first_rank() -> bool:
    """False in the other processes of a multi-device run (Fabric starts them with ``LOCAL_RANK`` and
    ``NODE_RANK``, launchers such as torchrun with ``RANK``): they share the run directory of rank 0,
    which holds its lock."""
    return all(os.environ.get(name, "0") in ("", "0") for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as a mapping, without the settings a resumed run may change (the progress bar and
    the experiment loggers)."""
    default = TrainerConfig()
    return to_dict(replace(cfg, trainer=replace(cfg.trainer, progress=True, loggers=default.loggers,
                                                mlflow=default.mlflow)))


def _check_same_config(run_path: Path, cfg: ExperimentConfig) -> None:
    """Refuse ``cfg`` for a run directory that holds epochs trained with another config."""
    saved_path = run_path / CONFIG_FILE
    if not saved_path.exists() or not any((run_path / f).exists() for f in (LAST_FILE, CHECKPOINT_FILE)):
        return  # no epoch finished here: the run starts afresh with cfg
    changes = diff_mappings(_comparable(read_config(run_path)), _comparable(cfg))
    if changes:
        raise ValueError(f"{run_path} holds a run trained with a different config ({'; '.join(changes)}); "
                         "use a new --run-dir, or the original settings to resume it")


@contextmanager
def _train_log(run_path: Path) -> Iterator[None]:
    """Copy the ``scenesense`` log (INFO and up) to ``<run_path>/train.log`` for the block."""
    handler = logging.FileHandler(run_path / TRAIN_LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO if level in (logging.NOTSET,) or level > logging.INFO else level)
    try:
        yield
    finally:
        log.setLevel(level)
        log.removeHandler(handler)
        handler.close()


def _train(cfg: ExperimentConfig, run_path: Path) -> RunResult:
    # first: a logger whose package is missing fails before the data is prepared
    trainer = Trainer(cfg.trainer, run_dir=run_path, hparams=to_dict(cfg), name=cfg.name)
    store_dir = prepare_store(cfg)
    features = dict(cfg.data.features)
    norm = cfg.data.speaker_norm
    train_set = FeatureStoreDataset(split_file(store_dir, cfg.data.train_split), cfg.modalities, features,
                                    speaker_norm=norm)
    dev_set = FeatureStoreDataset(split_file(store_dir, cfg.data.dev_split), cfg.modalities, features,
                                  speaker_norm=norm)
    require_labels(train_set, "train on")
    require_labels(dev_set, "select a model on")
    label_space = train_set.label_space
    if dev_set.label_space != label_space:
        raise ValueError(f"train and dev label spaces differ: {label_space.names} vs {dev_set.label_space.names}")
    speakers = None
    if cfg.model.context is not None:  # known speakers: enough utterances in the training split
        speakers = SpeakerVocabulary.from_speakers(train_set.split.speakers, cfg.data.speaker_min_utterances).names
    spec = RunSpec.from_dataset(train_set, cfg.modalities, store_dir, speakers)
    write_spec(run_path / SPEC_FILE, spec)
    seed_everything(cfg.trainer.seed)  # the model's initial weights depend on it
    model = build_model(cfg.model, cfg.modalities, train_set.feature_dims, train_set.feature_kinds,
                        label_space.num_outputs, num_speakers=len(spec.speaker_vocabulary))
    _check_encoder_features(model, spec)
    if model.standardizer is not None:
        model.standardizer.set_statistics(
            feature_statistics((train_set[i] for i in range(len(train_set))), cfg.modalities))
    train_data, collate_fn = batching(cfg, spec, train_set)
    dev_data, _ = batching(cfg, spec, dev_set)
    fit = trainer.fit(model, train_data, dev_data, collate_fn)  # builds the (class-weighted) loss
    try:
        summary = _finish_run(cfg, run_path, trainer, model, fit, dev_set, dev_data, collate_fn, label_space)
    except BaseException as err:  # the experiment loggers record the failure, not a run left open
        trainer.close_loggers(err)
        raise
    log.info("run written to %s", run_path)
    return RunResult(run_path, summary, fit)


def _finish_run(cfg: ExperimentConfig, run_path: Path, trainer: Trainer, model: torch.nn.Module,
                fit: FitResult, dev_set: FeatureStoreDataset, dev_data: Any, collate_fn: Any,  # noqa: ANN401
                label_space: LabelSpace) -> dict[str, Any]:
    """Score the selected model on dev, write the run folder's files, log the final metrics."""
    pred = trainer.predict(model, dev_data, collate_fn)
    metrics = _metrics_for(pred, label_space, dev_set.split.source)
    n_params = sum(p.numel() for p in model.parameters())
    summary = {
        "split": cfg.data.dev_split,
        "n": len(pred.ids),
        **metrics,
        "best_epoch": fit.best_epoch,
        "best_dev_loss": fit.best_dev_loss,
        "stopped_early": fit.stopped_early,
        "epochs_run": len(fit.history),
        "history": fit.history,
        **({"loss_weights": {"task": cfg.trainer.task_loss_weight, "aux": fit.aux_loss_weights}}
           if fit.aux_loss_weights else {}),  # the weights the auxiliary losses were trained with
        **({"modality_weights": mean_modality_weights(pred.modality_weights)} if pred.modality_weights else {}),
        "seed": cfg.trainer.seed,
        "parameters": n_params,
        "train_seconds": float(sum(h.get("epoch_time", 0.0) for h in fit.history)),
    }
    write_json(run_path / METRICS_FILE, summary)
    data = f"{cfg.data.dataset} {cfg.data.train_split}/{cfg.data.dev_split}, seed {cfg.trainer.seed}"
    _write_eval_outputs(run_path, pred, label_space, metrics, f"{cfg.name}: {cfg.data.dev_split} split ({data})")
    plot_loss_curves(fit.history, run_path / LOSS_CURVES_FILE, title=f"{cfg.name}: training and dev loss ({data})")
    if pred.modality_weights and label_space.is_classification:
        plot_modality_weights(pred.modality_weights, pred.labels, label_space.names,
                              run_path / MODALITY_WEIGHTS_FILE, title=f"{cfg.name}: modality weights per class")
    _plot_first_dev_attention(model, dev_set, run_path / ATTENTION_FILE, cfg.name)
    trainer.log_final({"best_epoch": fit.best_epoch, "best_dev_loss": fit.best_dev_loss,
                       "epochs_run": len(fit.history), **{f"dev_{k}": v for k, v in metrics.items()}})
    return summary


def _check_encoder_features(model: torch.nn.Module, spec: RunSpec) -> None:
    """Let each encoder that knows its features (``check_features``) check their provenance."""
    utterance = getattr(model, "utterance", model)
    for m, encoder in utterance.encoders.items():
        check = getattr(encoder, "check_features", None)
        if callable(check):
            check(spec.provenance_of(m) or {})


def _plot_first_dev_attention(model: torch.nn.Module, dev_set: FeatureStoreDataset, path: Path,
                              name: str) -> Path | None:
    """Plot the attention maps of dev sample 0 (the first in store order) to ``path``.

    One forward pass of the trained ``model`` on that sample alone (eval mode, no gradients);
    the maps are cropped to the sample's real steps. Nothing is written, and ``None`` is
    returned, when the fusion gives no attention maps (or none with a real step).
    """
    sample = dev_set[0]
    batch = collate([sample], task=dev_set.label_space.task)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model({m: x.to(device) for m, x in batch["inputs"].items()},
                        {m: x.to(device) for m, x in batch["masks"].items()},
                        {m: x.to(device) for m, x in batch["present"].items()})
    finally:
        model.train(was_training)
    if not out.attention:
        return None
    maps = sample_attention_maps({k: v.detach().float().cpu().numpy() for k, v in out.attention.items()},
                                 {m: x.numpy() for m, x in batch["masks"].items()}, index=0)
    if not maps:
        return None
    return plot_attention_maps(maps, path, title=f"{name}: attention maps, dev", sample_id=sample["id"],
                               modality_names=sorted(sample["inputs"]))


def _adjustment_priors(cfg: ExperimentConfig, spec: RunSpec, tau: float) -> torch.Tensor:
    """The training priors for post-hoc logit adjustment, after checking that it applies to the run."""
    if spec.task != "classification":
        raise ValueError("logit adjustment applies to classification runs only")
    if cfg.trainer.loss == "logit_adjusted":
        raise ValueError("this run was trained with the logit-adjusted loss, whose logits are already "
                         "prior-free; adjusting them again would count the priors twice")
    priors = training_class_priors(cfg, spec)
    adjust_logits(torch.zeros(0, len(priors)), priors, tau)  # checks tau before the costly prediction
    return priors


def _adjusted(pred: Predictions, priors: torch.Tensor, tau: float) -> tuple[Predictions, dict[str, Any]]:
    """``pred`` with post-hoc adjusted logits (and their softmax), and the adjustment's record."""
    logits = adjust_logits(torch.as_tensor(pred.logits, dtype=torch.float64), priors, tau)
    probs = torch.softmax(logits, dim=1).numpy()
    record = {"logit_adjust": {"tau": float(tau), "class_priors": [round(float(p), 6) for p in priors]}}
    return replace(pred, logits=logits.float().numpy(), probs=probs), record


def evaluate(run_dir: str | Path, *, store: str | Path | None = None, split: str | None = None,
             csv: str | Path | None = None, root: str | Path | None = None,
             params: dict[str, Any] | None = None, output_dir: str | Path | None = None,
             accelerator: str | None = None, logit_adjust: float | None = None) -> EvalResult:
    """Score a trained run on labelled data: a store split, a MELD-format CSV, or a dataset root.

    A CSV is run through the same feature extractor (same parameters) the run was trained with.
    A ``root`` is converted by the run's dataset source with the run's parameters, updated with
    the source's ``score_all`` (every sample into split ``test``, e.g. RAVDESS ``split=all``)
    and ``params``; ``split`` picks the split to score (default ``test``).
    ``logit_adjust = tau`` scores with post-hoc logit adjustment (``logits - tau * log pi``, the
    run's training-split class priors ``pi``; `scenesense.training.losses.adjust_logits`),
    recorded in the metrics; the default folder is then ``<data name>-tau<tau>``.
    Writes ``predictions.csv``, ``metrics.json`` and ``confusion_matrix.png`` under
    ``output_dir`` (default ``<run_dir>/eval/<data name>``).
    """
    writes_into_run = output_dir is None and Path(run_dir).is_dir()  # a missing run is load_run's error
    with folder_lock(run_dir) if writes_into_run else nullcontext():
        return _evaluate(run_dir, store, split, csv, root, params, output_dir, accelerator, logit_adjust)


def _evaluate(run_dir: str | Path, store: str | Path | None, split: str | None, csv: str | Path | None,
              root: str | Path | None, params: dict[str, Any] | None, output_dir: str | Path | None,
              accelerator: str | None, logit_adjust: float | None) -> EvalResult:
    cfg, spec, model = load_run(run_dir)
    priors = None if logit_adjust is None else _adjustment_priors(cfg, spec, logit_adjust)
    data_file, name = scored_data_file(cfg, spec, store=store, split=split, csv=csv, root=root, params=params)
    dataset = open_scored_split(cfg, spec, data_file)
    label_space = dataset.label_space
    trainer = Trainer(replace(cfg.trainer, accelerator=accelerator or "cpu", devices=1), run_dir=None)
    pred = trainer.predict(model, *batching(cfg, spec, dataset))
    adjustment: dict[str, Any] = {}
    if logit_adjust is not None and priors is not None:
        pred, adjustment = _adjusted(pred, priors, logit_adjust)
        name = f"{name}-tau{logit_adjust:g}"
    metrics = {"data": str(data_file), "n": len(pred.ids), **adjustment,
               **_metrics_for(pred, label_space, dataset.split.source)}
    out_dir = Path(output_dir) if output_dir is not None else Path(run_dir) / EVAL_DIR / name
    csv_path = _write_eval_outputs(out_dir, pred, label_space, metrics, f"{cfg.name} on {name}")
    write_json(out_dir / METRICS_FILE, metrics)
    return EvalResult(metrics, csv_path)
