"""The runs the export tests export, each trained once per session: a synthetic run (all
three modalities, padded sequences, missing modalities, standardised inputs, cross-attention) and a
text run (MELD-format CSVs featurised by the ``word_vectors`` extractor, token sequences)."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenesense
from tests.support.meld import write_word_vector_meld

SEQUENCE_ENCODER = {"name": "transformer", "num_layers": 1, "num_heads": 2, "dim_feedforward": 16}
MELD_LINES = [("What a wonderful day!", "joy"), ("Leave me alone.", "anger"), ("Oh no, not again.", "sadness"),
              ("Okay.", "neutral"), ("I love it, what a day!", "joy"), ("Go away, leave!", "anger")]
VECTORS = "what 1 0 0 0\nday 0 1 0 0\nalone 0 0 1 0\nlove 1 1 0 0\nno 0 1 1 1\nleave 0 0 2 1\naway 0 0 1 2\n"


@pytest.fixture(scope="session")
def synthetic_export_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("synthetic_export")
    config = {"data": {"dataset": "synthetic", "cache_dir": str(tmp / "cache"),
                       "params": {"n_train": 48, "n_dev": 16, "n_test": 24, "dim": 8, "missing_rate": 0.3}},
              "model": {"out_dim": 8, "head_hidden_dim": 8, "standardize": True, "sequence_encoder": SEQUENCE_ENCODER,
                        "fusion": {"name": "cross_attention", "params": {"num_heads": 2}}},
              "trainer": {"epochs": 1, "progress": False}}
    return scenesense.train(config, run_dir=tmp / "run").run_dir


@pytest.fixture(scope="session")
def text_export_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text_export")
    data = write_word_vector_meld(root, MELD_LINES, VECTORS)
    config = {"data": {**data, "cache_dir": str(root / "cache")},
              "model": {"out_dim": 8, "head_hidden_dim": 8, "sequence_encoder": SEQUENCE_ENCODER},
              "trainer": {"epochs": 40, "lr": 1e-2, "patience": 40, "progress": False}}
    return scenesense.train(config, run_dir=root / "run").run_dir
