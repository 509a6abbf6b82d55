"""The feature extractor contract: one modality, a known output size, and its provenance."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class FeatureExtractor(ABC):
    """Base class of every registered extractor (``EXTRACTORS``).

    Subclasses set the ``modality`` class attribute, expose ``dim`` and describe themselves in
    :meth:`provenance`, which is stored with every feature set they produce. Heavy dependencies and
    model weights are loaded lazily, on the first extraction, never in ``__init__`` or at import.
    """

    modality: ClassVar[str]

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature size ``D`` of the produced features."""

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """JSON-able description stored with every feature set the extractor produces.

        Keys: ``extractor`` (registry name), ``params`` (constructor arguments that change the
        output, enough to rebuild an equivalent extractor), plus free details such as package
        versions.
        """
