"""Import every module that registers a component, so the registries are complete.

Importing this module is the one place that fills ``ENCODERS``, ``FUSIONS``, ``DATASETS``,
``EXTRACTORS``, ``LOSSES``, ``RECIPES`` and ``CONTEXTS``; nothing else happens at import.
"""

from __future__ import annotations

import scenesense.data  # noqa: F401
import scenesense.encoders  # noqa: F401
import scenesense.extraction  # noqa: F401
import scenesense.fusions  # noqa: F401
import scenesense.models.context  # noqa: F401
import scenesense.recipes  # noqa: F401
import scenesense.training  # noqa: F401
