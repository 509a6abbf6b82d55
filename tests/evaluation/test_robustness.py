"""Robustness suite: exact perturbations, the model's missing-modality path, schema, determinism, CLI."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from scenesense.data.collate import collate
from scenesense.evaluation.robustness import (
    Condition,
    PerturbedDataset,
    add_gaussian_noise,
    build_conditions,
    drop_steps,
    evaluate_robustness,
    perturb_sample,
    signal_power,
)

SCORE_KEYS = {"accuracy", "weighted_f1", "macro_f1"}


@pytest.fixture(scope="module")
def run_dir(synthetic_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the session's synthetic run (the tests write reports into it)."""
    return Path(shutil.copytree(synthetic_run, tmp_path_factory.mktemp("robustness") / "run"))


@pytest.fixture(scope="module")
def result(run_dir):
    return evaluate_robustness(run_dir, batch_size=32)


@pytest.fixture(scope="module")
def dev_set(run_dir):
    from scenesense.evaluation.robustness import _load_split

    cfg, spec, _ = _loaded(run_dir)
    return _load_split(cfg, spec, None, None)[0]


def _loaded(run_dir):
    from scenesense.runs import load_run

    return load_run(run_dir)


def _logits(model, batch):
    with torch.no_grad():
        return model(batch["inputs"], batch["masks"], batch["present"]).logits


# --- perturbation functions -------------------------------------------------------------------


