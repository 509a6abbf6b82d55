"""Export a feature store to MMSA's feature pickle (thuiar/MMSA 2.2.1; formats.md §4, peers.md §1.3).

The pickle is a dict ``{"train": split, "valid": split, "test": split}`` taken from the store splits
``train``, ``dev`` and ``test`` (``splits`` changes the mapping, e.g. ``test`` from ``dev`` for a
store without a test split). Each split is a dict with ``N`` rows in store order:

=========================  ===========  ==============  =============================================
key                        dtype        shape           content
=========================  ===========  ==============  =============================================
``text``                   float32      (N, T_t, D_t)   the ``text`` feature set
``audio``                  float32      (N, T_a, D_a)   the ``audio`` feature set
``vision``                 float32      (N, T_v, D_v)   the ``vision`` feature set
``audio_lengths``          list[int]    (N,)            true lengths, clipped to ``[1, T_a]``
``vision_lengths``         list[int]    (N,)            true lengths, clipped to ``[1, T_v]``
``regression_labels``      float32      (N,)            the only label key MMSA's loader reads
``classification_labels``  float32      (N,)            class ids (not read by MMSA 2.2.1)
``annotations``            object/str   (N,)            label names (not read by MMSA 2.2.1)
``id``                     object/str   (N,)            the store ids, unchanged
``raw_text``               object/str   (N,)            ``""`` (a store keeps no transcripts)
=========================  ===========  ==============  =============================================

Labels. A classification store writes its class ids (as floats) into ``regression_labels`` and
``classification_labels`` and its class names into ``annotations``; MMSA then trains on them with
``config={"train_mode": "classification", "num_classes": K}`` (its metrics there need K >= 3). A
regression store writes its targets into ``regression_labels`` and, as MMSA's own files do, the sign
classes 0 / 1 / 2 (< 0 / 0 / > 0) and ``Negative`` / ``Neutral`` / ``Positive``. Unlabelled rows
(class id -1) are refused: MMSA cannot train or score them.

Sequences. Every split of a modality is zero padded *at the end* (as MMSA-FET writes its files) to
one length ``T``: the longest row over the exported splits, or ``max_len`` (longer rows keep their
first ``T`` steps). A vector feature set becomes a length-1 sequence ``[N, 1, D]``. A sample whose
modality is missing (``present`` False) is all zeros with length 1: MMSA has no missing-modality
flag, and models that pack sequences reject length 0. MMSA's loader reads no text lengths (BERT
models take them from ``text_bert``), so none are written. ``text_bert`` is not written either, so
BERT models (``use_bert``) cannot read the file. Two consequences on MMSA's side: TFN / LMF / LF_DNN
average audio and vision over all ``T`` steps, padding included (``need_normalized``); and MulT's
Conv1d (kernel 5, no padding) needs ``T >= 5``, so a length-1 modality needs
``conv1d_kernel_size_{l,a,v} = 1`` (``benchmarks/mmsa_runner.py`` sets it).

Missing modalities. MMSA's loader needs all three. A modality without a feature set in the store
(or left out of ``modalities``) raises `scenesense.data.store.StoreError` unless
``missing="zeros"``, which writes zeros ``[N, 1, 1]`` (length 1) for it. Non-finite values
(possible only in feature sets stored with ``allow_nonfinite``) are written as 0 and counted.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from scenesense.data.dataset import resolve_feature_sets
from scenesense.data.labels import SENTIMENT3, UNLABELLED, sentiment3_ids
from scenesense.data.store import StoreError, StoreSplit, find_store_splits, open_store_split
from scenesense.types import MODALITIES
from scenesense.utils.io import atomic_save_with

MMSA_SPLITS: dict[str, str] = {"train": "train", "valid": "dev", "test": "test"}
"""MMSA split key -> store split read for it (the default)."""
LENGTH_KEYS: tuple[str, ...] = ("audio", "vision")
"""Modalities whose ``<m>_lengths`` MMSA reads (unaligned models)."""
PICKLE_PROTOCOL = 4
_READ_ROWS = 1024
Missing = Literal["error", "zeros"]


@dataclass(frozen=True)
class MmsaExport:
    """What `export_mmsa` wrote.

    Fields: ``path``; ``splits`` (MMSA key -> store split); ``rows`` (MMSA key -> ``N``);
    ``feature_sets`` (modality -> store feature set, ``None`` = zeros); ``seq_lens`` (modality ->
    ``T``); ``feature_dims`` (modality -> ``D``); ``task``; ``label_names``; ``truncated``
    (modality -> rows cut to ``T``); ``nonfinite_zeroed`` (modality -> values written as 0).
    """

    path: Path
    splits: dict[str, str]
    rows: dict[str, int]
    feature_sets: dict[str, str | None]
    seq_lens: dict[str, int]
    feature_dims: dict[str, int]
    task: str
    label_names: tuple[str, ...]
    truncated: dict[str, int]
    nonfinite_zeroed: dict[str, int]

    @property
    def num_classes(self) -> int:
        """``K`` for MMSA's ``num_classes`` (0 for a regression store)."""
        return len(self.label_names) if self.task == "classification" else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {"path": str(self.path), "splits": self.splits, "rows": self.rows,
                "feature_sets": self.feature_sets, "seq_lens": self.seq_lens,
                "feature_dims": self.feature_dims,
                "task": self.task, "label_names": list(self.label_names), "num_classes": self.num_classes,
                "truncated": self.truncated, "nonfinite_zeroed": self.nonfinite_zeroed}


