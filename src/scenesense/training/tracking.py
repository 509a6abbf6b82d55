"""Experiment logging through Lightning Fabric's loggers: CSV, TensorBoard and MLflow.

`build_loggers` turns ``trainer.loggers`` into Fabric loggers that write under
``<run dir>/logs``; the `scenesense.training.trainer.Trainer` hands them to ``Fabric(loggers=...)``
and logs, on the first process only:

- at the start of a fit, the hyper-parameters (`hyperparameters`: the resolved config, flattened);
- after each epoch, its history row (``train_loss``, ``dev_loss``, ``dev_accuracy``,
  ``epoch_time``, and for a model with auxiliary losses ``train_task_loss``, ``train_aux_<name>``
  and ``dev_aux_<name>``) with ``step = epoch`` (`epoch_metrics`);
- at the end, the final metrics as ``final/<name>`` at the last epoch's step, then each logger is
  closed (`finish`); the MLflow run also gets the run folder's files as artifacts.

A resumed run (a run folder that holds ``last.pt``) continues its logs: the CSV file keeps the
rows of the epochs already done, the MLflow run whose id is in ``logs/mlflow_run.json`` goes on,
and TensorBoard adds an event file beside the first.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import yaml
from lightning_fabric.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning_fabric.loggers.csv_logs import _ExperimentWriter
from lightning_fabric.loggers.logger import rank_zero_experiment
from lightning_fabric.utilities.rank_zero import rank_zero_only

from scenesense.config import TrainerConfig
from scenesense.utils.extras import require_extra
from scenesense.utils.io import atomic_write_text, write_json

log = logging.getLogger(__name__)

LOGS_DIR = "logs"  # under the run folder: csv/, tensorboard/, mlruns/ (the default MLflow store)
MLFLOW_RUN_FILE = "mlflow_run.json"  # in LOGS_DIR: the MLflow run a resumed run goes on with
FINAL_PREFIX = "final/"  # name prefix of the metrics logged once, at the end
HPARAMS_FILE = "hparams.yaml"  # written by the CSV logger beside metrics.csv
# logging settings, not hyper-parameters: they may change when a run is resumed
_NOT_HYPERPARAMETERS = ("trainer.progress", "trainer.loggers", "trainer.mlflow.")
_MLFLOW_STATUS = {"success": "FINISHED", "failed": "FAILED"}  # any other Fabric status: KILLED
_MLFLOW_BATCH = 100  # params per MlflowClient.log_batch call (MLflow's limit)

ParamValue = str | int | float | bool


def _param_value(value: Any) -> ParamValue:  # noqa: ANN401
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)  # None -> "null", lists -> "[...]"


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, ParamValue]:
    """Nested mappings as one level of dotted keys: ``{"trainer": {"lr": 1e-3}}`` -> ``{"trainer.lr": 1e-3}``.

    Numbers, strings and booleans stay as they are; ``None`` and lists become JSON text, and an
    empty mapping is kept as ``"{}"``.
    """
    flat: dict[str, ParamValue] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = _param_value(dict(value) if isinstance(value, Mapping) else value)
    return flat


def hyperparameters(config: Mapping[str, Any], seed: int) -> dict[str, ParamValue]:
    """What the loggers record as hyper-parameters: ``config`` flattened, plus ``seed``.

    The logging settings (``trainer.loggers``, ``trainer.mlflow.*``) and ``trainer.progress`` are
    left out: they are not hyper-parameters and may change when a run is resumed.
    """
    flat = {k: v for k, v in flatten_params(config).items() if not k.startswith(_NOT_HYPERPARAMETERS)}
    return {**flat, "seed": seed}


# ---------------------------------------------------------------------------------------------
# loggers


@runtime_checkable
class Resumable(Protocol):
    """A logger that continues the logs of a resumed run instead of starting new ones."""

    def resume_after(self, epoch: int | None) -> None:
        """Called before the first log: ``epoch`` finished epochs are kept, ``None`` starts afresh."""


class RunCSVLogger(CSVLogger):
    """Fabric's `CSVLogger` in ``<root_dir>/csv``: ``metrics.csv`` is written after every log call,
    hyper-parameters go to ``hparams.yaml``, and a resumed run keeps the rows of its finished epochs.

    Args:
        root_dir: the run's log folder (``<run dir>/logs``).
    """

    def __init__(self, root_dir: str | Path) -> None:
        super().__init__(os.fspath(root_dir), name="csv", version="", flush_logs_every_n_steps=1)
        self._keep_through: int | None = None

    def resume_after(self, epoch: int | None) -> None:
        """Keep the epoch rows with ``step <= epoch`` of an existing ``metrics.csv`` (``None``: none)."""
        self._keep_through = epoch

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        """The writer of ``metrics.csv``, created on first use with the rows a resumed run keeps."""
        if self._experiment is None:
            kept = self._kept_rows()
            with warnings.catch_warnings():  # Fabric warns that it starts metrics.csv afresh: we refill it
                warnings.filterwarnings("ignore", message="Experiment logs directory")
                writer = super().experiment
            if kept:
                writer.metrics = kept
                writer.save()
        return self._experiment  # type: ignore[return-value]

    def _kept_rows(self) -> list[dict[str, Any]]:
        path = Path(self.log_dir) / _ExperimentWriter.NAME_METRICS_FILE
        if self._keep_through is None or not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
        keep = self._keep_through
        return [row for row in rows if row.get("step", "").isdigit() and int(row["step"]) <= keep
                and not any(k.startswith(FINAL_PREFIX) for k in row)]

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Write ``params`` (flattened) to ``hparams.yaml`` beside ``metrics.csv``."""
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(flatten_params(params), sort_keys=True, allow_unicode=True)
        atomic_write_text(Path(self.log_dir) / HPARAMS_FILE, text)


