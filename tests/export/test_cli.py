"""``scenesense export``: the ONNX example script predicts like ``scenesense predict``, a run archive
with its checksum predicts like the run folder, and what cannot be exported is one error line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from scenesense.cli import main
from scenesense.cli.export import FORMATS as CLI_FORMATS
from scenesense.export import FORMATS
from scenesense.extraction import EXTRACTORS
from scenesense.runs import read_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "onnx_predict.py"
SENTENCES = ["What a wonderful day!", "Leave me alone, go away.", "Oh no, not again.", "I love it"]


def _predict_json(capsys: pytest.CaptureFixture[str], run: Path, *texts: str) -> dict:
    assert main(["predict", str(run), *texts, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_formats_are_the_library_formats():
    assert CLI_FORMATS == FORMATS


def test_onnx_example_predicts_like_scenesense_predict(text_export_run, tmp_path, capsys):
    out = tmp_path / "exported"
    proc = subprocess.run([sys.executable, "-m", "scenesense", "export", str(text_export_run), "--out", str(out),
                           "--json"], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0 and proc.stderr == ""  # the exporter's warnings and log lines are kept quiet
    written = json.loads(proc.stdout)
    assert written["files"] == [str(out / "model.onnx"), str(out / "model.json")]
    assert written["max_difference"] <= 1e-4

    # each sentence's features, as the run's extractor makes them (word vector tokens [T, 4])
    params = read_spec(text_export_run / "model_spec.json").provenance_of("text")["params"]
    tokens = EXTRACTORS.create("word_vectors", **params).extract(SENTENCES).tokens
    items = []
    for i, features in enumerate(tokens):
        np.savez(tmp_path / f"item{i}.npz", text=features)
        items.append(str(tmp_path / f"item{i}.npz"))
    np.savez(tmp_path / "nothing.npz", other=np.zeros(3))  # no modality of the model: all missing
    assert len({len(t) for t in tokens}) > 1  # the batch is padded

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import runpy, sys\n"
            "class NoScenesense:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.partition('.')[0] in ('scenesense', 'torch'):\n"
            "            raise ImportError(f'the example imported {name}')\n"
            "sys.meta_path.insert(0, NoScenesense())\n"
            f"sys.argv = [{str(EXAMPLE)!r}, *sys.argv[1:]]\n"
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(out), *items, str(tmp_path / "nothing.npz")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == [*items, str(tmp_path / "nothing.npz")]

    predicted = _predict_json(capsys, text_export_run, *SENTENCES)["items"]
    for row, item in zip(rows, predicted, strict=False):
        ranked = sorted(item["probabilities"].values(), reverse=True)
        assert ranked[0] - ranked[1] > 1e-3  # a clear winner, so that the labels can be compared
        assert row[1] == item["label"]
        assert float(row[2]) == pytest.approx(max(item["probabilities"].values()), abs=1e-4)


def test_a_damaged_onnx_export_is_refused_by_the_example(text_export_run, tmp_path):
    out = tmp_path / "exported"
    assert main(["export", str(text_export_run), "--format", "onnx", "--out", str(out)]) == 0
    with (out / "model.onnx").open("ab") as f:
        f.write(b"\0")
    np.savez(tmp_path / "item.npz", text=np.ones((2, 4), dtype=np.float32))
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(out), str(tmp_path / "item.npz")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0 and "SHA-256 differs" in proc.stderr


def test_archive_holds_what_predict_needs_and_predicts_like_the_folder(text_export_run, tmp_path, capsys):
    archive = tmp_path / "shared" / "text-run.tar.gz"
    assert main(["export", str(text_export_run), "--format", "archive", "--out", str(archive)]) == 0
    printed = capsys.readouterr().out
    assert f"archive: {archive}" in printed and "sha256sum -c text-run.tar.gz.sha256" in printed
    checksum = archive.with_name("text-run.tar.gz.sha256")
    assert checksum.read_text().endswith("  text-run.tar.gz\n")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(f"run/{n}" for n in ("config.yaml", "model_spec.json", "checkpoint.pt", "metrics.json"))
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "-c", checksum.name], cwd=archive.parent, check=True, capture_output=True)

    from_folder = _predict_json(capsys, text_export_run, *SENTENCES)
    from_archive = _predict_json(capsys, archive, *SENTENCES)
    assert [i["probabilities"] for i in from_archive["items"]] == [i["probabilities"] for i in from_folder["items"]]

    # a changed archive, or one without its checksum file, is refused with one line
    data = bytearray(archive.read_bytes())
    data[-40] ^= 0xFF
    archive.write_bytes(bytes(data))
    assert main(["predict", str(archive), "hello"]) == 1
    assert "differs from" in _error_line(capsys)
    checksum.unlink()
    assert main(["predict", str(archive), "hello"]) == 1
    assert "no checksum file text-run.tar.gz.sha256" in _error_line(capsys)


def test_default_outputs_go_into_the_run_folder_and_beside_it(text_export_run, tmp_path, capsys):
    run = tmp_path / "my-run"
    shutil.copytree(text_export_run, run)
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    assert (run / "export" / "torchscript" / "model.ts").is_file()
    assert (run / "export" / "torchscript" / "model.json").is_file()
    assert main(["export", str(run), "--format", "archive"]) == 0
    assert (tmp_path / "my-run.tar.gz").is_file() and (tmp_path / "my-run.tar.gz.sha256").is_file()
    with tarfile.open(tmp_path / "my-run.tar.gz") as tar:
        assert not any("export" in n or "last.pt" in n or "train.log" in n for n in tar.getnames())


def test_a_run_with_dialogue_context_is_refused_in_one_line(text_export_run, tmp_path, capsys):
    run = tmp_path / "context-run"
    shutil.copytree(text_export_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["context"] = {"name": "transformer", "params": {}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for fmt in ("onnx", "torchscript"):
        assert main(["export", str(run), "--format", fmt]) == 1
        assert "a run with dialogue context (model.context) cannot be exported" in _error_line(capsys)
    assert not (run / "export").exists()


def test_errors_are_one_line(text_export_run, tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 1
    assert "not a finished run" in _error_line(capsys)
    assert main(["export", str(text_export_run), "--format", "torchscript", "--opset", "17"]) == 2
    assert "--opset applies to --format onnx only" in _error_line(capsys)
    assert main(["export", str(text_export_run), "--format", "archive", "--out", str(tmp_path / "a.zip")]) == 1
    assert "must end in .tar.gz" in _error_line(capsys)


def test_a_missing_export_extra_is_one_line_naming_the_install(text_export_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["export", str(text_export_run), "--out", str(tmp_path / "out")]) == 1
    line = _error_line(capsys)
    assert line.startswith("scenesense: error: ONNX export: onnxscript is not installed")
    assert line.endswith('pip install "scenesense[export]"')
    assert not (tmp_path / "out").exists()
