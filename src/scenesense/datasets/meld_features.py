"""MELD feature pickles + FacialMMT vision as one trimodal store: the ``meld_features`` dataset.

Reads whatever of these files lie under ``data.root`` (found by file name, at any depth):

- ``data_{label}.p`` (formats.md §1.4): a list of 6 - revs, W (GloVe, ``[V, 300]``), then
  ``word_idx_map`` and ``vocab`` in an order that the README and the code disagree on (told apart
  by content: the word -> row map has distinct integer values inside W), max length, label_index.
- ``audio_embeddings_feature_selection_{label}.pkl``, ``text_glove_average_{label}.pkl``,
  ``text_glove_CNN_{label}.pkl`` (§1.5-1.7): 3 dicts (train, val, test) keyed ``"dia_utt"``.
- ``text_{label}.pkl``, ``audio_{label}.pkl``, ``bimodal_sentiment.pkl`` (§1.7): 3 dicts keyed by
  dialogue id, ``[33, d]`` zero padded; row j is the j-th utterance in Utterance_ID order (IDs
  have gaps). Python-2 pickles: `load_pickle` falls back to latin1.
- FacialMMT ``meld_{train,val,test}_vision_utt.pkl`` (§2.1): ``{split: {vision [N, L, 512],
  vision_utt_mask [N, L], labels [N]}}`` without ids. Keys come from ``{split}_utt_profile.json``
  when present, else from the CSV order (or the revs sorted by key) minus the absent
  ``dia125_utt3`` (train) and ``dia220_utt0`` (test); the rebuilt order is checked against the
  embedded labels (first mismatch = `DataFormatError`). A copy under ``T+A+V/`` wins over
  the vision-only copy under ``V/``.
- ``{train,dev,test}_sent_emo.csv`` (§1.2): labels, speakers, and a cross-check of the revs.

Store (splits train/dev/test; ids ``dia{D}_utt{U}``, dialogue ids ``dia{D}``, positions = rank of
the Utterance_ID in its dialogue, speakers from the CSVs). Labels: ``label=emotion`` (7, MELD
order) or ``sentiment`` (3). Feature sets, each written when its file exists:

=================  ========  ===============================================================
name               modality  rows
=================  ========  ===============================================================
``text``           text      ``[T <= 50, 300]`` GloVe rows of the whitespace tokens (OOV -> W[0])
``text_glove_avg`` text      ``[300]``
``text_glove_cnn`` text      ``[100]``
``text_bclstm``    text      ``[600]`` (bcLSTM output row of the utterance)
``bimodal_bclstm`` text      ``[600]`` (sentiment only; choose with data.features.text=...)
``audio``          audio     ``[1611]`` (emotion) / ``[1422]`` (sentiment)
``audio_bclstm``   audio     ``[300]`` (emotion) / ``[600]`` (sentiment)
``vision``         vision    ``[T <= L, 512]`` face embeddings of the valid frames
=================  ========  ===============================================================

``mode`` (recorded in every provenance):

- ``corrected`` (default): every modality joined by key; sequences keep their true lengths
  (text token count, FacialMMT frame mask); a key absent from a file, or a vision row without a
  valid frame, is a missing modality (``present=False``). The rows of a split are the CSV rows
  when that CSV exists (revs labels must agree), else the revs; revs absent from the CSV are
  dropped and counted.
- ``compat``: the published Scene Sense tensors (§3.1), emotion only, with only ``text``,
  ``audio`` and ``vision``: revs in stored order, positions ``compat_drop_train`` (1169) and
  ``compat_drop_test`` (2052) of the split's revs list dropped, text padded with W[0] rows to
  length 50 (no mask), missing audio = zeros, vision rows taken in FacialMMT row order with every
  padded frame (length L) and paired with the text/audio rows BY POSITION - which reproduces
  the published misalignment (the revs order is not FacialMMT's row order). Labels are
  ``label_index[y]``.

Every malformed file raises `DataFormatError`, one line naming the file (and key/row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.datasets.meld_features_checks import LABELS, validate_meld_features
from scenesense.datasets.meld_pickles import (
    DIALOGUE_FILES,
    FACIALMMT_ABSENT,
    FILE_SPLIT,
    MAX_TOKENS,
    UTTERANCE_FILES,
    VISION_DIM,
    Key,
    KeyedFeatures,
    MeldFeatureFiles,
    MeldTextPickle,
    Rev,
    VisionPickle,
    check_vision_order,
    find_meld_feature_files,
    read_data_pickle,
    read_dialogue_pickle,
    read_utt_profile,
    read_utterance_pickle,
    read_vision_pickle,
    rebuild_vision_keys,
    utterance_id,
)
from scenesense.data.labels import MELD_EMOTIONS, LabelSpace
from scenesense.data.meld import (
    MELD_SPLITS,
    MeldUtterance,
    read_meld_csv,
)
from scenesense.datasets.sources import DatasetSource, register_source
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError, ValidationReport

logger = logging.getLogger(__name__)

RowFn = Callable[[int], "np.ndarray | None"]

MODES: tuple[str, ...] = ("corrected", "compat")
SCENESENSE_DROPS: dict[str, int] = {"train": 1169, "test": 2052}
"""Positions Scene Sense skips in each split's revs list (formats.md §3.1)."""

