"""Static word vectors from a user-supplied GloVe or word2vec text file: token rows and mean sentence vectors.

This gives the paper's text input: Scene Sense feeds ``50 x 300`` GloVe rows per MELD utterance
(MELD's ``data_emotion.p``: split on whitespace, an unknown word becomes the zero row, cut at 50
tokens, zero padding). Raw transcripts are not tokenised yet, so the default ``"ptb"`` rule
splits off punctuation and English clitics the way GloVe's training text was tokenised; the
``"whitespace"`` rule is MELD's own ``str.split()`` for text that is already tokenised.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.extraction.base import EXTRACTORS, package_versions
from scenesense.extraction.text import TextExtractor, TextFeatures, _check_positive_int, _check_texts
from scenesense.extraction.word_vector_files import (
    WordVectors,
    file_fingerprint,
    load_word_vectors,
    read_header,
)

TOKENIZERS = ("ptb", "whitespace")
OOV_RULES = ("zero", "skip", "random")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u201c": '"',
                         "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u2026": "..."})
_PTB = re.compile(r"""
      \w+(?=n't\b)             # "do" of "don't", "ca" of "can't"
    | n't\b                    # the negation clitic
    | '(?:s|re|ve|ll|d|m)\b    # 's 're 've 'll 'd 'm
    | \w+(?:[-.]\w+)*          # words, hyphenated words, numbers (3.5), initialisms (u.s)
    | \.\.\.                   # an ellipsis
    | \S                       # any other character is one punctuation token
""", re.IGNORECASE | re.VERBOSE)


def tokenize(text: str, rule: str = "ptb", lowercase: bool = True) -> list[str]:
    """Words of ``text``: ``"ptb"`` splits "Don't!" into do, n't, ! (curly quotes made ASCII first);
    ``"whitespace"`` is ``str.split()``. ``lowercase`` lowercases first."""
    text = text.lower() if lowercase else text
    if rule == "whitespace":
        return text.split()
    return _PTB.findall(text.translate(_QUOTES))


def _random_vector(word: str, dim: int) -> np.ndarray:
    """A fixed ``U(-0.25, 0.25)`` vector ``[dim]`` for an unknown word, seeded by the word itself."""
    seed = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).uniform(-0.25, 0.25, dim).astype(np.float32)


@EXTRACTORS.register("word_vectors")
class WordVectorTextExtractor(TextExtractor):
    """Static word vectors (GloVe, word2vec, fastText ``.vec``) read from a local text file.

    Each text is tokenised (``tokenizer``, ``lowercase``), then:

    * ``tokens`` ``[T <= max_tokens, D]``: one row per word, the first ``max_tokens`` words. An
      unknown word is, by ``oov``: ``"zero"`` a zero row (Scene Sense maps it to MELD's index 0,
      the padding row); ``"skip"`` dropped; ``"random"`` a fixed ``U(-0.25, 0.25)`` vector seeded by
      the word (the Kim-CNN rule for words missing from the vectors).
    * ``sentence`` ``[D]``: the mean of the vectors of all the text's known words (not cut at
      ``max_tokens``), as MELD's ``text_glove_average`` features.

    A text with no known word gets a zero sentence vector; a text with no kept token (an empty
    text, or only unknown words under ``"skip"``) gets one zero row. The file is read on the first
    extraction (see `load_word_vectors`); give ``cache_dir`` to parse it only once.

    Args:
        model_path: the vector file (GloVe ``word v1 ... vD`` lines, or word2vec text with a
            ``V D`` header; ``.gz`` allowed). Named like the model folder of the other text
            extractors so the MELD source passes it through.
        max_tokens: longest token sequence kept (the paper: 50).
        tokenizer: ``"ptb"`` or ``"whitespace"`` (see `tokenize`).
        lowercase: lowercase before lookup (GloVe 6B/42B are lowercase; 840B and word2vec are cased).
        oov: ``"zero"``, ``"skip"`` or ``"random"`` (see above).
        vocab_limit: keep only the file's first ``vocab_limit`` words (the most frequent ones).
        cache_dir: folder for a parsed, memory-mapped copy of the file; ``None`` = parse each time.
        batch_size: unused (lookups need no batching); accepted, like ``device``, so the MELD
            source's shared parameters apply.
        device: unused (no model to place).
    """

    def __init__(self, model_path: str | None = None, max_tokens: int = 50, tokenizer: str = "ptb",
                 lowercase: bool = True, oov: str = "zero", vocab_limit: int | None = None,
                 cache_dir: str | None = None, batch_size: int = 64, device: str = "cpu") -> None:
        if model_path is None:
            raise ValueError("the word_vectors extractor needs model_path: a GloVe or word2vec text file")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
        if oov not in OOV_RULES:
            raise ValueError(f"oov must be one of {OOV_RULES}, got {oov!r}")
        self.model_path = str(model_path)
        self.max_tokens = _check_positive_int("max_tokens", max_tokens)
        self.tokenizer = tokenizer
        self.lowercase = bool(lowercase)
        self.oov = oov
        self.vocab_limit = None if vocab_limit is None else _check_positive_int("vocab_limit", vocab_limit)
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.device = device
        if not Path(self.model_path).expanduser().is_file():
            raise FileNotFoundError(f"word-vector file {self.model_path} does not exist")
        self._vectors: WordVectors | None = None
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Vector size ``D``, read from the file's first line."""
        if self._dim is None:
            self._dim = read_header(Path(self.model_path).expanduser())[1]
        return self._dim

    def provenance(self) -> dict[str, Any]:
        """Extractor name, output-changing parameters and the vector file's identity (no parsing)."""
        path = Path(self.model_path).expanduser()
        return {
            "extractor": "word_vectors",
            "params": {"model_path": self.model_path, "max_tokens": self.max_tokens,
                       "tokenizer": self.tokenizer, "lowercase": self.lowercase, "oov": self.oov,
                       "vocab_limit": self.vocab_limit},
            "vectors": {"file": path.name, "bytes": path.stat().st_size,
                        "fingerprint": file_fingerprint(path)},
            "max_tokens": self.max_tokens,
            "tokens": f"one word vector per {self.tokenizer} token, first max_tokens; "
                      f"unknown words: {self.oov}",
            "sentence": "mean of the known words' vectors (zero if none)",
            "versions": package_versions(("numpy",)),
        }

    def load(self) -> WordVectors:
        """The parsed vector file (read once, on the first call)."""
        if self._vectors is None:
            self._vectors = load_word_vectors(self.model_path, self.vocab_limit, self.cache_dir)
            self._dim = self._vectors.matrix.shape[1]
        return self._vectors

    def _embed(self, text: str, vectors: WordVectors) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens [T, D], sentence [D])`` of one text."""
        words = tokenize(text, self.tokenizer, self.lowercase)
        rows = [vectors.index.get(w, -1) for w in words]
        known = [r for r in rows if r >= 0]
        dim = vectors.matrix.shape[1]
        sentence = (np.asarray(vectors.matrix[known], dtype=np.float64).mean(axis=0) if known
                    else np.zeros(dim))
        if self.oov == "skip":
            words, rows = [w for w, r in zip(words, rows) if r >= 0], known
        words, rows = words[:self.max_tokens], rows[:self.max_tokens]
        tokens = np.zeros((max(len(rows), 1), dim), dtype=np.float32)
        hits = [i for i, r in enumerate(rows) if r >= 0]
        tokens[hits] = vectors.matrix[[rows[i] for i in hits]]
        if self.oov == "random":
            for i, (word, row) in enumerate(zip(words, rows)):
                if row < 0:
                    tokens[i] = _random_vector(word, dim)
        return tokens, sentence.astype(np.float32)

    def extract(self, texts: list[str]) -> TextFeatures:
        """Embed texts.

        Args:
            texts: ``N`` strings.

        Returns:
            `TextFeatures`: ``N`` token arrays ``[1 <= T_i <= max_tokens, D]`` and sentence
            vectors ``[N, D]``, float32.

        Raises:
            TypeError: an item is not a string (its index is named).
        """
        _check_texts(texts)
        vectors = self.load()
        embedded = [self._embed(text, vectors) for text in texts]
        sentence = np.stack([s for _, s in embedded]) if embedded else np.zeros((0, self.dim), np.float32)
        return TextFeatures([t for t, _ in embedded], sentence)
