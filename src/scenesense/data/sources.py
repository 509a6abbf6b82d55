"""Dataset sources: each ``DATASETS`` entry materialises a feature store directory.

An entry is a function ``prepare(cfg: DataConfig, cache_dir: Path) -> Path``; the returned folder
holds ``<split>.h5`` files that :class:`~scenesense.data.dataset.FeatureStoreDataset` reads.

Registered: ``synthetic`` (generated, cached by parameters), ``store`` (an existing store
directory at ``cfg.root``) and ``meld`` (MELD CSVs at ``cfg.root``; text features extracted once
and cached by CSV bytes + extractor parameters).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scenesense.config import ConfigError, DataConfig
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS
from scenesense.data.meld import MELD_SPLITS, dialogue_positions, find_meld_csv, read_meld_csv
from scenesense.data.store import (
    VERSION,
    FeatureSpec,
    StoreError,
    StoreWriter,
    find_store_splits,
    open_store_split,
)
from scenesense.data.synthetic import DESIGN_VERSION, generate_synthetic
from scenesense.extraction.text import TextExtractor
from scenesense.registry import DATASETS, EXTRACTORS

logger = logging.getLogger(__name__)

SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "n_train": 2400, "n_dev": 600, "n_test": 600, "seed": 0, "dim": 32, "min_len": 12, "max_len": 20,
    "noise": 1.0, "missing_rate": 0.0,
}
MELD_DEFAULTS: dict[str, Any] = {
    "label": "emotion", "extractor": "minilm", "model_path": None, "max_tokens": 50, "batch_size": 64,
    "device": "cpu",
}
_MELD_LABELS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}
_EXTRACT_CHUNK = 1024  # utterances per extractor call / store append


def default_cache_dir(cfg: DataConfig | None = None) -> Path:
    """``cfg.cache_dir``, else ``$SCENESENSE_CACHE``, else ``~/.cache/scenesense``."""
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return Path(os.environ.get("SCENESENSE_CACHE") or Path.home() / ".cache" / "scenesense").expanduser()


def prepare_dataset(cfg: DataConfig, cache_dir: str | Path | None = None) -> Path:
    """Materialise the store of ``cfg.dataset`` (see :func:`default_cache_dir`) and return its folder."""
    prepare = DATASETS.get(cfg.dataset)
    return Path(prepare(cfg, Path(cache_dir) if cache_dir is not None else default_cache_dir(cfg)))


def _params(cfg: DataConfig, defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg.params) - set(defaults))
    if unknown:
        raise ConfigError(f"data.params: unknown key(s) {unknown} for dataset {cfg.dataset!r}; "
                          f"valid keys are {sorted(defaults)}")
    return {**defaults, **cfg.params}


def _digest(value: Any) -> str:  # noqa: ANN401
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _is_complete(path: Path) -> bool:
    try:
        open_store_split(path)
    except StoreError:
        return False
    return True


@DATASETS.register("synthetic")
def prepare_synthetic(cfg: DataConfig, cache_dir: Path) -> Path:
    """The built-in synthetic benchmark (:mod:`scenesense.data.synthetic`).

    ``cfg.params`` may set any :func:`~scenesense.data.synthetic.generate_synthetic` argument; the
    store is cached under ``<cache_dir>/synthetic/<hash of the parameters>`` and regenerated when
    absent or incomplete.

    Raises:
        ConfigError: unknown parameters, or a ``root`` (the synthetic data has none).
    """
    if cfg.root:
        raise ConfigError(f"data.root must be unset for the synthetic dataset, got {cfg.root!r}")
    params = _params(cfg, SYNTHETIC_DEFAULTS)
    key = _digest({"design_version": DESIGN_VERSION, "store": VERSION, **params})
    out = Path(cache_dir) / "synthetic" / key
    if not all(_is_complete(out / f"{split}.h5") for split in ("train", "dev", "test")):
        logger.info("generating the synthetic benchmark in %s", out)
        generate_synthetic(out, **params)
    return out


@DATASETS.register("store")
def prepare_store(cfg: DataConfig, cache_dir: Path) -> Path:  # noqa: ARG001
    """An existing store directory at ``cfg.root``; its train and dev splits are validated.

    Raises:
        ConfigError: no ``root``, or parameters given.
        StoreError: missing or invalid split files.
    """
    _params(cfg, {})
    if not cfg.root:
        raise ConfigError("data.root must name a store directory for dataset 'store'")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise StoreError(f"{root}: store directory does not exist")
    splits = find_store_splits(root)
    for split in (cfg.train_split, cfg.dev_split):
        if split not in splits:
            raise StoreError(f"{root}: no {split}.h5 (has {sorted(splits)})")
        open_store_split(splits[split])
    return root


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract_meld_split(csv_path: str | Path, out_file: str | Path, *, extractor: TextExtractor,
                       label: str = "emotion") -> Path:
    """Read one MELD CSV and write its text features as a store split file.

    Feature sets (both modality ``text``): ``text`` ``[N, T_max <= max_tokens, D]`` token
    sequences with lengths, and ``text_sentence`` ``[N, D]`` sentence vectors. Meta: ids
    ``dia{D}_utt{U}``, dialogue ids ``dia{D}``, positions = rank of Utterance_ID in its dialogue,
    speakers. Rows keep the CSV order.

    Args:
        csv_path: a ``*_sent_emo.csv`` of any split.
        out_file: the split file to write (e.g. ``<store>/dev.h5``).
        extractor: the text extractor (e.g. ``MiniLMTextExtractor()``).
        label: ``"emotion"`` (7 classes) or ``"sentiment"`` (3 classes).

    Returns:
        ``out_file`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: unknown ``label``.
        DataFormatError: the CSV does not follow the MELD format.
    """
    if label not in _MELD_LABELS:
        raise ValueError(f"unknown MELD label {label!r}; expected one of {sorted(_MELD_LABELS)}")
    csv_path = Path(csv_path)
    utterances = read_meld_csv(csv_path)
    positions = dialogue_positions(utterances)
    space = _MELD_LABELS[label]
    provenance = extractor.provenance()
    specs = {
        "text": FeatureSpec("text", "sequence", extractor.dim, max_len=extractor.max_tokens,
                            provenance=provenance),
        "text_sentence": FeatureSpec("text", "vector", extractor.dim, provenance=provenance),
    }
    source = {"dataset": "meld", "csv": csv_path.name, "csv_sha256": _file_sha256(csv_path), "label": label,
              "rows": len(utterances)}
    with StoreWriter(out_file, label_space=space, features=specs, source=source) as writer:
        for start in range(0, len(utterances), _EXTRACT_CHUNK):
            part = utterances[start:start + _EXTRACT_CHUNK]
            features = extractor.extract([u.text for u in part])
            writer.append(
                [u.id for u in part], space.encode(getattr(u, label) for u in part),
                {"text": features.tokens, "text_sentence": list(features.sentence)},
                dialogue_ids=[u.dialogue_key for u in part], positions=positions[start:start + len(part)],
                speakers=[u.speaker for u in part],
            )
            logger.info("%s: %d/%d utterances", csv_path.name, start + len(part), len(utterances))
    return Path(out_file)


@DATASETS.register("meld")
def prepare_meld(cfg: DataConfig, cache_dir: Path) -> Path:
    """MELD text features from the CSVs under ``cfg.root`` (train and dev required, test optional).

    ``cfg.params``: ``label`` (emotion | sentiment), ``extractor`` (``EXTRACTORS`` name) and its
    ``model_path``, ``max_tokens``, ``batch_size``, ``device``. The store is cached under
    ``<cache_dir>/meld/<hash of the CSV bytes + label + extractor provenance>``.

    Raises:
        ConfigError: no ``root`` or unknown parameters.
        FileNotFoundError: a required CSV is missing.
        DataFormatError: a CSV does not follow the MELD format.
    """
    if not cfg.root:
        raise ConfigError("data.root must name the folder holding the MELD CSVs for dataset 'meld'")
    params = _params(cfg, MELD_DEFAULTS)
    label = params.pop("label")
    if label not in _MELD_LABELS:
        raise ConfigError(f"data.params.label must be one of {sorted(_MELD_LABELS)}, got {label!r}")
    root = Path(cfg.root).expanduser()
    csvs = {split: find_meld_csv(root, split, required=split != "test") for split in MELD_SPLITS}
    found = {split: path for split, path in csvs.items() if path is not None}
    extractor = EXTRACTORS.create(params.pop("extractor"), **params)
    key = _digest({"csv": {s: _file_sha256(p) for s, p in found.items()}, "label": label,
                   "extractor": extractor.provenance(), "store": VERSION})
    out = Path(cache_dir) / "meld" / key
    for split, path in found.items():
        if not _is_complete(out / f"{split}.h5"):
            logger.info("extracting MELD %s text features from %s", split, path)
            extract_meld_split(path, out / f"{split}.h5", extractor=extractor, label=label)
    return out


def extract_meld_for_spec(csv_path: str | Path, spec: Mapping[str, Any], cache_dir: str | Path) -> Path:
    """Featurise a MELD-format CSV (any split, any path) the way a trained run's text was made.

    The extractor is rebuilt from the run's text feature provenance (``extractor`` + ``params``);
    the label set (emotion or sentiment) from its ``label_names``. The split file is cached under
    ``<cache_dir>/meld-eval/<hash of CSV bytes + label + extractor provenance>/<csv stem>.h5``.

    Args:
        csv_path: the CSV to score.
        spec: the run's model spec; needs ``provenance["features"]["text"]`` (as in
            :attr:`FeatureStoreDataset.provenance`) and ``label_names``.
        cache_dir: cache root.

    Returns:
        The store split file.

    Raises:
        ValueError: the run's text features were not made by a registered extractor, or its
            labels are neither the MELD emotions nor the MELD sentiments.
    """
    text = dict(spec.get("provenance", {}).get("features", {}).get("text") or {})
    if text.get("extractor") not in EXTRACTORS or not isinstance(text.get("params"), dict):
        raise ValueError(f"the run's text features were not made by a registered extractor "
                         f"(provenance {text!r}), so a CSV cannot be featurised the same way")
    names = tuple(spec.get("label_names", ()))
    label = next((k for k, space in _MELD_LABELS.items() if space.names == names), None)
    if label is None:
        raise ValueError(f"the run's labels {list(names)} are neither MELD emotions nor sentiments")
    extractor = EXTRACTORS.create(text["extractor"], **text["params"])
    current = extractor.provenance()
    if current != text:
        logger.warning("text extractor differs from the run's (e.g. package versions): %s vs %s",
                       current, text)
    csv_path = Path(csv_path)
    key = _digest({"csv": _file_sha256(csv_path), "label": label, "extractor": current, "store": VERSION})
    out = Path(cache_dir) / "meld-eval" / key / f"{csv_path.stem}.h5"
    if not _is_complete(out):
        extract_meld_split(csv_path, out, extractor=extractor, label=label)
    return out