_CHUNK = 256  # rows per store append


# ------------------------------------------------------------------------------------------------
# Everything read for one conversion


@dataclass
class _Inputs:
    """Everything one conversion reads except the vision pickles (loaded one split at a time)."""

    root: Path
    label: str
    mode: str
    files: MeldFeatureFiles
    text: MeldTextPickle | None
    csv: dict[str, list[MeldUtterance]]
    utterance: dict[str, KeyedFeatures] = field(default_factory=dict)
    dialogue: dict[str, KeyedFeatures] = field(default_factory=dict)

    def read_vision(self, split: str) -> VisionPickle | None:
        """The split's FacialMMT pickle, if any (loaded whole: pickles cannot be read lazily)."""
        path = self.files.vision.get(split)
        return read_vision_pickle(path, FILE_SPLIT[split]) if path else None

    def universe(self, split: str) -> tuple[list[Key], list[str], str]:
        """Row keys and label names of a split (CSV, else revs) and where they come from."""
        if split in self.csv:
            rows = self.csv[split]
            keys = [(u.dialogue_id, u.utterance_id) for u in rows]
            return keys, [getattr(u, self.label) for u in rows], self.files.csvs[split].name
        if self.text is not None:
            revs = sorted(self.text.by_split(split), key=lambda r: r.key)
            return [r.key for r in revs], [r.y for r in revs], self.text.path.name
        return [], [], ""

    def emotion_reference(self, split: str) -> tuple[dict[Key, int], str, bool]:
        """key -> emotion id (or neutral flag), its file, and whether only neutrality is known."""
        if split in self.csv:
            rows = self.csv[split]
            return ({(u.dialogue_id, u.utterance_id): MELD_EMOTIONS.id_of(u.emotion) for u in rows},
                    self.files.csvs[split].name, False)
        if self.text is None:
            return {}, "", False
        revs = self.text.by_split(split)
        if self.label == "emotion":
            return {r.key: MELD_EMOTIONS.id_of(r.y) for r in revs}, self.text.path.name, False
        return {r.key: int(r.y == "neutral") for r in revs}, self.text.path.name, True


def _load_inputs(root: Path, label: str, mode: str) -> _Inputs:
    files = find_meld_feature_files(root, label)
    if not files.has_features():
        raise DataFormatError(f"{root}: none of the MELD feature files (data_{label}.p, "
                              f"audio_embeddings_feature_selection_{label}.pkl, ..., "
                              f"meld_{{train,val,test}}_vision_utt.pkl) are here")
    if mode == "compat" and files.data is None:
        raise DataFormatError(f"{root}: compat mode needs data_{label}.p (Scene Sense iterates its revs)")
    text = read_data_pickle(files.data) if files.data else None
    if text is not None:
        _check_label_index(text, label)
    inputs = _Inputs(root, label, mode, files, text, {s: read_meld_csv(p) for s, p in files.csvs.items()})
    for name, path in files.utterance.items():
        if mode == "corrected" or name == "audio":
            inputs.utterance[name] = read_utterance_pickle(path)
    if mode == "corrected":
        inputs.dialogue = {name: read_dialogue_pickle(path) for name, path in files.dialogue.items()}
    return inputs


