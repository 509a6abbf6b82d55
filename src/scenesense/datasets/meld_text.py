"""MELD transcripts as text features: the ``meld`` dataset (CSVs -> MiniLM tokens + sentence vectors).

Every split file records what it was made from as ``source["identity"]``
(`meld_split_identity`): the CSV's fingerprint (name, size, SHA-256), the label set, the
extractor's provenance (name, parameters such as ``max_tokens``, package versions) with the
dialogue context, and the store version. ``scenesense data convert meld --out STORE`` reuses a
finished ``<split>.h5`` only when that record equals the current one; otherwise the file is
rebuilt from the CSV, and the log names the keys that changed (``label: 'emotion' ->
'sentiment'``). The stale file is removed before the rebuild, so a failed rebuild (a bad CSV)
leaves no outdated split behind. The other converters rewrite every split on each run, and
``prepare`` (training from a config) keys its cache folder by the same inputs and parameters.

`scenesense.datasets.meld_manifest.read_meld_manifest` gives a MELD CSV (and its
``MELD.Raw`` clips) to ``scenesense extract --meld-csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.dialogues import dialogue_groups
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS
from scenesense.data.meld import (
    MELD_SPLITS,
    MeldUtterance,
    dialogue_positions,
    find_meld_csv,
    read_meld_csv,
    validate_meld_csvs,
)
from scenesense.datasets.sources import (
    DatasetSource,
    digest,
    file_sha256,
    fingerprint,
    is_complete,
    register_source,
)
from scenesense.data.store import VERSION, FeatureSpec, StoreError, StoreWriter
from scenesense.data.store_identity import stale_reason
from scenesense.data.text_context import TextContext, Turn, context_pairs
from scenesense.data.validation import ValidationReport
from scenesense.extraction.base import EXTRACTORS, ItemError
from scenesense.extraction.items import Result, extract_items
from scenesense.extraction.text import TextExtractor

logger = logging.getLogger(__name__)

_MELD_LABELS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}
_EXTRACT_CHUNK = 1024  # utterances per extractor call / store append


def meld_split_identity(csv_path: str | Path, *, extractor: TextExtractor, label: str = "emotion",
                        context: TextContext | None = None) -> dict[str, Any]:
    """What a MELD split file is made from (recorded as its ``source["identity"]``).

    Returns:
        ``{"csv": {name, size, sha256}, "label", "extractor": <provenance, with
        "dialogue_context" when context is set>, "store": <store version>}``.
    """
    provenance = extractor.provenance()
    if context is not None:
        provenance["dialogue_context"] = context.to_dict()
    return {"csv": fingerprint([Path(csv_path)])[0], "label": label, "extractor": provenance,
            "store": VERSION}


def extract_meld_split(csv_path: str | Path, out_file: str | Path, *, extractor: TextExtractor,
                       label: str = "emotion", context: TextContext | None = None) -> Path:
    """Read one MELD CSV and write its text features as a store split file.

    Feature sets (both modality ``text``): ``text`` ``[N, T_max <= max_tokens, D]`` token
    sequences with lengths, and ``text_sentence`` ``[N, D]`` sentence vectors. Meta: ids
    ``dia{D}_utt{U}``, dialogue ids ``dia{D}``, positions = rank of Utterance_ID in its dialogue,
    speakers. Rows keep the CSV order. The source records `meld_split_identity`.

    Args:
        csv_path: a ``*_sent_emo.csv`` of any split.
        out_file: the split file to write (e.g. ``<store>/dev.h5``).
        extractor: the text extractor (e.g. ``MiniLMTextExtractor()``).
        label: ``"emotion"`` (7 classes) or ``"sentiment"`` (3 classes).
        context: neighbouring turns written into each input (`scenesense.data.text_context`;
            turns ordered by ``Utterance_ID`` within their dialogue), recorded in the provenance
            as ``dialogue_context``; ``None``: each utterance alone.

    Returns:
        ``out_file`` as a `pathlib.Path`.

    Raises:
        ValueError: unknown ``label``.
        DataFormatError: the CSV does not follow the MELD format.
    """
    if label not in _MELD_LABELS:
        raise ValueError(f"unknown MELD label {label!r}; expected one of {sorted(_MELD_LABELS)}")
    csv_path = Path(csv_path)
    utterances = read_meld_csv(csv_path)
    positions = dialogue_positions(utterances)
    space = _MELD_LABELS[label]
    identity = meld_split_identity(csv_path, extractor=extractor, label=label, context=context)
    provenance = identity["extractor"]
    inputs: list[str] | list[tuple[str, str]] = [u.text for u in utterances]
    if context is not None:
        inputs = _pairs(utterances, positions, context, extractor)
    specs = {
        "text": FeatureSpec("text", "sequence", extractor.dim, max_len=extractor.max_tokens,
                            provenance=provenance),
        "text_sentence": FeatureSpec("text", "vector", extractor.dim, provenance=provenance),
    }
    source = {"dataset": "meld", "csv": csv_path.name, "csv_sha256": file_sha256(csv_path), "label": label,
              "rows": len(utterances), "identity": identity}
    batches = extract_items(extractor, inputs, batch_size=_EXTRACT_CHUNK, call=_embed(extractor, context))
    with StoreWriter(out_file, label_space=space, features=specs, source=source) as writer:
        for start, results in zip(range(0, len(utterances), _EXTRACT_CHUNK), batches, strict=True):
            part = utterances[start:start + _EXTRACT_CHUNK]
            rows = [_features(u, r, Path(out_file)) for u, r in zip(part, results, strict=True)]
            writer.append(
                [u.id for u in part], space.encode(getattr(u, label) for u in part),
                {"text": [r["tokens"] for r in rows], "text_sentence": [r["sentence"] for r in rows]},
                dialogue_ids=[u.dialogue_key for u in part], positions=positions[start:start + len(part)],
                speakers=[u.speaker for u in part],
            )
            logger.info("%s: %d/%d utterances", csv_path.name, start + len(part), len(utterances))
    return Path(out_file)


def _embed(extractor: TextExtractor, context: TextContext | None
           ) -> Callable[[list[Any]], list[dict[str, np.ndarray]]]:
    """The batch call: ``extract`` (texts) or ``extract_pairs`` (with context), one output dict per row."""
    def call(chunk: list[Any]) -> list[dict[str, np.ndarray]]:
        features = extractor.extract(chunk) if context is None else extractor.extract_pairs(chunk)
        return [{"tokens": t, "sentence": s} for t, s in zip(features.tokens, features.sentence, strict=True)]

    return call


def _features(utterance: MeldUtterance, result: Result, out_file: Path) -> dict[str, np.ndarray]:
    """One row's checked outputs; an output the store cannot hold stops the split."""
    if isinstance(result, ItemError):
        raise StoreError(f"{out_file.name}: id {utterance.id!r}: {result}")
    return result


