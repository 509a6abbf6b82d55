"""Packages whose public names load on first use (PEP 562), so importing the package stays cheap.

A package lists ``name -> defining module`` and gets a module ``__getattr__`` and ``__dir__``;
``from package import name`` and ``package.name`` import the defining module then, once. Static
tools (type checkers, the API reference) read the same names from ``if TYPE_CHECKING:`` imports.

An export may share its name with the submodule that defines it (``scenesense.data.collate``, the
function, from module ``scenesense.data.collate``). Importing a submodule binds it on its package
under its own name, which would hide such an export; the package's module class keeps the export
there instead, as an eager ``from .collate import collate`` after the import would.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

_EXPORTS = "_lazy_exports"  # the package's name -> defining module map, in its __dict__


class _LazyPackage(types.ModuleType):
    """A package module on which a submodule never hides the export of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:  # noqa: ANN401
        exports: Mapping[str, str] = self.__dict__.get(_EXPORTS, {})
        if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__:
            value = getattr(value, name)  # the import system binding submodule `name`: keep the export
        super().__setattr__(name, value)


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` map to their defining modules."""
    module = sys.modules[package]
    module.__dict__[_EXPORTS] = dict(names)
    module.__class__ = _LazyPackage

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(module, name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names))

    return __getattr__, __dir__