def _check_label_index(text: MeldTextPickle, label: str) -> None:
    names = set(LABELS[label].names)
    if set(text.label_index) != names:
        raise DataFormatError(f"{text.path}: label_index {sorted(text.label_index)} is not the MELD {label} "
                              f"set {sorted(names)}")
    bad = next((r for r in text.revs if r.y not in names), None)
    if bad is not None:
        raise DataFormatError(f"{text.path}: revs[{bad.index}] label {bad.y!r} is not a MELD {label}")


# ------------------------------------------------------------------------------------------------
# Rows of one split


@dataclass
class _Rows:
    """One split's store rows: meta columns, feature specs and per feature set a row function."""

    keys: list[Key]
    labels: list[int]
    positions: list[int]
    speakers: list[str]
    specs: dict[str, FeatureSpec]
    features: dict[str, RowFn]
    notes: dict[str, Any]


def _positions(keys: Sequence[Key]) -> dict[Key, int]:
    by_dialogue: dict[int, list[int]] = {}
    for d, u in keys:
        by_dialogue.setdefault(d, []).append(u)
    return {(d, u): rank for d, utts in by_dialogue.items() for rank, u in enumerate(sorted(set(utts)))}


def _speakers(inputs: _Inputs, split: str) -> dict[Key, str]:
    return {(u.dialogue_id, u.utterance_id): u.speaker for u in inputs.csv.get(split, [])}


def _keyed_rows(features: KeyedFeatures, split: str, keys: Sequence[Key]) -> RowFn:
    table = features.rows.get(split, {})
    return lambda i: table.get(keys[i])


def _dialogue_rows(features: KeyedFeatures, split: str, keys: Sequence[Key],
                   positions: Mapping[Key, int]) -> RowFn:
    table = features.rows.get(split, {})
    for key, rank in positions.items():
        if key[0] in table and rank >= features.slots:
            raise DataFormatError(f"{features.path}: dialogue {key[0]} has {features.slots} rows but "
                                  f"{utterance_id(key)} is its utterance number {rank + 1}")
    return lambda i: table[keys[i][0]][positions[keys[i]]] if keys[i][0] in table else None


def _corrected_rows(inputs: _Inputs, split: str, vision: VisionPickle | None,
                    space: LabelSpace) -> _Rows | None:
    """Rows joined by key (the module docstring's ``corrected`` mode); ``None`` when the split has none."""
    keys, names, origin = inputs.universe(split)
    notes: dict[str, Any] = {"rows_from": origin}
    if not keys and vision is not None and inputs.label == "emotion" and split in inputs.files.profiles:
        keys = read_utt_profile(inputs.files.profiles[split], vision.rows)
        names = [MELD_EMOTIONS.name_of(int(v)) for v in vision.labels]
        notes["rows_from"] = inputs.files.profiles[split].name
    if not keys:
        return None
    positions = _positions(keys)
    features: dict[str, RowFn] = {}
    specs: dict[str, FeatureSpec] = {}
    if inputs.text is not None:
        revs = {r.key: r for r in inputs.text.by_split(split)}
        _cross_check(inputs, split, revs)
        notes["revs_not_in_rows"] = len(set(revs) - set(keys))
        notes["rows_without_rev"] = sum(k not in revs for k in keys)
        rev_of: Callable[[int], Rev | None] = lambda i: revs.get(keys[i])  # noqa: E731
        specs["text"], features["text"] = _glove_sequence(inputs.text, rev_of, "corrected")
    for name, modality, _, _ in UTTERANCE_FILES:
        if name in inputs.utterance:
            feats = inputs.utterance[name]
            provenance = _file_provenance(feats.path, inputs)
            specs[name] = FeatureSpec(modality, "vector", feats.dim, provenance=provenance)
            features[name] = _keyed_rows(feats, split, keys)
    for name, modality, _, _ in DIALOGUE_FILES:
        if name in inputs.dialogue:
            feats = inputs.dialogue[name]
            provenance = {**_file_provenance(feats.path, inputs), "row": "j-th utterance by Utterance_ID"}
            specs[name] = FeatureSpec(modality, "vector", feats.dim, provenance=provenance)
            features[name] = _dialogue_rows(feats, split, keys, positions)
    if inputs.files.vision:
        specs["vision"], features["vision"] = _corrected_vision(inputs, split, vision, keys, notes)
    labels = [space.id_of(n) for n in names]
    speakers = _speakers(inputs, split)
    return _Rows(keys, labels, [positions[k] for k in keys], [speakers.get(k, "") for k in keys], specs,
                 features, notes)


