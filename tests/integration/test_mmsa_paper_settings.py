"""The TMT / AMW papers' settings on MMSA-format data, end to end through the CLI.

(a) 5 classes (``data.params.label=sentiment5``) with cross-entropy, (b) regression with an l1 and
an mse loss. Each run is trained and then scored on the test split; every score in ``metrics.json``
is recomputed here from the run's ``predictions.csv`` with scikit-learn / numpy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from scenesense.cli import main
from scenesense.data.safe_pickle import load_pickle
from scenesense.recipes import recipe_delta
from scenesense.runs.records import read_run
from tests.datasets.fixtures_mmsa import mmsa_file, write_mmsa

PAPER_RECIPES = ("amw", "tmt")
"""The recipes each setting is trained with."""
_TINY_ENCODER = "{num_layers: 1, num_heads: 1, dim_feedforward: 8}"
TINY = {  # recipe -> --set overrides that make its model tiny
    "amw": [f"model.sequence_encoder.params={_TINY_ENCODER}", "model.out_dim=8"],
    "tmt": ["model.fusion.dim=8", "model.fusion.num_heads=2", "model.fusion.head_dim=4", "model.fusion.mlp_dim=8",
            "model.fusion.mutual_mlp_dim=8", "model.fusion.depth=1", "model.fusion.mutual_depth=1"],
}

# TMT's 5-class training script maps CH-SIMS's scores (multiples of 0.2) to classes by this table
TMT_SIMS_CLASSES = {-1.0: 0, -0.8: 0, -0.6: 1, -0.4: 1, -0.2: 1, 0.0: 2, 0.2: 3, 0.4: 3, 0.6: 3, 0.8: 4, 1.0: 4}
SIMS_INTERVALS = ((-np.inf, -0.7), (-0.7, -0.1), (-0.1, 0.1), (0.1, 0.7), (0.7, np.inf))  # (lo, hi]

SETTINGS = {  # name -> (label, loss, CH-SIMS scale)
    "sentiment5": ("sentiment5", "cross_entropy", True),
    "regression_l1": ("regression", "l1", False),
    "regression_mse": ("regression", "mse", True),
}


def _sims_grid_file(folder: Path) -> Path:
    """A CH-SIMS-like pickle whose scores lie on SIMS's grid (multiples of 0.2), every grid value used."""
    path = mmsa_file(folder, sims=True, sizes=(10, 8, 8))
    data = load_pickle(path)
    grid = np.round(np.arange(-5, 6) / 5, 1).astype(np.float32)
    for i, split in enumerate(data.values()):
        n = len(split["id"])
        split["regression_labels"] = np.roll(grid, 3 * i)[np.arange(n) % grid.size]
    write_mmsa(path, data)
    return path


def _sims_class(score: float) -> int:
    return next(k for k, (lo, hi) in enumerate(SIMS_INTERVALS) if lo < np.float32(score) <= np.float32(hi))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return 0.0 if a.std() == 0 or b.std() == 0 else float(np.corrcoef(a, b)[0, 1])


def _rows(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    return [r["id"] for r in rows], np.array([float(r["label"]) for r in rows]), np.array([float(r["pred"]) for r in rows])


def _check_scores(metrics: dict, predictions: Path, setting: str, scores: dict[str, float]) -> None:
    """``metrics`` (one metrics.json) against a direct computation from ``predictions``."""
    ids, y, p = _rows(predictions)
    assert metrics["n"] == len(ids)
    if setting == "sentiment5":
        t, q = y.astype(int), p.astype(int)
        assert {"acc5", "f1_5", "mae", "corr", "accuracy", "weighted_f1", "per_class"} <= set(metrics)
        assert metrics["acc5"] == pytest.approx(accuracy_score(t, q)) == pytest.approx(metrics["accuracy"])
        assert metrics["f1_5"] == pytest.approx(f1_score(q, t, average="weighted", zero_division=0))  # TMT's order
        assert metrics["mae"] == pytest.approx(mean_absolute_error(t - 2, q - 2))
        assert metrics["corr"] == pytest.approx(_corr(t - 2.0, q - 2.0))
        assert [int(c) for c in t] == [TMT_SIMS_CLASSES[round(scores[i], 1)] for i in ids]
        return
    sims = SETTINGS[setting][2]
    assert {"mae", "corr", "acc2", "f1", "acc5", "f1_5", "acc7"} <= set(metrics)
    assert y == pytest.approx(np.array([scores[i] for i in ids]))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert metrics["corr"] == pytest.approx(_corr(y, p))
    if sims:
        ct, cp = np.array([_sims_class(v) for v in y]), np.array([_sims_class(v) for v in p])
        yc, pc = np.clip(y, -1, 1), np.clip(p, -1, 1)
        assert metrics["mae_clipped"] == pytest.approx(mean_absolute_error(yc, pc))
        assert metrics["corr_clipped"] == pytest.approx(_corr(yc, pc))
    else:
        ct, cp = np.round(np.clip(y, -2, 2)).astype(int), np.round(np.clip(p, -2, 2)).astype(int)
        assert "mae_clipped" not in metrics
    assert metrics["acc5"] == pytest.approx(accuracy_score(ct, cp))
    assert metrics["f1_5"] == pytest.approx(f1_score(cp, ct, average="weighted", zero_division=0))


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_paper_setting_trains_and_reports_the_papers_scores(setting, recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    label, loss, sims = SETTINGS[setting]
    root = _sims_grid_file(tmp_path / "SIMS") if sims else mmsa_file(tmp_path / "MOSI", sizes=(10, 8, 8))
    run = tmp_path / "run"
    sets = [f"data.params.label={label}", f"trainer.loss={loss}", "trainer.batch_size=8", "trainer.progress=false",
            "model.head_hidden_dim=8", *TINY[recipe]]
    argv = ["train", "--recipe", recipe, "--dataset", "mmsa", "--root", str(root), "--epochs", "2",
            "--run-dir", str(run), *(a for s in sets for a in ("--set", s))]
    assert main(argv) == 0
    assert "acc5" in capsys.readouterr().out.splitlines()[1]  # the printed table heads the 5-class scores
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["loss"] == loss
    assert config["model"]["fusion"]["name"] == recipe_delta(recipe)["model"]["fusion"]["name"]
    data = load_pickle(root)
    scores = {s: {i: float(v) for i, v in zip(data[k]["id"], data[k]["regression_labels"], strict=True)}
              for s, k in (("dev", "valid"), ("test", "test"))}
    metrics = json.loads((run / "metrics.json").read_text())
    _check_scores(metrics, run / "predictions.csv", setting, scores["dev"])
    if label == "sentiment5":  # a classification run for the experiment report, despite its "mae"
        assert read_run(run).metrics["acc5"] == metrics["acc5"]

    assert main(["evaluate", str(run), "--root", str(root), "--split", "test", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (folder,) = (run / "eval").iterdir()
    assert json.loads((folder / "metrics.json").read_text())["f1_5"] == scored["f1_5"]
    _check_scores(scored, folder / "predictions.csv", setting, scores["test"])
