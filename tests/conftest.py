"""Shared fixtures: seeded rng, real-data locations (skipping when absent), writers of tiny
files in the real formats (MELD CSV, scenesense feature store) under ``tmp_path``, one tiny
synthetic run trained once per session, the stub extractors (registered for one test) and the
predict tests' runs (trained once per session).

The session runs with the traced-text cache switched off (``SCENESENSE_TRACE=0``, unless it is set),
so MiniLM tests run sentence-transformers and write no trace into the user's cache;
``tests/extraction/test_text_traced.py`` switches it on over a temporary cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from scenesense import api
from scenesense.config import build_config
from scenesense.demo import DEMO_DELTA
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.text import MiniLMTextExtractor
from scenesense.extraction.text_traced import TRACE_ENV
from tests.support.extractors import FakeFaces, FakeWavStats, StubTextExtractor
from tests.support.meld import MELD_HEADER, MELD_ROWS, render_meld_csv
from tests.support.predict_runs import build_lld_run, build_run_a, build_run_b

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(TRACE_ENV, "0")  # inherited by the commands tests run in subprocesses


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


@pytest.fixture
def stub_text_extractor(monkeypatch: pytest.MonkeyPatch) -> type[StubTextExtractor]:
    """``StubTextExtractor`` registered as extractor ``stub`` for one test, its call count at 0."""
    monkeypatch.setitem(EXTRACTORS._items, "stub", StubTextExtractor)
    monkeypatch.setattr(StubTextExtractor, "calls", 0)
    return StubTextExtractor


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the fake media extractors ``test_wav_stats`` and ``test_faces`` for one test (kept out
    of registry-wide contract tests)."""
    monkeypatch.setitem(EXTRACTORS._items, "test_wav_stats", FakeWavStats)
    monkeypatch.setitem(EXTRACTORS._items, "test_faces", FakeFaces)


@pytest.fixture(scope="session")
def minilm() -> MiniLMTextExtractor:
    return MiniLMTextExtractor(batch_size=16)


@pytest.fixture(scope="session")
def run_a(tmp_path_factory: pytest.TempPathFactory, minilm: MiniLMTextExtractor) -> Path:
    """Concat run: label ``angry`` = loud audio, ``calm`` = soft; vision from a "table" (no extractor)."""
    return build_run_a(tmp_path_factory.mktemp("run_a"), minilm)


@pytest.fixture(scope="session")
def run_b(tmp_path_factory: pytest.TempPathFactory,
          minilm: MiniLMTextExtractor) -> tuple[Path, list[dict[str, str]]]:
    """Cross-attention run on audio stats, MiniLM tokens and fake face sequences.

    Returns the run and its dev items as raw inputs (a video with sound + a text each).
    """
    pytest.importorskip("av")
    return build_run_b(tmp_path_factory.mktemp("run_b"), minilm)


@pytest.fixture(scope="session")
def lld_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Audio-only run on eGeMAPS LLD sequences (max_frames unset) through a transformer encoder."""
    pytest.importorskip("av")
    pytest.importorskip("opensmile")
    return build_lld_run(tmp_path_factory.mktemp("lld_run"))
