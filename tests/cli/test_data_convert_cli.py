"""MELD CSVs through the CLI: ``data convert`` over an existing store (reused only when made from
the same inputs and parameters), and every command that reads a MELD CSV given a field over the
csv module's default limit (``data convert``, ``evaluate --csv``, ``predict --conversation``).

Text features come from the ``word_vectors`` extractor over a 3-word vector file, so no model is
needed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest

from scenesense.cli import main
from scenesense.data.store import open_store_split
from tests.support.meld import MELD_ROWS, render_meld_csv

DEFAULT_LIMIT = 131_072  # Python's csv.field_size_limit()
LONG = " ".join(["oh"] * 45)  # one utterance of 45 whitespace tokens


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("scenesense: error:")]


@pytest.fixture
def meld_root(tmp_path: Path) -> Path:
    root = tmp_path / "meld"
    root.mkdir()
    rows = [list(r) for r in MELD_ROWS]
    rows[0][1] = LONG
    for split in ("train", "dev"):
        (root / f"{split}_sent_emo.csv").write_bytes(render_meld_csv(rows))
    (tmp_path / "vectors.txt").write_text("oh 1 0 0 0\nmy 0 1 0 0\nthe 0 0 1 0\n", encoding="utf-8")
    return root


def _convert(root: Path, out: Path, *sets: str) -> int:
    argv = ["data", "convert", "meld", "--root", str(root), "--out", str(out), "--json",
            "--set", "extractor=word_vectors", "--set", f"model_path={root.parent / 'vectors.txt'}",
            "--set", "extractor_params={tokenizer: whitespace}"]
    for value in sets:
        argv += ["--set", value]
    return main(argv)


def test_a_changed_label_rebuilds_the_store(meld_root, tmp_path, caplog):
    out = tmp_path / "store"
    assert _convert(meld_root, out) == 0
    assert len(open_store_split(out / "dev.h5").label_space.names) == 7
    assert _convert(meld_root, out, "label=sentiment") == 0
    for split in ("train", "dev"):
        assert open_store_split(out / f"{split}.h5").label_space.names == ("neutral", "positive", "negative")
    assert "label: 'emotion' -> 'sentiment'" in caplog.text


def test_a_changed_max_tokens_rebuilds_the_store(meld_root, tmp_path, caplog):
    out = tmp_path / "store"
    assert _convert(meld_root, out) == 0
    assert open_store_split(out / "dev.h5").features["text"].max_len == 45
    assert _convert(meld_root, out, "max_tokens=20") == 0
    for split in ("train", "dev"):
        split_file = open_store_split(out / f"{split}.h5")
        assert split_file.features["text"].max_len == 20
        assert split_file.features["text"].provenance["params"]["max_tokens"] == 20
    assert "extractor.params.max_tokens: 50 -> 20" in caplog.text


def test_the_same_inputs_and_parameters_reuse_the_store(meld_root, tmp_path):
    out = tmp_path / "store"
    assert _convert(meld_root, out) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert _convert(meld_root, out) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_changed_csv_is_read_again_and_its_errors_reported(meld_root, tmp_path, capsys):
    out = tmp_path / "store"
    assert _convert(meld_root, out) == 0
    capsys.readouterr()
    rows = [list(r) for r in MELD_ROWS]
    rows[3][3] = "happy"  # not a MELD emotion
    (meld_root / "dev_sent_emo.csv").write_bytes(render_meld_csv(rows))
    assert _convert(meld_root, out) == 1
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "dev_sent_emo.csv: line 5 (dia1_utt1): unknown emotion 'happy'" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["train.h5"]  # the stale dev split is gone


def test_a_store_without_a_recorded_identity_is_rebuilt(meld_root, tmp_path, caplog):
    out = tmp_path / "store"
    assert _convert(meld_root, out) == 0
    with h5py.File(out / "dev.h5", "r+") as f:  # as written before identities were recorded
        source = json.loads(f.attrs["source"])
        del source["identity"]
        f.attrs["source"] = json.dumps(source)
    assert _convert(meld_root, out) == 0
    assert "does not record the inputs and parameters" in caplog.text
    assert "identity" in open_store_split(out / "dev.h5").source


def test_other_converters_rewrite_every_split_with_the_new_parameters(tmp_path, capsys):
    out = tmp_path / "synthetic"
    base = ["data", "convert", "synthetic", "--out", str(out), "--json", "--set", "n_dev=6",
            "--set", "n_test=6", "--set", "dim=8"]
    assert main([*base, "--set", "n_train=12"]) == 0
    assert main([*base, "--set", "n_train=18"]) == 0
    assert open_store_split(out / "train.h5").n == 18


TINY_TRAIN = ["--set", "model.out_dim=8", "--set", "model.head_hidden_dim=8",
              "--set", "model.sequence_encoder.params.num_layers=1",
              "--set", "model.sequence_encoder.params.dim_feedforward=16",
              "--set", "trainer.progress=false", "--set", "trainer.batch_size=8", "--epochs", "1"]


@pytest.fixture
def default_field_limit() -> Iterator[None]:
    """Python's default csv field limit before the test, and back to the one before after it."""
    before = csv.field_size_limit(DEFAULT_LIMIT)
    yield
    csv.field_size_limit(before)


def test_every_meld_csv_command_reads_a_field_over_the_csv_limit(meld_root, tmp_path, capsys, monkeypatch,
                                                                 default_field_limit):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    vectors = meld_root.parent / "vectors.txt"
    run = tmp_path / "run"
    assert main(["train", "--dataset", "meld", "--root", str(meld_root), "--modalities", "text",
                 "--run-dir", str(run), "--set", "data.params.extractor=word_vectors",
                 "--set", f"data.params.model_path={vectors}",
                 "--set", "data.params.extractor_params={tokenizer: whitespace}", *TINY_TRAIN]) == 0
    rows = [list(r) for r in MELD_ROWS]
    rows[2][1] = "oh my " * 40_000  # 240,000 characters
    for split in ("train", "dev"):
        (meld_root / f"{split}_sent_emo.csv").write_bytes(render_meld_csv(rows))
    huge = meld_root / "dev_sent_emo.csv"
    capsys.readouterr()
    for argv in (["evaluate", str(run), "--csv", str(huge), "--json"],
                 ["predict", str(run), "--conversation", str(huge), "--json"],
                 ["data", "convert", "meld", "--root", str(meld_root), "--out", str(tmp_path / "store"),
                  "--set", "extractor=word_vectors", "--set", f"model_path={vectors}",
                  "--set", "extractor_params={tokenizer: whitespace}"]):
        csv.field_size_limit(DEFAULT_LIMIT)  # as in a fresh process
        assert main(argv) == 0, argv
        assert not _error_lines(capsys)
    assert open_store_split(tmp_path / "store" / "dev.h5").features["text"].max_len == 50  # cut to max_tokens
