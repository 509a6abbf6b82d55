"""Readers for MELD's feature pickles and FacialMMT's vision pickles (formats.md §1.4-1.7, §2.1).

Each reader loads one file with the restricted unpickler, checks its layout against the published
facts and returns typed records; every malformed file raises `DataFormatError`, one line
naming the file (and key/row). `scenesense.datasets.meld_features` turns these records
into a feature store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.data.labels import MELD_EMOTIONS, LabelSpace
from scenesense.data.meld import MELD_SPLITS, find_meld_csv
from scenesense.data.safe_pickle import load_pickle
from scenesense.data.validation import DataFormatError
from scenesense.utils.io import walk_files

Key = tuple[int, int]  # (Dialogue_ID, Utterance_ID)
FILE_SPLITS: tuple[str, ...] = ("train", "val", "test")  # order of the 3-tuples; spelling in file names
STORE_SPLIT: dict[str, str] = {"train": "train", "val": "dev", "test": "test"}
FILE_SPLIT: dict[str, str] = {"train": "train", "dev": "val", "test": "test"}
MAX_TOKENS = 50  # the baseline's and Scene Sense's max_length
GLOVE_DIM = 300
VISION_DIM = 512
FACIALMMT_ABSENT: dict[str, tuple[str, ...]] = {
    "train": ("dia125_utt3",), "dev": (), "test": ("dia220_utt0",),
}
"""Utterances without a FacialMMT row (formats.md §2.1): corrupt video, mis-cut clip."""
# (feature set, modality, file name pattern, published dim per label) - formats.md §1.5-1.7
_AUDIO_FILE = "audio_embeddings_feature_selection_{label}.pkl"
UTTERANCE_FILES: tuple[tuple[str, str, str, dict[str, int]], ...] = (
    ("audio", "audio", _AUDIO_FILE, {"emotion": 1611, "sentiment": 1422}),
    ("text_glove_avg", "text", "text_glove_average_{label}.pkl", {"emotion": 300, "sentiment": 300}),
    ("text_glove_cnn", "text", "text_glove_CNN_{label}.pkl", {"emotion": 100, "sentiment": 100}),
)
DIALOGUE_FILES: tuple[tuple[str, str, str, dict[str, int]], ...] = (
    ("text_bclstm", "text", "text_{label}.pkl", {"emotion": 600, "sentiment": 600}),
    ("audio_bclstm", "audio", "audio_{label}.pkl", {"emotion": 300, "sentiment": 600}),
    ("bimodal_bclstm", "text", "bimodal_{label}.pkl", {"sentiment": 600}),
)
DIALOGUE_SLOTS = 33  # max utterances per dialogue over all splits (test dia 17)

REV_KEYS = frozenset({"text", "split", "y", "dialog", "utterance", "num_words"})
_UTT_KEY = re.compile(r"^(\d+)_(\d+)$")
_DIA_KEY = re.compile(r"^\d+$")
_UTT_NAME = re.compile(r"^dia(\d+)_utt(\d+)$")


def utterance_id(key: Key) -> str:
    """Store id ``dia{D}_utt{U}`` of a ``(Dialogue_ID, Utterance_ID)`` key."""
    return f"dia{key[0]}_utt{key[1]}"


def _text(value: Any) -> str:  # noqa: ANN401
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------------------------
# Locating files


@dataclass(frozen=True)
class MeldFeatureFiles:
    """The files of the family found under a root for one label set.

    Fields: ``data`` (``data_{label}.p``), ``csvs`` (store split -> CSV), ``utterance`` and
    ``dialogue`` (feature set -> pickle), ``vision`` and ``profiles`` (store split -> FacialMMT
    pickle / ``{split}_utt_profile.json``).
    """

    data: Path | None
    csvs: dict[str, Path]
    utterance: dict[str, Path]
    dialogue: dict[str, Path]
    vision: dict[str, Path]
    profiles: dict[str, Path]

    def paths(self) -> list[Path]:
        """Every file found, sorted."""
        found = [*self.csvs.values(), *self.utterance.values(), *self.dialogue.values(),
                 *self.vision.values(), *self.profiles.values()]
        return sorted({*found, *([self.data] if self.data else [])})

    def has_features(self) -> bool:
        """True when at least one feature file (not just CSVs) is present."""
        return bool(self.data or self.utterance or self.dialogue or self.vision)


def _index(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder (meld_features reads a folder of MELD/FacialMMT files)")
    index: dict[str, list[Path]] = {}
    for path in sorted(walk_files(root)):
        if not path.name.startswith("."):
            index.setdefault(path.name, []).append(path)
    return index


def _unique(index: Mapping[str, list[Path]], name: str, root: Path) -> Path | None:
    found = index.get(name, [])
    if len(found) > 1:
        trimodal = [p for p in found if p.parent.name == "T+A+V"]  # FacialMMT's T+A+V/ beats V/
        if len(trimodal) == 1:
            return trimodal[0]
        raise DataFormatError(f"{root}: several {name} files {[str(p) for p in found]}; keep one")
    return found[0] if found else None


def find_meld_feature_files(root: Path, label: str) -> MeldFeatureFiles:
    """Find the family's files for ``label`` (emotion | sentiment) anywhere under ``root``.

    Raises:
        DataFormatError: ``root`` is not a folder, or a file name occurs several times.
    """
    root = Path(root)
    index = _index(root)
    csvs = {split: find_meld_csv(root, split, required=False) for split in MELD_SPLITS}
    vision = {split: _unique(index, f"meld_{fs}_vision_utt.pkl", root) for split, fs in FILE_SPLIT.items()}
    profiles: dict[str, Path] = {}
    for split, fs in FILE_SPLIT.items():
        pickle_path = vision[split]
        beside = pickle_path.parent / f"{fs}_utt_profile.json" if pickle_path is not None else None
        if beside is None or not beside.is_file():
            beside = _unique(index, f"{fs}_utt_profile.json", root)
        if beside is not None:
            profiles[split] = beside
    utterance = {name: _unique(index, file.format(label=label), root) for name, _, file, _ in UTTERANCE_FILES}
    dialogue = {name: _unique(index, file.format(label=label), root) for name, _, file, _ in DIALOGUE_FILES}
    return MeldFeatureFiles(
        data=_unique(index, f"data_{label}.p", root),
        csvs={s: p for s, p in csvs.items() if p is not None},
        utterance={n: p for n, p in utterance.items() if p is not None},
        dialogue={n: p for n, p in dialogue.items() if p is not None},
        vision={s: p for s, p in vision.items() if p is not None},
        profiles=profiles,
    )


# ------------------------------------------------------------------------------------------------
# data_{emotion,sentiment}.p


@dataclass(frozen=True)
class Rev:
    """One revs item: store split, key, text, label string ``y``, and its index in revs."""

    split: str
    key: Key
    text: str
    y: str
    index: int


@dataclass(frozen=True)
class MeldTextPickle:
    """Contents of ``data_{label}.p``.

    Fields: ``path``; ``revs`` (stored order); ``W`` ``[V, 300]`` float32; ``word_idx_map``
    (word -> row of W); ``label_index`` (label string -> int); ``word_map_element`` (2 or 3: where
    the word -> row map was found); ``disambiguation`` (how it was told from ``vocab``);
    ``rev_fields`` (the keys of the first rev dict).
    """

    path: Path
    revs: list[Rev]
    W: np.ndarray
    word_idx_map: dict[str, int]
    label_index: dict[str, int]
    word_map_element: int
    disambiguation: str
    rev_fields: frozenset[str] = frozenset()

    def by_split(self, split: str) -> list[Rev]:
        """The revs of one store split, in stored order."""
        return [r for r in self.revs if r.split == split]

    def label_space(self) -> LabelSpace:
        """The labels ordered by their ``label_index`` value (Scene Sense's class ids)."""
        return LabelSpace(tuple(sorted(self.label_index, key=self.label_index.__getitem__)))

    def token_rows(self, text: str) -> tuple[list[int], int]:
        """Row ids of the whitespace tokens (OOV -> 0, as published), truncated to 50; and the OOV count."""
        tokens = text.split()[:MAX_TOKENS]
        ids = [self.word_idx_map.get(t, 0) for t in tokens]
        return ids, sum(t not in self.word_idx_map for t in tokens)


def _is_row_map(value: Any, rows: int) -> bool:  # noqa: ANN401
    if not isinstance(value, dict) or not value:
        return False
    ints = list(value.values())
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ints):
        return False
    return len(set(ints)) == len(ints) and min(ints) >= 0 and max(ints) < rows


