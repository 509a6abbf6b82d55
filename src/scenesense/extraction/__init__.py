"""Feature extractors. Importing this package registers the ``EXTRACTORS`` entries (``minilm``).

Model weights and heavy libraries load lazily, on the first extraction.
"""

from __future__ import annotations

from scenesense.extraction.base import FeatureExtractor as FeatureExtractor
from scenesense.extraction.text import MiniLMTextExtractor as MiniLMTextExtractor
from scenesense.extraction.text import TextExtractor as TextExtractor
from scenesense.extraction.text import TextFeatures as TextFeatures

__all__ = ["FeatureExtractor", "MiniLMTextExtractor", "TextExtractor", "TextFeatures"]
