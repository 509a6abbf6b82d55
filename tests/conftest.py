"""Shared fixtures: seeded rng, real-data locations (skipping when absent), writers of tiny
files in the real formats (MELD CSV, scenesense feature store) under ``tmp_path``, and one tiny
synthetic run trained once per session."""

from __future__ import annotations

import csv
import io
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from scenesense import api
from scenesense.config import build_config
from scenesense.demo import DEMO_DELTA

REPO_ROOT = Path(__file__).resolve().parents[1]

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
               "Season", "Episode", "StartTime", "EndTime"]

# (Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, Start, End)
# in the current (clean UTF-8) spelling. Dialogue 1 has an Utterance_ID gap (0, 1, 4); dialogue 3
# starts at 2; Sr No. repeats (it is not a key); texts hold commas, quotes and smart punctuation.
MELD_ROWS: list[tuple[object, ...]] = [
    (1, "also I was the point person on my company’s transition from the KL-5 to GR-6 system.",
     "Chandler", "neutral", "neutral", 0, 0, 8, 21, "00:16:16,059", "00:16:21,731"),
    (2, "You must’ve had your hands full.", "The Interviewer", "neutral", "neutral", 0, 1, 8, 21,
     "00:16:21,940", "00:16:23,442"),
    (3, "Oh my God, he’s lost it… He’s totally lost it!", "Phoebe", "sadness", "negative", 1, 0, 4, 7,
     "0:03:24,234", "0:03:26,654"),
    (4, "What?", "Monica", "surprise", "negative", 1, 1, 4, 7, "0:03:26,700", "0:03:27,100"),
    (5, "Emma!  See? “Good” — that’s it.", "Richard’s Date", "joy", "positive", 1, 4, 4, 7,
     "0:03:27,200", "0:03:29,000"),
    (5, 'He said "no", then left.', "Ross", "anger", "negative", 3, 2, 2, 3, "00:10:00,000", "00:10:02,500"),
    (6, "Ugh.", "Ross", "disgust", "negative", 3, 3, 2, 3, "00:10:03,000", "00:10:03,400"),
    (7, "I’m scared – really.", "Joey", "fear", "negative", 3, 5, 2, 3, "00:10:04,000", "00:10:06,000"),
]

_CP1252_PUNCT = "’‘“”…—–"


def _to_c1(text: str) -> str:
    """Pre-2020 variant: cp1252 punctuation stored as the C1 code point of its cp1252 byte."""
    return "".join(chr(ch.encode("cp1252")[0]) if ch in _CP1252_PUNCT else ch for ch in text)


def _to_mojibake(text: str) -> str:
    """A UTF-8 string misread as cp1252 (``’`` becomes ``â€™``; bytes cp1252 lacks stay as latin-1)."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8"))


def render_meld_csv(rows: Sequence[Sequence[object]], *, header: Sequence[str] = MELD_HEADER,
                    variant: str = "clean", bom: bool = False) -> bytes:
    """Bytes of a MELD CSV: ``clean`` (UTF-8, CRLF), ``c1`` (C1 controls + NBSP, LF) or ``mojibake``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n" if variant == "c1" else "\r\n")
    writer.writerow(header)
    for row in rows:
        cells = [str(v) for v in row]
        if variant == "c1":
            cells = [_to_c1(c).replace("  ", "\xa0 ") for c in cells]
        elif variant == "mojibake":
            cells = [_to_mojibake(c) for c in cells]
        writer.writerow(cells)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


