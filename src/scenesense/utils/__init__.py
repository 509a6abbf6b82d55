"""Small helpers: atomic file writes, seeding, optional dependencies, pretrained model folders by name."""

from __future__ import annotations

from scenesense.utils.io import atomic_save_with as atomic_save_with
from scenesense.utils.io import atomic_torch_save as atomic_torch_save
from scenesense.utils.io import atomic_write_bytes as atomic_write_bytes
from scenesense.utils.io import atomic_write_text as atomic_write_text
from scenesense.utils.io import write_json as write_json

__all__ = ["atomic_save_with", "atomic_torch_save", "atomic_write_bytes", "atomic_write_text", "write_json"]
