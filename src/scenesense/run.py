"""The public Python API: `train` and `load` give a `Run`, a finished run folder
with its typed spec, its dev metrics, `Run.predict` and `Run.evaluate`.

It sits on top, beside `scenesense.api` (which it calls): the CLI does the same work through
``scenesense train``, ``predict`` and ``evaluate``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenesense import api
from scenesense.config import ExperimentConfig, load_yaml, to_dict
from scenesense.predict import DEFAULT_WINDOW_S, InputItem, PredictionResult
from scenesense.predict import predict as predict_inputs
from scenesense.recipes import resolve_config
from scenesense.runs import FINISHED_FILES, METRICS_FILE, SPEC_FILE, RunSpec, read_config, read_spec

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | ExperimentConfig
"""A YAML file, a nested mapping over the defaults, or an `scenesense.config.ExperimentConfig`."""


@dataclass(frozen=True)
class Run:
    """A finished training run, read from its folder (`load`).

    Fields:
        run_dir: the run folder.
        config: the run's resolved `scenesense.config.ExperimentConfig` (``config.yaml``).
        spec: what the model reads and predicts (``model_spec.json``): modalities, feature sets
            with their provenance, label names, speakers.
        metrics: the dev-split summary (``metrics.json``): ``accuracy``, ``weighted_f1``, ...,
            ``best_epoch``, ``history``.
    """

    run_dir: Path
    config: ExperimentConfig
    spec: RunSpec
    metrics: Mapping[str, Any]

    def predict(self, inputs: Sequence[InputItem | str] | os.PathLike[str] | str, *, batch_size: int = 32,
                device: str = "cpu", window_s: float = DEFAULT_WINDOW_S,
                transcribe: str = "auto") -> PredictionResult:
        """Predict raw texts, audio or video files with this run (`scenesense.predict.predict`).

        Each modality is featurised by the extractor its training features came from, so a run
        trained on stored features without an extractor (e.g. the synthetic benchmark) cannot
        predict raw inputs (``ValueError``); `evaluate` scores stored data.

        Args:
            inputs: one text or media path, a sequence of them (or of mappings with ``text``,
                ``audio``, ``video``, ``media`` and ``id``), or a manifest CSV path.
            batch_size: items extracted and classified together.
            device: torch device of the model.
            window_s: window length in seconds for long audio.
            transcribe: ``"auto"``: an audio or video item given no text is transcribed for a run
                that reads text (needs ``scenesense[speech]``); ``"never"``: its text is missing.

        Returns:
            One `scenesense.predict.ItemPrediction` per input, in order.

        Examples:
            >>> text_run = scenesense.load(text_run_dir)  # a run trained on extracted text features
            >>> result = text_run.predict(["What a wonderful day!", "Leave me alone."])
            >>> [item.label in text_run.spec.label_names for item in result.items]
            [True, True]
        """
        return predict_inputs(self.run_dir, inputs, batch_size=batch_size, device=device, window_s=window_s,
                              transcribe=transcribe)

    def evaluate(self, *, store: str | Path | None = None, split: str | None = None,
                 csv: str | Path | None = None, root: str | Path | None = None,
                 params: dict[str, Any] | None = None, output_dir: str | Path | None = None,
                 accelerator: str | None = None, logit_adjust: float | None = None) -> api.EvalResult:
        """Score this run on labelled data (`scenesense.api.evaluate`, same arguments).

        Without ``store``, ``csv`` or ``root`` it scores ``split`` (default ``test``) of the run's
        own feature store (``spec.store``). Predictions and metrics are written under
        ``output_dir`` (default ``<run_dir>/eval/<data name>``).

        Examples:
            >>> run = scenesense.load(run_dir)
            >>> scores = run.evaluate(split="test")
            >>> scores.metrics["n"], scores.predictions_csv.name
            (32, 'predictions.csv')
        """
        if store is None and csv is None and root is None:
            store = self.spec.store
        return api.evaluate(self.run_dir, store=store, split=split, csv=csv, root=root, params=params,
                            output_dir=output_dir, accelerator=accelerator, logit_adjust=logit_adjust)


def _config_layer(config: ConfigSource) -> dict[str, Any]:
    if isinstance(config, ExperimentConfig):
        return to_dict(config)
    if isinstance(config, Mapping):
        return dict(config)
    return load_yaml(config)


def _override_layer(key: str, value: Any) -> dict[str, Any]:  # noqa: ANN401
    """``("trainer__epochs", 2)`` -> ``{"trainer": {"epochs": 2}}``."""
    *parents, leaf = key.split("__")
    layer: dict[str, Any] = {leaf: value}
    for parent in reversed(parents):
        layer = {parent: layer}
    return layer


def resolve(config: ConfigSource, **overrides: Any) -> ExperimentConfig:  # noqa: ANN401
    """The checked configuration `train` uses: defaults < ``config`` < ``overrides``.

    Resolved as by ``scenesense train`` (`scenesense.recipes.resolve_config`): ``modalities``
    come from the dataset when neither sets them, and every registry name is checked.

    Args:
        config: a YAML file path; a nested mapping over the defaults, e.g.
            ``{"data": {"dataset": "synthetic"}, "trainer": {"epochs": 2}}``; or an
            `scenesense.config.ExperimentConfig` (used as given: all its values are set).
        overrides: config values over ``config``, one keyword argument per dotted key with
            ``__`` in place of each dot: ``trainer__epochs=2`` sets ``trainer.epochs``,
            ``model__fusion__name="hadamard"`` sets ``model.fusion.name``.

    Raises:
        ConfigError: an invalid or unknown configuration value.

    Examples:
        >>> from scenesense.run import resolve
        >>> cfg = resolve({"data": {"dataset": "meld", "root": "MELD"}}, trainer__epochs=2)
        >>> cfg.modalities, cfg.trainer.epochs
        (('text',), 2)
    """
    layers = [_config_layer(config), *(_override_layer(k, v) for k, v in overrides.items())]
    return resolve_config(*layers)


def train(config: ConfigSource, run_dir: str | os.PathLike[str] | None = None,
          **overrides: Any) -> Run:  # noqa: ANN401
    """Train one model, select it on the dev split, and return its `Run`.

    Args:
        config: a YAML file path, a nested mapping over the defaults or an
            `scenesense.config.ExperimentConfig` (see `resolve`).
        run_dir: the run folder (default ``<output_dir>/<name>/<timestamp>-s<seed>``); an
            unfinished run there is resumed.
        overrides: config values over ``config``, ``__`` for each dot of the key:
            ``trainer__epochs=2`` sets ``trainer.epochs`` (see `resolve`).

    Returns:
        The finished `Run`.

    Raises:
        ConfigError: an invalid or unknown configuration value (raised before any data is read).

    Examples:
        >>> import tempfile, scenesense
        >>> tmp = tempfile.mkdtemp()
        >>> config = {"data": {"dataset": "synthetic", "cache_dir": tmp,
        ...                    "params": {"n_train": 64, "n_dev": 32, "n_test": 32}},
        ...           "model": {"out_dim": 16, "head_hidden_dim": 16},
        ...           "trainer": {"epochs": 1, "progress": False}}
        >>> run = scenesense.train(config, run_dir=f"{tmp}/run", trainer__lr=1e-3)
        >>> run.spec.modalities, run.config.trainer.lr, run.metrics["epochs_run"]
        (('audio', 'text', 'vision'), 0.001, 1)
    """
    result = api.train(resolve(config, **overrides), run_dir=run_dir)
    return load(result.run_dir)


def load(run_dir: str | os.PathLike[str]) -> Run:
    """The `Run` in a finished run folder (its config, spec and dev metrics; the model's
    weights load when it predicts or evaluates).

    Raises:
        FileNotFoundError: ``"<run_dir>: not a finished run (missing <file>)"``.
        ValueError: an invalid ``config.yaml`` or ``model_spec.json``.

    Examples:
        >>> run = scenesense.load(run_dir)  # e.g. the run_dir of a scenesense.train(...) run
        >>> run.metrics["split"], run.spec.task
        ('dev', 'classification')
    """
    path = Path(run_dir)
    for name in (*FINISHED_FILES, METRICS_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: not a finished run (missing {name})")
    metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    return Run(path, read_config(path), read_spec(path / SPEC_FILE), metrics)