def export_mmsa(
    store: str | Path,
    out: str | Path,
    *,
    splits: Mapping[str, str] | None = None,
    features: Mapping[str, str] | None = None,
    modalities: Sequence[str] | None = None,
    max_len: int | Mapping[str, int] | None = None,
    missing: Missing = "error",
) -> MmsaExport:
    """Write store folder ``store`` as one MMSA feature pickle ``out`` (module docstring).

    Args:
        store: a store folder holding ``<split>.h5`` files.
        out: the ``.pkl`` to write (replaced atomically; its folder is created).
        splits: MMSA key (``train`` / ``valid`` / ``test``) -> store split; missing keys take
            `MMSA_SPLITS`.
        features: modality -> feature set name (default: the set named like the modality, else the
            unique set of that modality, as for training).
        modalities: the modalities read from the store (default: all three); the others count as
            missing, so that MMSA sees only what a model of ours trained on ``modalities`` sees.
        max_len: longest sequence per modality (an int for all); longer rows are cut.
        missing: ``"error"`` or ``"zeros"`` for a modality without a feature set.

    Returns:
        The `MmsaExport` summary.

    Raises:
        StoreError: a missing split file, a modality without a feature set (``missing="error"``),
            feature sets that differ between splits, label spaces that differ, or unlabelled rows.
        ValueError: bad ``splits``, ``modalities``, ``max_len`` or ``missing``.
    """
    if missing not in ("error", "zeros"):
        raise ValueError(f"missing must be 'error' or 'zeros', got {missing!r}")
    wanted = tuple(MODALITIES if modalities is None else modalities)
    if not wanted or any(m not in MODALITIES for m in wanted):
        raise ValueError(f"modalities must be a non-empty subset of {list(MODALITIES)}, got {list(wanted)}")
    mapping = _split_mapping(splits)
    files = find_store_splits(store)
    absent = sorted({s for s in mapping.values() if s not in files})
    if absent:
        raise StoreError(f"{store}: no split file(s) {[f'{s}.h5' for s in absent]} (has {sorted(files)}); "
                         f"MMSA needs train/valid/test: map one to an existing split (e.g. test -> dev)")
    metas = {key: open_store_split(files[name]) for key, name in mapping.items()}
    chosen = _feature_sets(metas, dict(features or {}), wanted, missing)
    seq_lens = _seq_lens(metas, chosen, max_len)
    dims = {m: (metas["train"].features[name].dim if name else 1) for m, name in chosen.items()}
    space = metas["train"].label_space
    for meta in metas.values():
        if meta.label_space != space:
            raise StoreError(f"{meta.path.name}: labels {list(meta.label_space.names)} differ from the train "
                             f"split's {list(space.names)}")
    truncated = dict.fromkeys(MODALITIES, 0)
    nonfinite = dict.fromkeys(MODALITIES, 0)
    data = {key: _split_dict(meta, chosen, seq_lens, dims, truncated, nonfinite)
            for key, meta in metas.items()}
    path = atomic_save_with(Path(out), lambda handle: pickle.dump(data, handle, protocol=PICKLE_PROTOCOL))
    return MmsaExport(path=path, splits=mapping, rows={k: m.n for k, m in metas.items()}, feature_sets=chosen,
                      seq_lens=seq_lens, feature_dims=dims, task=space.task, label_names=space.names,
                      truncated=truncated, nonfinite_zeroed=nonfinite)


def _split_mapping(splits: Mapping[str, str] | None) -> dict[str, str]:
    unknown = sorted(set(splits or {}) - set(MMSA_SPLITS))
    if unknown:
        raise ValueError(f"MMSA splits are {list(MMSA_SPLITS)}, got {unknown}")
    return {**MMSA_SPLITS, **dict(splits or {})}


