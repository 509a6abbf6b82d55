"""``api.evaluate`` with post-hoc logit adjustment, on a small imbalanced store (and through the CLI)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scenesense import api
from scenesense.cli import main
from scenesense.config import build_config
from scenesense.recipes import recipe_delta
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter

CLASSES = ("common", "middle", "rare")
TRAIN_COUNTS = (42, 14, 8)  # priors 0.65625, 0.21875, 0.125


def _store(root):
    rng = np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 3)}
    for split, counts in (("train", TRAIN_COUNTS), ("dev", (10, 10, 10))):
        y = np.repeat(np.arange(3), counts)
        x = (rng.normal(size=(len(y), 3)) + 0.8 * np.eye(3)[y]).astype(np.float32)  # overlapping classes
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(CLASSES), features=specs,
                         source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(len(y))], y.tolist(), {"audio": list(x)})
    return root


def _config(store, **trainer):
    return build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(store)},
                         "model": {"out_dim": 8, "head_hidden_dim": 8},
                         "trainer": {"epochs": 3, "batch_size": 16, "lr": 1e-2, "progress": False, **trainer}})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    store = _store(root / "store")
    api.train(_config(store), root / "run")
    return root / "run", store


def _probs(csv_path):
    frame = pd.read_csv(csv_path).set_index("id").sort_index()
    return frame[[f"prob_{c}" for c in CLASSES]].to_numpy()


def test_logit_adjusted_scores_are_the_shifted_softmax_of_the_plain_ones(run, tmp_path):
    run_dir, store = run
    plain = api.evaluate(run_dir, store=store, split="dev", output_dir=tmp_path / "plain")
    tau = 1.5
    adjusted = api.evaluate(run_dir, store=store, split="dev", logit_adjust=tau)
    priors = np.array(TRAIN_COUNTS) / sum(TRAIN_COUNTS)
    assert adjusted.metrics["logit_adjust"]["tau"] == tau
    np.testing.assert_allclose(adjusted.metrics["logit_adjust"]["class_priors"], priors, atol=1e-6)
    assert adjusted.predictions_csv == run_dir / "eval" / "dev-tau1.5" / "predictions.csv"
    scores = np.log(_probs(plain.predictions_csv)) - tau * np.log(priors)
    expected = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(_probs(adjusted.predictions_csv), expected / expected.sum(1, keepdims=True),
                               atol=1e-5)
    rare = CLASSES.index("rare")  # the adjustment moves decisions towards the rare class
    predicted_rare = [sum(row[rare] for row in m.metrics["confusion_matrix"]) for m in (plain, adjusted)]
    assert predicted_rare[1] > predicted_rare[0]
    saved = json.loads((run_dir / "eval" / "dev-tau1.5" / "metrics.json").read_text())
    assert saved["logit_adjust"]["tau"] == tau and saved["weighted_f1"] == adjusted.metrics["weighted_f1"]


def test_tau_zero_changes_nothing(run, tmp_path):
    run_dir, store = run
    plain = api.evaluate(run_dir, store=store, split="dev", output_dir=tmp_path / "plain")
    zero = api.evaluate(run_dir, store=store, split="dev", logit_adjust=0.0, output_dir=tmp_path / "zero")
    np.testing.assert_allclose(_probs(zero.predictions_csv), _probs(plain.predictions_csv), atol=1e-6)
    assert zero.metrics["confusion_matrix"] == plain.metrics["confusion_matrix"]


def test_refuses_a_run_trained_with_the_logit_adjusted_loss_and_a_negative_tau(run, tmp_path):
    run_dir, store = run
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        api.evaluate(run_dir, store=store, split="dev", logit_adjust=-1.0, output_dir=tmp_path / "neg")
    la_run = tmp_path / "la_run"
    api.train(_config(store, epochs=1, loss="logit_adjusted"), la_run)
    with pytest.raises(ValueError, match="count the priors twice"):
        api.evaluate(la_run, store=store, split="dev", logit_adjust=1.0)


def test_cli_flag(run, tmp_path, capsys):
    run_dir, store = run
    assert main(["evaluate", str(run_dir), "--store", str(store), "--split", "dev", "--logit-adjust", "0.5",
                 "--output-dir", str(tmp_path / "cli"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["logit_adjust"]["tau"] == 0.5
    assert out["predictions"] == str(tmp_path / "cli" / "predictions.csv")


def test_the_figures_of_a_run_say_what_data_split_and_seed_they_show(tmp_path, monkeypatch):
    from tests.support.figures import catch_saved_figures

    figures = catch_saved_figures(monkeypatch)
    config = {"name": "tiny", "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                                       "params": {"n_train": 24, "n_dev": 12, "n_test": 8}},
              "model": {"out_dim": 8, "head_hidden_dim": 8},
              "trainer": {"epochs": 1, "batch_size": 12, "progress": False, "seed": 7}}
    api.train(build_config(config), run_dir=tmp_path / "run")
    titles = [fig.texts[0].get_text() if fig.texts else fig.axes[0].get_title() for fig in figures]
    loss = next(t for t in titles if "loss" in t)
    assert loss == "tiny: training and dev loss (synthetic train/dev, seed 7)"
    assert any("tiny: dev split (synthetic train/dev, seed 7)" in t for t in titles), titles


@pytest.mark.parametrize(("recipe", "weighted"), [("tmt_amw", True), ("concat", False)])
def test_metrics_json_has_the_mean_modality_weights_of_a_weighting_fusion(tmp_path, recipe, weighted):
    config = {"name": "tiny", "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                                       "params": {"n_train": 24, "n_dev": 12, "n_test": 8}},
              "model": {"out_dim": 8, "head_hidden_dim": 8, "fusion": {"dim": 8, "head_dim": 4}
                        if recipe == "tmt_amw" else {}},
              "trainer": {"epochs": 1, "batch_size": 12, "progress": False}}
    api.train(build_config(recipe_delta(recipe), config), run_dir=tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    if not weighted:
        assert "modality_weights" not in metrics
        return
    weights = metrics["modality_weights"]
    assert sorted(weights) == ["audio", "text", "vision"]
    assert sum(weights.values()) == pytest.approx(1.0)  # AMW's weights sum to 1 over modalities
    assert metrics["loss_weights"] == {"task": 10.0, "aux": {"orthogonality": 0.01, "similarity": 1.0}}
