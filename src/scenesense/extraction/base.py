"""The feature extractor contract: what it reads, what it produces, and its provenance.

An extractor reads one kind of input (``text`` strings, ``audio`` or ``video`` media paths) and
produces one or more named outputs per item, each a vector ``[D]`` or a sequence ``[T, D]``.
`FeatureExtractor.extract_batch` returns one result per item, in order: a dict of outputs,
or an `ItemError` saying why that item failed, so one bad file never aborts a batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Literal

import numpy as np

from scenesense.registry import Registry
from scenesense.utils.extras import Needs

Kind = Literal["vector", "sequence"]
InputKind = Literal["text", "audio", "video"]


class ItemError(Exception):
    """One item could not be extracted; the message says why in one line (file named)."""


@dataclass(frozen=True)
class OutputSpec:
    """Shape of one extractor output: ``vector`` rows ``[D]`` or ``sequence`` rows ``[T, D]``."""

    kind: Kind
    dim: int


class FeatureExtractor(ABC):
    """Base class of every registered extractor (``EXTRACTORS``).

    Subclasses set ``modality`` (the model modality the outputs feed: text, audio, vision) and
    ``input_kind`` (what a manifest row must provide: ``text``, or an ``audio``/``video`` media
    path; audio extractors also accept video files and read their audio track). Heavy
    dependencies and model weights load lazily, on the first extraction, never in ``__init__``
    or at import. An extractor whose dependencies come from a ``scenesense[...]`` extra declares
    them in ``needs`` and calls ``needs.check()`` in ``__init__`` (it finds the modules without
    importing them), so a missing extra fails before any work; it imports them with
    ``needs.require(module)``. Every output is float32 and finite; a sequence has ``T >= 1``.
    """

    modality: ClassVar[str]
    input_kind: ClassVar[InputKind]
    needs: ClassVar[Needs | None] = None
    """The extra the extractor imports from (``None``: core only); ``scenesense list`` shows it when missing."""

    @abstractmethod
    def outputs(self) -> dict[str, OutputSpec]:
        """Name -> shape of every output `extract_batch` produces for an item."""

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """JSON-able description stored with every feature set the extractor produces.

        Keys: ``extractor`` (registry name), ``params`` (constructor arguments that change the
        output: ``EXTRACTORS.create(p["extractor"], **p["params"])`` rebuilds an equivalent
        extractor), plus free details such as package versions.
        """

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """Outputs for one item (a text, or a media path); raise `ItemError` on bad input."""
        raise NotImplementedError(f"{type(self).__name__} implements extract_batch only")

    def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
        """One result per item, in order: its outputs, or the `ItemError` that stopped it.

        The default calls `extract_one` per item; batched models override this.
        """
        results: list[dict[str, np.ndarray] | ItemError] = []
        for item in items:
            try:
                results.append(self.extract_one(item))
            except ItemError as err:
                results.append(err)
        return results


EXTRACTORS: Registry[type[FeatureExtractor]] = Registry("extractor")
"""Every extractor class by name; `scenesense.extraction` imports each module that registers one."""


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` when absent), for provenance."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_output(name: str, value: np.ndarray, spec: OutputSpec, item: str) -> np.ndarray:
    """Validate one output against its spec; returns it as float32, raises `ItemError`."""
    array = np.asarray(value, dtype=np.float32)
    want = 1 if spec.kind == "vector" else 2
    if array.ndim != want or array.shape[-1] != spec.dim or (want == 2 and array.shape[0] < 1):
        expected = f"[{spec.dim}]" if want == 1 else f"[T >= 1, {spec.dim}]"
        raise ItemError(f"{item}: output {name!r} has shape {list(array.shape)}, expected {expected}")
    if not np.isfinite(array).all():
        raise ItemError(f"{item}: output {name!r} holds NaN or inf values")
    return array
