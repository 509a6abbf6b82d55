"""Run folders: the typed model spec, the run's file names, and every reader of a finished run.

Layer: above data, models and training, below evaluation, predict, experiment, the API and the
CLI (it imports none of those).

- `scenesense.runs.spec`: `RunSpec` (``model_spec.json``), `read_spec`, `write_spec`;
- `scenesense.runs.folder`: the file names, `load_run`;
- `scenesense.runs.scoring`: the data a run scores and how its model reads it;
- `scenesense.runs.records`: `RunRecord`, the experiment report's view of a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
    from scenesense.runs.folder import ATTENTION_FILE as ATTENTION_FILE
    from scenesense.runs.folder import CELL_FILE as CELL_FILE
    from scenesense.runs.folder import CHECKPOINT_FILE as CHECKPOINT_FILE
    from scenesense.runs.folder import CONFIG_FILE as CONFIG_FILE
    from scenesense.runs.folder import CONFUSION_MATRIX_FILE as CONFUSION_MATRIX_FILE
    from scenesense.runs.folder import EFFICIENCY_FILE as EFFICIENCY_FILE
    from scenesense.runs.folder import EVAL_DIR as EVAL_DIR
    from scenesense.runs.folder import FINISHED_FILES as FINISHED_FILES
    from scenesense.runs.folder import LAST_FILE as LAST_FILE
    from scenesense.runs.folder import LOSS_CURVES_FILE as LOSS_CURVES_FILE
    from scenesense.runs.folder import METRICS_FILE as METRICS_FILE
    from scenesense.runs.folder import MODALITY_WEIGHTS_FILE as MODALITY_WEIGHTS_FILE
    from scenesense.runs.folder import PREDICTIONS_FILE as PREDICTIONS_FILE
    from scenesense.runs.folder import ROBUSTNESS_FILE as ROBUSTNESS_FILE
    from scenesense.runs.folder import SPEC_FILE as SPEC_FILE
    from scenesense.runs.folder import TRAIN_LOG as TRAIN_LOG
    from scenesense.runs.folder import LoadedRun as LoadedRun
    from scenesense.runs.folder import load_run as load_run
    from scenesense.runs.folder import read_config as read_config
    from scenesense.runs.records import RunRecord as RunRecord
    from scenesense.runs.records import find_run_dirs as find_run_dirs
    from scenesense.runs.records import load_runs as load_runs
    from scenesense.runs.records import read_run as read_run
    from scenesense.runs.scoring import batching as batching
    from scenesense.runs.scoring import open_scored_split as open_scored_split
    from scenesense.runs.scoring import require_labels as require_labels
    from scenesense.runs.scoring import scored_data_file as scored_data_file
    from scenesense.runs.scoring import split_file as split_file
    from scenesense.runs.scoring import training_class_priors as training_class_priors
    from scenesense.runs.spec import SCHEMA_VERSION as SCHEMA_VERSION
    from scenesense.runs.spec import FeatureSet as FeatureSet
    from scenesense.runs.spec import RunSpec as RunSpec
    from scenesense.runs.spec import read_spec as read_spec
    from scenesense.runs.spec import write_spec as write_spec

_LAZY = {
    "ATTENTION_FILE": "scenesense.runs.folder",
    "CELL_FILE": "scenesense.runs.folder",
    "CHECKPOINT_FILE": "scenesense.runs.folder",
    "CONFIG_FILE": "scenesense.runs.folder",
    "CONFUSION_MATRIX_FILE": "scenesense.runs.folder",
    "EFFICIENCY_FILE": "scenesense.runs.folder",
    "EVAL_DIR": "scenesense.runs.folder",
    "FINISHED_FILES": "scenesense.runs.folder",
    "LAST_FILE": "scenesense.runs.folder",
    "LOSS_CURVES_FILE": "scenesense.runs.folder",
    "METRICS_FILE": "scenesense.runs.folder",
    "MODALITY_WEIGHTS_FILE": "scenesense.runs.folder",
    "PREDICTIONS_FILE": "scenesense.runs.folder",
    "ROBUSTNESS_FILE": "scenesense.runs.folder",
    "SPEC_FILE": "scenesense.runs.folder",
    "TRAIN_LOG": "scenesense.runs.folder",
    "LoadedRun": "scenesense.runs.folder",
    "load_run": "scenesense.runs.folder",
    "read_config": "scenesense.runs.folder",
    "RunRecord": "scenesense.runs.records",
    "find_run_dirs": "scenesense.runs.records",
    "load_runs": "scenesense.runs.records",
    "read_run": "scenesense.runs.records",
    "batching": "scenesense.runs.scoring",
    "open_scored_split": "scenesense.runs.scoring",
    "require_labels": "scenesense.runs.scoring",
    "scored_data_file": "scenesense.runs.scoring",
    "split_file": "scenesense.runs.scoring",
    "training_class_priors": "scenesense.runs.scoring",
    "SCHEMA_VERSION": "scenesense.runs.spec",
    "FeatureSet": "scenesense.runs.spec",
    "RunSpec": "scenesense.runs.spec",
    "read_spec": "scenesense.runs.spec",
    "write_spec": "scenesense.runs.spec",
}

__all__ = [
    "ATTENTION_FILE", "CELL_FILE", "CHECKPOINT_FILE", "CONFIG_FILE", "CONFUSION_MATRIX_FILE", "EFFICIENCY_FILE",
    "EVAL_DIR", "FINISHED_FILES", "LAST_FILE", "LOSS_CURVES_FILE", "METRICS_FILE", "MODALITY_WEIGHTS_FILE",
    "PREDICTIONS_FILE", "ROBUSTNESS_FILE", "SCHEMA_VERSION", "SPEC_FILE", "TRAIN_LOG", "FeatureSet", "LoadedRun",
    "RunRecord", "RunSpec", "batching", "find_run_dirs", "load_run", "load_runs", "open_scored_split",
    "read_config", "read_run", "read_spec", "require_labels", "scored_data_file", "split_file",
    "training_class_priors", "write_spec",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