def resolve_tracking_uri(configured: str | None, run_dir: Path) -> str:
    """``trainer.mlflow.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``<run_dir>/logs/mlruns``;
    a local path becomes an absolute ``file://`` URI."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or str(run_dir / LOGS_DIR / "mlruns")
    if urlparse(uri).scheme == "" and uri != "databricks":
        return Path(uri).expanduser().resolve().as_uri()
    return uri


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """Let MLflow open a local file store while the client is built.

    mlflow-skinny (the ``tracking`` extra) has no SQL store (it lacks sqlalchemy and alembic), so a
    local file store is the backend that works offline; MLflow 3 refuses one unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set (older versions ignore the variable). It is set for the
    client's construction only, and a user's own setting wins.
    """
    name = "MLFLOW_ALLOW_FILE_STORE"
    local = urlparse(uri).scheme == "file"
    if not local or name in os.environ:
        yield
        return
    os.environ[name] = "true"
    try:
        yield
    finally:
        os.environ.pop(name, None)


class MlflowLogger(Logger):
    """A Fabric logger over ``mlflow.tracking.MlflowClient``: one MLflow run per run folder.

    The run is created on the first log, named after the run folder and tagged
    ``scenesense.run_dir``; its id is kept in ``<run dir>/logs/mlflow_run.json``, so a resumed run
    logs into the same MLflow run (hyper-parameters already there are not logged again).
    ``finalize("success")`` adds the run folder's files (config, metrics, predictions, plots, log;
    not the ``.pt`` weights and resume state) as artifacts and marks the run finished.

    Args:
        run_dir: the run folder.
        experiment: the MLflow experiment (created if missing).
        tracking_uri: see `resolve_tracking_uri`.

    Raises:
        MissingExtraError: mlflow is not installed (``pip install "scenesense[tracking]"``).
    """

    def __init__(self, run_dir: str | Path, experiment: str, tracking_uri: str | None = None) -> None:
        super().__init__()
        self._mlflow = require_extra("mlflow.tracking", "tracking", "the mlflow logger (trainer.loggers)")
        self._entities = require_extra("mlflow.entities", "tracking", "the mlflow logger (trainer.loggers)")
        self.run_dir = Path(run_dir)
        self.tracking_uri = resolve_tracking_uri(tracking_uri, self.run_dir)
        self._experiment_name = experiment
        self._resumed = False
        self._client: Any = None
        self._run_id: str | None = None

    @property
    def name(self) -> str:
        """The MLflow experiment name."""
        return self._experiment_name

    @property
    def version(self) -> str | None:
        """The MLflow run id (``None`` before the first log)."""
        return self._run_id

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (``None`` before the first log)."""
        return self._run_id

    def resume_after(self, epoch: int | None) -> None:
        """A resumed run (``epoch`` not ``None``) goes on with the MLflow run saved in its folder."""
        self._resumed = epoch is not None

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:  # noqa: ANN401 - an mlflow.tracking.MlflowClient
        """The ``MlflowClient``; the first use opens (or, resumed, reopens) the MLflow run."""
        if self._client is None:
            with _file_store_allowed(self.tracking_uri):
                client = self._mlflow.MlflowClient(tracking_uri=self.tracking_uri)
            self._run_id = self._reopen(client) if self._resumed else None
            if self._run_id is None:
                self._run_id = self._create(client)
            self._client = client
        return self._client

    def _id_file(self) -> Path:
        return self.run_dir / LOGS_DIR / MLFLOW_RUN_FILE

    def _reopen(self, client: Any) -> str | None:  # noqa: ANN401
        """The saved run id if that run is still in this store (marked running again), else ``None``."""
        try:
            saved = json.loads(self._id_file().read_text(encoding="utf-8"))
            run_id = str(saved["run_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if saved.get("tracking_uri") != self.tracking_uri:
            log.warning("mlflow: %s was logged to %s; logging to a new run in %s", self.run_dir,
                        saved.get("tracking_uri"), self.tracking_uri)
            return None
        try:
            run = client.get_run(run_id)
        except Exception:  # noqa: BLE001 - MlflowException: gone from the store
            return None
        if run.info.lifecycle_stage != "active":
            return None
        client.update_run(run_id, status="RUNNING")
        return run_id

    def _create(self, client: Any) -> str:  # noqa: ANN401
        found = client.get_experiment_by_name(self._experiment_name)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            try:
                experiment_id = client.create_experiment(self._experiment_name)
            except Exception:  # noqa: BLE001 - created meanwhile by another run
                experiment_id = client.get_experiment_by_name(self._experiment_name).experiment_id
        run = client.create_run(experiment_id, run_name=self.run_dir.name,
                                tags={"scenesense.run_dir": str(self.run_dir.resolve())})
        run_id = str(run.info.run_id)
        write_json(self._id_file(), {"tracking_uri": self.tracking_uri, "experiment_id": experiment_id,
                                     "run_id": run_id})
        return run_id

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Log ``params`` (flattened) as MLflow params, leaving out those the run already has."""
        client = self.experiment
        existing = client.get_run(self._run_id).data.params
        new = [self._entities.Param(k, str(v)) for k, v in sorted(flatten_params(params).items())
               if k not in existing]
        for start in range(0, len(new), _MLFLOW_BATCH):
            client.log_batch(self._run_id, params=new[start:start + _MLFLOW_BATCH])

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log each metric at ``step`` (0 if ``None``)."""
        client = self.experiment
        stamp = int(time.time() * 1000)
        batch = [self._entities.Metric(k, float(v), stamp, step or 0) for k, v in metrics.items()]
        for start in range(0, len(batch), _MLFLOW_BATCH):
            client.log_batch(self._run_id, metrics=batch[start:start + _MLFLOW_BATCH])

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the MLflow run: on ``"success"`` add the run folder's files as artifacts first."""
        if self._client is None:
            return
        if status == "success":
            for path in sorted(self.run_dir.iterdir()):
                if path.is_file() and not path.name.startswith(".") and path.suffix != ".pt":
                    self._client.log_artifact(self._run_id, str(path))
        self._client.set_terminated(self._run_id, _MLFLOW_STATUS.get(status, "KILLED"))


def build_loggers(cfg: TrainerConfig, run_dir: str | Path, experiment: str) -> list[Logger]:
    """The Fabric loggers ``cfg.loggers`` names, writing under ``<run_dir>/logs``.

    Args:
        cfg: the trainer settings (``loggers`` and ``mlflow``).
        run_dir: the run folder.
        experiment: the default MLflow experiment name (the config's ``name``).

    Raises:
        MissingExtraError: ``tensorboard`` or ``mlflow`` is named but not installed.
    """
    root = Path(run_dir) / LOGS_DIR
    loggers: list[Logger] = []
    for name in cfg.loggers:
        if name == "csv":
            loggers.append(RunCSVLogger(root))
        elif name == "tensorboard":
            require_extra("tensorboard", "tracking", "the tensorboard logger (trainer.loggers)")
            loggers.append(TensorBoardLogger(root, name="tensorboard", version="", default_hp_metric=False))
        elif name == "mlflow":
            mlflow = cfg.mlflow
            loggers.append(MlflowLogger(run_dir, mlflow.experiment or experiment, mlflow.tracking_uri))
        else:
            raise ValueError(f"unknown logger {name!r}")
    return loggers


# ---------------------------------------------------------------------------------------------
# what the trainer logs


def start(loggers: Sequence[Logger], params: Mapping[str, Any], resumed_epoch: int | None) -> None:
    """Tell resumable loggers where the run stands, then log the hyper-parameters."""
    for logger in loggers:
        if isinstance(logger, Resumable):
            logger.resume_after(resumed_epoch)
        logger.log_hyperparams(dict(params))


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def epoch_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one history row, without ``epoch`` (the step); ``dev_accuracy: None`` is left out."""
    return _numbers({k: v for k, v in row.items() if k != "epoch"})


def finish(loggers: Sequence[Logger], params: Mapping[str, Any], metrics: Mapping[str, Any],
           step: int) -> None:
    """Log the numbers in ``metrics`` as ``final/<name>`` at ``step`` and close every logger.

    TensorBoard gets them with the hyper-parameters, so its HParams view pairs the two.
    """
    final = {f"{FINAL_PREFIX}{k}": v for k, v in _numbers(metrics).items()}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics=final, step=step)
        elif final:
            logger.log_metrics(final, step)
    close(loggers, "success")


def close(loggers: Sequence[Logger], status: str) -> None:
    """``finalize(status)`` every logger (``"success"``, ``"failed"`` or ``"interrupted"``)."""
    for logger in loggers:
        logger.finalize(status)
