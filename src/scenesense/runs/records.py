"""Finished runs as records of what they scored: the inputs of the experiment report.

A `RunRecord` is read from a run folder's own files: ``config.yaml``, ``metrics.json`` and
``predictions.csv`` (the dev split the run was selected on) or, for another split, the
``eval/<split>/`` scores `scenesense.api.evaluate` wrote, the model spec when there is one, and,
when present, the experiment runner's ``cell.json`` and the robustness and efficiency profiles.
Only the reading is here; the report (grouping, tables, figures) is
`scenesense.evaluation.experiment_report`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.runs.folder import (
    CELL_FILE,
    CONFIG_FILE,
    EFFICIENCY_FILE,
    EVAL_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    ROBUSTNESS_FILE,
    SPEC_FILE,
)
from scenesense.runs.spec import read_spec

RUN_FILES = (CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE)
"""Files every finished run has; a folder without one of them is refused as unfinished."""


@dataclass(frozen=True, eq=False)  # compared by identity: it holds arrays
class RunRecord:
    """One finished classification run, as read from its folder.

    Fields:
        run_dir: the run folder.
        modalities: sorted modality names.
        variant: ``cell.json``'s variant, else the config ``name``.
        seed: ``cell.json``'s seed, else ``metrics.json``'s, else the config's ``trainer.seed``.
        experiment: ``cell.json``'s experiment name (``None`` for a plain run).
        label_names: the ``C`` class names, in class-id order.
        metrics: the scores of ``split``: ``metrics.json`` for the run's dev split, else
            ``eval/<split>/metrics.json``.
        ids: ``N`` utterance ids of the split's ``predictions.csv`` (file order).
        labels: ``[N]`` true class ids.
        preds: ``[N]`` predicted class ids.
        robustness: ``robustness.json`` or ``None``.
        efficiency: ``efficiency.json`` or ``None``.
        split: the scored split (``"dev"``, ``"test"``, ...).
        dataset: the config's ``data.dataset`` (``"synthetic"``, ``"meld"``, ``"store"``, ...).
        store: the training feature store folder of the model spec (``""`` when unknown).
        history: the training history of ``metrics.json`` (per-epoch train and dev loss).
    """

    run_dir: Path
    modalities: tuple[str, ...]
    variant: str
    seed: int
    experiment: str | None
    label_names: tuple[str, ...]
    metrics: dict[str, Any]
    ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    robustness: dict[str, Any] | None
    efficiency: dict[str, Any] | None
    split: str = "dev"
    dataset: str = ""
    store: str = ""
    history: tuple[dict[str, Any], ...] = ()

    @property
    def modality_set(self) -> str:
        """Sorted modality names joined with ``+`` (``"audio+text"``)."""
        return "+".join(self.modalities)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err})") from None


def _read_predictions(path: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    allow_fields_up_to(path.stat().st_size)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(CsvRows(csv.DictReader(handle), path))
    if not rows or not {"id", "label", "pred"} <= set(rows[0]):
        raise ValueError(f"{path}: needs columns id, label, pred and at least one row")
    ids = tuple(r["id"] for r in rows)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: utterance ids repeat")
    return ids, np.array([int(r["label"]) for r in rows]), np.array([int(r["pred"]) for r in rows])


def _scores_of(path: Path, dev: dict[str, Any], dev_split: str, split: str | None,
               store: str) -> tuple[str, dict[str, Any], Path]:
    """The scored split's name, metrics and predictions file: the run's own dev scores when ``split``
    is ``None`` or names the dev split, else ``eval/<split>/``."""
    if split is None or split == dev_split:
        return dev_split, dev, path / PREDICTIONS_FILE
    folder = path / EVAL_DIR / split
    missing = [name for name in (METRICS_FILE, PREDICTIONS_FILE) if not (folder / name).exists()]
    if missing:
        how = f"--store {store} --split {split}" if store else f"--store STORE --split {split}"
        raise ValueError(f"{path}: no {split} scores (missing {EVAL_DIR}/{split}/{', '.join(missing)}); "
                         f"score the run first with `scenesense evaluate {path} {how}`")
    return split, _read_json(folder / METRICS_FILE) or {}, folder / PREDICTIONS_FILE


def read_run(run_dir: str | Path, split: str | None = None) -> RunRecord:
    """Read one finished classification run folder.

    Args:
        run_dir: the run folder.
        split: the scored split to read: ``None`` or the run's dev split (``"dev"``) reads its own
            ``metrics.json`` and ``predictions.csv``; another name (``"test"``) reads
            ``eval/<split>/``, written by `scenesense.api.evaluate`.

    Raises:
        ValueError: if the folder lacks a file of `RUN_FILES` (unfinished run) or the scores of
            ``split``, or the run is a regression run (not supported by the report yet).
    """
    path = Path(run_dir)
    missing = [name for name in RUN_FILES if not (path / name).exists()]
    if missing:
        raise ValueError(f"{path}: not a finished run (missing {', '.join(missing)})")
    config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    metrics = _read_json(path / METRICS_FILE) or {}
    spec = read_spec(path / SPEC_FILE) if (path / SPEC_FILE).exists() else None
    if ("mae" in metrics and "accuracy" not in metrics) or (spec is not None and spec.task == "regression"):
        raise ValueError(f"{path}: regression runs are not supported by the experiment report yet")
    if "accuracy" not in metrics or "per_class" not in metrics:
        raise ValueError(f"{path}: metrics.json has no classification metrics (accuracy, per_class)")
    cell = _read_json(path / CELL_FILE) or {}
    seed = cell.get("seed", metrics.get("seed", config.get("trainer", {}).get("seed")))
    if seed is None:
        raise ValueError(f"{path}: no seed in cell.json, metrics.json or config.yaml")
    data = config.get("data") or {}
    store = spec.store if spec is not None else ""
    dev_split = str(metrics.get("split", data.get("dev_split", "dev")))
    scored_split, scores, predictions = _scores_of(path, metrics, dev_split, split, store)
    if "accuracy" not in scores or "per_class" not in scores:
        raise ValueError(f"{path}: the {scored_split} metrics.json has no classification metrics")
    ids, labels, preds = _read_predictions(predictions)
    return RunRecord(
        run_dir=path, modalities=tuple(sorted(cell.get("modalities") or config.get("modalities") or [])),
        variant=str(cell.get("variant", config.get("name", path.name))), seed=int(seed),
        experiment=cell.get("experiment"),
        label_names=tuple((spec.label_names if spec is not None else ()) or metrics["per_class"]),
        metrics=scores, ids=ids, labels=labels, preds=preds,
        robustness=_read_json(path / ROBUSTNESS_FILE), efficiency=_read_json(path / EFFICIENCY_FILE),
        split=scored_split, dataset=str(data.get("dataset", "")), store=store,
        history=tuple(metrics.get("history") or ()))


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand each path: an experiment folder (one with ``cells/``) gives every ``cells/*/`` run in
    it; a folder that is not a run itself but holds runs (e.g. the demo's) gives those runs.

    Raises:
        ValueError: if a path is not a folder.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ValueError(f"{p}: not a run or experiment folder")
        cells = p / "cells"
        if cells.is_dir():
            out += sorted(d for d in cells.iterdir() if d.is_dir())
        elif (p / CONFIG_FILE).exists():
            out.append(p)
        else:
            out += sorted(d for d in p.iterdir() if (d / CONFIG_FILE).is_file()) or [p]
    return out


def load_runs(run_dirs: Iterable[str | Path], split: str | None = None) -> list[RunRecord]:
    """Read finished runs (experiment folders are expanded, see `find_run_dirs`), each scored on
    ``split`` (``None``: each run's own dev split; see `read_run`).

    Raises:
        ValueError: on an unfinished or regression run, runs with different class names, or two
            runs of the same (modality set, variant, seed).
    """
    runs = [read_run(d, split) for d in find_run_dirs(run_dirs)]
    if not runs:
        raise ValueError("no run folders given")
    seen: dict[tuple[str, str, int], Path] = {}
    for r in runs:
        if r.label_names != runs[0].label_names:
            raise ValueError(f"{r.run_dir}: classes {list(r.label_names)} differ from "
                             f"{runs[0].run_dir}'s {list(runs[0].label_names)}")
        key = (r.modality_set, r.variant, r.seed)
        if key in seen:
            raise ValueError(f"{seen[key]} and {r.run_dir} are both {r.modality_set}/{r.variant} "
                             f"seed {r.seed}")
        seen[key] = r.run_dir
    return runs
