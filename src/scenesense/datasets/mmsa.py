"""MMSA feature pickles (thuiar/MMSA, formats.md §4): the ``mmsa`` dataset.

Input (``data.root``): one pickle (``aligned_50.pkl``, ``unaligned_50.pkl``, ``unaligned_39.pkl``,
``sims_unaligned.pkl``, ...) or a folder holding exactly one ``.pkl``. Top level: a dict
``{train, valid, test}`` (``valid`` -> store split ``dev``); each split is a dict of arrays with
``N`` rows: ``text`` BERT features ``(N, L_t, 768)``, ``text_bert`` ``(N, 3, L_t)`` = [ids, mask,
segments], ``audio`` ``(N, L_a, D_a)``, ``vision`` ``(N, L_v, D_v)``, ``audio_lengths`` /
``vision_lengths`` (unaligned files), ``id`` ``"{video_id}$_${clip_id}"``, ``annotations``
(Negative / Neutral / Positive), ``classification_labels`` (0/1/2), ``regression_labels`` ``(N,)``
and, for SIMS only, ``regression_labels_T`` / ``_A`` / ``_V``.

Store: feature sets ``text``, ``audio``, ``vision`` (sequences ``[T_i, D]`` with true lengths).
True lengths: unaligned files take ``audio_lengths`` / ``vision_lengths`` and, for text, the sum of
the ``text_bert`` attention mask (row 1; the full ``L_t`` when ``text_bert`` is absent). Aligned
files (the three time dims equal) give every modality the text length, the way MMSA's aligned
models use the text mask for all three. A length of 0 stores the modality as missing (counted).
Ids are the ``id`` strings; dialogue id = the video id; position = rank of the clip id within its
video (numeric order when all clip ids are digits). Labels (``data.params.label``):

- ``regression`` (default): ``regression_labels`` as the regression target ``sentiment``;
- ``classification``: 3 classes Negative / Neutral / Positive from ``annotations``, else from
  ``classification_labels``, else by the sign of ``regression_labels`` (MMSA's <0 / 0 / >0);
- ``regression_T`` / ``regression_A`` / ``regression_V``: SIMS's unimodal targets;
- ``sentiment5``: 5 classes Strongly Negative .. Strongly Positive (`SENTIMENT5`) from
  ``regression_labels`` by `sentiment5_ids` with the rule ``data.params.five_class``: ``round``
  (``round(clip(s, -2, 2)) + 2``, MOSI / MOSEI), ``sims`` (MMSA's CH-SIMS intervals, split at -0.7,
  -0.1, 0.1, 0.7; on SIMS's labels the classes of TMT's 5-class training script) or ``auto``
  (default): ``sims`` when every ``regression_labels`` value of the file lies in [-1, 1], else
  ``round``.

Every label but ``classification`` records the resolved rule as ``five_class`` in the store's
``source``: evaluation then adds the 5-class scores of that rule (Acc-5 and F1 over the 5 classes;
`scenesense.evaluation.sentiment5`).

Quirks: audio ``-inf`` -> 0 (MMSA's loader does the same; counted per split into the provenance);
any other NaN/inf is an error. A file with only ``text_bert`` (token ids, no BERT features) has no
text features: requesting ``text`` then fails with one line; convert it with
``data.params.modalities=[audio, vision]``. ``validate`` checks formats.md §4's list plus the
published row counts of MOSI / MOSEI / SIMS (recognised by the audio/vision dims).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.labels import (
    SENTIMENT3,
    SENTIMENT5,
    SENTIMENT5_RULES,
    LabelSpace,
    sentiment3_ids,
    sentiment5_ids,
)
from scenesense.data.safe_pickle import load_pickle
from scenesense.data.store import FeatureSpec
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.datasets.pickle_splits import (
    SPLIT_NAMES,
    SplitPickleSource,
    SplitRows,
    as_strings,
    check_finite,
    find_pickle,
    load_split_dicts,
    rank_positions,
    split_array,
    trim_rows,
    write_split_rows,
    zero_neg_inf,
)
from scenesense.datasets.sources import register_source
from scenesense.types import MODALITIES

logger = logging.getLogger(__name__)

_LABELS: dict[str, str] = {"regression": "regression_labels", "classification": "annotations",
                           "regression_T": "regression_labels_T", "regression_A": "regression_labels_A",
                           "regression_V": "regression_labels_V", "sentiment5": "regression_labels"}
_FIVE_CLASS = ("auto", *SENTIMENT5_RULES)
_KNOWN_DIMS: dict[tuple[int, int], str] = {(5, 20): "MOSI", (74, 35): "MOSEI", (33, 709): "SIMS"}
_TEXT_DIM = 768
PUBLISHED_ROWS: dict[str, dict[str, int]] = {
    "MOSI": {"train": 1284, "dev": 229, "test": 686},
    "MOSEI": {"train": 16326, "dev": 1871, "test": 4659},
    "SIMS": {"train": 1368, "dev": 456, "test": 457},
}
"""Rows per split of the recognised MMSA files (formats.md §4; SIMS's test count is marked (?))."""


def _lengths(path: Path, key: str, split: Mapping[str, Any], name: str, n: int, limit: int) -> np.ndarray:
    lengths = split_array(path, key, split, name, ndim=1, n=n).astype(np.int64)
    bad = np.flatnonzero((lengths < 0) | (lengths > limit))
    if bad.size:
        raise DataFormatError(f"{path}: split {key!r} {name!r} row {int(bad[0])} is {int(lengths[bad[0]])}, "
                              f"outside [0, {limit}]")
    return lengths


def _text_lengths(path: Path, key: str, split: Mapping[str, Any], n: int, limit: int
                  ) -> tuple[np.ndarray, str]:
    if "text_bert" not in split:
        return np.full(n, limit, dtype=np.int64), f"full L ({limit}): no text_bert mask"
    bert = split_array(path, key, split, "text_bert", ndim=3, n=n)
    if bert.shape[1] != 3:
        raise DataFormatError(f"{path}: split {key!r} key 'text_bert' has shape {list(bert.shape)}, "
                              f"expected (N, 3, L)")
    lengths = np.minimum(bert[:, 1, :].sum(axis=1).astype(np.int64), limit)
    return lengths, "text_bert attention mask (row 1) sum"


def is_aligned(path: Path, key: str, split: Mapping[str, Any], n: int) -> bool:
    """Aligned <=> the time dims of text (or ``text_bert``), audio and vision in the file are equal."""
    dims = {m: split_array(path, key, split, m, ndim=3, n=n).shape[1]
            for m in ("audio", "vision") if m in split}
    if "text" in split:
        dims["text"] = split_array(path, key, split, "text", ndim=3, n=n).shape[1]
    elif "text_bert" in split:
        dims["text"] = split_array(path, key, split, "text_bert", ndim=3, n=n).shape[2]
    return len(dims) >= 2 and len(set(dims.values())) == 1


def _labels(path: Path, key: str, split: Mapping[str, Any], label: str, ids: Sequence[str],
            five_class: str = "round") -> tuple[np.ndarray, str]:
    n = len(ids)
    if label == "sentiment5":
        values, source = _labels(path, key, split, "regression", ids)
        return sentiment5_ids(values, five_class), f"{source}, 5 classes by rule {five_class!r}"
    if label != "classification":
        values = split_array(path, key, split, _LABELS[label], n=n).reshape(n, -1)
        if values.shape[1] != 1:
            raise DataFormatError(f"{path}: split {key!r} key {_LABELS[label]!r} has {values.shape[1]} "
                                  f"values per row, expected 1")
        values = values[:, 0].astype(np.float32)
        check_finite(path, key, _LABELS[label], values, ids)
        return values, _LABELS[label]
    if "annotations" in split:
        names = as_strings(split_array(path, key, split, "annotations", ndim=1, n=n))
        bad = [i for i, v in enumerate(names) if v not in SENTIMENT3.names]
        if bad:
            raise DataFormatError(f"{path}: split {key!r} 'annotations' row {bad[0]} (id {ids[bad[0]]!r}) is "
                                  f"{names[bad[0]]!r}, expected one of {list(SENTIMENT3.names)}")
        return SENTIMENT3.encode(names), "annotations"
    if "classification_labels" in split:
        raw = split_array(path, key, split, "classification_labels", n=n).reshape(n)
        bad = np.flatnonzero(~np.isin(raw, (0, 1, 2)))
        if bad.size:
            raise DataFormatError(f"{path}: split {key!r} 'classification_labels' row {int(bad[0])} is "
                                  f"{raw[bad[0]]!r}, expected 0, 1 or 2")
        return raw.astype(np.int64), "classification_labels"
    values, _ = _labels(path, key, split, "regression", ids)
    return sentiment3_ids(values), "sign of regression_labels (<0 / 0 / >0)"


def read_mmsa_split(path: Path, key: str, split: Mapping[str, Any], *, label: str,
                    modalities: Sequence[str], five_class: str = "round") -> SplitRows:
    """Turn one split dict of an MMSA pickle into store rows.

    Args:
        path: the pickle (for messages).
        key: the split's key in the pickle (``"train"``, ``"valid"``, ``"test"``).
        split: that split's dict of arrays.
        label: a ``data.params.label`` value.
        modalities: the modalities to read.
        five_class: the `sentiment5_ids` rule of label ``sentiment5`` (``round`` or ``sims``).

    Returns:
        The rows; ``counts`` holds ``aligned``, ``lengths`` (modality -> rule), ``neg_inf_zeroed``,
        ``empty`` (modality -> samples stored as missing) and ``label_source``.

    Raises:
        DataFormatError: a missing key, a wrong shape, mismatched row counts, lengths outside
            ``[0, L]``, bad labels, duplicate ids, or NaN/inf other than audio ``-inf``.
    """
    ids = as_strings(split_array(path, key, split, "id", ndim=1))
    n = len(ids)
    if len(set(ids)) != n:
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise DataFormatError(f"{path}: split {key!r} id {dup!r} occurs more than once")
    if "text" in modalities and "text" not in split:
        detail = "only 'text_bert' token ids (N, 3, L)" if "text_bert" in split else f"keys {sorted(split)}"
        raise DataFormatError(f"{path}: split {key!r} has no BERT 'text' features (N, L, 768), {detail}; "
                              f"convert without text: data.params.modalities=[audio, vision]")
    arrays = {m: split_array(path, key, split, m, ndim=3, n=n) for m in modalities}
    steps = {m: a.shape[1] for m, a in arrays.items()}
    aligned = is_aligned(path, key, split, n)
    counts: dict[str, Any] = {"aligned": aligned, "lengths": {}, "neg_inf_zeroed": 0, "empty": {}}
    lengths: dict[str, np.ndarray] = {}
    if aligned:
        common, rule = _text_lengths(path, key, split, n, next(iter(steps.values())))
        lengths = dict.fromkeys(modalities, common)
        counts["lengths"] = dict.fromkeys(modalities, f"aligned: {rule}")
    else:
        for m in modalities:
            if m == "text":
                lengths[m], counts["lengths"][m] = _text_lengths(path, key, split, n, steps[m])
            else:
                lengths[m] = _lengths(path, key, split, f"{m}_lengths", n, steps[m])
                counts["lengths"][m] = f"{m}_lengths"
    rows: dict[str, list[np.ndarray | None]] = {}
    for m in modalities:
        data = arrays[m]
        if m == "audio":
            data, counts["neg_inf_zeroed"] = zero_neg_inf(data)
        check_finite(path, key, m, data, ids)
        rows[m] = trim_rows(data, lengths[m])
        counts["empty"][m] = int((lengths[m] == 0).sum())
    labels, counts["label_source"] = _labels(path, key, split, label, ids, five_class)
    videos = [i.split("$_$", 1)[0] if "$_$" in i else "" for i in ids]
    clips = [i.split("$_$", 1)[1] if "$_$" in i else "" for i in ids]
    return SplitRows(ids, labels, rows, videos, rank_positions(videos, clips), counts)


def resolve_five_class(path: Path, splits: Mapping[str, tuple[str, Mapping[str, Any]]], given: str,
                       label: str = "regression") -> str:
    """The 5-class rule ``given`` names; for ``auto``, ``sims`` when every score of ``label``
    (``regression_labels`` for ``regression`` and ``sentiment5``) in every split lies in [-1, 1]
    (CH-SIMS's scale), else ``round`` (MOSI / MOSEI's [-3, 3])."""
    if given != "auto":
        return given
    for key, split in splits.values():
        values = split_array(path, key, split, _LABELS[label]).astype(np.float64)
        if values.size and np.nanmax(np.abs(values)) > 1.0:
            return "round"
    return "sims"


def guess_dataset(audio_dim: int, vision_dim: int, path: Path) -> str | None:
    """MOSI / MOSEI / SIMS / SIMSv2 from the audio and vision dims (and the file name for SIMSv2)."""
    name = _KNOWN_DIMS.get((audio_dim, vision_dim))
    if name == "SIMS" and ("simsv2" in str(path).lower() or path.name == "sims_unaligned.pkl"):
        return "SIMSv2"
    return name


@register_source("mmsa")
class MmsaSource(SplitPickleSource):
    """MMSA feature pickles (module docstring): ``text``, ``audio``, ``vision`` sequences.

    ``data.params``: ``label`` (regression | classification | regression_T | regression_A |
    regression_V | sentiment5), ``five_class`` (auto | round | sims: how ``sentiment5`` and the
    5-class scores form the classes) and ``modalities`` (the feature sets to write; default all three).
    """

    defaults: ClassVar[Mapping[str, Any]] = {"label": "regression", "five_class": "auto",
                                             "modalities": list(MODALITIES)}

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters; ``label``, ``five_class`` and ``modalities`` are checked."""
        params = super().params(given)
        if params["label"] not in _LABELS:
            raise ConfigError(f"data.params.label must be one of {sorted(_LABELS)}, got {params['label']!r}")
        if params["five_class"] not in _FIVE_CLASS:
            raise ConfigError(f"data.params.five_class must be one of {list(_FIVE_CLASS)}, "
                              f"got {params['five_class']!r}")
        mods = params["modalities"]
        if not mods or isinstance(mods, str) or any(m not in MODALITIES for m in mods):
            raise ConfigError(f"data.params.modalities must be a non-empty list of {list(MODALITIES)}, "
                              f"got {mods!r}")
        params["modalities"] = sorted(set(mods))
        return params

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write ``<out>/{train,dev,test}.h5`` from the pickle's splits."""
        assert root is not None
        params = self.params(params)
        path = find_pickle(root)
        label = params["label"]
        space = {"classification": SENTIMENT3, "sentiment5": SENTIMENT5}.get(label) or LabelSpace(
            ("sentiment" if label == "regression" else f"sentiment_{label[-1]}",), "regression")
        splits = load_split_dicts(path)
        five_class = (None if label == "classification"
                      else resolve_five_class(path, splits, params["five_class"], label))
        written = {}
        for split, (key, values) in splits.items():
            data = read_mmsa_split(path, key, values, label=label, modalities=params["modalities"],
                                   five_class=five_class or "round")
            counts = data.counts
            unimodal = sorted(k for k in values if str(k).startswith("regression_labels_"))
            specs = {}
            for m in params["modalities"]:
                provenance = {"dataset": "mmsa", "file": path.name, "key": m, "lengths": counts["lengths"][m]}
                if m == "audio":
                    provenance["neg_inf_zeroed"] = counts["neg_inf_zeroed"]
                _, steps, dim = np.shape(values[m])
                specs[m] = FeatureSpec(m, "sequence", int(dim), max_len=int(steps), provenance=provenance)
            source = {"dataset": "mmsa", "file": path.name, "split_key": key, "rows": len(data.ids),
                      "label": label, "label_source": counts["label_source"], "aligned": counts["aligned"],
                      "audio_neg_inf_zeroed": counts["neg_inf_zeroed"], "empty": counts["empty"],
                      "unimodal_labels": unimodal, "ids": "id ({video_id}$_${clip_id})"}
            if five_class is not None:
                source["five_class"] = five_class
            logger.info("mmsa %s: %d samples, %d audio -inf -> 0", split, len(data.ids),
                        counts["neg_inf_zeroed"])
            written[split] = write_split_rows(out / f"{split}.h5", space, specs, source, data)
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """formats.md §4 "Validate" list, plus the published row counts of a recognised dataset."""
        path = find_pickle(root)
        report = ValidationReport(self.name, str(path))
        data = load_pickle(path)
        if not report.check("top level is a dict", isinstance(data, Mapping), type(data).__name__):
            return report
        report.expect_equal("top-level keys", sorted(map(str, data)), ["test", "train", "valid"])
        rows: dict[str, int] = {}
        dims: set[tuple[int, ...]] = set()
        for key, split in data.items():
            if isinstance(split, Mapping) and str(key) in SPLIT_NAMES:
                rows[SPLIT_NAMES[str(key)]] = _validate_split(report, str(key), split, dims)
        report.counts["rows"] = rows
        report.check("feature dims agree across splits", len(dims) <= 1, str(sorted(dims)))
        if len(dims) == 1:
            d_t, d_a, d_v = next(iter(dims))
            name = guess_dataset(d_a, d_v, path)
            report.counts["dims"] = {"text": d_t, "audio": d_a, "vision": d_v}
            report.counts["dataset"] = name or "unknown"
            if d_t:
                report.expect_equal("text dim (BERT)", d_t, _TEXT_DIM)
            if name in PUBLISHED_ROWS:
                for split, expected in PUBLISHED_ROWS[name].items():
                    report.expect_equal(f"{name} {split} rows (published)", rows.get(split), expected)
        return report


def _validate_split(report: ValidationReport, key: str, split: Mapping[str, Any],
                    dims: set[tuple[int, ...]]) -> int:
    """Checks of one split; returns its row count and adds its (D_t, D_a, D_v) to ``dims``."""
    needed = {"raw_text", "text", "audio", "vision", "id", "regression_labels"}
    report.check(f"{key}: required keys", needed <= set(split), f"missing {sorted(needed - set(split))}")
    arrays = {k: np.asarray(v) for k, v in split.items() if k != "raw_text"}
    sizes = {k: int(a.shape[0]) for k, a in arrays.items() if a.ndim}
    if "raw_text" in split:
        sizes["raw_text"] = len(split["raw_text"])
    n = sizes.get("id", max(sizes.values(), default=0))
    report.check(f"{key}: N matches across fields", len(set(sizes.values())) <= 1,
                 str(sizes) if len(set(sizes.values())) > 1 else f"N={n}")
    if "text_bert" in arrays:
        report.expect_equal(f"{key}: text_bert.shape[1]", int(arrays["text_bert"].shape[1]), 3)
    steps = {m: int(arrays[m].shape[1]) for m in ("text", "audio", "vision")
             if arrays.get(m, np.empty(0)).ndim == 3}
    unaligned = any(f"{m}_lengths" in split for m in ("audio", "vision"))
    for m in ("audio", "vision"):
        if f"{m}_lengths" in split and m in steps:
            longest = int(np.max(arrays[f"{m}_lengths"], initial=0))
            report.check(f"{key}: max({m}_lengths) <= L", longest <= steps[m], f"{longest} vs L={steps[m]}")
    if len(steps) == 3:
        equal = len(set(steps.values())) == 1
        report.check(f"{key}: aligned <=> equal time dims", equal != unaligned,
                     f"time dims {steps}, *_lengths {'present' if unaligned else 'absent'}")
    if "regression_labels" in arrays:
        labels = arrays["regression_labels"].astype(np.float64)
        lo, hi = float(np.min(labels, initial=0.0)), float(np.max(labels, initial=0.0))
        report.check(f"{key}: regression_labels in [-3, 3] or [-1, 1]", -3 <= lo and hi <= 3, f"[{lo}, {hi}]")
    if "annotations" in split:
        names, freq = np.unique(np.asarray(as_strings(split["annotations"])), return_counts=True)
        histogram = {str(a): int(c) for a, c in zip(names, freq, strict=True)}
        report.counts.setdefault("annotations", {})[key] = histogram
    if "audio" in arrays:
        report.counts.setdefault("audio_neg_inf", {})[key] = int(np.isneginf(arrays["audio"]).sum())
    d = tuple(int(arrays[m].shape[2]) if m in steps else 0 for m in ("text", "audio", "vision"))
    dims.add(d)
    return n
