"""Format adapters: each module registers ``DATASETS`` sources for one family of published files."""

from __future__ import annotations

from scenesense.data.formats import csd as csd
from scenesense.data.formats import meld_features as meld_features
from scenesense.data.formats import meld_text as meld_text
from scenesense.data.formats import mmsa as mmsa
from scenesense.data.formats import mult as mult
from scenesense.data.formats import openface as openface
from scenesense.data.formats import ravdess as ravdess
from scenesense.data.formats import table as table

__all__ = ["csd", "meld_features", "meld_text", "mmsa", "mult", "openface", "ravdess", "table"]