def _cross_check(inputs: _Inputs, split: str, revs: Mapping[Key, Rev]) -> None:
    assert inputs.text is not None
    for u in inputs.csv.get(split, []):
        rev = revs.get((u.dialogue_id, u.utterance_id))
        if rev is not None and rev.y != getattr(u, inputs.label):
            raise DataFormatError(f"{inputs.text.path}: revs[{rev.index}] ({u.id}, {split}) is {rev.y!r} but "
                                  f"{inputs.files.csvs[split].name} says {getattr(u, inputs.label)!r}")


def _file_provenance(path: Path, inputs: _Inputs) -> dict[str, Any]:
    return {"dataset": "meld_features", "file": path.name, "mode": inputs.mode}


def _glove_sequence(text: MeldTextPickle, rev_of: Callable[[int], Rev | None],
                    mode: str) -> tuple[FeatureSpec, RowFn]:
    """The ``text`` feature set: GloVe rows of the tokens (corrected: true length; compat: 50 with W[0])."""
    padding = "W[0] rows to 50, length 50 (no mask)" if mode == "compat" else "none (true lengths)"
    provenance = {"dataset": "meld_features", "file": text.path.name, "mode": mode, "max_tokens": MAX_TOKENS,
                  "oov": "row 0 of W (as published)", "word_idx_map_element": text.word_map_element,
                  "disambiguation": text.disambiguation, "w0_is_zero": bool(not text.W[0].any()),
                  "padding": padding}
    spec = FeatureSpec("text", "sequence", text.W.shape[1], max_len=MAX_TOKENS, provenance=provenance)

    def row(i: int) -> np.ndarray | None:
        rev = rev_of(i)
        if rev is None:
            return None
        ids, _ = text.token_rows(rev.text)
        if mode == "compat":
            ids = ids + [0] * (MAX_TOKENS - len(ids))
        return text.W[ids] if ids else None

    return spec, row


def _corrected_vision(inputs: _Inputs, split: str, vision: VisionPickle | None, keys: Sequence[Key],
                      notes: dict[str, Any]) -> tuple[FeatureSpec, RowFn]:
    provenance: dict[str, Any] = {"dataset": "meld_features", "mode": "corrected", "frames": "mask == 1 only"}
    if vision is None:
        return FeatureSpec("vision", "sequence", VISION_DIM, max_len=1,
                           provenance=provenance), lambda i: None
    profile = inputs.files.profiles.get(split)
    if profile is not None:
        row_keys, provenance["keys_from"] = read_utt_profile(profile, vision.rows), profile.name
    else:
        reference, origin = keys, notes["rows_from"]
        row_keys = rebuild_vision_keys(split, reference, vision.rows, vision.path, origin)
        provenance["keys_from"] = f"{origin} order without {list(FACIALMMT_ABSENT[split])}"
    reference_labels, name, neutral_only = inputs.emotion_reference(split)
    if reference_labels:
        check_vision_order(vision, row_keys, reference_labels, name, neutral_only=neutral_only)
        provenance["order_verified"] = f"{'neutral flags' if neutral_only else 'emotion labels'} of {name}"
    else:
        provenance["order_verified"] = False
        logger.warning("%s: no labels to verify the rebuilt row order against", vision.path.name)
    row_of = {k: r for r, k in enumerate(row_keys)}
    notes["vision_rows_unused"] = len(set(row_keys) - set(keys))
    notes["vision_rows_without_frames"] = int((~vision.mask.any(axis=1)).sum())
    provenance["file"] = vision.path.name
    spec = FeatureSpec("vision", "sequence", int(vision.vision.shape[2]), max_len=int(vision.vision.shape[1]),
                       provenance=provenance)
    return spec, lambda i: vision.frames(row_of[keys[i]]) if keys[i] in row_of else None


