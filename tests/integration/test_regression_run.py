"""A regression store (one float target per sample) trains, evaluates and reports MAE/Corr/Acc-k."""

from __future__ import annotations

import csv
import json

import numpy as np

from scenesense import api
from scenesense.cli import main
from scenesense.config import build_config
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter


def _regression_store(root, n_train=48, n_dev=16):
    rng = np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 3), "text": FeatureSpec("text", "sequence", 2, max_len=4)}
    for split, n in (("train", n_train), ("dev", n_dev)):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = np.clip(2.0 * x[:, 0], -3, 3)  # the target is a function of the audio features
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("sentiment",), "regression"),
                         features=specs, source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(n)], y.tolist(),
                     {"audio": list(x), "text": [rng.normal(size=(1 + i % 4, 2)) for i in range(n)]})
    return root


def test_regression_run_end_to_end(tmp_path, capsys):
    store = _regression_store(tmp_path / "store")
    cfg = build_config({"modalities": ["audio", "text"], "data": {"dataset": "store", "root": str(store)},
                        "model": {"out_dim": 8, "head_hidden_dim": 16, "modality_dropout": 0.0,
                                  "sequence_encoder": {"name": "transformer", "params": {"num_layers": 1,
                                                       "num_heads": 1, "dim_feedforward": 8}}},
                        "trainer": {"epochs": 30, "batch_size": 8, "lr": 3e-3, "progress": False}})
    result = api.train(cfg, tmp_path / "run")
    m = result.metrics
    assert {"mae", "corr", "acc2", "acc5", "acc7", "f1"} <= set(m)
    assert m["corr"] > 0.8  # learnable: the target is 2 * the first audio feature
    rows = list(csv.DictReader((tmp_path / "run" / "predictions.csv").open()))
    assert len(rows) == 16 and set(rows[0]) == {"id", "label", "pred"}
    y = np.array([float(r["label"]) for r in rows])
    assert m["mae"] < 0.5 * np.abs(y - y.mean()).mean()  # far better than predicting the mean
    assert not (tmp_path / "run" / "confusion_matrix.png").exists()
    assert main(["evaluate", str(tmp_path / "run"), "--store", str(store), "--split", "dev", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["mae"] == m["mae"]


def test_an_experiment_on_regression_data_trains_and_skips_the_classification_suites(tmp_path, capsys, caplog):
    import yaml

    store = _regression_store(tmp_path / "store", n_train=24, n_dev=8)
    base = {"data": {"dataset": "store", "root": str(store)},
            "model": {"out_dim": 8, "head_hidden_dim": 8,
                      "sequence_encoder": {"name": "transformer", "params": {"num_layers": 1, "num_heads": 1,
                                                                              "dim_feedforward": 8}}},
            "trainer": {"batch_size": 8, "progress": False}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    folder = tmp_path / "exp"
    argv = ["experiment", "-c", str(tmp_path / "base.yaml"), "--sets", "audio+text", "--variants", "concat",
            "--seeds", "0", "1", "--epochs", "1", "--no-profile", "--output-dir", str(folder), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["trained"]) == 2 and summary["robustness"] == [] and "report" not in summary
    assert "2 regression cells: no robustness suite or report" in caplog.text
    for cell in summary["trained"]:
        assert "mae" in json.loads((folder / "cells" / cell / "metrics.json").read_text())
        assert not (folder / "cells" / cell / "robustness.json").exists()
