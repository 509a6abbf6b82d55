"""Dataset sources: the registry `scenesense.datasets.sources.DATASETS` and every adapter.

`scenesense.datasets.sources` holds the `scenesense.datasets.sources.DatasetSource`
contract, the registry and the built-in ``synthetic`` and ``store`` sources; each other module
registers the sources of one family of published files. Importing this package (or any module in
it) fills the registry. Datasets sit above extraction: an adapter may run extractors, extraction
never imports a dataset.
"""

from __future__ import annotations

from scenesense.datasets import csd as csd
from scenesense.datasets import meld_features as meld_features
from scenesense.datasets import meld_text as meld_text
from scenesense.datasets import mmsa as mmsa
from scenesense.datasets import mult as mult
from scenesense.datasets import openface as openface
from scenesense.datasets import ravdess as ravdess
from scenesense.datasets import sources as sources
from scenesense.datasets import table as table

__all__ = ["csd", "meld_features", "meld_text", "mmsa", "mult", "openface", "ravdess", "sources", "table"]
