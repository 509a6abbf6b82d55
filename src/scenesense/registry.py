"""The generic registry; each extension kind has one instance, in the package that fills it.

``ENCODERS`` (`scenesense.encoders`), ``FUSIONS`` (`scenesense.fusions`), ``CONTEXTS``
(`scenesense.models.context`), ``LOSSES`` (`scenesense.training.losses`), ``DATASETS``
(`scenesense.datasets.sources`), ``EXTRACTORS`` (`scenesense.extraction.base`) and ``RECIPES``
(`scenesense.recipes`). Each package's ``__init__`` imports all its modules, so a registry is
complete wherever it is imported from. The registries are the single source of truth for configs,
CLI choices, ``scenesense list`` and the contract tests.

Your own components register when their module is imported. `load_plugins` imports them for the
command line (and for the worker processes of an experiment): every module an installed package
declares as an entry point of the group ``scenesense.plugins``, and every module named in the
environment variable ``SCENESENSE_PLUGINS`` (comma-separated).
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
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



PLUGIN_GROUP = "scenesense.plugins"
"""Entry-point group whose modules `load_plugins` imports, e.g. in a package's ``pyproject.toml``:
``[project.entry-points."scenesense.plugins"] my_components = "my_components"``."""

PLUGINS_ENV = "SCENESENSE_PLUGINS"
"""Environment variable naming more modules to import, comma-separated: ``my_components,lab.fusions``."""


class PluginError(RuntimeError):
    """A plugin module could not be imported; the message names it and where it was declared."""


def load_plugins() -> list[str]:
    """Import every plugin module (entry points of `PLUGIN_GROUP`, then `PLUGINS_ENV`), once each.

    Returns:
        The names of the modules imported, in order.

    Raises:
        PluginError: a module failed to import (its own error in the message).
    """
    declared = [(ep.value.split(":")[0].strip(), f"entry point {ep.name!r} of group {PLUGIN_GROUP}")
                for ep in entry_points(group=PLUGIN_GROUP)]
    declared += [(name.strip(), PLUGINS_ENV) for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]
    loaded: list[str] = []
    for module, where in declared:
        if module in loaded:
            continue
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 - any failure of a user's module is reported as one line
            raise PluginError(f"plugin module {module!r} ({where}) failed to import: "
                              f"{type(err).__name__}: {err}") from err
        loaded.append(module)
    return loaded