def _compat_rows(inputs: _Inputs, split: str, vision: VisionPickle | None, drop: int) -> _Rows:
    """Scene Sense's rows (formats.md §3.1): revs order, one positional drop, vision paired by position."""
    text = inputs.text
    assert text is not None
    stored = text.by_split(split)
    revs = [r for i, r in enumerate(stored) if i != drop]
    keys = [r.key for r in revs]
    positions = _positions([r.key for r in stored])
    specs: dict[str, FeatureSpec] = {}
    features: dict[str, RowFn] = {}
    specs["text"], features["text"] = _glove_sequence(text, lambda i: revs[i], "compat")
    if "audio" in inputs.utterance:
        audio = inputs.utterance["audio"]
        table = audio.rows.get(split, {})
        specs["audio"] = FeatureSpec("audio", "vector", audio.dim, provenance={
            **_file_provenance(audio.path, inputs), "missing": "zeros (as published)"})
        missing = [utterance_id(k) for k in keys if k not in table]
        if missing:
            logger.warning("compat: %d %s utterances lack audio (zeros), e.g. %s", len(missing), split,
                           missing[0])
        features["audio"] = lambda i: table.get(keys[i], np.zeros(audio.dim, np.float32))
    if inputs.files.vision:
        provenance = {"dataset": "meld_features", "mode": "compat", "frames": "all L (padding included)",
                      "alignment": "row i of the pickle with the i-th kept rev (by position, as published)"}
        if vision is None:
            specs["vision"], features["vision"] = FeatureSpec("vision", "sequence", VISION_DIM, max_len=1,
                                                              provenance=provenance), lambda i: None
        else:
            if vision.rows != len(revs):
                raise DataFormatError(f"{vision.path}: {vision.rows} rows but {len(revs)} {split} revs "
                                      f"remain after dropping position {drop}; compat pairs them by position")
            provenance["file"] = vision.path.name
            specs["vision"] = FeatureSpec("vision", "sequence", int(vision.vision.shape[2]),
                                          max_len=int(vision.vision.shape[1]), provenance=provenance)
            features["vision"] = vision.padded
    speakers = _speakers(inputs, split)
    notes = {"rows_from": f"{text.path.name} revs order",
             "dropped_position": drop if 0 <= drop < len(stored) else None}
    return _Rows(keys, [text.label_index[r.y] for r in revs], [positions[k] for k in keys],
                 [speakers.get(k, "") for k in keys], specs, features, notes)


def _write(path: Path, rows: _Rows, space: LabelSpace, source: Mapping[str, Any]) -> Path:
    with StoreWriter(path, label_space=space, features=rows.specs, source=source) as writer:
        for start in range(0, len(rows.keys), _CHUNK):
            index = range(start, min(start + _CHUNK, len(rows.keys)))
            keys = [rows.keys[i] for i in index]
            writer.append(
                [utterance_id(k) for k in keys], np.asarray([rows.labels[i] for i in index], np.int64),
                {name: [fn(i) for i in index] for name, fn in rows.features.items()},
                dialogue_ids=[f"dia{k[0]}" for k in keys], positions=[rows.positions[i] for i in index],
                speakers=[rows.speakers[i] for i in index],
            )
    return path


