"""MulT data pickles (yaohungt/Multimodal-Transformer, formats.md §5): the ``mult`` dataset.

Input (``data.root``): ``{mosi,mosei_senti,iemocap}_data.pkl`` (aligned) or ``..._data_noalign.pkl``
(unaligned), or a folder holding exactly one ``.pkl``. Top level ``{train, valid, test}``
(``valid`` -> store split ``dev``); each split holds ``text`` GloVe ``(N, L_t, 300)``, ``audio``
COVAREP ``(N, L_a, 74)`` (MOSI: 5), ``vision`` FACET ``(N, L_v, 35)`` (MOSI: 20), ``labels``
(``(N, 1, 1)`` sentiment in [-3, 3], or IEMOCAP's ``(N, 4, 2)``) and optionally ``id`` ``(N, 3)``
(bytes in MOSI, decoded as UTF-8).

Store: feature sets ``text``, ``audio``, ``vision`` (sequences ``[T_i, D]``). MulT has no lengths:
sequences are fixed-length and zero padded, and formats.md does not say on which side, so each
sample's true span runs from its first to its last step that is not all zeros (all-zero steps at
the start and at the end are trimmed, zero steps inside are kept); aligned files (equal time
dims) use the union of the three modalities' spans so they stay aligned. How many samples had
leading / trailing padding is recorded in the provenance. A modality that is all zeros for a
sample is stored as missing (counted). Ids: the ``id`` fields joined with ``_`` (dialogue id = the
first field; a repeated id gets ``#k`` appended, counted); without ``id``, ``f"{split}_{row}"``,
flagged as positional in the provenance. Labels (``data.params.label``):

- ``auto`` (default): ``regression`` for ``(N, 1, 1)`` labels, ``emotion4`` for ``(N, 4, 2)``;
- ``regression``: the sentiment as the regression target ``sentiment``;
- ``emotion4``: IEMOCAP as one 4-class label [neutral, happy, sad, angry]: the emotion whose
  2-way one-hot says "present" (index 1), for samples where exactly one emotion is present;
  samples with none or several are dropped and counted. MulT's own protocol is 4 binary tasks
  (one present/absent decision per emotion), which a one-label store cannot hold.

Quirks: audio ``-inf`` -> 0 (as MulT's loader does; counted); other NaN/inf is an error.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.labels import LabelSpace
from scenesense.data.safe_pickle import load_pickle
from scenesense.data.store import FeatureSpec
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.datasets.pickle_splits import (
    SplitPickleSource,
    SplitRows,
    as_strings,
    check_finite,
    find_pickle,
    load_split_dicts,
    split_array,
    write_split_rows,
    zero_neg_inf,
)
from scenesense.datasets.sources import register_source
from scenesense.types import MODALITIES

logger = logging.getLogger(__name__)

IEMOCAP4 = LabelSpace(("neutral", "happy", "sad", "angry"))
"""IEMOCAP's 4 emotions in MulT's label axis order [Neutral, Happy, Sad, Angry]."""

_LABELS = ("auto", "regression", "emotion4")
_FILE = re.compile(r"^(?P<name>.+?)_data(?P<noalign>_noalign)?\.pkl$")
PUBLISHED: dict[str, dict[str, Any]] = {
    "mosi": {"dims": (300, 5, 20), "rows": {"train": 1284, "dev": 229, "test": 686}, "confirmed": True},
    "mosei_senti": {"dims": (300, 74, 35), "rows": {"train": 16326, "dev": 1871, "test": 4659},
                    "confirmed": True},
    "iemocap": {"dims": (300, 74, 35), "rows": {"train": 2717, "dev": 798, "test": 938}, "confirmed": False},
}
"""Dims (text, audio, vision) and rows per split (formats.md §5; IEMOCAP's rows are marked (?))."""
_SPAN_CHUNK = 1024
PADDING_RULE = ("no lengths in MulT and the padding side is undocumented (formats.md §5): all-zero steps are "
                "trimmed at both ends; aligned files use the union span of the three modalities")


def dataset_name(path: Path) -> tuple[str | None, bool]:
    """``(name, aligned-by-file-name)`` from ``{name}_data[_noalign].pkl``; name None if the name differs."""
    match = _FILE.match(path.name)
    if match is None:
        return None, True
    return match["name"], match["noalign"] is None


def nonzero_steps(array: np.ndarray) -> np.ndarray:
    """``[N, L]`` bool: steps of ``[N, L, D]`` with any value that is not 0 (``-inf`` counts as data)."""
    out = np.zeros(array.shape[:2], dtype=bool)
    for start in range(0, array.shape[0], _SPAN_CHUNK):
        out[start:start + _SPAN_CHUNK] = (array[start:start + _SPAN_CHUNK] != 0).any(axis=2)
    return out


def spans(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last non-zero step per row of ``[N, L]`` bool (``0, 0`` for an all-zero row)."""
    has = steps.any(axis=1)
    first = np.where(has, steps.argmax(axis=1), 0)
    stop = np.where(has, steps.shape[1] - steps[:, ::-1].argmax(axis=1), 0)
    return first, stop


def padding_counts(first: np.ndarray, stop: np.ndarray, steps: int) -> dict[str, int]:
    """How many non-empty rows were padded at the start (``leading``) and at the end (``trailing``)."""
    full = stop > first
    return {"leading": int((full & (first > 0)).sum()), "trailing": int((full & (stop < steps)).sum())}


def read_ids(path: Path, key: str, split: Mapping[str, Any], store_split: str, n: int
             ) -> tuple[list[str], list[str], dict[str, Any]]:
    """Sample ids, dialogue ids and id facts (``ids``: how they were made, ``duplicate_ids``)."""
    if "id" not in split:
        return [f"{store_split}_{i}" for i in range(n)], [""] * n, {"ids": "positional (no 'id' key)"}
    raw = split_array(path, key, split, "id", n=n)
    try:
        fields = [as_strings(np.atleast_1d(row)) for row in raw]
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: split {key!r} key 'id' is not UTF-8 ({err.reason})") from None
    joined = ["_".join(f.strip() for f in row) for row in fields]
    seen: Counter[str] = Counter()
    ids = []
    for value in joined:
        ids.append(value if not seen[value] else f"{value}#{seen[value]}")
        seen[value] += 1
    duplicates = sum(c - 1 for c in seen.values())
    facts = {"ids": "id fields joined with '_'", "duplicate_ids": duplicates}
    return ids, [row[0].strip() for row in fields], facts


def read_labels(path: Path, key: str, split: Mapping[str, Any], label: str, ids: list[str]
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Labels of the kept samples, the keep mask ``[N]`` and label facts.

    Raises:
        DataFormatError: a label shape other than ``(N, 1, 1)`` / ``(N, 4, 2)``, or one that does
            not fit ``label``.
    """
    n = len(ids)
    raw = split_array(path, key, split, "labels", n=n)
    shape = tuple(raw.shape[1:])
    kind = {(1, 1): "regression", (1,): "regression", (): "regression", (4, 2): "emotion4"}.get(shape)
    if kind is None or (label != "auto" and label != kind):
        raise DataFormatError(f"{path}: split {key!r} 'labels' has shape {list(raw.shape)}, which does not "
                              f"fit label={label!r} (expected (N, 1, 1) sentiment or (N, 4, 2) IEMOCAP)")
    if kind == "regression":
        values = raw.reshape(n).astype(np.float32)
        check_finite(path, key, "labels", values, ids)
        return values, np.ones(n, dtype=bool), {"label": "regression", "label_source": "labels (N, 1, 1)"}
    present = raw.argmax(axis=2) == 1  # [N, 4]: the 2-way one-hot's index 1 = emotion present
    count = present.sum(axis=1)
    keep = count == 1
    facts = {"label": "emotion4", "label_source": "labels (N, 4, 2): the one emotion present",
             "dropped_no_emotion": int((count == 0).sum()),
             "dropped_several_emotions": int((count > 1).sum())}
    return present[keep].argmax(axis=1).astype(np.int64), keep, facts


def read_mult_split(path: Path, key: str, split: Mapping[str, Any], store_split: str, label: str
                    ) -> SplitRows:
    """One split dict of a MulT pickle as store rows (``counts``: padding, -inf, drops, id facts).

    Raises:
        DataFormatError: a missing key, wrong shapes or row counts, bad labels, or NaN/inf other
            than audio ``-inf``.
    """
    n = split_array(path, key, split, "labels").shape[0]
    arrays = {m: split_array(path, key, split, m, ndim=3, n=n) for m in MODALITIES}
    ids, dialogues, counts = read_ids(path, key, split, store_split, n)
    labels, keep, label_facts = read_labels(path, key, split, label, ids)
    counts.update(label_facts)
    aligned = len({a.shape[1] for a in arrays.values()}) == 1
    steps = {m: nonzero_steps(a) for m, a in arrays.items()}
    if aligned:
        union = spans(np.logical_or.reduce(list(steps.values())))
        bounds = dict.fromkeys(MODALITIES, union)
    else:
        bounds = {m: spans(s) for m, s in steps.items()}
    counts.update({"aligned": aligned, "padding": {}, "empty": {}, "neg_inf_zeroed": 0})
    rows: dict[str, list[np.ndarray | None]] = {}
    kept = np.flatnonzero(keep)
    for m, data in arrays.items():
        if m == "audio":
            data, counts["neg_inf_zeroed"] = zero_neg_inf(data)
        check_finite(path, key, m, data, ids)
        first, stop = bounds[m]
        full = stop > first
        counts["padding"][m] = padding_counts(first, stop, data.shape[1])
        counts["empty"][m] = int((~full[kept]).sum())
        rows[m] = [data[i, first[i]:stop[i]] if full[i] else None for i in kept]
    return SplitRows([ids[i] for i in kept], labels, rows, [dialogues[i] for i in kept], [-1] * len(kept),
                     counts)


@register_source("mult")
class MultSource(SplitPickleSource):
    """MulT data pickles (module docstring): ``text``, ``audio``, ``vision`` sequences.

    ``data.params``: ``label`` (auto | regression | emotion4).
    """

    defaults: ClassVar[Mapping[str, Any]] = {"label": "auto"}

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters; ``label`` is checked."""
        params = super().params(given)
        if params["label"] not in _LABELS:
            raise ConfigError(f"data.params.label must be one of {list(_LABELS)}, got {params['label']!r}")
        return params

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write ``<out>/{train,dev,test}.h5`` from the pickle's splits."""
        assert root is not None
        path = find_pickle(root)
        name, _ = dataset_name(path)
        written = {}
        for split, (key, values) in load_split_dicts(path).items():
            data = read_mult_split(path, key, values, split, params["label"])
            if not data.ids:
                raise DataFormatError(f"{path}: split {key!r} has no sample with exactly one emotion present")
            c = data.counts
            space = IEMOCAP4 if c["label"] == "emotion4" else LabelSpace(("sentiment",), "regression")
            specs = {}
            for m in MODALITIES:
                provenance = {"dataset": "mult", "file": path.name, "key": m, "lengths": PADDING_RULE,
                              "padding": c["padding"][m]}
                if m == "audio":
                    provenance["neg_inf_zeroed"] = c["neg_inf_zeroed"]
                _, steps, dim = values[m].shape
                specs[m] = FeatureSpec(m, "sequence", int(dim), max_len=int(steps), provenance=provenance)
            source = {"dataset": "mult", "name": name or "unknown", "file": path.name, "split_key": key,
                      "rows": len(data.ids), "padding_rule": PADDING_RULE, **c}
            if c["label"] == "emotion4":
                source["protocol_note"] = ("MulT scores IEMOCAP as 4 binary tasks; this store holds one "
                                           "4-class label")
            logger.info("mult %s: %d samples, %d audio -inf -> 0", split, len(data.ids), c["neg_inf_zeroed"])
            written[split] = write_split_rows(out / f"{split}.h5", space, specs, source, data)
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """formats.md §5 "Validate" list, plus the published rows and dims of a recognised file."""
        path = find_pickle(root)
        report = ValidationReport(self.name, str(path))
        name, aligned_name = dataset_name(path)
        report.counts["dataset"] = name or "unknown"
        data = load_pickle(path)
        if not report.check("top level is a dict", isinstance(data, Mapping), type(data).__name__):
            return report
        report.expect_equal("top-level keys", sorted(map(str, data)), ["test", "train", "valid"])
        known = PUBLISHED.get(name or "")
        rows: dict[str, int] = {}
        for key, split in data.items():
            if str(key) in ("train", "valid", "test") and isinstance(split, Mapping):
                rows[str(key)] = _validate_split(report, str(key), split, aligned_name, known)
        report.counts["rows"] = rows
        if known is not None:
            found = {"train": rows.get("train"), "dev": rows.get("valid"), "test": rows.get("test")}
            if known["confirmed"]:
                report.expect_equal(f"{name} rows per split (published)", found, known["rows"])
            else:
                report.counts["published_rows_unconfirmed"] = known["rows"]
        return report


def _validate_split(report: ValidationReport, key: str, split: Mapping[str, Any], aligned_name: bool,
                    known: Mapping[str, Any] | None) -> int:
    """Checks of one split; returns its row count."""
    needed = {"text", "audio", "vision", "labels"}
    missing = sorted(needed - set(split))
    if not report.check(f"{key}: required keys", not missing, f"missing {missing}"):
        return 0
    arrays = {k: np.asarray(split[k]) for k in (*needed, *(["id"] if "id" in split else []))}
    sizes = {k: int(a.shape[0]) for k, a in arrays.items()}
    report.check(f"{key}: N matches across fields", len(set(sizes.values())) == 1, str(sizes))
    labels = arrays["labels"]
    report.check(f"{key}: labels shape (N, 1, 1) or (N, 4, 2)", labels.shape[1:] in ((1, 1), (4, 2)),
                 str(list(labels.shape)))
    feats = {m: arrays[m] for m in MODALITIES if arrays[m].ndim == 3}
    if known is not None and len(feats) == 3:
        dims = tuple(int(feats[m].shape[2]) for m in ("text", "audio", "vision"))
        report.expect_equal(f"{key}: dims (text, audio, vision)", dims, known["dims"])
    steps = {m: int(a.shape[1]) for m, a in feats.items()}
    equal = len(set(steps.values())) == 1
    report.check(f"{key}: aligned (file name) <=> equal time dims", aligned_name == equal,
                 f"time dims {steps}, {'aligned' if aligned_name else '_noalign'} file")
    if "id" in arrays:
        report.expect_equal(f"{key}: id shape (N, 3)", tuple(arrays["id"].shape[1:]), (3,))
    if labels.shape[1:] == (1, 1):
        values = labels.astype(np.float64)
        lo, hi = float(np.min(values, initial=0.0)), float(np.max(values, initial=0.0))
        report.check(f"{key}: sentiment in [-3, 3]", -3 <= lo and hi <= 3, f"[{lo}, {hi}]")
    elif labels.shape[1:] == (4, 2):
        present = labels.argmax(axis=2) == 1
        histogram = dict(zip(IEMOCAP4.names, present.sum(0).tolist(), strict=True))
        report.counts.setdefault("emotions_present", {})[key] = histogram
        report.counts.setdefault("exactly_one_emotion", {})[key] = int((present.sum(1) == 1).sum())
    report.counts.setdefault("audio_neg_inf", {})[key] = int(np.isneginf(arrays["audio"]).sum())
    padding = {}
    for m, a in feats.items():
        first, stop = spans(nonzero_steps(a))
        full = stop > first
        padding[m] = {**padding_counts(first, stop, a.shape[1]), "all_zero": int((~full).sum())}
    report.counts.setdefault("padding", {})[key] = padding
    return sizes["labels"]
