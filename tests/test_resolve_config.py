"""Config checks at resolve time: registry names, dataset modalities, data roots, ``configs/``."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import scenesense.recipes
from scenesense.cli import main
from scenesense.config import ConfigError, ExperimentConfig, build_config, load_yaml
from scenesense.datasets.sources import DATASETS, get_source, root_env_var
from scenesense.recipes import resolve_config

@pytest.fixture(autouse=True)
def _no_root_in_the_environment(monkeypatch):
    for name in DATASETS.names():
        monkeypatch.delenv(root_env_var(name), raising=False)


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize(
    ("args", "message", "a_choice"),
    [
        (["--fusion", "nope"], "model.fusion: unknown fusion 'nope'; choose from", "concat"),
        (["--set", "model.sequence_encoder.name=nope"], "model.sequence_encoder: unknown encoder 'nope'",
         "transformer"),
        (["--set", "model.encoders.text.name=nope"], "model.encoders.text: unknown encoder 'nope'", "linear"),
        (["--set", "model.context.name=nope"], "model.context: unknown context 'nope'", "transformer"),
        (["--set", "trainer.loss=nope"], "trainer.loss: unknown loss 'nope'", "'auto', 'cross_entropy'"),
        (["--dataset", "nope"], "data.dataset: unknown dataset 'nope'", "synthetic"),
        (["--dataset", "meld", "--root", "MELD", "--set", "data.params.extractor=nope"],
         "data.params.extractor: unknown extractor 'nope'", "minilm"),
        (["--dataset", "ravdess", "--root", "RAVDESS", "--set", "data.params.audio=nope"],
         "data.params.audio must be 'table' or an audio extractor", "egemaps"),
    ],
)
def test_unknown_names_fail_the_dry_run_naming_the_choices(capsys, args, message, a_choice):
    assert main(["train", *args, "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert not captured.out
    assert message in captured.err and a_choice in captured.err


def test_modalities_come_from_the_dataset_unless_given(capsys):
    assert resolve_config({"data": {"dataset": "meld", "root": "MELD"}}).modalities == ("text",)
    assert resolve_config({"data": {"dataset": "ravdess", "root": "RAVDESS"}}).modalities == ("audio", "vision")
    given = {"data": {"dataset": "ravdess", "root": "RAVDESS"}, "modalities": ["audio"]}
    assert resolve_config(given).modalities == ("audio",)
    assert main(["train", "--dataset", "meld", "--root", "MELD", "--dry-run"]) == 0
    assert "modalities:\n- text\n" in capsys.readouterr().out


def test_the_synthetic_default_is_unchanged():
    assert DATASETS.get("synthetic").modalities == ExperimentConfig().modalities
    assert resolve_config() == build_config()
    assert resolve_config({"trainer": {"epochs": 2}}) == build_config({"trainer": {"epochs": 2}})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "meld"], "data.root must name the source of dataset 'meld': the folder holding "
                                "train_sent_emo.csv and dev_sent_emo.csv (--root path/to/MELD)"),
        (["-c", "configs/meld_text.yaml"], "(--root path/to/MELD)"),
        (["-c", "configs/ravdess.yaml"], "Actor_XX clip folders and openface_au_mfcc.csv (--root path/to/RAVDESS)"),
        (["--dataset", "store"], "a store folder holding train.h5 and dev.h5 (--root path/to/store)"),
        (["--root", "somewhere"], "data.root must be unset for the synthetic dataset"),
    ],
)
def test_a_missing_or_superfluous_root_is_a_config_error(capsys, monkeypatch, args, message):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["train", *args, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_configs_carry_no_data_root_and_resolve_with_one(path):
    layer = load_yaml(path)
    assert "root" not in layer.get("data", {}), f"{path.name}: machine-specific data.root"
    dataset = layer.get("data", {}).get("dataset", "synthetic")
    root = {"data": {"root": "path/to/data"}} if DATASETS.get(dataset).needs_root else {}
    cfg = resolve_config(layer, root)
    assert cfg.data.dataset == dataset
    if root:
        with pytest.raises(ConfigError, match=f"data.root must name the source of dataset '{dataset}'"):
            resolve_config(layer)


def test_resolve_config_docstring_example_runs():
    assert doctest.testmod(scenesense.recipes, raise_on_error=True).attempted >= 1


def test_the_root_can_come_from_the_environment_and_is_recorded(monkeypatch, capsys, tmp_path):
    assert root_env_var("meld") == "SCENESENSE_MELD_ROOT"
    assert root_env_var("cmu-sdk") == "SCENESENSE_CMU_SDK_ROOT"
    with pytest.raises(ConfigError, match="or set SCENESENSE_MELD_ROOT$"):
        resolve_config({"data": {"dataset": "meld"}})
    monkeypatch.setenv("SCENESENSE_MELD_ROOT", str(tmp_path))
    cfg = resolve_config({"data": {"dataset": "meld"}})
    assert cfg.data.root == str(tmp_path) and cfg.modalities == ("text",)
    assert get_source("meld").resolve_root(cfg.data) == tmp_path
    assert resolve_config({"data": {"dataset": "meld", "root": "given"}}).data.root == "given"  # --root wins
    assert resolve_config().data.root is None  # a source without files ignores it
    assert main(["train", "-c", str(CONFIGS[0].parent / "meld_text.yaml"), "--dry-run"]) == 0
    assert f"root: {tmp_path}" in capsys.readouterr().out
    monkeypatch.setenv("SCENESENSE_MELD_ROOT", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent: no such file or folder"):
        get_source("meld").resolve_root(build_config({"data": {"dataset": "meld"}}).data)


def test_a_store_trains_on_the_modalities_its_files_hold(tiny_store, tmp_path):
    assert resolve_config({"data": {"dataset": "store", "root": str(tiny_store)}}).modalities == ("audio", "text")
    given = {"data": {"dataset": "store", "root": str(tiny_store)}, "modalities": ["text"]}
    assert resolve_config(given).modalities == ("text",)
    # no readable train.h5 (yet): all three, and preparing the dataset names the problem
    assert resolve_config({"data": {"dataset": "store", "root": str(tmp_path / "absent")}}).modalities == \
        ("audio", "text", "vision")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train.h5").write_bytes(b"not hdf5")
    assert resolve_config({"data": {"dataset": "store", "root": str(tmp_path / "broken")}}).modalities == \
        ("audio", "text", "vision")
