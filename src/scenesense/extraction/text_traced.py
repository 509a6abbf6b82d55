"""Traced text models: the ``minilm`` extractor's features without importing sentence-transformers.

Importing sentence-transformers takes seconds (it loads most of transformers and scikit-learn), far
more than the forward pass of a small model on a few sentences. So the first time the ``minilm``
extractor loads a model with sentence-transformers, it also records the model's transformer network
with `torch.jit.trace` and keeps the trace in the cache; later processes run the trace with the
model's own ``tokenizer.json`` (the ``tokenizers`` library), which needs neither sentence-transformers
nor transformers.

A trace is kept only when it reproduces the model: on probe inputs different from the ones it was
traced on (one sentence, a padded batch of three with one cut at ``max_seq_length``, a sentence pair)
every hidden state, the token embeddings and the sentence vectors must equal those of
sentence-transformers within `TOLERANCE`, and the ``tokenizers`` word-pieces, token types and masks
must be identical. Only pipelines of a Transformer, mean Pooling and an optional Normalize are traced.

The cache is ``<cache root>/traced-text/<key>/`` (`scenesense.utils.cache.cache_root`) holding
``model.pt`` (the TorchScript trace, about the size of the weights: 91 MB for all-MiniLM-L6-v2) and
``trace.json`` (what was traced and how well it matched). The key hashes the model's weights and
configuration files (`scenesense.utils.hf_folders.model_identity` and the pipeline's small files)
with the versions of torch, transformers, tokenizers and sentence-transformers, so a changed model or
library never reuses an old trace. ``$SCENESENSE_TRACE`` (`TRACE_ENV`) switches the cache:
``0`` off (always sentence-transformers, nothing written), ``all`` also traces models whose weights
exceed `MAX_TRACED_BYTES`, anything else (or unset) traces models up to that size.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scenesense.extraction.base import package_versions
from scenesense.utils.cache import cache_root
from scenesense.utils.hf_folders import model_identity, read_json, transformer_dir, weight_files
from scenesense.utils.io import FolderInUseError, atomic_write_bytes, folder_lock, write_json

logger = logging.getLogger(__name__)

TRACE_ENV = "SCENESENSE_TRACE"
"""Environment variable: ``0`` (or ``off``/``false``/``no``) disables traces, ``all`` lifts the size limit."""

TRACE_FORMAT = 1
"""Version of the cache entry layout; part of the key."""

TOLERANCE = 1e-5
"""Largest absolute difference to sentence-transformers that a kept trace may show on the probes."""

MAX_TRACED_BYTES = 256 * 1024 * 1024
"""Models with more weight bytes are not traced unless ``$SCENESENSE_TRACE`` is ``all``."""

TRACE_FILE = "model.pt"
SIDECAR_FILE = "trace.json"
_VERSIONED = ("torch", "transformers", "tokenizers", "sentence-transformers")
_PIPELINE_SUFFIXES = (".json", ".txt", ".model")  # configs, vocabularies, sentencepiece models

TraceMode = Literal["off", "auto", "all"]
Item = str | tuple[str, str]  # a text, or a (text, context) pair

_TRACE_PROBE = ["Tracing on a padded batch.", "Short one",
                "A somewhat longer sentence, with punctuation; and a few more words in it!"]


def _verify_probes(max_seq_length: int) -> list[list[Item]]:
    """The verification batches: one sentence (mask all ones), a padded batch of three (the last cut
    at ``max_seq_length``) and a sentence pair; none of them is the tracing probe."""
    long = " ".join(["Sometimes a sentence goes on and on, well past the model's limit;"] * max_seq_length)
    return [["I can't believe you did that, this is wonderful!"],
            ["Oh.", "Café naïve résumé — ÄÖÜ straße 😀 中文 [SEP] tab\there", long],
            [("Where did you put the keys?", "Phoebe: I told you. [SEP] Ross: Hi.")]]


class TraceError(RuntimeError):
    """A trace cannot be made, kept or used (the reason is in the message)."""


class NotTraceableError(TraceError):
    """The model is of a kind the fast path does not reproduce, or too large to trace unasked."""


def trace_mode() -> TraceMode:
    """``off``, ``auto`` (models up to `MAX_TRACED_BYTES`) or ``all``, from ``$SCENESENSE_TRACE``."""
    value = os.environ.get(TRACE_ENV, "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    return "all" if value == "all" else "auto"


def trace_cache_dir() -> Path:
    """``<cache root>/traced-text``: one folder per traced model (`trace_entry`)."""
    return cache_root() / "traced-text"


def _pipeline_files(folder: Path) -> list[Path]:
    """The small files that configure a sentence-transformers folder: configs, vocabularies and the
    tokenizer, at the top of the folder, of its transformers model and of each listed module."""
    dirs = {folder, transformer_dir(folder)}
    modules = folder / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        dirs |= {folder / str(entry.get("path", "")) for entry in entries if isinstance(entry, dict)}
    return sorted({p for d in dirs if d.is_dir() for p in d.iterdir()
                   if p.is_file() and p.suffix in _PIPELINE_SUFFIXES})


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trace_key(folder: str | Path) -> str:
    """The cache key of the model in the sentence-transformers ``folder`` (24 hex digits).

    It hashes `model_identity` (architecture and weights), the bytes of the pipeline's small
    files (configs, tokenizer, vocabulary), the library versions and `TRACE_FORMAT`.

    Raises:
        ValueError: ``folder`` is not a model folder (no config or no weights), or its
            ``modules.json`` is unreadable.
    """
    folder = Path(folder)
    try:
        files = {str(p.relative_to(folder)): _file_sha256(p) for p in _pipeline_files(folder)}
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder}: unreadable model configuration ({err})") from None
    identity = {"format": TRACE_FORMAT, "model": model_identity(transformer_dir(folder)), "files": files,
                "versions": package_versions(_VERSIONED)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def trace_entry(folder: str | Path) -> Path:
    """The cache folder of the model in ``folder``: ``<trace_cache_dir>/<trace_key>`` (may not exist).

    Raises:
        ValueError: as `trace_key`.
    """
    return trace_cache_dir() / trace_key(folder)


def _tokenizer(path: Path, max_seq_length: int) -> Any:
    """``tokenizers.Tokenizer`` from ``path``: no padding (batches are padded here), cut at
    ``max_seq_length`` word-pieces (longest first for pairs), whatever the file's own settings."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_seq_length, strategy="longest_first")
    return tokenizer