def _feature_sets(metas: Mapping[str, StoreSplit], features: dict[str, str], wanted: Sequence[str],
                  missing: Missing) -> dict[str, str | None]:
    """Modality -> feature set name (``None`` = zeros), identical in every split."""
    train = metas["train"]
    present = [m for m in MODALITIES if m in wanted and (
        m in features or any(info.modality == m for info in train.features.values()))]
    absent = [m for m in MODALITIES if m not in present]
    if absent and missing == "error":
        raise StoreError(f"{train.path.parent}: no feature set for {absent} exported (has "
                         f"{sorted(train.features)}, modalities {list(wanted)}); "
                         f"MMSA needs text, audio and vision: export with missing='zeros' (--missing zeros) "
                         f"to write them as zeros")
    chosen = resolve_feature_sets(train, present, features)
    for key, meta in metas.items():
        for m, name in chosen.items():
            ours, theirs = train.features[name], meta.features.get(name)
            if theirs is None or (theirs.kind, theirs.dim, theirs.modality) != (
                    ours.kind, ours.dim, ours.modality):
                found = "absent" if theirs is None else f"{theirs.kind} D={theirs.dim}"
                raise StoreError(f"{meta.path.name} ({key}): feature set {name!r} for {m} is {found}, "
                                 f"the train split has {ours.kind} D={ours.dim}")
    return {m: chosen.get(m) for m in MODALITIES}


def _seq_lens(metas: Mapping[str, StoreSplit], chosen: Mapping[str, str | None],
              max_len: int | Mapping[str, int] | None) -> dict[str, int]:
    """Modality -> the common padded length ``T``."""
    limits = dict.fromkeys(MODALITIES, max_len) if not isinstance(max_len, Mapping) else dict(max_len)
    unknown = sorted(set(limits) - set(MODALITIES))
    if unknown:
        raise ValueError(f"max_len names unknown modalities {unknown}; use {list(MODALITIES)}")
    out = {}
    for m, name in chosen.items():
        limit = limits.get(m)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_len for {m} must be a positive int, got {limit!r}")
        if name is None:
            out[m] = 1
            continue
        longest = max(meta.features[name].max_len or 1 for meta in metas.values())  # vectors: 1
        out[m] = min(longest, limit) if limit is not None else longest
    return out


def _split_dict(meta: StoreSplit, chosen: Mapping[str, str | None], seq_lens: Mapping[str, int],
                dims: Mapping[str, int], truncated: dict[str, int], nonfinite: dict[str, int]
                ) -> dict[str, Any]:
    """One MMSA split dict (module docstring table)."""
    n = meta.n
    out: dict[str, Any] = {}
    with h5py.File(meta.path, "r") as f:
        for m in ("text", "audio", "vision"):  # MMSA's order: feature_dims = [text, audio, vision]
            name = chosen[m]
            if name is None:
                out[m] = np.zeros((n, 1, 1), dtype=np.float32)
                lengths = np.ones(n, dtype=np.int64)
            else:
                out[m], lengths, cut, bad = _read_padded(f["features"][name], n, seq_lens[m], dims[m])
                truncated[m] += cut
                nonfinite[m] += bad
            if m in LENGTH_KEYS:
                out[f"{m}_lengths"] = [int(t) for t in lengths]
    out.update(_labels(meta))
    out["id"] = np.array(meta.ids, dtype=object)
    out["raw_text"] = np.array([""] * n, dtype=object)
    return out


def _read_padded(group: h5py.Group, n: int, steps: int, dim: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Read a feature set as ``[N, steps, D]`` float32 zero padded at the end.

    Returns:
        data, lengths ``[N]`` clipped to ``[1, steps]``, rows cut, non-finite values zeroed.
    """
    data = np.zeros((n, steps, dim), dtype=np.float32)
    stored = group["data"]
    is_sequence = stored.ndim == 3
    lengths = group["lengths"][:].astype(np.int64) if is_sequence else np.ones(n, dtype=np.int64)
    keep = min(steps, stored.shape[1]) if is_sequence else 1
    for start in range(0, n, _READ_ROWS):
        stop = min(n, start + _READ_ROWS)
        block = stored[start:stop, :keep] if is_sequence else stored[start:stop][:, None, :]
        data[start:stop, :keep] = block
    bad = ~np.isfinite(data)
    count = int(bad.sum())
    if count:
        data[bad] = 0.0
    cut = int((lengths > steps).sum())
    return data, np.clip(lengths, 1, steps), cut, count


def _labels(meta: StoreSplit) -> dict[str, Any]:
    """``regression_labels``, ``classification_labels`` and ``annotations`` of one split."""
    space, labels = meta.label_space, meta.labels
    if space.is_classification:
        unlabelled = np.flatnonzero(labels == UNLABELLED)
        if unlabelled.size:
            raise StoreError(f"{meta.path.name}: {unlabelled.size} rows have no label (first id "
                             f"{meta.ids[unlabelled[0]]!r}); MMSA cannot train or score unlabelled rows")
        ids = labels.astype(np.int64)
        names = space.decode(ids)
    else:
        ids = sentiment3_ids(labels)
        names = SENTIMENT3.decode(ids)
    return {"regression_labels": (ids if space.is_classification else labels).astype(np.float32),
            "classification_labels": ids.astype(np.float32),
            "annotations": np.array(names, dtype=object)}
