"""Format adapters: each module registers one ``DATASETS`` source (imported here, in order)."""

from __future__ import annotations

from scenesense.data.formats import meld_text as meld_text

__all__ = ["meld_text"]