def _mean_pool(last: Any, mask: Any, normalize: bool) -> Any:
    """Mean of ``last`` ``[B, T, D]`` over the real positions of ``mask`` ``[B, T]`` -> ``[B, D]``,
    L2-normalised when ``normalize`` (the arithmetic of sentence-transformers' mean Pooling and
    Normalize)."""
    import torch

    weights = mask.unsqueeze(-1).to(last.dtype)  # [B, T, 1]
    summed = (last * weights).sum(dim=1, dtype=torch.float32)  # [B, D]
    mean = (summed / torch.clamp(weights.sum(dim=1, dtype=torch.float32), min=1e-9)).to(last.dtype)
    return torch.nn.functional.normalize(mean, p=2, dim=-1) if normalize else mean


class TracedTextModel:
    """A verified trace with its tokenizer: what the ``minilm`` extractor computes, on the CPU.

    Args:
        network: the TorchScript trace: ``(input_ids, attention_mask, token_type_ids)``, each
            ``[B, T]`` int64, -> stacked hidden states ``[L + 1, B, T, D]`` (0: embedding layer).
        tokenizer: a ``tokenizers.Tokenizer`` without padding, cut at ``max_seq_length``.
        info: the entry's ``trace.json`` (``pad_id``, ``normalize``, ``num_layers``, ...).
        tokenizer_file: where ``tokenizer`` came from (read again, uncut, by `count_tokens`).
    """

    def __init__(self, network: Any, tokenizer: Any, info: dict[str, Any],
                 tokenizer_file: Path) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.info = info
        self.tokenizer_file = tokenizer_file
        self._uncut: Any = None

    @classmethod
    def load(cls, folder: str | Path) -> TracedTextModel:
        """The cached trace of the model in the sentence-transformers ``folder``.

        Raises:
            FileNotFoundError: no trace is cached for this model (as it is now).
            TraceError: the entry is damaged (unreadable record, bytes not the recorded ones, or a
                file TorchScript cannot load).
            ValueError: ``folder`` is not a model folder (`trace_key`).
        """
        folder = Path(folder)
        entry = trace_entry(folder)
        if not (entry / SIDECAR_FILE).is_file():
            raise FileNotFoundError(f"no traced model in {entry}")
        info = read_json(entry / SIDECAR_FILE)
        if info.get("format") != TRACE_FORMAT or info.get("key") != entry.name:
            raise TraceError(f"{entry / SIDECAR_FILE}: not a trace record of this model")
        try:
            data = (entry / TRACE_FILE).read_bytes()
        except OSError as err:
            raise TraceError(f"{entry / TRACE_FILE}: unreadable ({err})") from None
        recorded = (info.get("trace_bytes"), info.get("trace_sha256"))
        if (len(data), hashlib.sha256(data).hexdigest()) != recorded:
            raise TraceError(f"{entry / TRACE_FILE}: not the recorded bytes (damaged or replaced)")
        try:
            network = _load_network(data)
        except RuntimeError as err:
            raise TraceError(f"{entry / TRACE_FILE}: TorchScript cannot load it ({err})") from None
        tokenizer_file = transformer_dir(folder) / "tokenizer.json"
        return cls(network, _tokenizer(tokenizer_file, int(info["max_seq_length"])), info, tokenizer_file)

    @property
    def num_layers(self) -> int:
        """Transformer layers ``L`` (the trace returns ``L + 1`` hidden states)."""
        return int(self.info["num_layers"])

    def encode(self, items: Sequence[Item]) -> tuple[Any, Any, Any]:
        """Word-pieces of ``B >= 1`` texts or ``(text, context)`` pairs, padded to the longest.

        Returns:
            ``input_ids``, ``attention_mask`` (1 = real word-piece) and ``token_type_ids`` (1 =
            context), each ``[B, T]`` int64 tensors.
        """
        import torch

        encodings = self.tokenizer.encode_batch(list(items))
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), int(self.info["pad_id"]), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)], mask[row, :len(e.ids)], types[row, :len(e.ids)] = e.ids, 1, e.type_ids
        return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)

    def hidden_states(self, items: Sequence[Item]) -> tuple[Any, Any]:
        """Stacked hidden states ``[L + 1, B, T, D]`` float32 and the mask ``[B, T]`` of ``B`` items."""
        import torch

        ids, mask, types = self.encode(items)
        with torch.no_grad(), torch.jit.optimized_execution(False):  # the graph as traced: no profiling runs
            return self.network(ids, mask, types), mask

    def features(self, items: Sequence[Item], order: Sequence[int], batch_size: int, max_tokens: int,
                 layer: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Token sequences and sentence vectors of ``N`` items, ``batch_size`` at a time in ``order``.

        Returns:
            ``N`` float32 arrays ``[T_i <= max_tokens, D]`` (hidden state ``layer`` of the first
            real word-pieces) and the sentence vectors ``[N, D]`` float32 (mean of the last hidden
            state over all real word-pieces, L2-normalised when the model normalises), in input order.
        """
        tokens: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(items)
        sentence: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(items)
        for start in range(0, len(order), batch_size):
            rows = list(order[start:start + batch_size])
            hidden, mask = self.hidden_states([items[i] for i in rows])
            pooled = _mean_pool(hidden[-1], mask, bool(self.info["normalize"]))  # [B, D]
            real = mask.bool()  # [B, T]
            for j, i in enumerate(rows):
                tokens[i] = hidden[layer, j][real[j]][:max_tokens].float().numpy()  # [T_i, D]
                sentence[i] = pooled[j].float().numpy()  # [D]
        return tokens, np.stack(sentence).astype(np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces of each text, special tokens excluded and nothing cut."""
        if self._uncut is None:
            import tokenizers

            self._uncut = tokenizers.Tokenizer.from_file(str(self.tokenizer_file))
            self._uncut.no_padding()
            self._uncut.no_truncation()
        return [len(e.ids) for e in self._uncut.encode_batch(list(texts), add_special_tokens=False)]


def load_trace(folder: str | Path) -> TracedTextModel | None:
    """The cached trace of the model in ``folder``, or ``None`` (none cached: logged at debug level;
    damaged: logged as a warning, and the next sentence-transformers load writes it again)."""
    try:
        return TracedTextModel.load(folder)
    except FileNotFoundError as err:
        logger.debug("no traced text model: %s", err)
    except Exception as err:  # noqa: BLE001 - whatever fails here, sentence-transformers still works
        logger.warning("ignoring the cached traced text model (%s: %s); using sentence-transformers",
                       type(err).__name__, err)
    return None


def st_tokenizer(model: Any) -> Any:  # noqa: ANN401
    """The tokenizing method of a ``SentenceTransformer``: ``preprocess`` (sentence-transformers 6 and
    later) or ``tokenize`` (before)."""
    return getattr(model, "preprocess", None) or model.tokenize


def _is_mean_pooling(pooling: Any) -> bool:
    """Whether a sentence-transformers Pooling module averages the token embeddings, and only that."""
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode == "mean"
    if isinstance(mode, (tuple, list)):
        return list(mode) == ["mean"]
    flags = {name: bool(value) for name, value in vars(pooling).items() if name.startswith("pooling_mode_")}
    return flags.get("pooling_mode_mean_tokens", False) and sum(flags.values()) == 1


def pipeline_settings(model: Any) -> dict[str, Any]:
    """What the fast path needs to know of a loaded ``SentenceTransformer``.

    Returns:
        ``max_seq_length``, ``normalize`` (a Normalize module follows the pooling), ``pad_id``,
        ``token_types`` (the network reads token type ids), ``num_layers`` and ``hidden_size``.

    Raises:
        TraceError: the pipeline is not Transformer + mean Pooling (+ Normalize), its network is in
            training mode, or its tokenizer has no padding token.
    """
    names = [type(module).__name__ for module in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise TraceError(f"pipeline {names} is not Transformer + Pooling (+ Normalize)")
    if not _is_mean_pooling(model[1]):
        raise TraceError("the pooling is not a plain mean over the word-pieces")
    network = model[0].auto_model
    if network.training:
        raise TraceError("the transformer is in training mode")
    pad_id = getattr(model.tokenizer, "pad_token_id", None)
    if pad_id is None:
        raise TraceError("the tokenizer has no padding token")
    inputs = getattr(model.tokenizer, "model_input_names", None) or ["token_type_ids"]
    config = network.config
    return {"max_seq_length": int(model.max_seq_length), "normalize": names[-1] == "Normalize",
            "pad_id": int(pad_id), "token_types": "token_type_ids" in inputs,
            "num_layers": int(config.num_hidden_layers), "hidden_size": int(config.hidden_size)}


def _stacked_hidden_states(network: Any, token_types: bool) -> Any:
    """A module running the transformers ``network`` and returning its stacked hidden states
    ``[L + 1, B, T, D]`` from ``(input_ids, attention_mask, token_type_ids)`` (the last one is
    ignored unless ``token_types``: models such as MPNet have none)."""
    import torch

    class StackedHiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            extra = {"token_type_ids": token_type_ids} if token_types else {}
            out = self.network(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                               return_dict=True, **extra)
            return torch.stack(out.hidden_states)

    return StackedHiddenStates().eval()


def trace_network(model: Any, settings: dict[str, Any], tokenizer_file: Path) -> bytes:
    """The serialised TorchScript trace of ``model``'s transformer, traced on a padded batch.

    Tracing on a batch whose mask is not all ones records the masking, so the trace is exact for
    other batch sizes, lengths and masks (`verify_trace` checks it on other inputs).
    """
    import torch

    wrapper = _stacked_hidden_states(model[0].auto_model, settings["token_types"])
    probe = TracedTextModel(None, _tokenizer(tokenizer_file, settings["max_seq_length"]), settings,
                            tokenizer_file)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings (Python values kept as constants), the deprecation
        traced = torch.jit.trace(wrapper, probe.encode(_TRACE_PROBE), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _load_network(data: bytes) -> Any:
    """The TorchScript module serialised in ``data``, on the CPU, in eval mode.

    TorchScript is deprecated in favour of ``torch.export``, but loading an exported program takes
    seconds where a TorchScript file takes a tenth of one, and start-up time is the point here.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


def verify_trace(model: Any, traced: TracedTextModel) -> dict[str, float]:
    """Compare ``traced`` with the loaded ``SentenceTransformer`` on the verification probes.

    Returns:
        The largest absolute differences: ``hidden_states`` (every layer, real word-pieces),
        ``token_embeddings`` and ``sentence_embedding``.

    Raises:
        TraceError: a word-piece, token type or mask differs, or a difference exceeds `TOLERANCE`.
    """
    import torch

    wrapper = _stacked_hidden_states(model[0].auto_model, bool(traced.info["token_types"]))
    tokenize = st_tokenizer(model)
    worst = {"hidden_states": 0.0, "token_embeddings": 0.0, "sentence_embedding": 0.0}
    for probe in _verify_probes(int(traced.info["max_seq_length"])):
        reference = dict(tokenize(probe))
        ids, mask, types = traced.encode(probe)
        for name, ours in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
            if name in reference and not torch.equal(reference[name].to(torch.int64), ours):
                raise TraceError(f"the tokenizer's {name} differ from sentence-transformers' "
                                 f"on {probe!r:.80}")
        with torch.no_grad():
            expected = wrapper(ids, mask, types)  # [L + 1, B, T, D]
            pipeline = model(dict(reference))
        hidden, _ = traced.hidden_states(probe)
        real = mask.bool()
        pooled = _mean_pool(hidden[-1], mask, bool(traced.info["normalize"]))
        diffs = {"hidden_states": hidden[:, real] - expected[:, real],
                 "token_embeddings": hidden[-1][real] - pipeline["token_embeddings"][real],
                 "sentence_embedding": pooled - pipeline["sentence_embedding"]}
        for name, difference in diffs.items():
            diff = difference.abs().max().item()
            if not diff <= TOLERANCE:  # NaN fails too
                raise TraceError(f"the trace's {name} differ from sentence-transformers' by {diff:.3g} "
                                 f"(> {TOLERANCE:g}) on {probe!r:.80}")
            worst[name] = max(worst[name], diff)
    return worst


def _check_traceable(model: Any, folder: Path, mode: TraceMode) -> tuple[dict[str, Any], Path]:
    """`pipeline_settings` and the ``tokenizer.json`` of a model the fast path can run.

    Raises:
        NotTraceableError: see `pipeline_settings`; no ``tokenizer.json``; or (``mode`` ``auto``)
            weights above `MAX_TRACED_BYTES`.
    """
    size = sum(p.stat().st_size for p in weight_files(transformer_dir(folder)))
    if mode == "auto" and size > MAX_TRACED_BYTES:
        raise NotTraceableError(f"its weights take {size / 1e6:.0f} MB, above {MAX_TRACED_BYTES / 1e6:.0f} "
                                f"MB (set {TRACE_ENV}=all to trace it anyway)")
    tokenizer_file = transformer_dir(folder) / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise NotTraceableError(f"{tokenizer_file} does not exist")
    try:
        return pipeline_settings(model), tokenizer_file
    except TraceError as err:
        raise NotTraceableError(str(err)) from None


def build_trace(model: Any, folder: str | Path) -> tuple[bytes, dict[str, Any]]:
    """Trace and verify the loaded ``SentenceTransformer`` of ``folder``, writing nothing.

    Returns:
        The serialised trace and its record (`pipeline_settings` with ``max_abs_diff`` from
        `verify_trace`, ``trace_bytes`` and ``trace_sha256``).

    Raises:
        NotTraceableError: as `_check_traceable` (with ``mode`` from ``$SCENESENSE_TRACE``).
        TraceError: the trace does not reproduce the model (`verify_trace`).
    """
    folder = Path(folder)
    settings, tokenizer_file = _check_traceable(model, folder, trace_mode())
    data = trace_network(model, settings, tokenizer_file)
    network = _load_network(data)  # verify what will be read back
    traced = TracedTextModel(network, _tokenizer(tokenizer_file, settings["max_seq_length"]), settings,
                             tokenizer_file)
    record = {**settings, "max_abs_diff": verify_trace(model, traced), "tolerance": TOLERANCE,
              "trace_bytes": len(data), "trace_sha256": hashlib.sha256(data).hexdigest()}
    return data, record


def save_trace(model: Any, folder: str | Path) -> Path | None:
    """Trace, verify and cache the loaded ``SentenceTransformer`` of ``folder`` (see the module doc).

    Never raises: a model that cannot be traced is logged at debug level, a trace that fails its
    verification or cannot be written as a warning, and nothing is cached for it. Another process
    writing the same entry at the moment is left to finish it.

    Returns:
        The cache entry written, or ``None``.
    """
    if trace_mode() == "off":
        return None
    folder = Path(folder)
    try:
        entry = trace_entry(folder)
        data, record = build_trace(model, folder)
        with folder_lock(entry):
            (entry / SIDECAR_FILE).unlink(missing_ok=True)  # the record goes last: it marks a whole entry
            atomic_write_bytes(entry / TRACE_FILE, data)
            write_json(entry / SIDECAR_FILE, {
                "format": TRACE_FORMAT, "key": entry.name, "source": str(folder),
                "model": model_identity(transformer_dir(folder)), "versions": package_versions(_VERSIONED),
                **record})
    except NotTraceableError as err:
        logger.debug("not tracing the text model in %s: %s", folder, err)
    except FolderInUseError:
        logger.debug("another process is writing the traced text model of %s", folder)
    except Exception as err:  # noqa: BLE001 - the trace only saves time; extraction must go on without it
        logger.warning("could not cache a traced copy of the text model in %s (%s: %s); it keeps loading "
                       "with sentence-transformers", folder, type(err).__name__, err)
    else:
        logger.info("saved a traced copy of the text model (%.0f MB, largest difference %.2g) in %s: later "
                    "processes start without sentence-transformers", record["trace_bytes"] / 1e6,
                    max(record["max_abs_diff"].values()), entry)
        return entry
    return None
