"""The generic registry; each extension kind has one instance, in the package that fills it.

``ENCODERS`` (`scenesense.encoders`), ``FUSIONS`` (`scenesense.fusions`), ``CONTEXTS``
(`scenesense.models.context`), ``LOSSES`` (`scenesense.training.losses`), ``DATASETS``
(`scenesense.datasets.sources`), ``EXTRACTORS`` (`scenesense.extraction.base`) and ``RECIPES``
(`scenesense.recipes`). Each package's ``__init__`` imports all its modules, so a registry is
complete wherever it is imported from. The registries are the single source of truth for configs,
CLI choices, ``scenesense list`` and the contract tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps short snake_case names to classes or factories.

    Args:
        kind: what is registered, used in error messages (e.g. ``"fusion"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator registering ``obj`` under ``name`` (warns when overwriting)."""

        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                warnings.warn(f"overwriting {self.kind} {name!r} in the registry", stacklevel=2)
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the entry called ``name``; ``KeyError`` lists the valid names."""
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; choose from {self.names()}") from None

    def create(self, name: str, **kwargs: Any) -> Any:  # noqa: ANN401
        """Instantiate entry ``name`` with ``kwargs``, dropping those that are ``None``."""
        factory: Any = self.get(name)
        return factory(**{k: v for k, v in kwargs.items() if v is not None})

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