def _pairs(utterances: list[MeldUtterance], positions: list[int], context: TextContext,
           extractor: TextExtractor) -> list[tuple[str, str]]:
    """The ``(utterance, context)`` pair of every row, in row order, built per dialogue."""
    pairs: list[tuple[str, str]] = [("", "")] * len(utterances)
    groups = dialogue_groups([u.dialogue_key for u in utterances], positions, [u.id for u in utterances])
    for rows in groups:
        turns = [Turn(utterances[r].speaker, utterances[r].text) for r in rows]
        for r, pair in zip(rows, context_pairs(turns, context, extractor.count_tokens, extractor.max_tokens)):
            pairs[r] = pair
    return pairs


def extract_meld_for_run(csv_path: str | Path, text_provenance: Mapping[str, Any], label_names: Sequence[str],
                         cache_dir: str | Path) -> Path:
    """Featurise a MELD-format CSV (any split, any path) the way a trained run's text was made.

    The extractor is rebuilt from the run's text feature provenance (``extractor`` + ``params``);
    the label set (emotion or sentiment) from its ``label_names``. The split file is cached under
    ``<cache_dir>/meld-eval/<hash of CSV bytes + label + extractor provenance>/<csv stem>.h5``.

    Args:
        csv_path: the CSV to score.
        text_provenance: the provenance of the run's text feature set (as in
            `FeatureStoreDataset.provenance` ``["features"]["text"]``).
        label_names: the run's class names.
        cache_dir: cache root.

    Returns:
        The store split file.

    Raises:
        ValueError: the run's text features were not made by a registered extractor, or its
            labels are neither the MELD emotions nor the MELD sentiments.
    """
    text = dict(text_provenance)
    if text.get("extractor") not in EXTRACTORS or not isinstance(text.get("params"), dict):
        raise ValueError(f"the run's text features were not made by a registered extractor "
                         f"(provenance {text!r}), so a CSV cannot be featurised the same way")
    names = tuple(label_names)
    label = next((k for k, space in _MELD_LABELS.items() if space.names == names), None)
    if label is None:
        raise ValueError(f"the run's labels {list(names)} are neither MELD emotions nor sentiments")
    extractor = EXTRACTORS.create(text["extractor"], **text["params"])
    context = TextContext.from_mapping(text.get("dialogue_context"))
    current = extractor.provenance()
    if context is not None:
        current["dialogue_context"] = context.to_dict()
    if any(current.get(k) != text.get(k) for k in ("extractor", "params", "versions")):
        logger.warning("text extractor differs from the run's (e.g. package versions): %s vs %s",
                       current, text)
    csv_path = Path(csv_path)
    key = digest({"csv": file_sha256(csv_path), "label": label, "extractor": current, "store": VERSION})
    out = Path(cache_dir) / "meld-eval" / key / f"{csv_path.stem}.h5"
    if not is_complete(out):
        extract_meld_split(csv_path, out, extractor=extractor, label=label, context=context)
    return out


