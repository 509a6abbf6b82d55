"""The CLI in-process: every subcommand, JSON output, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenesense.cli import main
from tests.support.runs import TINY_MODEL_ARGS

TINY_MODEL = TINY_MODEL_ARGS


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("scenesense: error:")]
    assert len(err) == 1, err
    return err[0]


def test_list_shows_every_registry(capsys):
    assert main(["list", "--json"]) == 0
    listing = _json(capsys)
    assert {"concat", "hadamard", "cross_attention", "residual_cross_attention"} <= set(listing["fusions"])
    assert {"synthetic", "meld", "store"} <= set(listing["datasets"])
    assert {"transformer", "linear"} <= set(listing["encoders"])
    assert listing["contexts"] == {"transformer": "A windowed transformer over a dialogue's utterances, "
                                                  "optionally speaker-aware."}
    assert {"focal", "logit_adjusted"} <= set(listing["losses"])
    assert set(listing["recipes"]) >= {"concat", "hadamard", "cross_attention", "residual",
                                       "residual_cross_attention"}


def test_dry_run_prints_the_resolved_config(capsys):
    assert main(["train", "--recipe", "residual", "--dry-run", "--set", "trainer.lr=0.003"]) == 0
    out = capsys.readouterr().out
    assert "use_residual: true" in out and "lr: 0.003" in out and "name: residual" in out


@pytest.mark.parametrize("args", [["--set", "trainer.lrr=1"], ["--set", "trainer.epochs=zero"],
                                  ["--set", "modalities=[smell]"]])
def test_config_errors_exit_2(capsys, args):
    assert main(["train", "--dry-run", *args]) == 2
    assert _error_line(capsys)


def test_seeds_train_one_run_each_and_report_mean_and_std(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    argv = ["train", "--recipe", "concat", "--epochs", "1", "--output-dir", str(tmp_path / "runs"), "--json",
            "--seeds", "3", "4", "--set", "data.params={n_train: 40, n_dev: 16, n_test: 16}", *TINY_MODEL]
    assert main(argv) == 0
    out = _json(capsys)
    assert [r["seed"] for r in out["runs"]] == [3, 4]
    assert len({r["run"] for r in out["runs"]}) == 2
    for r in out["runs"]:
        saved = json.loads((Path(r["run"]) / "metrics.json").read_text())
        assert saved["seed"] == r["seed"]
    f1 = [r["weighted_f1"] for r in out["runs"]]
    assert out["mean"]["weighted_f1"] == pytest.approx(np.mean(f1))
    assert out["std"]["weighted_f1"] == pytest.approx(np.std(f1, ddof=1))
    assert main([*argv, "--run-dir", str(tmp_path / "one")]) == 2
    assert "--run-dir takes one seed" in _error_line(capsys)


def test_train_evaluate_resume_on_synthetic(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    params = ["--set", "data.params={n_train: 60, n_dev: 24, n_test: 24}"]
    argv = ["train", "--recipe", "residual_cross_attention", "--epochs", "2", "--run-dir", str(run_dir),
            "--json", *params, *TINY_MODEL, "--set", "model.fusion.params.num_heads=2"]
    assert main(argv) == 0
    result = _json(capsys)
    metrics = result["metrics"]
    assert metrics["n"] == 24 and len(metrics["history"]) == 2
    assert set(metrics["per_class"]) == {"text_a", "text_b", "audio_a", "audio_b", "sync", "async"}
    for name in ("config.yaml", "metrics.json", "predictions.csv", "checkpoint.pt", "loss_curves.png",
                 "confusion_matrix.png", "model_spec.json", "train.log"):
        assert (run_dir / name).is_file(), name
    # a finished run is not trained again, and gives the same numbers
    assert main(argv) == 0
    assert _json(capsys)["metrics"]["accuracy"] == metrics["accuracy"]
    store = next((tmp_path / "cache" / "synthetic").iterdir())
    assert main(["evaluate", str(run_dir), "--store", str(store), "--split", "test", "--json"]) == 0
    scored = _json(capsys)
    assert scored["n"] == 24 and 0.0 <= scored["weighted_f1"] <= 1.0
    assert Path(scored["predictions"]).is_file()
    # a changed config in the same run dir is refused
    assert main([*argv, "--set", "trainer.lr=0.5"]) == 1
    assert "different config" in _error_line(capsys)


def test_missing_modality_is_a_one_line_error(tiny_store, tmp_path, capsys):
    argv = ["train", "--dataset", "store", "--root", str(tiny_store), "--modalities", "text", "vision",
            "--run-dir", str(tmp_path / "r"), *TINY_MODEL]
    assert main(argv) == 1
    assert "vision" in _error_line(capsys)


def test_incomplete_store_is_a_one_line_error(tiny_store, tmp_path, capsys):
    with h5py.File(tiny_store / "dev.h5", "r+") as f:
        f.attrs["complete"] = False
    argv = ["train", "--dataset", "store", "--root", str(tiny_store), "--modalities", "text",
            "--run-dir", str(tmp_path / "r"), *TINY_MODEL]
    assert main(argv) == 1
    assert "incomplete" in _error_line(capsys)


def test_nan_features_are_a_one_line_error(tiny_store, tmp_path, capsys):
    with h5py.File(tiny_store / "train.h5", "r+") as f:
        data = f["features/text/data"]
        data[2, 0, 0] = np.nan
    argv = ["train", "--dataset", "store", "--root", str(tiny_store), "--modalities", "text",
            "--run-dir", str(tmp_path / "r"), "--epochs", "1", *TINY_MODEL]
    assert main(argv) == 1
    line = _error_line(capsys)
    assert "train2" in line or "finite" in line.lower() or "nan" in line.lower()


@pytest.fixture
def meld_run(tmp_path_factory, write_meld_csv, meld_rows):
    """A 1-epoch text model trained through the CLI on tiny MELD CSVs (real MiniLM features)."""
    root = write_meld_csv("meld/train_sent_emo.csv").parent
    write_meld_csv("meld/dev_sent_emo.csv")
    cache = tmp_path_factory.mktemp("cache")
    return root, cache


def test_meld_text_train_and_evaluate_any_csv(meld_run, tmp_path, write_meld_csv, meld_rows, capsys,
                                              monkeypatch):
    root, cache = meld_run
    monkeypatch.setenv("SCENESENSE_CACHE", str(cache))
    run_dir = tmp_path / "meld_run"
    assert main(["train", "--dataset", "meld", "--root", str(root), "--modalities", "text", "--epochs", "1",
                 "--run-dir", str(run_dir), "--json", *TINY_MODEL]) == 0
    assert _json(capsys)["metrics"]["n"] == len(meld_rows)
    held_out = write_meld_csv("elsewhere/some_test_split.csv", meld_rows[:5])
    assert main(["evaluate", str(run_dir), "--csv", str(held_out), "--json"]) == 0
    scored = _json(capsys)
    assert scored["n"] == 5
    assert set(scored["per_class"]) == {"neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"}
    # bad CSVs: a missing column, an unknown label -> one line, exit 1
    header = ["Sr No.", "Utterance", "Speaker", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
              "Episode", "StartTime", "EndTime"]
    no_emotion = write_meld_csv("bad/missing.csv", [r[:3] + r[4:] for r in meld_rows], header=header)
    assert main(["evaluate", str(run_dir), "--csv", str(no_emotion)]) == 1
    assert "Emotion" in _error_line(capsys)
    bad_rows = [list(r) for r in meld_rows]
    bad_rows[1][3] = "boredom"
    unknown = write_meld_csv("bad/unknown.csv", bad_rows)
    assert main(["evaluate", str(run_dir), "--csv", str(unknown)]) == 1
    assert "boredom" in _error_line(capsys)


def test_data_convert_then_inspect(tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["data", "convert", "synthetic", "--out", str(out), "--json",
            "--set", "n_train=20", "--set", "n_dev=8", "--set", "n_test=8"]
    assert main(argv) == 0
    info = _json(capsys)
    assert {s: v["n"] for s, v in info["splits"].items()} == {"dev": 8, "test": 8, "train": 20}
    assert main(["data", "inspect", str(out)]) == 0
    assert "train: 20 samples" in capsys.readouterr().out
    assert main(["data", "convert", "synthetic", "--out", str(out), "--set", "n_trian=3"]) == 2
    assert "unknown key(s) ['n_trian']" in _error_line(capsys)
    assert main(["data", "convert", "nosuch", "--out", str(out)]) == 2
    assert "unknown dataset 'nosuch'" in _error_line(capsys)
    assert main(["data", "inspect", str(tmp_path / "absent")]) == 1
    assert "no such store folder" in _error_line(capsys)


def test_data_validate_meld_fails_on_wrong_counts(tmp_path, capsys, write_meld_csv):
    write_meld_csv("meld/train_sent_emo.csv")
    write_meld_csv("meld/dev_sent_emo.csv")
    assert main(["data", "validate", "meld", "--root", str(tmp_path / "meld"), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["errors"] == 6 and report["counts"]["train"]["rows"] == 8
    assert "6 of 8 checks failed for meld" in captured.err
    assert main(["data", "validate", "synthetic"]) == 2
    assert "has no files to validate" in _error_line(capsys)


def test_data_validate_real_meld(meld_data_dir, capsys):
    assert main(["data", "validate", "meld", "--root", str(meld_data_dir)]) == 0
    assert "8/8 checks passed" in capsys.readouterr().out
