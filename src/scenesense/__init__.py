"""scenesense: multimodal emotion recognition; train, evaluate and compare fusion strategies.

The public Python API, also reachable as ``scenesense.run``:

- `train`: train one model from a YAML file, a plain dict or an
  `scenesense.config.ExperimentConfig`, and get its `Run`;
- `load`: the `Run` in a finished run folder;
- `Run`: the folder, its typed `scenesense.runs.RunSpec`, the dev metrics,
  `Run.predict` (raw texts and media) and `Run.evaluate` (labelled data).

Importing ``scenesense`` only reads the package version: the API above loads torch and the
registries on first use. Every registry is complete wherever it is imported from
(`scenesense.registry`).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenesense.run import Run as Run
    from scenesense.run import load as load
    from scenesense.run import train as train

try:
    __version__ = metadata.version("scenesense")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {"Run": "scenesense.run", "load": "scenesense.run", "train": "scenesense.run"}
"""Public name -> the module that defines it, imported on first access."""

__all__ = ["Run", "__version__", "load", "train"]


def __getattr__(name: str) -> Any:  # noqa: ANN401
    if name not in _LAZY:
        raise AttributeError(f"module 'scenesense' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
