"""Run directories through the CLI: configuration errors exit 2 before anything is written, a run
without a finished epoch never blocks its corrected re-run, a refused re-run lists what differs, and
one process at a time works in a run directory (a lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from scenesense.cli import main
from scenesense.config import build_config, dump_yaml
from scenesense.utils.io import LOCK_FILE
from tests.support.runs import write_audio_store

TINY = ["--set", "model.out_dim=8", "--set", "model.head_hidden_dim=8", "--set", "trainer.progress=false",
        "--set", "trainer.batch_size=8", "--epochs", "1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_audio_store(tmp_path_factory.mktemp("store") / "store")


def _train(store: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "store", "--root", str(store), "--modalities", "audio",
            "--run-dir", str(run_dir), *TINY, *extra]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("scenesense: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- configuration errors: exit 2, nothing written -------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "trainer.precision=bogus"], "trainer.precision"),
    (["--set", "trainer.devices=0"], "trainer.devices"),
    (["--set", "trainer.accelerator=quantum"], "trainer.accelerator"),
    (["--seed", "-1"], "trainer.seed"),
    (["--seed", str(2**32)], "trainer.seed"),
    (["--set", "trainer.loss_params={gamma: 2}"], "loss_params"),
])
def test_trainer_config_errors_exit_2_before_anything_is_written(store, tmp_path, capsys, args, message):
    run_dir = tmp_path / "run"
    assert main(_train(store, run_dir, *args)) == 2
    assert message in _error_line(capsys)
    assert not run_dir.exists()


def test_a_bad_seed_among_several_exits_2_before_the_first_run(store, tmp_path, capsys):
    argv = ["train", "--dataset", "store", "--root", str(store), "--modalities", "audio",
            "--output-dir", str(tmp_path / "runs"), *TINY, "--seeds", "1", "-1"]
    assert main(argv) == 2
    assert "trainer.seed" in _error_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("params", ["{n_train: 0}", "{noise: -1}", "{seed: -3}", "{min_len: 2}",
                                    "{missing_rate: 1.5}", "{dim: eight}"])
def test_invalid_synthetic_parameters_exit_2(tmp_path, capsys, monkeypatch, params):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic", "--run-dir", str(run_dir), *TINY, "--set", f"data.params={params}"]
    assert main(argv) == 2
    assert "synthetic data:" in _error_line(capsys)
    assert not run_dir.exists()


# --- a run without a finished epoch never blocks; a refusal lists the differences ------------


def test_a_run_that_failed_before_training_does_not_block_the_corrected_command(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(_train(store, run_dir, "--set", "modalities=[audio, vision]")) == 1  # no vision in the store
    assert "vision" in _error_line(capsys)
    assert not run_dir.exists()  # the failed run created it, and leaves nothing behind
    assert main(_train(store, run_dir)) == 0
    assert (run_dir / "checkpoint.pt").is_file()


def test_a_run_dir_without_finished_epochs_restarts_with_the_new_config(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    killed = build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(store)},
                           "trainer": {"lr": 0.5}})
    (run_dir / "config.yaml").write_text(dump_yaml(killed))  # as left by a run killed in its first epoch
    assert main(_train(store, run_dir, "--json")) == 0
    assert "lr: 0.0001" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_a_failed_run_in_an_existing_folder_leaves_the_folder(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    assert main(_train(store, run_dir, "--set", "trainer.loss=nonsense")) == 2  # found by the trainer
    assert "nonsense" in _error_line(capsys)
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert main(_train(store, run_dir)) == 0


def test_a_changed_config_for_a_run_with_epochs_is_refused_with_the_differences(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(_train(store, run_dir)) == 0
    capsys.readouterr()
    assert main(_train(store, run_dir, "--set", "trainer.lr=0.5", "--set", "model.out_dim=16")) == 1
    line = _error_line(capsys)
    assert f"{run_dir} holds a run trained with a different config" in line
    assert "model.out_dim: 8 -> 16" in line and "trainer.lr: 0.0001 -> 0.5" in line
    assert main(_train(store, run_dir, "--set", "trainer.progress=true")) == 0  # the progress bar may change


# --- one process at a time -------------------------------------------------------------------

_HOLDER = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_the_same_run_dir_is_refused_at_once(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir / LOCK_FILE)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(_train(store, run_dir)) == 1
        line = _error_line(capsys)
        assert line == (f"scenesense: error: {run_dir} is in use by another scenesense process "
                        f"(lock file {run_dir / LOCK_FILE}); wait for it to finish")
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # no config, no train.log
    finally:
        holder.kill()
        holder.wait()
    assert main(_train(store, run_dir)) == 0  # the lock died with its process


def test_the_other_ranks_of_a_multi_device_run_share_the_lock_of_rank_0(store, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with FileLock(run_dir / LOCK_FILE):  # held by rank 0, which launched this process as LOCAL_RANK=1
        monkeypatch.setenv("LOCAL_RANK", "1")
        assert main(_train(store, run_dir)) == 0


def test_evaluate_robustness_profile_and_experiment_into_a_folder_in_use_are_refused(store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(_train(store, run_dir)) == 0
    capsys.readouterr()
    with FileLock(run_dir / LOCK_FILE):
        assert main(["evaluate", str(run_dir), "--store", str(store), "--split", "dev"]) == 1
        assert "is in use by another scenesense process" in _error_line(capsys)
        assert main(["robustness", str(run_dir), "--snr", "10", "--drop", "0.5"]) == 1
        assert "is in use by another scenesense process" in _error_line(capsys)
        assert main(["profile", str(run_dir), "--repeats", "1"]) == 1
        assert "is in use by another scenesense process" in _error_line(capsys)
        assert main(["experiment", "--output-dir", str(run_dir), "--sets", "audio"]) == 1
        assert "is in use by another scenesense process" in _error_line(capsys)
        # outputs elsewhere do not write into the run: no lock needed
        assert main(["evaluate", str(run_dir), "--store", str(store), "--split", "dev",
                     "--output-dir", str(tmp_path / "elsewhere")]) == 0
    assert not any((run_dir / name).exists() for name in ("eval", "robustness.json", "efficiency.json"))
    assert main(["evaluate", str(run_dir), "--store", str(store), "--split", "dev"]) == 0