def _is_dense_row_map(value: dict[str, int], rows: int) -> bool:
    ints = {int(v) for v in value.values()}
    return len(value) in (rows - 1, rows) and ints in (set(range(1, len(value) + 1)), set(range(len(value))))


def _word_map_element(elements: Sequence[Any], rows: int, path: Path) -> tuple[int, str]:
    """Which of elements 2 and 3 is ``word_idx_map`` (formats.md §1.4), by content."""
    candidates = [pos for pos in (2, 3) if _is_row_map(elements[pos], rows)]
    if not candidates:
        raise DataFormatError(f"{path}: neither element 2 nor 3 maps words to distinct rows of W "
                              f"({rows} rows); not a MELD data_*.p")
    if len(candidates) == 1:
        return candidates[0], "only element with distinct integer values inside W"
    dense = [pos for pos in candidates if _is_dense_row_map(elements[pos], rows)]
    if len(dense) == 1:
        return dense[0], "both have distinct ints; only this one numbers every row of W"
    return 2, "ambiguous by content; took element 2 (code order)"


def _int_values(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in mapping.values())


def _rev(item: Any, index: int, path: Path) -> Rev:  # noqa: ANN401
    where = f"{path}: revs[{index}]"
    if not isinstance(item, dict):
        raise DataFormatError(f"{where} is a {type(item).__name__}, expected a dict")
    missing = sorted(k for k in ("text", "split", "y", "dialog", "utterance") if k not in item)
    if missing:
        raise DataFormatError(f"{where} lacks key(s) {missing}")
    split = _text(item["split"])
    if split not in ("train", "val", "dev", "test"):
        raise DataFormatError(f"{where}: split {split!r} is not train, val or test")
    try:
        key = (int(_text(item["dialog"])), int(_text(item["utterance"])))
    except ValueError:
        raise DataFormatError(f"{where}: dialog/utterance {item['dialog']!r}/{item['utterance']!r} "
                              f"are not integers") from None
    return Rev("dev" if split in ("val", "dev") else split, key, _text(item["text"]), _text(item["y"]), index)


