"""Contract over every registered dataset source (``DATASETS``): each one has a fixture in its real
format (``fixtures_*.py`` here), converts into train/dev stores that load and collate, trains a
model over every modality it provides, and rejects a damaged source with one line naming the file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from scenesense.config import DataConfig, build_config
from scenesense.datasets.sources import DATASETS
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.datasets.sources import prepare_dataset

FIXTURES: dict = {}
for _module in sorted(Path(__file__).parent.glob("fixtures_*.py")):
    FIXTURES.update(importlib.import_module(f"{__package__}.{_module.stem}").FIXTURES)

TINY_MODEL = {"out_dim": 8, "head_hidden_dim": 8, "modality_dropout": 0.0,
              "sequence_encoder": {"name": "transformer",
                                   "params": {"num_layers": 1, "num_heads": 1, "dim_feedforward": 8}}}


def test_every_registered_source_has_a_fixture():
    assert sorted(FIXTURES) == DATASETS.names()


@pytest.fixture(params=DATASETS.names())
def source(request, tmp_path, monkeypatch):
    name = request.param
    fixture = FIXTURES[name]
    if "setup" in fixture:
        fixture["setup"](monkeypatch)
    root, params = fixture["build"](tmp_path)
    return name, fixture, root, params


def test_converts_into_loadable_train_and_dev_stores(source, tmp_path):
    name, fixture, root, params = source
    cfg = DataConfig(dataset=name, root=None if root is None else str(root), params=params)
    store = prepare_dataset(cfg, tmp_path / "cache")
    for split in ("train", "dev"):
        ds = FeatureStoreDataset(store / f"{split}.h5", fixture["modalities"])
        assert len(ds) > 0
        assert set(ds.feature_dims) == set(fixture["modalities"])
        batch = collate(ds.__getitems__(list(range(min(4, len(ds))))))
        assert set(batch["inputs"]) == set(fixture["modalities"])
        assert len(set(ds.ids)) == len(ds)  # keys are unique
    assert prepare_dataset(cfg, tmp_path / "cache") == store  # cached


def test_a_model_over_every_modality_trains(source, tmp_path, monkeypatch):
    from scenesense import api

    name, fixture, root, params = source
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    cfg = build_config({"modalities": list(fixture["modalities"]), "model": TINY_MODEL,
                        "data": {"dataset": name, "root": None if root is None else str(root), "params": params},
                        "trainer": {"epochs": 1, "batch_size": 4, "progress": False}})
    result = api.train(cfg, tmp_path / "run")
    assert result.metrics["epochs_run"] == 1
    assert "mae" in result.metrics or 0.0 <= result.metrics["accuracy"] <= 1.0


def test_damaged_source_is_one_line_naming_the_file(source, tmp_path):
    name, fixture, root, params = source
    if "corrupt" not in fixture:
        pytest.skip(f"{name} reads no files")
    bad_file = fixture["corrupt"](root)
    with pytest.raises((ValueError, OSError)) as err:
        prepare_dataset(DataConfig(dataset=name, root=str(root), params=params), tmp_path / "fresh_cache")
    message = str(err.value)
    assert bad_file in message and "\n" not in message
