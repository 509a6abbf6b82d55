"""Tiny MELD.Features.Models + FacialMMT files in their published layouts, and the contract entry.

The world: 9 train utterances (dialogue 125 has utterance 3, which FacialMMT lacks, mirroring
``dia125_utt3``; dialogue 126 has an Utterance_ID gap), 4 dev, 4 test (``dia220_utt0`` absent from
FacialMMT). Every feature value encodes its utterance: ``code(key) = 10 * dialogue + utterance``
(W row i is filled with i, so a text row shows its word id). revs are stored in an order that is
not the CSV order (splits interleaved, train reversed), as formats.md §1.4 warns.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.meld import render_meld_csv

EMOTIONS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
SENTIMENTS = ("neutral", "positive", "negative")
SENTIMENT_OF = {"neutral": "neutral", "surprise": "positive", "fear": "negative", "sadness": "negative",
                "joy": "positive", "disgust": "negative", "anger": "negative"}

# (split, dialogue, utterance, speaker, emotion, tokenised text) in CSV order
UTTERANCES: list[tuple[str, int, int, str, str, str]] = [
    ("train", 124, 0, "Ross", "joy", "oh hi there"),
    ("train", 124, 1, "Rachel", "surprise", "what ?"),
    ("train", 125, 0, "Monica", "anger", "stop it now"),
    ("train", 125, 1, "Chandler", "sadness", "i am sorry"),
    ("train", 125, 2, "Joey", "fear", "how you doin"),
    ("train", 125, 3, "Phoebe", "neutral", "smelly cat"),
    ("train", 125, 4, "Ross", "disgust", "ugh"),
    ("train", 126, 0, "Rachel", "neutral", "ok"),
    ("train", 126, 2, "Ross", "joy", "we were on a break"),
    ("dev", 0, 0, "Joey", "neutral", "hi"),
    ("dev", 0, 1, "Monica", "anger", "no"),
    ("dev", 1, 0, "Ross", "joy", "yes yes yes"),
    ("dev", 1, 1, "Rachel", "sadness", "oh no"),
    ("test", 219, 0, "Phoebe", "surprise", "what ?"),
    ("test", 219, 1, "Joey", "neutral", "ok"),
    ("test", 220, 0, "Chandler", "disgust", "ugh"),
    ("test", 220, 1, "Monica", "joy", "hi there"),
]
OOV = "smelly"  # the one token missing from word_idx_map
VOCAB: list[str] = sorted({t for u in UTTERANCES for t in u[5].split()} - {OOV})
WORD_IDX = {w: i + 1 for i, w in enumerate(VOCAB)}  # row 0 of W is the padding row
ABSENT = {"train": "dia125_utt3", "test": "dia220_utt0"}
NO_AUDIO = "dia126_utt0"  # missing from the audio pickle
NO_FACE = "dia1_utt1"  # a FacialMMT row whose mask is all zero
FRAMES = {"train": 4, "val": 6, "test": 6}  # L differs by split (train = val - 2)
FILE_SPLIT = {"train": "train", "dev": "val", "test": "test"}


def code(dialogue: int, utterance: int) -> float:
    """The value every feature of an utterance is filled with."""
    return float(10 * dialogue + utterance)


def uid(dialogue: int, utterance: int) -> str:
    return f"dia{dialogue}_utt{utterance}"


def n_frames(dialogue: int, utterance: int) -> int:
    """Valid frames of an utterance's FacialMMT row (0 for NO_FACE)."""
    return 0 if uid(dialogue, utterance) == NO_FACE else 1 + (dialogue + utterance) % 3


def ids(split: str) -> list[str]:
    """The split's utterance ids in CSV order."""
    return [uid(u[1], u[2]) for u in split_rows(split)]


def split_rows(split: str) -> list[tuple[str, int, int, str, str, str]]:
    return [u for u in UTTERANCES if u[0] == split]


def revs_order() -> list[tuple[str, int, int, str, str, str]]:
    """The stored revs order: test, then train reversed, then dev (not the CSV order)."""
    return split_rows("test") + split_rows("train")[::-1] + split_rows("dev")


