"""ONNX Runtime and TorchScript give PyTorch's probabilities (within 1e-4) for exported runs, on
batches of other sizes and sequence lengths than the export example, with padding and missing
modalities; ``model.json`` describes the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from scenesense.data.collate import collate
from scenesense.export import export_run
from scenesense.export.archive import file_sha256
from scenesense.export.torchscript import run_torchscript
from scenesense.runs import load_run, open_scored_split, split_file

TOLERANCE = 1e-4


def _batches(run_dir: Path, split: str, sizes: tuple[int, ...]) -> list[dict]:
    """Consecutive batches of ``sizes`` rows of the run's own store split; in the second batch
    every modality is also missing from one more row (the first modality from all but one row)."""
    loaded = load_run(run_dir)
    data = open_scored_split(loaded.config, loaded.spec, split_file(Path(loaded.spec.store), split))
    batches, start = [], 0
    for n in sizes:
        batch = collate([data[i % len(data)] for i in range(start, start + n)])
        start += n
        batches.append(batch)
    last = batches[-1]
    for i, m in enumerate(sorted(last["present"])):
        last["present"][m][i % len(last["present"][m])] = False
    first = min(last["present"])
    last["present"][first][1:] = False
    return batches


def _torch_probabilities(run_dir: Path, batch: dict) -> np.ndarray:
    model = load_run(run_dir).model
    with torch.no_grad():
        logits = model(batch["inputs"], batch["masks"], batch["present"]).logits
    return torch.softmax(logits, dim=-1).numpy()


def _feeds(sidecar: dict, batch: dict) -> dict[str, np.ndarray]:
    """The graph's inputs for ``batch``, built from ``model.json`` alone."""
    feeds = {}
    for tensor in sidecar["inputs"]:
        m, role = tensor["modality"], tensor["role"]
        source = {"features": batch["inputs"], "mask": batch["masks"], "present": batch["present"]}[role]
        feeds[tensor["name"]] = source[m].numpy().astype(tensor["dtype"])
    return feeds


def _check_sidecar(export_dir: Path, run_dir: Path, fmt: str) -> dict:
    sidecar = json.loads((export_dir / "model.json").read_text())
    spec = load_run(run_dir).spec
    assert sidecar["format"] == fmt and sidecar["file"] == {"onnx": "model.onnx", "torchscript": "model.ts"}[fmt]
    assert sidecar["sha256"] == file_sha256(export_dir / sidecar["file"])
    assert sidecar["label_names"] == list(spec.label_names) and sidecar["modalities"] == sorted(spec.modalities)
    assert sidecar["check"]["max_difference"] <= TOLERANCE
    for m in spec.modalities:
        assert sidecar["features"][m]["provenance"] == spec.features[m].provenance
        assert sidecar["features"][m]["dim"] == spec.features[m].dim
    by_name = {t["name"]: t for t in sidecar["inputs"]}
    for m, kind in spec.feature_kinds.items():
        dim = spec.features[m].dim
        if kind == "sequence":
            assert by_name[m]["shape"] == ["batch", f"{m}_steps", dim]
            assert by_name[f"{m}_mask"] == {"name": f"{m}_mask", "dtype": "bool", "shape": ["batch", f"{m}_steps"],
                                            "modality": m, "role": "mask"}
        else:
            assert by_name[m]["shape"] == ["batch", dim] and f"{m}_mask" not in by_name
        assert by_name[f"{m}_present"]["shape"] == ["batch"]
    assert [t["name"] for t in sidecar["outputs"]] == ["logits", "probabilities"]
    return sidecar


@pytest.fixture(scope="module")
def synthetic_onnx(synthetic_export_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic_onnx")
    export_run(synthetic_export_run, out, "onnx")
    return out


def test_onnx_parity_on_a_synthetic_run(synthetic_export_run, synthetic_onnx):
    sidecar = _check_sidecar(synthetic_onnx, synthetic_export_run, "onnx")
    assert sidecar["standardized_in_graph"] is True and sidecar["opset"] >= 17
    session = ort.InferenceSession(str(synthetic_onnx / "model.onnx"), providers=["CPUExecutionProvider"])
    batches = _batches(synthetic_export_run, "test", (5, 11))  # the export example has 3 rows
    lengths = {tuple(b["inputs"]["text"].shape[:2]) for b in batches}
    assert len(lengths) == 2  # other batch sizes and sequence lengths
    assert not all(b["present"]["audio"].all() for b in batches)
    for batch in batches:
        assert not batch["masks"]["text"].all()  # padding
        want = _torch_probabilities(synthetic_export_run, batch)
        logits, got = session.run(["logits", "probabilities"], _feeds(sidecar, batch))
        assert logits.shape == got.shape
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_torchscript_parity_on_a_synthetic_run(synthetic_export_run, tmp_path):
    result = export_run(synthetic_export_run, tmp_path, "torchscript")
    assert result.files == (tmp_path / "model.ts", tmp_path / "model.json")
    sidecar = _check_sidecar(tmp_path, synthetic_export_run, "torchscript")
    assert "opset" not in sidecar
    for batch in _batches(synthetic_export_run, "test", (7, 2)):
        feeds = _feeds(sidecar, batch)
        _, got = run_torchscript(tmp_path / "model.ts", [torch.from_numpy(feeds[t["name"]]) for t in sidecar["inputs"]])
        np.testing.assert_allclose(got.numpy(), _torch_probabilities(synthetic_export_run, batch), atol=TOLERANCE,
                                   rtol=0)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_parity_on_a_text_run(text_export_run, tmp_path, fmt):
    export_run(text_export_run, tmp_path, fmt)
    sidecar = _check_sidecar(tmp_path, text_export_run, fmt)
    assert sidecar["standardized_in_graph"] is False and sidecar["features"]["text"]["kind"] == "sequence"
    assert sidecar["features"]["text"]["provenance"]["extractor"] == "word_vectors"
    for batch in _batches(text_export_run, "dev", (2, 6)):
        feeds = _feeds(sidecar, batch)
        if fmt == "onnx":
            session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
            (got,) = session.run(["probabilities"], feeds)
        else:
            got = run_torchscript(tmp_path / "model.ts",
                                  [torch.from_numpy(feeds[t["name"]]) for t in sidecar["inputs"]])[1].numpy()
        np.testing.assert_allclose(got, _torch_probabilities(text_export_run, batch), atol=TOLERANCE, rtol=0)
