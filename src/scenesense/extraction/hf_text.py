"""Token sequences and sentence vectors from any local Hugging Face or sentence-transformers model folder.

The model is loaded from a local folder with ``local_files_only=True``. A bundled model's name
(``all-mpnet-base-v2``) or a Hugging Face Hub id is first turned into one by
`scenesense.utils.model_store.resolve_model_folder` (only a Hub id downloads, once). A folder with a
``modules.json`` is a sentence-transformers model; any other folder must hold a transformers model
(``config.json`` plus tokenizer files). transformers and sentence-transformers come with the
``text`` extra (``pip install "scenesense[text]"``), checked when the extractor is built.

The tokens may be any hidden state of the model (``layer``): the input of the ``hf`` encoder,
which fine-tunes the layers above it. The provenance records the model's identity (architecture
and weights hash), so that encoder refuses hidden states of another model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.data.text_context import SEPARATOR
from scenesense.extraction.base import EXTRACTORS, package_versions
from scenesense.extraction.text import (
    TextExtractor,
    TextFeatures,
    _check_positive_int,
    _check_texts,
    _hidden_state_features,
    _read_json,
    _sentence_transformer_features,
)
from scenesense.utils.extras import Needs
from scenesense.utils.hf_folders import model_identity, num_layers, transformer_dir
from scenesense.utils.model_store import resolve_model_folder

POOLINGS = ("auto", "mean")
_NO_LIMIT = 1_000_000  # tokenizers without a known length store a huge sentinel model_max_length
_DEFAULT_LIMIT = 512

HF_NEEDS = Needs("text", ("transformers",), "the hf text extractor")
"""What `HFTextExtractor` imports: transformers (plus sentence-transformers for a sentence-transformers
folder), from the ``text`` extra."""


def _hf_sentence_limit(model_dir: Path) -> int:
    """Longest input the model reads: the tokenizer's ``model_max_length`` and the position table bound it."""
    limits = [int(_read_json(model_dir / "tokenizer_config.json").get("model_max_length", _NO_LIMIT)),
              int(_read_json(model_dir / "config.json").get("max_position_embeddings", _NO_LIMIT))]
    known = [n for n in limits if 0 < n < _NO_LIMIT]
    return min(known) if known else _DEFAULT_LIMIT


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` ``[N, D]`` scaled to unit L2 norm (an all-zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@EXTRACTORS.register("hf")
class HFTextExtractor(TextExtractor):
    """Token and sentence embeddings from a local transformers or sentence-transformers folder.

    ``tokens`` are the model's last hidden state (with ``layer=k``: hidden state ``k``), one row
    per word-piece including special tokens, keeping the first ``max_tokens``. ``sentence``
    depends on ``pooling``:

    * ``"auto"``: a sentence-transformers folder gives its own pipeline's sentence embedding (its
      pooling, plus normalisation if the pipeline has it); a transformers folder gives the masked
      mean of the last hidden state.
    * ``"mean"``: always the masked mean of the last hidden state, computed with transformers even
      for a sentence-transformers folder (its Transformer module is used, the rest ignored).

    The sentence vector covers the model's whole input window (``max_seq_length`` of a
    sentence-transformers model; else the smaller of the tokenizer's ``model_max_length`` and the
    model's ``max_position_embeddings``, 512 if neither is known), not just ``max_tokens``.
    Encoder-decoder models use their encoder. The model loads lazily, on the first extraction.

    With ``layer=k`` the tokens are the model's hidden states after its first ``k`` transformer
    layers (``0``: the embedding layer's output), computed over the whole input window before
    the sequence is cut to ``max_tokens``: the input of the ``hf`` encoder with ``from_layer=k``.
    The sentence vector does not change.

    Args:
        model_path: a local model folder, a bundled model's name (``all-mpnet-base-v2``) or a
            Hugging Face Hub id (needs internet on first use); required.
        max_tokens: longest token sequence kept (``T_i <= max_tokens``).
        pooling: ``"auto"`` or ``"mean"`` (see above).
        normalize: L2-normalise the sentence vectors.
        batch_size: texts per forward pass.
        device: torch device string, e.g. ``"cpu"`` or ``"cuda"``.
        layer: which hidden state the tokens are, ``0 .. N`` for an ``N``-layer model; ``None``:
            the last layer's output.

    Raises:
        ValueError: no ``model_path``, a bad argument, a ``layer`` above the model's number of
            layers, or a folder that is not a model folder.
        FileNotFoundError: the folder does not exist.
        MissingExtraError: the ``text`` extra is not installed.
    """

    needs: ClassVar[Needs | None] = HF_NEEDS

    def __init__(self, model_path: str | None = None, max_tokens: int = 50, pooling: str = "auto",
                 normalize: bool = False, batch_size: int = 32, device: str = "cpu",
                 layer: int | None = None) -> None:
        if model_path is None:
            raise ValueError("the hf text extractor needs model_path: a local transformers or "
                             "sentence-transformers model folder")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
            raise ValueError(f"layer must be None or an int >= 0, got {layer!r}")
        self.layer = layer
        self.model_path = str(model_path)
        self.max_tokens = _check_positive_int("max_tokens", max_tokens)
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.device = device
        folder = self.model_folder = resolve_model_folder(self.model_path)
        if not folder.is_dir():
            raise FileNotFoundError(f"text model folder {folder} does not exist")
        self.uses_sentence_transformers = pooling == "auto" and (folder / "modules.json").is_file()
        model_dir = transformer_dir(folder)
        if not self.uses_sentence_transformers and not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir} is not a Hugging Face model folder (no config.json)")
        layers = num_layers(_read_json(model_dir / "config.json"))
        if layer is not None and layers is not None and layer > layers:
            raise ValueError(f"layer must be in 0..{layers} (hidden states of a {layers}-layer model), got {layer}")
        modules = HF_NEEDS.modules
        if self.uses_sentence_transformers:
            modules = ("sentence_transformers", *modules)
        Needs(HF_NEEDS.extra, modules, HF_NEEDS.purpose).check()
        self._model: Any = None
        self._tokenizer: Any = None
        self._dim: int | None = None

    @property
    def sentence_max_tokens(self) -> int:
        """Word-pieces seen by the sentence vector (the model's input window)."""
        folder = self.model_folder
        if self.uses_sentence_transformers:
            config = _read_json(folder / "sentence_bert_config.json")
            if "max_seq_length" in config:
                return int(config["max_seq_length"])
        return _hf_sentence_limit(transformer_dir(folder))

    @property
    def dim(self) -> int:
        """Feature size ``D`` of both outputs (loads the model)."""
        self._load()
        assert self._dim is not None
        return self._dim

    def provenance(self) -> dict[str, Any]:
        """Extractor name, output-changing parameters, model identity, backend and package versions.

        ``model_identity`` is `scenesense.utils.hf_folders.model_identity` of the transformers
        model (its architecture and the SHA-256 of its weights). A set ``layer`` is recorded as
        ``layer`` and in ``params``.
        """
        backend = "sentence-transformers" if self.uses_sentence_transformers else "transformers"
        sentence = "masked mean of the last hidden state"
        if self.uses_sentence_transformers:
            sentence = "the sentence-transformers pipeline's sentence embedding"
        tokens = ("last hidden state" if self.layer is None
                  else f"hidden state {self.layer} (0 = embedding layer, k = after transformer layer k)")
        provenance: dict[str, Any] = {
            "extractor": "hf",
            "params": {"model_path": self.model_path, "max_tokens": self.max_tokens, "pooling": self.pooling,
                       "normalize": self.normalize},
            "model": self.model_path,
            "model_identity": model_identity(transformer_dir(self.model_folder)),
            "backend": backend,
            "max_tokens": self.max_tokens,
            "sentence_max_tokens": self.sentence_max_tokens,
            "tokens": f"{tokens} per word-piece, first max_tokens incl. special tokens",
            "sentence": sentence + (", L2-normalised" if self.normalize else ""),
            "versions": package_versions(("sentence-transformers", "transformers", "torch")),
        }
        if self.layer is not None:
            provenance["params"]["layer"] = provenance["layer"] = self.layer
        return provenance

    def _load(self) -> None:
        if self._model is not None:
            return
        if self.uses_sentence_transformers:
            sentence_transformers = HF_NEEDS.require("sentence_transformers")
            model = sentence_transformers.SentenceTransformer(str(self.model_folder), device=self.device,
                                                              local_files_only=True)
            probe = _sentence_transformer_features(model, ["a"], 1, 1)
            token_dim, sentence_dim = probe.tokens[0].shape[1], probe.sentence.shape[1]
            if token_dim != sentence_dim:
                raise ValueError(f"{self.model_path}: the sentence-transformers pipeline maps {token_dim}-d "
                                 f"tokens to {sentence_dim}-d sentence vectors; both outputs need one size "
                                 f"(use pooling='mean' for the masked mean of the tokens)")
            if self.layer is not None:  # the forward pass then also returns all_layer_embeddings
                model[0].auto_model.config.output_hidden_states = True
            self._model, self._dim = model, token_dim
            return
        transformers = HF_NEEDS.require("transformers")
        model_dir = str(transformer_dir(self.model_folder))
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError(f"{model_dir}: the tokenizer has neither a padding nor an end token")
            tokenizer.pad_token = tokenizer.eos_token
        model = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True)
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self._tokenizer, self._model = tokenizer, model.eval().to(self.device)
        self._dim = int(model.config.hidden_size)

    def _hf_features(self, texts: list[str] | list[tuple[str, str]]) -> TextFeatures:
        """Both outputs with transformers; ``texts`` may be ``(text, context)`` pairs."""
        import torch

        limit = self.sentence_max_tokens
        order = sorted(range(len(texts)), key=lambda i: -len(str(texts[i])))  # similar lengths share a batch
        tokens: list[np.ndarray] = [np.empty(0)] * len(texts)
        sentence = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            chunk = [texts[i] for i in rows]
            pairs = ([a for a, _ in chunk], [b for _, b in chunk]) if isinstance(chunk[0], tuple) else (chunk,)
            batch = self._tokenizer(*pairs, padding=True, truncation=True, max_length=limit,
                                    return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out = self._model(**batch, output_hidden_states=self.layer is not None)
            last = out.last_hidden_state.float()  # [B, T, D]
            hidden = last if self.layer is None else out.hidden_states[self.layer].float()  # [B, T, D]
            mask = batch["attention_mask"].bool()  # [B, T]
            weights = mask.unsqueeze(-1).float()  # [B, T, 1]
            mean = (last * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # [B, D]
            for j, i in enumerate(rows):
                tokens[i] = hidden[j][mask[j]][:self.max_tokens].cpu().numpy()  # [T_i, D]
            sentence[rows] = mean.cpu().numpy()
        return TextFeatures(tokens, sentence)

    def extract(self, texts: list[str]) -> TextFeatures:
        """Embed texts.

        Args:
            texts: ``N`` strings.

        Returns:
            `TextFeatures`: ``N`` token arrays ``[T_i <= max_tokens, D]`` and sentence
            vectors ``[N, D]``, float32.

        Raises:
            TypeError: an item is not a string (its index is named).
        """
        _check_texts(texts)
        if not texts:
            return TextFeatures([], np.zeros((0, self.dim), dtype=np.float32))
        self._load()
        if self.uses_sentence_transformers and self.layer is not None:
            features = _hidden_state_features(self._model, list(texts), self.batch_size, self.max_tokens,
                                              self.layer)
        elif self.uses_sentence_transformers:
            features = _sentence_transformer_features(self._model, list(texts), self.batch_size,
                                                      self.max_tokens)
        else:
            features = self._hf_features(list(texts))
        if self.normalize:
            return TextFeatures(features.tokens, _l2_normalise(features.sentence))
        return features

    def extract_pairs(self, pairs: list[tuple[str, str]]) -> TextFeatures:
        """Embed sentence pairs ``(text, context)`` as the tokenizer joins two sequences.

        That is ``[CLS] text [SEP] context [SEP]`` for BERT (token types 0 and 1) and ``<s> text
        </s></s> context </s>`` for RoBERTa and MPNet. A ``[SEP]`` inside ``context`` (between
        earlier and later turns, `scenesense.data.text_context`) becomes the tokenizer's
        separator token. Tokens and sentence vector are as in `extract`, over the whole pair.

        Args:
            pairs: ``N`` pairs of strings (``context`` may be empty).

        Returns:
            `TextFeatures` as `extract`.

        Raises:
            TypeError: an item is not a pair of strings (its index is named).
        """
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise TypeError(f"pair {i} is {pair!r}, expected a (text, context) tuple of strings")
        if not pairs:
            return TextFeatures([], np.zeros((0, self.dim), dtype=np.float32))
        self._load()
        separator = self._text_tokenizer().sep_token or SEPARATOR
        pairs = [(text, context.replace(SEPARATOR, separator)) for text, context in pairs]
        if self.uses_sentence_transformers:
            last = num_layers(_read_json(transformer_dir(self.model_folder) / "config.json"))
            layer = self.layer if self.layer is not None else last
            if layer is None:
                raise ValueError(f"{self.model_path}: config.json records no number of layers")
            self._model[0].auto_model.config.output_hidden_states = True
            features = _hidden_state_features(self._model, pairs, self.batch_size, self.max_tokens, layer)
        else:
            features = self._hf_features(pairs)
        if self.normalize:
            return TextFeatures(features.tokens, _l2_normalise(features.sentence))
        return features

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word-pieces of each text, special tokens excluded (the model's tokenizer)."""
        _check_texts(texts)
        self._load()
        return [len(ids) for ids in self._text_tokenizer()(list(texts), add_special_tokens=False)["input_ids"]]

    def _text_tokenizer(self) -> Any:
        """The loaded tokenizer (the sentence-transformers model's, or the transformers one)."""
        return self._model.tokenizer if self.uses_sentence_transformers else self._tokenizer
