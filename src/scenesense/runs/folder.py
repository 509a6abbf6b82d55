"""The files of a run folder, and `load_run`, which rebuilds its trained model.

A finished run folder (written by `scenesense.api.train`) holds `CONFIG_FILE`,
`SPEC_FILE` (`scenesense.runs.spec`), the best weights `CHECKPOINT_FILE`, the
resume file `LAST_FILE`, the dev scores `METRICS_FILE` and `PREDICTIONS_FILE`,
`TRAIN_LOG` and figures. Later steps add ``eval/<data name>/`` (`EVAL_DIR`),
`ROBUSTNESS_FILE`, `EFFICIENCY_FILE` and, in an experiment, `CELL_FILE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from torch import nn

from scenesense.config import ExperimentConfig, from_dict, load_yaml
from scenesense.models.builders import build_model
from scenesense.runs.spec import RunSpec, read_spec
from scenesense.training.checkpoint import CHECKPOINT_FILE, CheckpointError, load_checkpoint
from scenesense.training.checkpoint import LAST_FILE as LAST_FILE

CONFIG_FILE = "config.yaml"
SPEC_FILE = "model_spec.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
TRAIN_LOG = "train.log"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
LOSS_CURVES_FILE = "loss_curves.png"
MODALITY_WEIGHTS_FILE = "modality_weights.png"
ATTENTION_FILE = "attention.png"
EVAL_DIR = "eval"
ROBUSTNESS_FILE = "robustness.json"
EFFICIENCY_FILE = "efficiency.json"
CELL_FILE = "cell.json"
FINISHED_FILES = (CONFIG_FILE, SPEC_FILE, CHECKPOINT_FILE)
"""What `load_run` needs: a folder without one of them is not a finished run."""


class LoadedRun(NamedTuple):
    """A trained run rebuilt from its folder: ``config, spec, model = load_run(run_dir)``."""

    config: ExperimentConfig
    spec: RunSpec
    model: nn.Module  # in eval mode, on the CPU


def read_config(run_dir: str | Path) -> ExperimentConfig:
    """The run's ``config.yaml`` as an `scenesense.config.ExperimentConfig` (strictly checked)."""
    return from_dict(ExperimentConfig, load_yaml(Path(run_dir) / CONFIG_FILE))


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild a trained model from its run folder (config, model spec, best weights).

    Raises:
        FileNotFoundError: ``"<run_dir>: not a finished run (missing <file>)"``.
        ValueError: an invalid ``model_spec.json`` or config.
        CheckpointError: the checkpoint is not a scenesense checkpoint, or not the weights of this model.
    """
    run_path = Path(run_dir)
    for name in FINISHED_FILES:
        if not (run_path / name).exists():
            raise FileNotFoundError(f"{run_path}: not a finished run (missing {name})")
    cfg = read_config(run_path)
    spec = read_spec(run_path / SPEC_FILE)
    model = build_model(cfg.model, cfg.modalities, spec.feature_dims, spec.feature_kinds,
                        len(spec.label_names), num_speakers=len(spec.speaker_vocabulary))
    path = run_path / CHECKPOINT_FILE
    state = load_checkpoint(path)
    weights = state.get("model", state)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as err:
        reason = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{path}: not the weights of this run's model ({reason})") from None
    model.eval()
    return LoadedRun(cfg, spec, model)
