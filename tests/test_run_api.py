"""The public Python API (``scenesense.train``, ``load``, ``Run``), its docstring examples,
``__version__`` and the README's five-line example."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import scenesense
import scenesense.run
from scenesense.cli import main
from scenesense.config import ConfigError, build_config
from scenesense.run import resolve
from tests.support.meld import write_word_vector_meld

TINY = {"data": {"dataset": "synthetic", "params": {"n_train": 64, "n_dev": 32, "n_test": 32}},
        "model": {"out_dim": 16, "head_hidden_dim": 16,
                  "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2,
                                       "dim_feedforward": 16}},
        "trainer": {"epochs": 1, "progress": False}}

def _readme_example() -> str:
    """The Python block under the README's "From Python" heading, verbatim."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\n", text.index("### From Python")) + len("```python\n")
    return text[start:text.index("```", start)]


README_EXAMPLE = _readme_example()

_MELD_LINES = [("What a wonderful day!", "joy"), ("Leave me alone.", "anger"), ("Oh no, not again.", "sadness"),
               ("Okay.", "neutral"), ("I love it!", "joy"), ("Go away!", "anger")]
_VECTORS = "what 1 0 0 0\nday 0 1 0 0\nalone 0 0 1 0\nlove 1 1 0 0\nno 0 1 1 1\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A tiny run on the synthetic benchmark."""
    return scenesense.train(TINY, run_dir=tmp_path_factory.mktemp("runs") / "tiny", data__cache_dir=str(cache)).run_dir


@pytest.fixture(scope="module")
def text_run_dir(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A tiny run on MELD-format CSVs, text featurised by the ``word_vectors`` extractor."""
    root = tmp_path_factory.mktemp("meld")
    data = write_word_vector_meld(root, _MELD_LINES, _VECTORS)
    config = {**TINY, "data": {**data, "cache_dir": str(cache)}}
    return scenesense.train(config, run_dir=root / "run").run_dir


def test_docstring_examples_run(run_dir, text_run_dir):
    globs = {"scenesense": scenesense, "run_dir": run_dir, "text_run_dir": text_run_dir}
    result = doctest.testmod(scenesense.run, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 8


def test_run_reads_its_folder(run_dir):
    run = scenesense.load(run_dir)
    assert run.run_dir == run_dir and run.config.data.dataset == "synthetic"
    assert run.spec.modalities == ("audio", "text", "vision") and run.spec.label_names
    assert run.metrics["split"] == "dev" and 0.0 <= run.metrics["accuracy"] <= 1.0
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        scenesense.load(run_dir.parent)


def test_a_synthetic_run_cannot_predict_raw_inputs(run_dir):
    with pytest.raises(ValueError, match="none of the run's modalities can be extracted"):
        scenesense.load(run_dir).predict(["hello"])


def test_resolve_takes_a_yaml_file_a_mapping_or_a_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {epochs: 3}\n", encoding="utf-8")
    assert resolve(path) == build_config({"trainer": {"epochs": 3}})
    assert resolve(str(path), trainer__epochs=4).trainer.epochs == 4
    cfg = resolve({"data": {"dataset": "meld", "root": "MELD"}}, model__fusion__name="hadamard", name="x")
    assert (cfg.modalities, cfg.model.fusion.name, cfg.name) == (("text",), "hadamard", "x")
    given = build_config({"modalities": ["audio"], "trainer": {"epochs": 3}})
    assert resolve(given) == given  # a config object is used as given (its modalities too)
    assert resolve(given, trainer__seed=5).trainer.seed == 5


def test_train_checks_the_config_before_reading_data(tmp_path):
    with pytest.raises(ConfigError, match="model.fusion: unknown fusion 'nope'"):
        scenesense.train({"model": {"fusion": "nope"}}, run_dir=tmp_path / "never")
    with pytest.raises(ConfigError, match="unknown key"):
        scenesense.train({}, trainer__epoch=2)
    assert not (tmp_path / "never").exists()


def test_version_from_the_package_metadata(capsys, monkeypatch):
    assert scenesense.__version__ == metadata.version("scenesense")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"scenesense {scenesense.__version__}\n"

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    try:
        assert importlib.reload(scenesense).__version__ == "0+unknown"
    finally:
        monkeypatch.undo()
        importlib.reload(scenesense)


def test_importing_scenesense_is_cheap_and_the_api_loads_on_use():
    code = ("import sys, scenesense; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert scenesense.train is scenesense.run.train and scenesense.Run.__name__ == 'Run'; "
            "assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scenesense.nope  # noqa: B018


def test_readme_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(README_EXAMPLE, {})  # noqa: S102 - the README's text, verbatim
    assert out.getvalue().startswith("test weighted F1 0.")
    assert "predictions in runs/experiment/" in out.getvalue()
