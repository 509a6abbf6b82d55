"""A ``checkpoint.pt`` that is not one (a pickle with a payload, a torch zip with a payload, random
bytes, an empty file, foreign weights) is one line naming the file, exit 1, in every command that
loads a run, and nothing in it is ever run."""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from scenesense import api
from scenesense.cli import main
from scenesense.config import build_config
from scenesense.training.checkpoint import CheckpointError, load_checkpoint, load_weights
from tests.support.runs import write_audio_store


class Payload:
    """Unpickled unsafely, it runs ``os.system("touch MARKER")``: harmless, and visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tamper")
    store = write_audio_store(root / "store")
    cfg = build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(store)},
                        "model": {"out_dim": 8, "head_hidden_dim": 8},
                        "trainer": {"epochs": 1, "batch_size": 8, "progress": False}})
    api.train(cfg, root / "run")
    return root / "run", store


def _plain_pickle(path: Path, marker: Path, protocol: int) -> None:
    path.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=protocol))


TAMPERINGS: dict[str, Callable[[Path, Path], None]] = {
    "pickle-protocol-2": lambda path, marker: _plain_pickle(path, marker, 2),
    "pickle-default-protocol": lambda path, marker: _plain_pickle(path, marker, pickle.DEFAULT_PROTOCOL),
    "torch-zip-with-payload": lambda path, marker: torch.save({"model": Payload(marker)}, path),
    "random-bytes": lambda path, marker: path.write_bytes(np.random.default_rng(7).bytes(4096)),
    "empty": lambda path, marker: path.write_bytes(b""),
    "cut-short": lambda path, marker: path.write_bytes(path.read_bytes()[:200]),
}


def test_the_payload_is_live_when_unpickled_unsafely(tmp_path):
    """The payload used below really runs under a plain ``pickle.loads``, so its absence means something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker), protocol=2))  # noqa: S301 - the point of the test
    assert marker.exists()


def _command(name: str, run_dir: Path, store: Path) -> list[str]:
    if name == "evaluate":
        return ["evaluate", str(run_dir), "--store", str(store), "--split", "dev"]
    if name == "predict":
        return ["predict", str(run_dir), "--text", "hello there"]
    return ["robustness", str(run_dir), "--snr", "10", "--drop", "0.5"]


@pytest.mark.parametrize("command", ["evaluate", "predict", "robustness"])
@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_tampered_checkpoint_is_one_line_naming_the_file(finished_run, tmp_path, capsys, command, tampering):
    run_src, store = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(run_src, run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    marker = tmp_path / "payload-ran"
    TAMPERINGS[tampering](checkpoint, marker)

    assert main(_command(command, run_dir, store)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("scenesense: error:")]
    assert len(errors) == 1, err
    assert f"{checkpoint}: not a scenesense checkpoint (" in errors[0]
    assert not marker.exists()
    assert not (run_dir / "eval").exists() and not (run_dir / "robustness.json").exists()


def test_weights_of_another_model_are_one_line(finished_run, tmp_path, capsys):
    run_src, store = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(run_src, run_dir)
    torch.save({"model": {"encoder.weight": torch.zeros(2, 2)}}, run_dir / "checkpoint.pt")
    assert main(_command("evaluate", run_dir, store)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line, = (x for x in err.splitlines() if x.startswith("scenesense: error:"))
    assert f"{run_dir / 'checkpoint.pt'}: not the weights of this run's model" in line


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_load_checkpoint_raises_checkpoint_error(tmp_path, tampering):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.ones(2)}}, path)
    TAMPERINGS[tampering](path, tmp_path / "ran")
    with pytest.raises(CheckpointError, match="not a scenesense checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "ran").exists()


def test_a_torch_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save([torch.ones(2)], path)
    with pytest.raises(CheckpointError, match=r"holds a list, not a mapping of weights"):
        load_checkpoint(path)


def test_load_weights_needs_model_weights(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"meta": {}}, path)
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: not a scenesense checkpoint \(no 'model' weights"):
        load_weights(torch.nn.Linear(2, 2), path)