def weights() -> np.ndarray:
    """``W`` ``[V + 1, 300]``: row i filled with i (row 0 = zeros)."""
    return np.repeat(np.arange(len(VOCAB) + 1, dtype=np.float32)[:, None], 300, axis=1)


def data_pickle(label: str = "emotion", *, readme_order: bool = False) -> list[Any]:
    """``data_{label}.p`` contents: [revs, W, word_idx_map, vocab, max len, label_index] (code order)."""
    names = EMOTIONS if label == "emotion" else SENTIMENTS
    revs = [{"text": text, "split": "val" if split == "dev" else split, "dialog": str(d), "utterance": str(u),
             "y": emotion if label == "emotion" else SENTIMENT_OF[emotion], "num_words": len(text.split())}
            for split, d, u, _, emotion, text in revs_order()]
    counts: dict[str, int] = {}
    for u in UTTERANCES:
        for token in u[5].split():
            counts[token] = counts.get(token, 0) + 1
    vocab = {w: counts[w] for w in VOCAB}  # word -> count: values repeat
    elements = [revs, weights(), dict(WORD_IDX), vocab, 5, {n: i for i, n in enumerate(names)}]
    if readme_order:
        elements[2], elements[3] = elements[3], elements[2]
    return elements


Parts = tuple[dict, dict, dict]


def utterance_pickle(dim: int, *, skip: Sequence[str] = (), as_lists: bool = False) -> Parts:
    """3 dicts (train, val, test) keyed ``'dia_utt'`` with ``[dim]`` values filled with ``code``."""
    parts: Parts = ({}, {}, {})
    for split, d, u, *_ in UTTERANCES:
        if uid(d, u) in skip:
            continue
        value = np.full(dim, code(d, u), np.float64)
        parts[("train", "dev", "test").index(split)][f"{d}_{u}"] = value.tolist() if as_lists else value
    return parts


def dialogue_pickle(dim: int) -> Parts:
    """3 dicts keyed by dialogue id (py2 ``str`` as bytes) with ``[33, dim]`` zero-padded values."""
    parts: Parts = ({}, {}, {})
    for index, split in enumerate(("train", "dev", "test")):
        for d in sorted({u[1] for u in split_rows(split)}):
            utts = sorted(u[2] for u in split_rows(split) if u[1] == d)
            value = np.zeros((33, dim))
            for j, u in enumerate(utts):
                value[j] = code(d, u)
            parts[index][str(d).encode()] = value
    return parts


class Py2Pickler(pickle._Pickler):  # type: ignore[misc]
    """Protocol 2 as Python 2 wrote it: ``bytes`` as py2 ``str`` (BINSTRING), numpy under ``numpy.core``."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = str(getattr(obj, "__module__", "")).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or getattr(obj, '__qualname__', '')}\n".encode())
        self.memoize(obj)


def py2_pickle_bytes(obj: object) -> bytes:
    """Pickle bytes as Python 2 would write ``obj`` (bytes stand for py2 ``str``)."""
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def vision_pickle(split: str, *, order: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{fs: {vision [N, L, 512], vision_utt_mask [N, L], labels [N]}}``: CSV order minus the absent item."""
    rows = [u for u in split_rows(split) if uid(u[1], u[2]) != ABSENT.get(split)]
    if order is not None:
        by_id = {uid(u[1], u[2]): u for u in rows}
        rows = [by_id[i] for i in order]
    length = FRAMES[FILE_SPLIT[split]]
    vision = np.zeros((len(rows), length, 512), np.float32)
    mask = np.zeros((len(rows), length), np.float32)
    for r, (_, d, u, *_rest) in enumerate(rows):
        n = n_frames(d, u)
        vision[r, :n] = code(d, u) + 0.01 * np.arange(n)[:, None]
        mask[r, :n] = 1
    labels = [EMOTIONS.index(u[4]) for u in rows]
    return {FILE_SPLIT[split]: {"vision": vision, "vision_utt_mask": mask, "labels": labels}}


