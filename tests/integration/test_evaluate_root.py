"""``evaluate --root``: score a run on raw data in the run's dataset format, at any path."""

from __future__ import annotations

import csv
import json

import numpy as np

from scenesense import api
from scenesense.cli import main
from scenesense.config import build_config
from tests.datasets.fixtures_ravdess import write_ravdess


def _table(root, splits, n, seed):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    x = rng.normal(size=(n, 4))
    y = np.where(x[:, 0] > 0, "pos", "neg")
    with (root / "features.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "f0", "f1", "f2", "f3"])
        w.writerows([[f"s{seed}_{i}", *x[i]] for i in range(n)])
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "split"])
        w.writerows([[f"s{seed}_{i}", y[i], splits[i % len(splits)]] for i in range(n)])
    return y


def test_evaluate_converts_a_root_with_the_runs_parameters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    _table(tmp_path / "mine", ["train", "train", "train", "dev"], 160, seed=0)
    y_held = _table(tmp_path / "held_out", ["test"], 40, seed=1)
    cfg = build_config({"modalities": ["audio"],
                        "data": {"dataset": "table", "root": str(tmp_path / "mine"),
                                 "params": {"label_names": ["neg", "pos"]}},
                        "model": {"out_dim": 8, "head_hidden_dim": 8},
                        "trainer": {"epochs": 15, "batch_size": 16, "lr": 1e-2, "progress": False}})
    api.train(cfg, tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run"), "--root", str(tmp_path / "held_out"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["n"] == 40 and scored["accuracy"] > 0.75  # learnable: the label is the sign of f0
    rows = list(csv.DictReader(open(scored["predictions"])))
    assert sorted(r["id"] for r in rows) == sorted(f"s1_{i}" for i in range(40))
    assert {r["id"]: r["label_name"] for r in rows} == {f"s1_{i}": str(y_held[i]) for i in range(40)}
    # a parameter the run did not have is refused, one line
    assert main(["evaluate", str(tmp_path / "run"), "--root", str(tmp_path / "held_out"), "--set", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_evaluate_scores_a_ravdess_layout_of_other_actors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    mine = write_ravdess(tmp_path / "mine", actors=(1, 2, 3))
    held = write_ravdess(tmp_path / "withheld", actors=(5, 6))  # actors the run's splits never saw
    cfg = build_config({"modalities": ["audio", "vision"],
                        "data": {"dataset": "ravdess", "root": str(mine),
                                 "params": {"train_actors": [1, 2], "dev_actors": [3]}},
                        "model": {"out_dim": 8, "head_hidden_dim": 8},
                        "trainer": {"epochs": 1, "batch_size": 8, "progress": False}})
    api.train(cfg, tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run"), "--root", str(held), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(scored["predictions"])))
    assert scored["n"] == len(rows) == sum(1 for _ in (held / "audio").rglob("*.wav"))
    assert {r["id"].split("-")[-1] for r in rows} == {"05", "06"}  # split=all: every clip, no actor dropped