def _convert_split(inputs: _Inputs, split: str, path: Path, space: LabelSpace,
                   params: Mapping[str, Any]) -> Path | None:
    """Write one split file; ``None`` when the split has no rows (no CSV, revs or profile)."""
    if params["mode"] == "compat":
        if inputs.text is None or not inputs.text.by_split(split):
            return None
        drop = int(params.get(f"compat_drop_{split}", -1))
        rows = _compat_rows(inputs, split, inputs.read_vision(split), drop)
    else:
        found = _corrected_rows(inputs, split, inputs.read_vision(split), space)
        if found is None:
            return None
        rows = found
    source = {"dataset": "meld_features", "mode": params["mode"], "label": params["label"], "split": split,
              "files": sorted(p.name for p in inputs.files.paths()), "rows": len(rows.keys), **rows.notes}
    logger.info("meld_features: writing %s (%d rows, %s)", split, len(rows.keys), sorted(rows.specs))
    return _write(path, rows, space, source)


# ------------------------------------------------------------------------------------------------
# The source


@register_source("meld_features")
class MeldFeaturesSource(DatasetSource):
    """MELD.Features.Models pickles + FacialMMT vision (+ the MELD CSVs) under ``data.root``.

    ``data.params``: ``label`` (emotion | sentiment), ``mode`` (corrected | compat),
    ``compat_drop_train`` / ``compat_drop_test`` (revs positions Scene Sense skips; -1: none).
    """

    defaults: ClassVar[Mapping[str, Any]] = {
        "label": "emotion", "mode": "corrected", "compat_drop_train": SCENESENSE_DROPS["train"],
        "compat_drop_test": SCENESENSE_DROPS["test"],
    }

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters; ``label`` and ``mode`` are checked, compat is emotion-only (as Scene Sense)."""
        params = super().params(given)
        if params["label"] not in LABELS:
            raise ConfigError(f"data.params.label must be one of {sorted(LABELS)}, got {params['label']!r}")
        if params["mode"] not in MODES:
            raise ConfigError(f"data.params.mode must be one of {list(MODES)}, got {params['mode']!r}")
        if params["mode"] == "compat" and params["label"] != "emotion":
            raise ConfigError("data.params.mode=compat reproduces Scene Sense, which is emotion-only; "
                              "use label=emotion or mode=corrected")
        return params

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """Every family file found for the label."""
        assert root is not None
        return find_meld_feature_files(root, params["label"]).paths()

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """Splits with rows: a CSV, revs (read from data_*.p), or a FacialMMT profile (emotion)."""
        assert root is not None
        files = find_meld_feature_files(root, params["label"])
        revs = {r.split for r in read_data_pickle(files.data).revs} if files.data is not None else set()
        if params["mode"] == "compat":
            return [s for s in MELD_SPLITS if s in revs]
        found = set(files.csvs) | revs
        if params["label"] == "emotion":
            found |= set(files.vision) & set(files.profiles)
        return [s for s in MELD_SPLITS if s in found]

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write ``<out>/<split>.h5`` for every split with rows (see the module docstring)."""
        assert root is not None
        params = self.params(params)
        inputs = _load_inputs(Path(root), params["label"], params["mode"])
        compat = params["mode"] == "compat" and inputs.text is not None
        space = inputs.text.label_space() if compat and inputs.text else LABELS[params["label"]]
        written: dict[str, Path] = {}
        for split in MELD_SPLITS:
            path = _convert_split(inputs, split, Path(out) / f"{split}.h5", space, params)
            if path is not None:  # the split's vision pickle is released before the next one loads
                written[split] = path
        if not written:
            raise DataFormatError(f"{root}: no labels for any split: need the MELD CSVs, "
                                  f"data_{params['label']}.p or (emotion) FacialMMT pickles with their "
                                  f"utt_profile JSONs")
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """Every family file present against formats.md §1.9 and §2.3 (`validate_meld_features`)."""
        return validate_meld_features(Path(root), ValidationReport(self.name, str(root)))