def profile_json(split: str, order: Sequence[str]) -> dict[str, list[Any]]:
    """``{split}_utt_profile.json``: str(row) -> [utt_name, dia_name, dia_index, dia_len, position]."""
    return {str(r): [name, name.split("_")[0], 0, 1, 0] for r, name in enumerate(order)}


def csv_rows(split: str) -> list[tuple[object, ...]]:
    return [(i + 1, text, speaker, emotion, SENTIMENT_OF[emotion], d, u, 3, 7, "0:01:00,000", "0:01:02,000")
            for i, (_, d, u, speaker, emotion, text) in enumerate(split_rows(split))]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build_meld_features(root: Path, *, labels: Sequence[str] = ("emotion",), readme_order: bool = False,
                        csvs: bool = True, vision_orders: dict[str, Sequence[str]] | None = None,
                        profiles: bool = False) -> Path:
    """Write the family under ``root`` in the distribution layout and return ``root``.

    Args:
        root: target folder.
        labels: which label sets' pickles to write (``emotion``, ``sentiment``).
        readme_order: swap elements 2 and 3 of ``data_*.p`` (word_idx_map and vocab).
        csvs: also write the MELD CSVs (train under ``train/``, dev and test at the top).
        vision_orders: split -> utterance ids in FacialMMT row order (default: CSV order minus absent).
        profiles: write ``{split}_utt_profile.json`` beside the vision pickles.
    """
    features = root / "MELD.Features.Models" / "features"
    dims = {"emotion": (1611, 300), "sentiment": (1422, 600)}
    for label in labels:
        write(features / f"data_{label}.p", pickle.dumps(data_pickle(label, readme_order=readme_order)))
        audio_dim, bclstm_audio = dims[label]
        write(features / f"audio_embeddings_feature_selection_{label}.pkl",
              pickle.dumps(utterance_pickle(audio_dim, skip=(NO_AUDIO,), as_lists=True)))
        write(features / f"text_glove_average_{label}.pkl", pickle.dumps(utterance_pickle(300)))
        write(features / f"text_glove_CNN_{label}.pkl", pickle.dumps(utterance_pickle(100)))
        write(features / f"text_{label}.pkl", py2_pickle_bytes(dialogue_pickle(600)))
        write(features / f"audio_{label}.pkl", py2_pickle_bytes(dialogue_pickle(bclstm_audio)))
        if label == "sentiment":
            write(features / "bimodal_sentiment.pkl", py2_pickle_bytes(dialogue_pickle(600)))
    facial = root / "FacialMMT" / "preprocess_data" / "T+A+V"
    for split, fs in FILE_SPLIT.items():
        order = (vision_orders or {}).get(split)
        write(facial / f"meld_{fs}_vision_utt.pkl", pickle.dumps(vision_pickle(split, order=order)))
        if profiles:
            names = order or [i for i in ids(split) if i != ABSENT.get(split)]
            write(facial / f"{fs}_utt_profile.json", json.dumps(profile_json(split, names)).encode())
    if csvs:
        for split, where in (("train", "MELD.Raw/train"), ("dev", "MELD.Raw"), ("test", "MELD.Raw")):
            write(root / where / f"{split}_sent_emo.csv", render_meld_csv(csv_rows(split)))
    return root


def _build(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return build_meld_features(tmp_path / "meld_features"), {}


def _corrupt(root: Path) -> str:
    """Swap two labels of the train vision pickle: the rebuilt order no longer verifies."""
    path = next(root.rglob("meld_train_vision_utt.pkl"))
    obj = vision_pickle("train")
    labels = obj["train"]["labels"]
    labels[0], labels[1] = labels[1], labels[0]
    path.write_bytes(pickle.dumps(obj))
    return path.name


FIXTURES: dict[str, dict[str, Any]] = {
    "meld_features": {"build": _build, "corrupt": _corrupt, "modalities": ("audio", "text", "vision")},
}
