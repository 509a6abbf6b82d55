"""Data layer: label spaces, the HDF5 feature store, collation, dialogues and the synthetic benchmark.

It imports no dataset format: the registered sources (`scenesense.datasets.sources.DATASETS`)
live one layer above, in `scenesense.datasets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
    from scenesense.data.collate import collate as collate
    from scenesense.data.dataset import FeatureStoreDataset as FeatureStoreDataset
    from scenesense.data.labels import MELD_EMOTIONS as MELD_EMOTIONS
    from scenesense.data.labels import MELD_SENTIMENTS as MELD_SENTIMENTS
    from scenesense.data.labels import LabelSpace as LabelSpace
    from scenesense.data.meld import MeldUtterance as MeldUtterance
    from scenesense.data.meld import find_meld_csv as find_meld_csv
    from scenesense.data.meld import read_meld_csv as read_meld_csv
    from scenesense.data.safe_pickle import UnsafePickleError as UnsafePickleError
    from scenesense.data.safe_pickle import load_pickle as load_pickle
    from scenesense.data.store import FeatureInfo as FeatureInfo
    from scenesense.data.store import FeatureSpec as FeatureSpec
    from scenesense.data.store import StoreError as StoreError
    from scenesense.data.store import StoreSplit as StoreSplit
    from scenesense.data.store import StoreWriter as StoreWriter
    from scenesense.data.store import find_store_splits as find_store_splits
    from scenesense.data.store import open_store_split as open_store_split
    from scenesense.data.synthetic import SYNTHETIC_CLASSES as SYNTHETIC_CLASSES
    from scenesense.data.synthetic import generate_synthetic as generate_synthetic
    from scenesense.data.synthetic import synthetic_prototypes as synthetic_prototypes
    from scenesense.data.validation import DataFormatError as DataFormatError
    from scenesense.data.validation import ValidationReport as ValidationReport

_LAZY = {
    "collate": "scenesense.data.collate",
    "FeatureStoreDataset": "scenesense.data.dataset",
    "MELD_EMOTIONS": "scenesense.data.labels",
    "MELD_SENTIMENTS": "scenesense.data.labels",
    "LabelSpace": "scenesense.data.labels",
    "MeldUtterance": "scenesense.data.meld",
    "find_meld_csv": "scenesense.data.meld",
    "read_meld_csv": "scenesense.data.meld",
    "UnsafePickleError": "scenesense.data.safe_pickle",
    "load_pickle": "scenesense.data.safe_pickle",
    "FeatureInfo": "scenesense.data.store",
    "FeatureSpec": "scenesense.data.store",
    "StoreError": "scenesense.data.store",
    "StoreSplit": "scenesense.data.store",
    "StoreWriter": "scenesense.data.store",
    "find_store_splits": "scenesense.data.store",
    "open_store_split": "scenesense.data.store",
    "SYNTHETIC_CLASSES": "scenesense.data.synthetic",
    "generate_synthetic": "scenesense.data.synthetic",
    "synthetic_prototypes": "scenesense.data.synthetic",
    "DataFormatError": "scenesense.data.validation",
    "ValidationReport": "scenesense.data.validation",
}

__all__ = [
    "MELD_EMOTIONS",
    "MELD_SENTIMENTS",
    "SYNTHETIC_CLASSES",
    "DataFormatError",
    "FeatureInfo",
    "FeatureSpec",
    "FeatureStoreDataset",
    "LabelSpace",
    "MeldUtterance",
    "StoreError",
    "StoreSplit",
    "StoreWriter",
    "UnsafePickleError",
    "ValidationReport",
    "collate",
    "find_meld_csv",
    "find_store_splits",
    "generate_synthetic",
    "load_pickle",
    "open_store_split",
    "read_meld_csv",
    "synthetic_prototypes",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
