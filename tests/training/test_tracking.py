"""Experiment logging (``trainer.loggers``): what CSV, TensorBoard and MLflow hold once a run is done,
read back with each tool's own reader; resumed runs; config and missing-extra errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import scenesense
from scenesense.cli import main
from scenesense.config import ConfigError, MlflowConfig, TrainerConfig, build_config
from scenesense.training.checkpoint import config_fingerprint
from scenesense.training.tracking import LOGS_DIR, MLFLOW_RUN_FILE, hyperparameters, resolve_tracking_uri
from scenesense.training.trainer import Trainer
from scenesense.utils.extras import MissingExtraError
from tests.training.test_trainer import KillAfter, SimulatedKillError, ToyDataset, collate, make_model


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # blocked, or None in sys.modules
        return False


needs_tensorboard = pytest.mark.skipif(not _installed("tensorboard"),
                                       reason='needs pip install "scenesense[tracking]" (tensorboard)')
needs_mlflow = pytest.mark.skipif(not _installed("mlflow"),
                                  reason='needs pip install "scenesense[tracking]" (mlflow-skinny)')
EPOCHS = 3
INSTALL = 'pip install "scenesense[tracking]"'


def _loggers() -> list[str]:
    """Every logger whose package is installed (csv always)."""
    return ["csv"] + [name for name in ("tensorboard", "mlflow") if _installed(name)]


@pytest.fixture(autouse=True)
def _file_store(monkeypatch: pytest.MonkeyPatch) -> None:
    # the tracking extra is mlflow-skinny, which has no SQL store (no sqlalchemy): the tests read a
    # local file store, which MLflow 3 opens only with this opt-in (scenesense sets it while logging)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> scenesense.Run:
    """A finished 3-epoch synthetic run with every available logger."""
    tmp = tmp_path_factory.mktemp("tracking")
    config = {"name": "tracked", "data": {"dataset": "synthetic", "cache_dir": str(tmp / "cache"),
                                          "params": {"n_train": 48, "n_dev": 24, "n_test": 8}},
              "model": {"out_dim": 8, "head_hidden_dim": 8},
              "trainer": {"epochs": EPOCHS, "patience": 10, "batch_size": 16, "lr": 3e-3, "progress": False,
                          "loggers": _loggers()}}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return scenesense.train(config, run_dir=tmp / "run")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def _epoch_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if "dev_loss" in row]


def _mlflow_client(run_dir: Path) -> Any:  # noqa: ANN401
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=(run_dir / LOGS_DIR / "mlruns").resolve().as_uri())


def _mlflow_run_id(run_dir: Path) -> str:
    return json.loads((run_dir / LOGS_DIR / MLFLOW_RUN_FILE).read_text())["run_id"]


# --------------------------------------------------------------------------- one finished run
def test_csv_has_one_row_per_epoch_with_the_history(logged_run):
    history, folder = logged_run.metrics["history"], logged_run.run_dir / LOGS_DIR / "csv"
    rows = _csv_rows(folder / "metrics.csv")
    epochs = _epoch_rows(rows)
    assert [int(r["step"]) for r in epochs] == [1, 2, 3]
    for row, h in zip(epochs, history, strict=True):
        for key in ("train_loss", "dev_loss", "dev_accuracy", "epoch_time"):
            assert float(row[key]) == h[key], key
    final = [row for row in rows if "final/best_epoch" in row]
    assert len(final) == 1
    assert int(float(final[0]["final/best_epoch"])) == logged_run.metrics["best_epoch"]
    assert float(final[0]["final/dev_accuracy"]) == logged_run.metrics["accuracy"]
    hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
    assert hparams["trainer.lr"] == 3e-3 and hparams["seed"] == 0 and hparams["model.out_dim"] == 8
    assert not any(k.startswith(("trainer.loggers", "trainer.mlflow", "trainer.progress")) for k in hparams)


@needs_tensorboard
def test_tensorboard_scalars_are_the_history(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = logged_run.metrics["history"]
    acc = EventAccumulator(str(logged_run.run_dir / LOGS_DIR / "tensorboard"))
    acc.Reload()
    assert {"train_loss", "dev_loss", "dev_accuracy", "final/dev_accuracy"} <= set(acc.Tags()["scalars"])
    for key in ("train_loss", "dev_loss", "dev_accuracy"):
        events = acc.Scalars(key)
        assert [e.step for e in events] == [1, 2, 3]
        assert [e.value for e in events] == pytest.approx([h[key] for h in history], rel=1e-6)
    (final,) = acc.Scalars("final/dev_accuracy")
    assert (final.step, final.value) == (EPOCHS, pytest.approx(logged_run.metrics["accuracy"], rel=1e-6))
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")  # the HParams view has the run


@needs_mlflow
def test_mlflow_run_has_params_history_final_metrics_and_artifacts(logged_run):
    run_dir, metrics = logged_run.run_dir, logged_run.metrics
    client, run_id = _mlflow_client(run_dir), _mlflow_run_id(run_dir)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    assert run.data.tags["scenesense.run_dir"] == str(run_dir.resolve())
    params = run.data.params
    assert (params["trainer.lr"], params["seed"], params["trainer.epochs"]) == ("0.003", "0", str(EPOCHS))
    assert params["modalities"] == '["audio", "text", "vision"]'
    assert "trainer.loggers" not in params
    for key in ("train_loss", "dev_loss", "dev_accuracy"):
        points = client.get_metric_history(run_id, key)
        assert [(p.step, p.value) for p in points] == [(h["epoch"], h[key]) for h in metrics["history"]]
    final = run.data.metrics
    assert final["final/best_epoch"] == metrics["best_epoch"]
    assert final["final/best_dev_loss"] == metrics["best_dev_loss"]
    assert final["final/dev_accuracy"] == metrics["accuracy"]
    assert final["final/dev_weighted_f1"] == metrics["weighted_f1"]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "metrics.json", "model_spec.json", "loss_curves.png", "train.log"} <= artifacts
    assert not any(name.endswith(".pt") or name == LOGS_DIR for name in artifacts)  # weights stay in the run


# --------------------------------------------------------------------------- a resumed run
def test_a_killed_and_resumed_fit_logs_each_epoch_once(tmp_path):
    cfg = TrainerConfig(epochs=4, batch_size=8, lr=1e-2, patience=100, progress=False,
                        loggers=tuple(_loggers()))
    train, dev = ToyDataset(48, seed=1), ToyDataset(24, seed=2)
    killable = KillAfter(2 * len(train) + 5, 48, seed=1)  # dies 5 samples into epoch 3
    with pytest.raises(SimulatedKillError):
        Trainer(cfg, run_dir=tmp_path, name="toy").fit(make_model(), killable, dev, collate)
    trainer = Trainer(cfg, run_dir=tmp_path, name="toy")
    fit = trainer.fit(make_model(), train, dev, collate)
    assert fit.resumed_from_epoch == 2
    trainer.log_final({"best_epoch": fit.best_epoch})

    rows = _csv_rows(tmp_path / LOGS_DIR / "csv" / "metrics.csv")
    assert [int(r["step"]) for r in _epoch_rows(rows)] == [1, 2, 3, 4]
    assert [float(r["dev_loss"]) for r in _epoch_rows(rows)] == [h["dev_loss"] for h in fit.history]
    assert [r["final/best_epoch"] for r in rows if "final/best_epoch" in r] == [f"{fit.best_epoch:.1f}"]
    if "mlflow" in cfg.loggers:
        client, run_id = _mlflow_client(tmp_path), _mlflow_run_id(tmp_path)
        (experiment,) = [e for e in client.search_experiments() if e.name == "toy"]
        assert len(client.search_runs([experiment.experiment_id])) == 1  # the resumed run went on with it
        points = client.get_metric_history(run_id, "dev_loss")
        assert [(p.step, p.value) for p in points] == [(h["epoch"], h["dev_loss"]) for h in fit.history]
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.params["trainer.epochs"] == "4"
    if "tensorboard" in cfg.loggers:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(tmp_path / LOGS_DIR / "tensorboard"))
        acc.Reload()
        assert [e.step for e in acc.Scalars("dev_loss")] == [1, 2, 3, 4]


@needs_mlflow
def test_a_failed_fit_marks_the_mlflow_run_failed_and_a_fresh_fit_starts_a_new_one(tmp_path):
    cfg = TrainerConfig(epochs=2, batch_size=8, lr=1e-2, progress=False, loggers=("mlflow",))
    dev = ToyDataset(24, seed=2)
    with pytest.raises(SimulatedKillError):  # dies in epoch 1: nothing to resume
        Trainer(cfg, run_dir=tmp_path, name="toy").fit(make_model(), KillAfter(5, 48, seed=1), dev, collate)
    client, first = _mlflow_client(tmp_path), _mlflow_run_id(tmp_path)
    assert client.get_run(first).info.status == "FAILED"
    Trainer(cfg, run_dir=tmp_path, name="toy").fit(make_model(), ToyDataset(48, seed=1), dev, collate)
    second = _mlflow_run_id(tmp_path)
    assert second != first
    assert [p.step for p in client.get_metric_history(second, "dev_loss")] == [1, 2]


def test_loggers_may_change_when_a_run_is_resumed():
    cfg = TrainerConfig()
    assert config_fingerprint(cfg) == config_fingerprint(replace(cfg, loggers=("csv", "mlflow")))


# --------------------------------------------------------------------------- where MLflow logs
def test_tracking_uri_is_the_config_then_the_environment_then_the_run_folder(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert resolve_tracking_uri(None, run) == (run / "logs" / "mlruns").resolve().as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://localhost:5000")
    assert resolve_tracking_uri(None, run) == "http://localhost:5000"
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("shared/mlruns", run) == (tmp_path / "shared" / "mlruns").as_uri()
    assert resolve_tracking_uri("sqlite:///mlflow.db", run) == "sqlite:///mlflow.db"


@needs_mlflow
def test_mlflow_logs_to_the_configured_store_and_experiment(tmp_path):
    store = tmp_path / "store"
    cfg = TrainerConfig(epochs=1, batch_size=8, progress=False, loggers=("mlflow",),
                        mlflow=MlflowConfig(tracking_uri=str(store), experiment="grid"))
    trainer = Trainer(cfg, run_dir=tmp_path / "run", name="ignored")
    trainer.fit(make_model(), ToyDataset(16, seed=1), ToyDataset(8, seed=2), collate)
    trainer.log_final({"best_epoch": 1})
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("grid")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["final/best_epoch"] == 1
    assert not (tmp_path / "run" / LOGS_DIR / "mlruns").exists()


# --------------------------------------------------------------------------- configuration and extras
def test_hyperparameters_are_the_flattened_config_and_the_seed():
    config = {"trainer": {"lr": 0.1, "betas": [0.9, 0.99], "loggers": ["csv"], "progress": True,
                          "mlflow": {"experiment": None}, "loss_params": {}},
              "data": {"root": None}}
    params = hyperparameters(config, seed=7)
    assert params == {"trainer.lr": 0.1, "trainer.betas": "[0.9, 0.99]", "trainer.loss_params": "{}",
                      "data.root": "null", "seed": 7}


def test_loggers_are_read_from_the_config():
    cfg = build_config({"trainer": {"loggers": ["csv", "tensorboard"], "mlflow": {"experiment": "x"}}})
    assert cfg.trainer.loggers == ("csv", "tensorboard") and cfg.trainer.mlflow.experiment == "x"
    assert build_config().trainer.loggers == ()


@pytest.mark.parametrize("loggers", [["wandb"], ["csv", "csv"], "csv"])
def test_unknown_or_repeated_logger_is_a_config_error(loggers):
    with pytest.raises(ConfigError, match="trainer.loggers"):
        build_config({"trainer": {"loggers": loggers}})


def test_unknown_logger_fails_a_dry_run_with_exit_2(capsys):
    dry_run = ["train", "--dataset", "synthetic", "--dry-run", "--set"]
    assert main([*dry_run, "trainer.loggers=[csv, wandb]"]) == 2
    err = capsys.readouterr().err
    assert "trainer.loggers" in err and "wandb" in err and len(err.strip().splitlines()) == 1
    assert main([*dry_run, "trainer.loggers=[csv]"]) == 0
    assert "loggers:\n  - csv" in capsys.readouterr().out


@pytest.mark.parametrize(("logger", "modules"), [("mlflow", ["mlflow", "mlflow.tracking"]),
                                                   ("tensorboard", ["tensorboard"])])
def test_a_missing_tracking_extra_is_one_line_naming_the_install(tmp_path, monkeypatch, logger, modules):
    for module in modules:  # None in sys.modules: the import fails as if the package were not installed
        monkeypatch.setitem(sys.modules, module, None)
    cfg = TrainerConfig(loggers=(logger,))
    with pytest.raises(MissingExtraError) as err:
        Trainer(cfg, run_dir=tmp_path)
    message = str(err.value)
    assert INSTALL in message and logger in message and "\n" not in message
    Trainer(cfg, run_dir=None)  # without a run folder nothing is logged, so nothing is needed (evaluate)


def test_a_missing_tracking_extra_fails_before_the_data_is_prepared(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    config = {"data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache")},
              "trainer": {"loggers": ["csv", "mlflow"], "progress": False}}
    with pytest.raises(MissingExtraError, match=r"scenesense\[tracking\]"):
        scenesense.train(config, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # the run folder it created is gone again
    assert not (tmp_path / "cache").exists()  # no data was prepared


@needs_mlflow
def test_a_failure_after_training_marks_the_mlflow_run_failed(tmp_path, monkeypatch):
    def broken_plot(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("scenesense.api.plot_loss_curves", broken_plot)
    config = {"data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                       "params": {"n_train": 24, "n_dev": 12, "n_test": 8}},
              "model": {"out_dim": 8, "head_hidden_dim": 8},
              "trainer": {"epochs": 1, "batch_size": 12, "progress": False, "loggers": ["mlflow"]}}
    with pytest.raises(RuntimeError, match="disk full"):
        scenesense.train(config, run_dir=tmp_path / "run")
    run_dir = tmp_path / "run"
    assert _mlflow_client(run_dir).get_run(_mlflow_run_id(run_dir)).info.status == "FAILED"
