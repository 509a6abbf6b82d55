"""The root folder of scenesense's caches (derived stores, assembled models, traced text models).

Nothing is created here; each cache makes its own sub-folder under `cache_root` when it first writes.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SCENESENSE_CACHE"
"""The environment variable naming the cache root (unset or empty: ``~/.cache/scenesense``)."""


def cache_root() -> Path:
    """``$SCENESENSE_CACHE``, else ``~/.cache/scenesense`` (``~`` expanded; read at each call)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "scenesense").expanduser()