def test_signal_power_by_hand():
    assert signal_power(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)) == 7.5
    assert signal_power(np.array([3.0, -4.0])) == 12.5


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, -5.0])
def test_noise_has_the_requested_power(snr):
    x = np.tile(np.linspace(-2.0, 3.0, 50, dtype=np.float32), (400, 1))  # [T=400, D=50], power 2.3367...
    before = x.copy()
    out = add_gaussian_noise(x, snr, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(x, before)  # the input is not modified
    noise = out.astype(np.float64) - x
    expected = signal_power(x) / 10 ** (snr / 10)
    assert abs(np.mean(noise**2) / expected - 1) < 0.02  # 20000 draws: relative s.e. of the power ~1%
    assert abs(noise.mean()) < 0.02 * np.sqrt(expected)
    assert add_gaussian_noise(np.zeros(4, np.float32), 0.0, np.random.default_rng(0)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="finite"):
        add_gaussian_noise(x, float("inf"), np.random.default_rng(0))


@pytest.mark.parametrize(("steps", "fraction", "kept"),
                         [(10, 0.5, 5), (10, 0.75, 3), (10, 0.25, 8), (100, 0.29, 71), (10, 1.0, 1),
                          (1, 0.75, 1), (7, 0.0, 7)])
def test_drop_steps_keeps_the_right_count_in_order(steps, fraction, kept):
    x = np.arange(steps, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # row t == t
    out = drop_steps(x, fraction, np.random.default_rng(3))
    assert out.shape == (kept, 3)
    assert np.all(np.diff(out[:, 0]) > 0)  # order kept, no repeats
    assert set(out[:, 0].tolist()) <= set(range(steps))
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        drop_steps(x[:, 0], fraction, np.random.default_rng(0))
    with pytest.raises(ValueError, match="fraction"):
        drop_steps(x, 1.5, np.random.default_rng(0))


def test_dropped_frames_update_the_padding_masks():
    samples = [{"id": str(i), "inputs": {"text": np.arange(n * 2, dtype=np.float32).reshape(n, 2)},
                "present": {"text": True}, "label": 0} for i, n in enumerate((8, 4, 6))]
    cond = Condition("drop_frames", "text", 0.5)
    out = [perturb_sample(s, cond, np.random.default_rng(i)) for i, s in enumerate(samples)]
    assert [s["inputs"]["text"].shape[0] for s in samples] == [8, 4, 6]  # originals untouched
    batch = collate(out)
    assert batch["masks"]["text"].sum(dim=1).tolist() == [4, 2, 3]
    assert batch["inputs"]["text"].shape == (3, 4, 2)
    for i, s in enumerate(out):
        real = batch["inputs"]["text"][i][batch["masks"]["text"][i]]
        assert torch.equal(real, torch.from_numpy(s["inputs"]["text"]))
        assert np.all(np.diff(s["inputs"]["text"][:, 0]) > 0)


def test_perturb_sample_kinds_and_already_missing_modalities():
    sample = {"id": "a", "inputs": {"audio": np.ones(3, np.float32), "text": np.ones((2, 3), np.float32)},
              "present": {"audio": True, "text": False}, "label": 1}
    rng = np.random.default_rng(0)
    removed = perturb_sample(sample, Condition("remove", "audio"), rng)
    assert removed["present"] == {"audio": False, "text": False} and sample["present"]["audio"] is True
    zeroed = perturb_sample(sample, Condition("zero", "audio"), rng)
    assert zeroed["inputs"]["audio"].tolist() == [0.0] * 3 and zeroed["present"]["audio"] is True
    assert perturb_sample(sample, Condition("noise", "text", 0.0), rng) is sample  # text already missing
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_sample(sample, Condition("blur", "audio"), rng)


def test_condition_labels_and_the_grid():
    assert Condition("noise", "audio", 10.0).label == "noise audio 10 dB"
    assert Condition("drop_frames", "text", 0.5).label == "drop 50% text frames"
    assert Condition("remove", "vision").label == "remove vision"
    grid = build_conditions({"text": "sequence", "audio": "vector"}, (20, 0), (0.5,))
    assert [c.label for c in grid] == ["remove audio", "zero audio", "noise audio 20 dB", "noise audio 0 dB",
                                       "remove text", "zero text", "noise text 20 dB", "noise text 0 dB",
                                       "drop 50% text frames"]
    with pytest.raises(ValueError, match="drop fractions"):
        build_conditions({"text": "sequence"}, (10,), (1.25,))


# --- on a trained run --------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["audio", "text"])  # a vector and a sequence modality
def test_remove_really_removes_and_differs_from_zero(run_dir, dev_set, modality):
    _, _, model = _loaded(run_dir)
    samples = [dev_set[i] for i in range(12)]
    removed = collate([perturb_sample(s, Condition("remove", modality), None) for s in samples])
    assert not removed["present"][modality].any()
    reference = _logits(model, removed)
    garbage = {**removed, "inputs": dict(removed["inputs"]), "masks": dict(removed["masks"])}
    garbage["inputs"][modality] = 100 * torch.randn_like(removed["inputs"][modality]) + 7
    if modality in garbage["masks"]:
        garbage["masks"][modality] = torch.ones_like(removed["masks"][modality])
    torch.testing.assert_close(_logits(model, garbage), reference, rtol=0, atol=1e-6)
    zeroed = collate([perturb_sample(s, Condition("zero", modality), None) for s in samples])
    assert zeroed["present"][modality].all()
    assert not torch.allclose(_logits(model, zeroed), reference, atol=1e-4)
    assert not torch.allclose(_logits(model, collate(samples)), reference, atol=1e-4)


def test_schema_and_file(run_dir, result):
    assert set(result) == {"metric", "split", "n", "seed", "clean", "conditions"}
    assert (result["metric"], result["split"], result["n"], result["seed"]) == ("weighted_f1", "dev", 30, 0)
    assert set(result["clean"]) == SCORE_KEYS
    # audio is a vector (remove, zero, 4 SNRs); text and vision are sequences (+ 3 drop fractions)
    assert len(result["conditions"]) == 6 + 9 + 9
    for c in result["conditions"]:
        assert set(c) == {"kind", "modality", "severity", "label"} | SCORE_KEYS
        assert all(0.0 <= c[k] <= 1.0 for k in SCORE_KEYS)
    labels = [c["label"] for c in result["conditions"]]
    assert {"noise audio 10 dB", "drop 50% text frames", "remove vision", "zero text"} <= set(labels)
    assert not any(c["kind"] == "drop_frames" and c["modality"] == "audio" for c in result["conditions"])
    first = result["conditions"][0]
    assert (first["kind"], first["modality"], first["severity"]) == ("remove", "audio", None)
    assert json.loads((run_dir / "robustness.json").read_text()) == result


def test_clean_score_equals_api_evaluate(run_dir, result, tmp_path):
    from scenesense import api

    _, spec, _ = _loaded(run_dir)
    metrics = api.evaluate(run_dir, store=spec.store, split="dev", output_dir=tmp_path).metrics
    for key in SCORE_KEYS:
        assert result["clean"][key] == pytest.approx(metrics[key], abs=1e-12)
    metrics_json = json.loads((run_dir / "metrics.json").read_text())
    assert result["clean"]["weighted_f1"] == pytest.approx(metrics_json["weighted_f1"], abs=1e-12)


def test_deterministic_under_a_seed(run_dir, result, dev_set, tmp_path):
    # another batch size and a smaller grid: each condition is seeded by its own label, so the same scores
    again = evaluate_robustness(run_dir, snr_db=(5,), drop_fractions=(0.75,), batch_size=7,
                                output=tmp_path / "again.json")
    assert again["clean"] == result["clean"]
    by_label = {c["label"]: c for c in result["conditions"]}
    assert len(again["conditions"]) == 3 + 4 + 4
    assert all(c == by_label[c["label"]] for c in again["conditions"])
    assert not (tmp_path / "robustness.json").exists()
    cond = Condition("noise", "text", 5.0)
    one = PerturbedDataset(dev_set, cond, seed=0)
    batched = one.__getitems__([4, 2, 9])
    single = one[2]
    np.testing.assert_array_equal(batched[1]["inputs"]["text"], single["inputs"]["text"])
    other = PerturbedDataset(dev_set, cond, seed=1)[2]
    assert not np.array_equal(other["inputs"]["text"], single["inputs"]["text"])
    with pytest.raises(ValueError, match="seed"):
        PerturbedDataset(dev_set, cond, seed=-1)
    clean = PerturbedDataset(dev_set, None, seed=0)[2]
    np.testing.assert_array_equal(clean["inputs"]["text"], dev_set[2]["inputs"]["text"])


def test_regression_runs_are_refused(run_dir, monkeypatch):
    from dataclasses import replace

    from scenesense.evaluation import robustness

    real = robustness.load_run

    def as_regression(path):
        cfg, spec, model = real(path)
        return cfg, replace(spec, task="regression"), model

    monkeypatch.setattr(robustness, "load_run", as_regression)
    with pytest.raises(ValueError, match="classification runs only"):
        evaluate_robustness(run_dir)


def test_cli_table_and_json(run_dir, tmp_path, capsys):
    from scenesense.cli import robustness as cli

    run_dir = shutil.copytree(run_dir, tmp_path / "run")  # keep the shared run's robustness.json
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["robustness", str(run_dir), "--snr", "10", "--drop", "0.5"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    saved = json.loads((run_dir / "robustness.json").read_text())
    assert [c["label"] for c in saved["conditions"]] == [
        "remove audio", "zero audio", "noise audio 10 dB", "remove text", "zero text", "noise text 10 dB",
        "drop 50% text frames", "remove vision", "zero vision", "noise vision 10 dB",
        "drop 50% vision frames"]
    lines = out.splitlines()
    assert lines[0] == "weighted_f1 (dev split, seed 0)"
    assert lines[1].split() == ["condition", "run"]
    assert lines[3].split() == ["clean", f"{saved['clean']['weighted_f1']:.4f}"]
    row = next(line for line in lines if line.startswith("drop 50% text frames"))
    assert row.split()[-1] == f"{saved['conditions'][6]['weighted_f1']:.4f}"
    args = parser.parse_args(["robustness", str(run_dir), "--snr", "10", "--drop", "0.5", "--json"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out) == {str(run_dir): saved}
