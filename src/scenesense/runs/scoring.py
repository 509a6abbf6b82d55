"""Data for a trained run: the split files it scores, checked against it, and how its model reads them.

`scored_data_file` turns what a user names (a store, a split, a MELD-format CSV, a dataset
root) into one split file; `open_scored_split` opens it as a dataset checked against the
run's spec; `batching` gives the dataset and collate function the run's model reads
(utterances, or whole dialogues for a model with dialogue context).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from scenesense.config import ExperimentConfig
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.dialogues import DialogueCollate, DialogueDataset
from scenesense.datasets.meld_text import extract_meld_for_run
from scenesense.data.labels import UNLABELLED
from scenesense.datasets.sources import default_cache_dir, get_source, prepare_dataset
from scenesense.runs.spec import RunSpec
from scenesense.training.loaders import CollateFn
from scenesense.training.losses import class_priors_from_dataset


def split_file(store_dir: Path, split: str) -> Path:
    """``<store_dir>/<split>.h5``; FileNotFoundError naming the splits the store has if it is missing."""
    path = store_dir / f"{split}.h5"
    if not path.exists():
        have = sorted(p.stem for p in store_dir.glob("*.h5"))
        raise FileNotFoundError(f"{store_dir}: no split {split!r} in the store (it has {have})")
    return path


def require_labels(dataset: FeatureStoreDataset, action: str) -> None:
    """Refuse a split holding unlabelled rows (class id -1, e.g. clips extracted for prediction)."""
    if dataset.label_space.is_classification:
        unlabelled = int((dataset.labels == UNLABELLED).sum())
        if unlabelled:
            raise ValueError(f"{dataset.split.path}: {unlabelled} of {len(dataset)} rows have no label; cannot "
                             f"{action} them (use `scenesense predict` for unlabelled data)")


def batching(cfg: ExperimentConfig, spec: RunSpec, dataset: Any,  # noqa: ANN401
             grouping: FeatureStoreDataset | None = None) -> tuple[Any, CollateFn]:
    """The dataset and collate function a run's model reads.

    Utterances with `scenesense.data.collate.collate`; for a model with dialogue context
    (``model.context``), whole dialogues (grouped by the store's dialogue ids and positions,
    taken from ``grouping``, default ``dataset`` itself) with a
    `scenesense.data.dialogues.DialogueCollate` over the run's speaker vocabulary.
    """
    if cfg.model.context is None:
        return dataset, collate
    split = (grouping if grouping is not None else dataset).split
    dialogues = DialogueDataset(dataset, split.dialogue_ids, [int(p) for p in split.positions], split.ids)
    return dialogues, DialogueCollate(spec.speaker_vocabulary, split.label_space.task)


def open_scored_split(cfg: ExperimentConfig, spec: RunSpec, data_file: Path) -> FeatureStoreDataset:
    """A labelled split file to score with a run, checked against it (labels, class names, feature sizes).

    Raises:
        ValueError: unlabelled rows, other class names, or other feature sizes than the run's.
    """
    dataset = FeatureStoreDataset(data_file, cfg.modalities, spec.feature_names, speaker_norm=cfg.data.speaker_norm)
    require_labels(dataset, "score")
    if dataset.label_space.names != spec.label_names:
        raise ValueError(f"{data_file}: labels {list(dataset.label_space.names)} differ from the run's "
                         f"{list(spec.label_names)}")
    for m in cfg.modalities:
        if dataset.feature_dims[m] != spec.features[m].dim:
            raise ValueError(f"{data_file}: {m} features have {dataset.feature_dims[m]} dims, "
                             f"the run was trained on {spec.features[m].dim}")
    return dataset


def scored_data_file(cfg: ExperimentConfig, spec: RunSpec, *, store: str | Path | None = None,
                     split: str | None = None, csv: str | Path | None = None, root: str | Path | None = None,
                     params: dict[str, Any] | None = None) -> tuple[Path, str]:
    """The split file holding the labelled data to score a run on, and a name for that data.

    Exactly one of: ``store``, a store folder (its split ``split``, default ``test``) or split
    file; ``root``, a dataset root converted by the run's dataset source with the run's
    parameters, updated with the source's ``score_all`` and ``params`` (split ``split``, default
    ``test``); ``csv``, a MELD-format CSV featurised with the run's text extractor.

    Raises:
        ValueError: not exactly one of ``store``, ``csv`` and ``root``.
        FileNotFoundError: a missing store, store file or split.
    """
    if sum(x is not None for x in (store, csv, root)) != 1:
        raise ValueError("evaluate needs exactly one of a store (file or folder), a MELD-format CSV, "
                         "or a dataset root in the run's format")
    if store is not None:
        path = Path(store)
        if path.is_dir():
            return split_file(path, split or "test"), split or "test"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such store file or folder")
        return path, path.stem
    if root is not None:
        source = get_source(cfg.data.dataset)
        data = replace(cfg.data, root=str(root), params={**cfg.data.params, **source.score_all, **(params or {})})
        return split_file(prepare_dataset(data), split or "test"), Path(root).name
    csv_path = Path(csv)  # type: ignore[arg-type]
    text = spec.provenance_of("text") or {}
    return extract_meld_for_run(csv_path, text, spec.label_names, default_cache_dir()), csv_path.stem


def training_class_priors(cfg: ExperimentConfig, spec: RunSpec) -> torch.Tensor:
    """``[C]`` class priors of a run's training split (its feature store, rebuilt if it is gone)."""
    train_file = split_file(prepare_dataset(cfg.data), cfg.data.train_split)
    train_set = FeatureStoreDataset(train_file, cfg.modalities, spec.feature_names,
                                    speaker_norm=cfg.data.speaker_norm)
    if train_set.label_space.names != spec.label_names:
        raise ValueError(f"{train_file}: labels {list(train_set.label_space.names)} differ from the run's "
                         f"{list(spec.label_names)}")
    return class_priors_from_dataset(train_set)