def read_data_pickle(path: Path) -> MeldTextPickle:
    """Read ``data_emotion.p`` / ``data_sentiment.p`` (formats.md §1.4).

    Raises:
        DataFormatError: not a list of 6, W not ``[V, 300]`` finite, no word -> row map, a
            malformed rev or label_index.
        UnsafePickleError: the file is not a safe pickle.
    """
    obj = load_pickle(path)
    if not isinstance(obj, (list, tuple)) or len(obj) != 6:
        size = len(obj) if isinstance(obj, (list, tuple)) else "no"
        raise DataFormatError(f"{path}: expected a list of 6 (revs, W, word_idx_map, vocab, max length, "
                              f"label_index), got a {type(obj).__name__} of {size} elements")
    try:
        weights = np.asarray(obj[1], dtype=np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: element 1 (W) is not a numeric matrix") from None
    if weights.ndim != 2 or weights.shape[1] != GLOVE_DIM:
        raise DataFormatError(f"{path}: W has shape {list(weights.shape)}, expected [V, {GLOVE_DIM}]")
    if not np.isfinite(weights).all():
        raise DataFormatError(f"{path}: W has NaN or inf values")
    element, how = _word_map_element(obj, weights.shape[0], path)
    label_index = obj[5]
    if not isinstance(label_index, dict) or not _int_values(label_index):
        raise DataFormatError(f"{path}: element 5 (label_index) is not a dict of label -> int")
    if sorted(int(v) for v in label_index.values()) != list(range(len(label_index))):
        raise DataFormatError(f"{path}: label_index values {sorted(label_index.values())} are not 0..n-1")
    if not isinstance(obj[0], (list, tuple)):
        raise DataFormatError(f"{path}: element 0 (revs) is a {type(obj[0]).__name__}, expected a list")
    revs = [_rev(item, i, path) for i, item in enumerate(obj[0])]
    return MeldTextPickle(
        path=path, revs=revs, W=weights, word_idx_map={_text(k): int(v) for k, v in obj[element].items()},
        label_index={_text(k): int(v) for k, v in label_index.items()}, word_map_element=element,
        disambiguation=how, rev_fields=frozenset(obj[0][0]) if obj[0] else frozenset(),
    )


# ------------------------------------------------------------------------------------------------
# Utterance-level and dialogue-level feature pickles


@dataclass(frozen=True)
class KeyedFeatures:
    """A 3-dict feature pickle: ``rows[store split][key]`` = ``[dim]`` or ``[slots, dim]`` float32."""

    path: Path
    dim: int
    rows: dict[str, dict[Any, np.ndarray]]
    slots: int = 0


def _three_dicts(obj: Any, path: Path) -> list[dict[Any, Any]]:  # noqa: ANN401
    if not isinstance(obj, (list, tuple)) or len(obj) != 3 or not all(isinstance(d, dict) for d in obj):
        kind = f"a {type(obj).__name__}" + (f" of {len(obj)}" if isinstance(obj, (list, tuple, dict)) else "")
        raise DataFormatError(f"{path}: expected 3 dicts (train, val, test), got {kind}")
    return list(obj)


def _float_array(value: Any, ndim: int, where: str) -> np.ndarray:  # noqa: ANN401
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: value is not numeric") from None
    if arr.ndim != ndim:
        raise DataFormatError(f"{where}: value has shape {list(arr.shape)}, expected {ndim} dimension(s)")
    if not np.isfinite(arr).all():
        raise DataFormatError(f"{where}: value has NaN or inf")
    return arr


def read_utterance_pickle(path: Path) -> KeyedFeatures:
    """Read a 3-dict pickle keyed ``"dia_utt"`` with vector values (arrays or lists; formats.md §1.5-1.6).

    Raises:
        DataFormatError: not 3 dicts, a key not ``"<int>_<int>"``, a non-vector value or unequal dims.
    """
    parts = _three_dicts(load_pickle(path), path)
    dim = 0
    rows: dict[str, dict[Any, np.ndarray]] = {}
    for fs, part in zip(FILE_SPLITS, parts, strict=True):
        out: dict[Any, np.ndarray] = {}
        for raw_key, value in part.items():
            match = _UTT_KEY.match(_text(raw_key))
            if match is None:
                raise DataFormatError(f"{path}: {fs} key {raw_key!r} is not 'dialogue_utterance'")
            arr = _float_array(value, 1, f"{path}: {fs} key {raw_key!r}")
            dim = dim or arr.shape[0]
            if arr.shape[0] != dim:
                raise DataFormatError(f"{path}: {fs} key {raw_key!r} has {arr.shape[0]} values, others {dim}")
            out[(int(match.group(1)), int(match.group(2)))] = arr
        rows[STORE_SPLIT[fs]] = out
    if not dim:
        raise DataFormatError(f"{path}: all three dicts are empty")
    return KeyedFeatures(path, dim, rows)


def read_dialogue_pickle(path: Path) -> KeyedFeatures:
    """Read a 3-dict pickle keyed by dialogue id with ``[33, d]`` values (formats.md §1.7).

    Raises:
        DataFormatError: not 3 dicts, a key not an integer string, or values of unequal shapes.
    """
    parts = _three_dicts(load_pickle(path), path)
    shape: tuple[int, ...] = ()
    rows: dict[str, dict[Any, np.ndarray]] = {}
    for fs, part in zip(FILE_SPLITS, parts, strict=True):
        out: dict[Any, np.ndarray] = {}
        for raw_key, value in part.items():
            if not _DIA_KEY.match(_text(raw_key)):
                raise DataFormatError(f"{path}: {fs} key {raw_key!r} is not a dialogue id")
            arr = _float_array(value, 2, f"{path}: {fs} dialogue {raw_key!r}")
            shape = shape or arr.shape
            if arr.shape != shape:
                raise DataFormatError(f"{path}: {fs} dialogue {raw_key!r} has shape {list(arr.shape)}, "
                                      f"others {list(shape)}")
            out[int(_text(raw_key))] = arr
        rows[STORE_SPLIT[fs]] = out
    if not shape:
        raise DataFormatError(f"{path}: all three dicts are empty")
    return KeyedFeatures(path, shape[1], rows, slots=shape[0])


# ------------------------------------------------------------------------------------------------
# FacialMMT vision


@dataclass(frozen=True)
class VisionPickle:
    """One FacialMMT split: ``vision`` ``[N, L, D]``, ``mask`` ``[N, L]`` bool, ``labels`` ``[N]`` int64."""

    path: Path
    vision: np.ndarray
    mask: np.ndarray
    labels: np.ndarray

    @property
    def rows(self) -> int:
        """N."""
        return int(self.vision.shape[0])

    def frames(self, row: int) -> np.ndarray | None:
        """``[T, D]`` float32 valid frames of a row (mask == 1), ``None`` when it has none."""
        frames = np.asarray(self.vision[row][self.mask[row]], dtype=np.float32)
        if not np.isfinite(frames).all():
            raise DataFormatError(f"{self.path}: row {row} has NaN or inf")
        return frames if frames.shape[0] else None

    def padded(self, row: int) -> np.ndarray:
        """``[L, D]`` float32 row with its padding frames (Scene Sense's input)."""
        frames = np.asarray(self.vision[row], dtype=np.float32)
        if not np.isfinite(frames).all():
            raise DataFormatError(f"{self.path}: row {row} has NaN or inf")
        return frames


def read_vision_pickle(path: Path, file_split: str) -> VisionPickle:
    """Read ``meld_{split}_vision_utt.pkl`` (formats.md §2.1); L is read, never assumed.

    Raises:
        DataFormatError: top level not ``{file_split: {...}}``, missing inner keys, shapes that
            disagree, mask values outside {0, 1} or non-integer labels.
    """
    obj = load_pickle(path)
    if not isinstance(obj, dict) or list(obj) != [file_split]:
        keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(f"{path}: expected a dict with the single key {file_split!r}, got {keys}")
    inner = obj[file_split]
    missing = sorted({"vision", "vision_utt_mask", "labels"} - set(inner if isinstance(inner, dict) else ()))
    if missing:
        raise DataFormatError(f"{path}: [{file_split!r}] lacks key(s) {missing}")
    vision = np.asarray(inner["vision"])
    if vision.ndim != 3 or vision.dtype.kind not in "fiu":
        raise DataFormatError(f"{path}: vision has shape {list(vision.shape)} ({vision.dtype}), "
                              f"expected [N, L, D]")
    mask = np.asarray(inner["vision_utt_mask"])
    if mask.shape != vision.shape[:2]:
        raise DataFormatError(f"{path}: vision_utt_mask has shape {list(mask.shape)}, "
                              f"expected {list(vision.shape[:2])}")
    if not np.isin(mask, (0, 1)).all():
        raise DataFormatError(f"{path}: vision_utt_mask has values other than 0 and 1")
    labels = np.asarray(inner["labels"])
    integral = labels.dtype.kind in "iuf" and bool((labels == np.round(labels)).all())
    if labels.shape != (vision.shape[0],) or not integral:
        raise DataFormatError(f"{path}: labels have shape {list(labels.shape)} ({labels.dtype}), "
                              f"expected {vision.shape[0]} integers")
    return VisionPickle(path, vision, mask.astype(bool), labels.astype(np.int64))


def read_utt_profile(path: Path, rows: int) -> list[Key]:
    """Row -> key from ``{split}_utt_profile.json`` (``str(row)`` -> ``["diaX_uttY", ...]``).

    Raises:
        DataFormatError: not valid JSON, a row missing or extra, or a malformed utterance name.
    """
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(profile, dict) or len(profile) != rows:
        size = len(profile) if isinstance(profile, dict) else type(profile).__name__
        raise DataFormatError(f"{path}: expected {rows} entries (one per vision row), got {size}")
    keys = []
    for row in range(rows):
        entry = profile.get(str(row))
        match = _UTT_NAME.match(str(entry[0])) if isinstance(entry, list) and entry else None
        if match is None:
            raise DataFormatError(f"{path}: row {row}: expected ['diaX_uttY', ...], got {entry!r}")
        keys.append((int(match.group(1)), int(match.group(2))))
    return keys


def rebuild_vision_keys(split: str, reference: Sequence[Key], rows: int, path: Path,
                        reference_name: str) -> list[Key]:
    """FacialMMT row keys without a profile: the reference keys sorted (CSV order) minus the absent items.

    Raises:
        DataFormatError: the count disagrees with the pickle's rows.
    """
    absent = FACIALMMT_ABSENT[split]
    keys = [k for k in sorted(reference) if utterance_id(k) not in absent]
    if len(keys) != rows:
        raise DataFormatError(f"{path}: {rows} rows but {reference_name} lists {len(keys)} {split} "
                              f"utterances without {list(absent)}; put {FILE_SPLIT[split]}_utt_profile.json "
                              f"beside it")
    return keys


def check_vision_order(vision: VisionPickle, keys: Sequence[Key], reference: Mapping[Key, int],
                       reference_name: str, *, neutral_only: bool = False) -> None:
    """Check the embedded emotion labels against the reference labels of the rebuilt keys.

    Args:
        vision: the pickle.
        keys: row -> key.
        reference: key -> emotion id (MELD order), or key -> 1/0 neutral flag when ``neutral_only``
            (sentiment labels: neutral emotion coincides with neutral sentiment).
        reference_name: the file the reference comes from (for the message).
        neutral_only: compare only "is neutral".

    Raises:
        DataFormatError: naming the pickle and the first mismatching row.
    """
    for row, (key, label) in enumerate(zip(keys, vision.labels.tolist(), strict=True)):
        want = reference.get(key)
        if want is None:
            raise DataFormatError(f"{vision.path}: row {row} ({utterance_id(key)}) is not an utterance of "
                                  f"{reference_name}")
        got = int(label == 0) if neutral_only else int(label)
        if got != want:
            shown = "neutral" if want else "not neutral"
            if not neutral_only:
                shown = MELD_EMOTIONS.names[want] if 0 <= want < 7 else str(want)
            raise DataFormatError(f"{vision.path}: row {row} has label {label} but {utterance_id(key)} is "
                                  f"{shown} in {reference_name}; the rows are not in the rebuilt order")