@register_source("meld")
class MeldTextSource(DatasetSource):
    """MELD text features from the CSVs under ``data.root`` (train and dev required, test optional).

    ``data.params``: ``label`` (emotion | sentiment), ``extractor`` (``EXTRACTORS`` name) and its
    ``model_path``, ``max_tokens``, ``batch_size``, ``device``, plus ``extractor_params`` (any other
    constructor arguments, e.g. ``{tokenizer: whitespace, oov: skip}`` for ``word_vectors``), and
    ``context`` (``{past, future, speakers}``: neighbouring turns written into each text input,
    see `scenesense.data.text_context`; ``None``: each utterance alone). Splits are found by file name
    (``*train_sent_emo.csv``, ``dev``/``val``, ``test``) anywhere under the root.
    """

    modalities: ClassVar[tuple[str, ...]] = ("text",)
    root_hint: ClassVar[str] = "the folder holding train_sent_emo.csv and dev_sent_emo.csv (--root path/to/MELD)"
    defaults: ClassVar[Mapping[str, Any]] = {
        "label": "emotion", "extractor": "minilm", "model_path": None, "max_tokens": 50, "batch_size": 64,
        "device": "cpu", "extractor_params": {}, "context": None,
    }

    def _extractor(self, params: Mapping[str, Any]) -> TextExtractor:
        kwargs = {k: v for k, v in params.items()
                  if k not in ("label", "extractor", "extractor_params", "context")}
        extra = params["extractor_params"] or {}
        if not isinstance(extra, Mapping):
            raise ConfigError(f"data.params.extractor_params must be a mapping, got {extra!r}")
        return EXTRACTORS.create(params["extractor"], **kwargs, **extra)

    def _csvs(self, root: Path | None) -> dict[str, Path]:
        assert root is not None
        csvs = {split: find_meld_csv(root, split, required=split != "test") for split in MELD_SPLITS}
        return {split: path for split, path in csvs.items() if path is not None}

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters; ``label`` must be emotion or sentiment, ``context`` valid."""
        params = super().params(given)
        if params["label"] not in _MELD_LABELS:
            raise ConfigError(f"data.params.label must be one of {sorted(_MELD_LABELS)}, got {params['label']!r}")
        try:
            TextContext.from_mapping(params["context"])
        except ValueError as err:
            raise ConfigError(f"data.params.{err}") from None
        return params

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The split CSVs."""
        return sorted(self._csvs(root).values())

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """The splits whose CSV exists."""
        return sorted(self._csvs(root))

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Extract text features of every split CSV found into ``out``.

        A finished ``<split>.h5`` is kept when it records the same `meld_split_identity`;
        otherwise it is removed and rebuilt (the log names what changed).
        """
        label = params["label"]
        extractor = self._extractor(params)
        context = TextContext.from_mapping(params["context"])
        written = {}
        for split, path in self._csvs(root).items():
            target = out / f"{split}.h5"
            identity = meld_split_identity(path, extractor=extractor, label=label, context=context)
            reason = stale_reason(target, identity) if target.exists() else "absent"
            if reason is not None:
                if target.exists():
                    logger.warning("rebuilding %s: %s", target, reason)
                    target.unlink()
                logger.info("extracting MELD %s text features from %s", split, path)
                extract_meld_split(path, target, extractor=extractor, label=label, context=context)
            written[split] = target
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """The CSVs against MELD's published counts (`scenesense.data.meld.validate_meld_csvs`)."""
        report = ValidationReport(self.name, str(root))
        validate_meld_csvs(root, report)
        return report

    def identity(self, root: Path | None, params: Mapping[str, Any]) -> dict[str, Any]:
        """The CSVs, parameters and the extractor's provenance (model, versions).

        An unset ``context`` is left out, so stores made before it existed keep their cache key.
        """
        identity = {**super().identity(root, params), "extractor": self._extractor(params).provenance()}
        if identity["params"].get("context") is None:
            identity["params"].pop("context", None)
        return identity
