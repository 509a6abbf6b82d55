"""Dataset sources: each ``DATASETS`` entry turns files (or nothing) into a feature store.

A source is a `DatasetSource` subclass registered by name. Its `DatasetSource.convert`
writes ``<out>/<split>.h5`` files (read by `scenesense.data.dataset.FeatureStoreDataset`);
`DatasetSource.prepare` does that once per distinct input and caches the store under
``<cache_dir>/<name>/<hash of the inputs' fingerprint and the parameters>``;
`DatasetSource.validate` checks a source against its published facts without converting.

Registered here: ``synthetic`` (the built-in benchmark) and ``store`` (an existing store folder).
Format adapters live in `scenesense.datasets`; importing any module of `scenesense.datasets`
fills `DATASETS` with all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from scenesense.config import ConfigError, DataConfig
from scenesense.data.store import VERSION, StoreError, find_store_splits, open_store_split
from scenesense.data.synthetic import DESIGN_VERSION, generate_synthetic
from scenesense.data.validation import ValidationReport
from scenesense.registry import Registry
from scenesense.types import MODALITIES
from scenesense.utils.cache import cache_root
from scenesense.utils.io import walk_files

logger = logging.getLogger(__name__)

_SMALL_FILE = 64 << 20  # inputs up to 64 MiB are fingerprinted by content, larger ones by size+mtime


def root_env_var(dataset: str) -> str:
    """The environment variable that names a dataset's root when ``data.root`` is unset:
    ``SCENESENSE_<NAME>_ROOT``, e.g. ``SCENESENSE_MELD_ROOT``."""
    return "SCENESENSE_" + "".join(c if c.isalnum() else "_" for c in dataset.upper()) + "_ROOT"


def default_cache_dir(cfg: DataConfig | None = None) -> Path:
    """``cfg.cache_dir``, else ``$SCENESENSE_CACHE``, else ``~/.cache/scenesense``."""
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return cache_root()


def digest(value: Any) -> str:  # noqa: ANN401
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(paths: list[Path]) -> list[dict[str, Any]]:
    """Identity of input files: name and SHA-256 (small files) or name, size and mtime (large)."""
    out = []
    for p in sorted(paths):
        stat = p.stat()
        entry: dict[str, Any] = {"name": p.name, "size": stat.st_size}
        if stat.st_size <= _SMALL_FILE:
            entry["sha256"] = file_sha256(p)
        else:
            entry["mtime_ns"] = stat.st_mtime_ns
        out.append(entry)
    return out


def is_complete(path: Path) -> bool:
    """True when ``path`` is a readable, complete store split file."""
    try:
        open_store_split(path)
    except StoreError:
        return False
    return True


class DatasetSource(ABC):
    """A registered dataset: what files it reads, how it converts them, how it is checked.

    Subclasses set ``defaults`` (every accepted ``data.params`` key with its default),
    ``needs_root`` (and ``root_hint``), ``modalities`` when they hold fewer than all three,
    implement `convert`, and usually `inputs` and `validate`.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    needs_root: ClassVar[bool] = True
    root_hint: ClassVar[str] = ""
    """What ``data.root`` must name, said when it is missing: "the folder holding ... (--root path/to/X)"."""
    modalities: ClassVar[tuple[str, ...]] = MODALITIES
    """The modalities its stores hold: a config that names none trains on these."""
    score_all: ClassVar[Mapping[str, Any]] = {}
    """Parameters that put every sample under a root into one ``test`` split (scoring a copy at any path)."""

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``defaults`` updated with ``given``; unknown keys are a `ConfigError`."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ConfigError(f"data.params: unknown key(s) {unknown} for dataset {self.name!r}; "
                              f"valid keys are {sorted(self.defaults)}")
        return {**self.defaults, **given}

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The files `convert` reads (their fingerprint keys the cache); default: all under root."""
        if root is None:
            return []
        return sorted(p for p in walk_files(root) if p.is_file() and not p.name.startswith("."))

    @abstractmethod
    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write ``<out>/<split>.h5`` for every split the source has.

        Args:
            root: the folder (or file) holding the source; ``None`` when ``needs_root`` is False.
            out: the store folder to write.
            params: the complete parameters (`params`).

        Returns:
            split name -> written file.
        """

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """Check the source against its published facts (counts, labels, keys, alignment)."""
        raise NotImplementedError(f"dataset {self.name!r} has no published facts to validate against")

    def prepare(self, cfg: DataConfig, cache_dir: Path) -> Path:
        """Convert once per distinct input and parameters; return the cached store folder.

        Raises:
            ConfigError: a missing or superfluous ``root``, or unknown parameters.
        """
        params = self.params(cfg.params)
        root = self.resolve_root(cfg)
        out = Path(cache_dir) / self.name / digest(self.identity(root, params))
        expected = self.splits(root, params)
        if not expected or not all(is_complete(out / f"{s}.h5") for s in expected):
            logger.info("converting dataset %r into %s", self.name, out)
            self.convert(root, out, params)
        return out

    def identity(self, root: Path | None, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the cached store depends on: input fingerprints, parameters, versions."""
        return {"inputs": fingerprint(self.inputs(root, params)), "params": dict(params), "store": VERSION,
                "version": self.version()}

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """Splits `convert` will write (``[]``: unknown until converted, always convert)."""
        return []

    def version(self) -> int:
        """Bump in a subclass when its conversion changes, so cached stores are rebuilt."""
        return 1

    def given_root(self, root: str | None) -> str | None:
        """``root``, else the environment variable `root_env_var` names (for a source with files)."""
        if root or not self.needs_root:
            return root
        return os.environ.get(root_env_var(self.name)) or None

    def modalities_at(self, root: str | None) -> tuple[str, ...]:
        """The modalities a config that names none trains on: ``modalities`` (a store source reads
        them from the files at ``root``)."""
        return self.modalities

    def check_root(self, root: str | None) -> None:
        """Raise a `ConfigError` for a missing root (``data.root`` or its environment variable; the
        message names what it must hold, ``root_hint``) or for one given to a source without files."""
        if not self.needs_root:
            if root:
                raise ConfigError(f"data.root must be unset for the {self.name} dataset, got {root!r}")
            return
        if not self.given_root(root):
            hint = f": {self.root_hint}" if self.root_hint else ""
            raise ConfigError(f"data.root must name the source of dataset {self.name!r}{hint}, "
                              f"or set {root_env_var(self.name)}")

    def resolve_root(self, cfg: DataConfig) -> Path | None:
        """The root as a path (``cfg.root``, else its environment variable; `check_root` first);
        ``None`` for a source without files."""
        self.check_root(cfg.root)
        given = self.given_root(cfg.root)
        if not given:
            return None
        root = Path(given).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder (data.root of dataset {self.name!r})")
        return root


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")
"""Every dataset source class by name; `scenesense.datasets` imports each format that registers one."""


def register_source(name: str) -> Any:  # noqa: ANN401
    """Class decorator: set ``cls.name`` and register the class in ``DATASETS``."""

    def decorator(cls: type[DatasetSource]) -> type[DatasetSource]:
        cls.name = name
        return DATASETS.register(name)(cls)

    return decorator


def get_source(name: str) -> DatasetSource:
    """An instance of the registered source ``name`` (``KeyError`` lists the valid names)."""
    return DATASETS.get(name)()


def prepare_dataset(cfg: DataConfig, cache_dir: str | Path | None = None) -> Path:
    """Materialise the store of ``cfg.dataset`` (see `default_cache_dir`) and return its folder."""
    source = get_source(cfg.dataset)
    return source.prepare(cfg, Path(cache_dir) if cache_dir is not None else default_cache_dir(cfg))


@register_source("synthetic")
class SyntheticSource(DatasetSource):
    """The built-in synthetic benchmark (`scenesense.data.synthetic`).

    ``data.params`` may set any `scenesense.data.synthetic.generate_synthetic` argument.
    """

    defaults: ClassVar[Mapping[str, Any]] = {
        "n_train": 2400, "n_dev": 600, "n_test": 600, "seed": 0, "dim": 32, "min_len": 12, "max_len": 20,
        "noise": 1.0, "missing_rate": 0.0,
    }
    needs_root: ClassVar[bool] = False

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Generate the benchmark into ``out``."""
        generate_synthetic(out, **params)
        return {s: out / f"{s}.h5" for s in ("train", "dev", "test")}

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """Always train, dev and test."""
        return ["train", "dev", "test"]

    def version(self) -> int:
        """The benchmark's design version."""
        return DESIGN_VERSION


@register_source("store")
class StoreSource(DatasetSource):
    """An existing store folder at ``data.root``, used in place (nothing is converted)."""

    root_hint: ClassVar[str] = "a store folder holding train.h5 and dev.h5 (--root path/to/store)"

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """A store needs no conversion."""
        raise ConfigError("dataset 'store' is already a feature store; there is nothing to convert")

    def modalities_at(self, root: str | None) -> tuple[str, ...]:
        """The modalities of the feature sets in ``<root>/train.h5`` (sorted); all three when there
        is no such readable file yet (`prepare` then names the problem)."""
        given = self.given_root(root)
        train = find_store_splits(given).get("train") if given and Path(given).is_dir() else None
        if train is None:
            return self.modalities
        try:
            found = {info.modality for info in open_store_split(train).features.values()}
        except (StoreError, OSError):
            return self.modalities
        return tuple(m for m in MODALITIES if m in found) or self.modalities

    def prepare(self, cfg: DataConfig, cache_dir: Path) -> Path:
        """Validate the train and dev split files at ``cfg.root`` and return that folder.

        Raises:
            ConfigError: no ``root``, or parameters given.
            StoreError: missing or invalid split files.
        """
        self.params(cfg.params)
        root = self.resolve_root(cfg)
        assert root is not None
        if not root.is_dir():
            raise StoreError(f"{root}: not a store directory")
        splits = find_store_splits(root)
        for split in (cfg.train_split, cfg.dev_split):
            if split not in splits:
                raise StoreError(f"{root}: no {split}.h5 (has {sorted(splits)})")
            open_store_split(splits[split])
        return root
