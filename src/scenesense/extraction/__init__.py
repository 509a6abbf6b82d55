"""Feature extractors; importing any module of this package fills `EXTRACTORS` with all of them.

Text: ``minilm``, ``hf`` (any local model folder), ``word_vectors`` (GloVe/word2vec file); audio: ``egemaps``, ``compare``, ``egemaps_lld``, ``compare_lld`` (openSMILE), ``whisper`` (Whisper encoder frames);
vision: ``face``, ``face_mesh`` (optional mediapipe). Model weights and heavy
libraries load lazily, on the first extraction. Speech transcription (``TRANSCRIBERS``:
``whisper``) is in `scenesense.extraction.transcribe`.
"""

from __future__ import annotations

from scenesense.extraction import audio as audio
from scenesense.extraction import hf_text as hf_text
from scenesense.extraction import transcribe as transcribe
from scenesense.extraction import vision as vision
from scenesense.extraction import whisper_encoder as whisper_encoder
from scenesense.extraction import word_vectors as word_vectors
from scenesense.extraction.base import EXTRACTORS as EXTRACTORS
from scenesense.extraction.base import FeatureExtractor as FeatureExtractor
from scenesense.extraction.text import MiniLMTextExtractor as MiniLMTextExtractor
from scenesense.extraction.text import TextExtractor as TextExtractor
from scenesense.extraction.text import TextFeatures as TextFeatures

__all__ = ["EXTRACTORS", "FeatureExtractor", "MiniLMTextExtractor", "TextExtractor", "TextFeatures"]
