"""A real ``kill -9`` of ``scenesense train`` loses at most the epoch in progress.

Three child processes: one uninterrupted run, one killed with SIGKILL at several moments
(during its first epoch, and right after a later epoch's ``last.pt`` was written), then resumed
by the same command. The resumed run must end with exactly the uninterrupted run's weights and
per-epoch history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.support.runs import TINY_MODEL_ARGS

ARGS = ["train", "--recipe", "concat", "--epochs", "3", "--set", "data.params={n_train: 400, n_dev: 32, n_test: 8}",
        *TINY_MODEL_ARGS, "--set", "trainer.patience=10"]


def _command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "scenesense", *ARGS, "--run-dir", str(run_dir)]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SCENESENSE_CACHE": str(tmp_path / "cache")}


def _epoch_of(last: Path) -> int:
    try:
        return int(torch.load(last, map_location="cpu", weights_only=True)["state"]["epoch"])
    except Exception:  # noqa: BLE001 - absent or being replaced: not there yet
        return 0


def _kill_when(run_dir: Path, env: dict[str, str], epochs_done: int, extra_s: float) -> None:
    """Start a run, SIGKILL it ``extra_s`` seconds after ``epochs_done`` epochs are in ``last.pt``."""
    proc = subprocess.Popen(_command(run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while (
        _epoch_of(run_dir / "last.pt") < epochs_done and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(extra_s)
    if proc.poll() is not None:
        pytest.fail(f"the run finished before the kill (exit {proc.returncode}); make the epochs longer")
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _history(run_dir: Path) -> list[dict]:
    history = json.loads((run_dir / "metrics.json").read_text())["history"]
    return [{k: v for k, v in epoch.items() if "time" not in k and "seconds" not in k} for epoch in history]


def test_sigkilled_train_resumes_to_the_uninterrupted_weights(tmp_path):
    env = _env(tmp_path)
    full = tmp_path / "full"
    subprocess.run(
        _command(full), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300
    )

    killed = tmp_path / "killed"
    _kill_when(killed, env, epochs_done=0, extra_s=0.5)  # mid first epoch
    _kill_when(killed, env, epochs_done=1, extra_s=0.0)  # right after an epoch was saved
    done = subprocess.run(_command(killed), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    assert _history(killed) == _history(full)
    a = torch.load(full / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    b = torch.load(killed / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