@pytest.fixture
def meld_rows() -> list[list[object]]:
    """A copy of the fixture MELD rows (clean spelling), in CSV column order."""
    return [list(row) for row in MELD_ROWS]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data_dir() -> Path:
    """``<repo>/../shared/data`` (the real datasets); skips when absent."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data not available at {path}")
    return path


@pytest.fixture
def meld_data_dir(shared_data_dir: Path) -> Path:
    path = shared_data_dir / "meld"
    if not (path / "train_sent_emo.csv").is_file() or not (path / "dev_sent_emo.csv").is_file():
        pytest.skip(f"MELD CSVs not available under {path}")
    return path


@pytest.fixture
def write_meld_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``write_meld_csv(name, rows=MELD_ROWS, variant="clean", bom=True, header=...)`` -> path."""

    def write(name: str = "dev_sent_emo.csv", rows: Sequence[Sequence[object]] = MELD_ROWS, *,
              variant: str = "clean", bom: bool = True, header: Sequence[str] = MELD_HEADER) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_meld_csv(rows, header=header, variant=variant, bom=bom))
        return path

    return write


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    """A store dir with ``train.h5`` (5 rows) and ``dev.h5`` (3 rows).

    Feature sets: ``text`` (sequence, D=4, T_i = 1 + i % 4), ``text_sentence`` (vector, D=4,
    modality text) and ``audio`` (vector, D=3; missing for row 1). Row i of ``text`` holds
    ``i + 0.01 * t`` at step t; ``audio`` holds ``-i``. Labels: ``i % 3`` over classes a, b, c.
    """
    from scenesense.data.labels import LabelSpace
    from scenesense.data.store import FeatureSpec, StoreWriter

    specs = {
        "text": FeatureSpec("text", "sequence", 4, max_len=6, provenance={"extractor": "fixture"}),
        "text_sentence": FeatureSpec("text", "vector", 4),
        "audio": FeatureSpec("audio", "vector", 3),
    }
    root = tmp_path / "store"
    for split, n in (("train", 5), ("dev", 3)):
        ids = [f"{split}{i}" for i in range(n)]
        steps = [np.arange(1 + i % 4, dtype=np.float32)[:, None] for i in range(n)]  # [T_i, 1]
        text = [np.full((len(t), 4), i, np.float32) + 0.01 * t for i, t in enumerate(steps)]
        features = {
            "text": text,
            "text_sentence": [t.mean(0) for t in text],
            "audio": [None if i == 1 else np.full(3, -float(i), np.float32) for i in range(n)],
        }
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("a", "b", "c")), features=specs,
                         source={"dataset": "fixture", "split": split}) as writer:
            writer.append(ids[:2], [i % 3 for i in range(2)], {k: v[:2] for k, v in features.items()},
                          dialogue_ids=["d0", "d0"], positions=[0, 1], speakers=["Ann", "Bob"])
            writer.append(ids[2:], [i % 3 for i in range(2, n)], {k: v[2:] for k, v in features.items()})
    return root


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run on the synthetic benchmark (the demo model, concat fusion, one epoch, seed 0;
    60/30/30 items), trained once per session. Treat it as read-only: copy it before writing into it."""
    tmp = tmp_path_factory.mktemp("synthetic_run")
    cfg = build_config(DEMO_DELTA, {"name": "t", "output_dir": str(tmp / "runs"),
                                    "data": {"cache_dir": str(tmp / "cache"),
                                             "params": {"n_train": 60, "n_dev": 30, "n_test": 30}},
                                    "trainer": {"epochs": 1, "seed": 0},
                                    "model": {"fusion": {"name": "concat"}}})
    return api.train(cfg, tmp / "run").run_dir


TINY_MODEL_ARGS: list[str] = [
    "--set", "model.out_dim=8", "--set", "model.head_hidden_dim=8",
    "--set", "model.sequence_encoder.params.num_layers=1", "--set", "model.sequence_encoder.params.dim_feedforward=16",
    "--set", "trainer.progress=false", "--set", "trainer.batch_size=8",
]
"""``scenesense train`` arguments of a tiny, quick model (width 8, one encoder layer, batch 8, no bar)."""


def write_audio_store(root: Path) -> Path:
    """A store at ``root``: audio vectors (D=3) of classes a, b, c, 24 train and 12 dev rows, learnable."""
    from scenesense.data.labels import LabelSpace
    from scenesense.data.store import FeatureSpec, StoreWriter

    rng = np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 3)}
    for split, n in (("train", 24), ("dev", 12)):
        y = np.arange(n) % 3
        x = (rng.normal(size=(n, 3)) + np.eye(3)[y]).astype(np.float32)
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("a", "b", "c")), features=specs,
                         source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(n)], y.tolist(), {"audio": list(x)})
    return root


def tar_gz_bytes(members: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None) -> bytes:
    """A .tar.gz of regular files ``name -> data`` plus ``links``: ``name -> (target, tarfile type)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (target, kind) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return buffer.getvalue()
