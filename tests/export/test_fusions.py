"""Every registered fusion exports to ONNX and TorchScript (tiny dims, all three modalities, dynamic
batch and lengths), and a model the exporter cannot capture fails with one short line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from scenesense.config import build_config
from scenesense.export.flat import FlatClassifier, example_inputs, input_specs
from scenesense.export.onnx import _check_dims, run_onnx
from scenesense.export.run_export import export_model
from scenesense.export.torchscript import run_torchscript
from scenesense.fusions import FUSIONS
from scenesense.models.builders import build_model

KINDS = {"audio": "vector", "text": "sequence", "vision": "sequence"}
DIMS = {"audio": 4, "text": 6, "vision": 3}


def _flat(fusion: str, task: str = "classification") -> FlatClassifier:
    cfg = build_config({"modalities": list(KINDS), "model": {
        "out_dim": 8, "head_hidden_dim": 8, "fusion": {"name": fusion},
        "sequence_encoder": {"name": "transformer", "params": {"num_layers": 1, "num_heads": 2, "d_model": 8,
                                                                "dim_feedforward": 16}}}})
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, DIMS, KINDS, 1 if task == "regression" else 3).eval()
    return FlatClassifier(model, input_specs(KINDS, DIMS), task).eval()


def _other_batch(flat: FlatClassifier) -> tuple[torch.Tensor, ...]:
    """6 rows, other lengths than the export example and its checks, padding and a missing modality."""
    return example_inputs(flat.specs, 6, {"text": 2, "vision": 8}, seed=7)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_exports_to_torchscript(fusion, tmp_path):
    flat = _flat(fusion)
    outputs, opset, difference = export_model(flat, tmp_path / "model.ts", "torchscript")
    assert [o.name for o in outputs] == ["logits", "probabilities"] and opset is None and difference <= 1e-4
    tensors = _other_batch(flat)
    with torch.no_grad():
        want = flat(*tensors)[1].numpy()
    np.testing.assert_allclose(run_torchscript(tmp_path / "model.ts", tensors)[1].numpy(), want, atol=1e-4, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["model.ts"]  # no temporary file left


# About 20-70 s per fusion on a CPU: the default run exports concat and cross_attention to ONNX
# (tests/export/test_parity.py); this covers every registered fusion.
@pytest.mark.slow
@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_exports_to_onnx(fusion, tmp_path):
    flat = _flat(fusion)
    outputs, opset, difference = export_model(flat, tmp_path / "model.onnx", "onnx")
    assert [o.name for o in outputs] == ["logits", "probabilities"] and opset is not None and difference <= 1e-4
    tensors = _other_batch(flat)
    with torch.no_grad():
        want = flat(*tensors)[1].numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "model.onnx", flat.specs, tensors)[1], want, atol=1e-4, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_regression_model_exports_its_values(tmp_path):
    flat = _flat("concat", "regression")
    outputs, _, _ = export_model(flat, tmp_path / "model.onnx", "onnx")
    assert [(o.name, o.shape) for o in outputs] == [("values", ("batch", 1))]
    tensors = example_inputs(flat.specs, 5, {"text": 4, "vision": 2}, seed=3)
    (got,) = run_onnx(tmp_path / "model.onnx", flat.specs, tensors)
    np.testing.assert_allclose(got, flat(*tensors)[0].detach().numpy(), atol=1e-4, rtol=1e-4)


class _Branchy(nn.Module):
    """Decides in Python on a tensor's value: the exporter cannot capture that."""

    def forward(self, inputs, masks, present):
        x = inputs["audio"]
        return SimpleNamespace(logits=x[:, :2] if x.sum() > 0 else -x[:, :2])


def test_a_model_the_exporter_cannot_capture_is_one_short_line(tmp_path):
    flat = FlatClassifier(_Branchy(), input_specs({"audio": "vector"}, {"audio": 4}), "classification")
    with pytest.raises(RuntimeError) as info:
        export_model(flat, tmp_path / "model.onnx", "onnx")
    message = str(info.value)
    assert message.startswith("ONNX export: this model cannot be exported (") and "\n" not in message
    assert len(message) < 400
    assert list(tmp_path.iterdir()) == []


def test_a_graph_with_fixed_sizes_is_refused():
    specs = input_specs({"text": "sequence"}, {"text": 4})
    inputs = [helper.make_tensor_value_info("text", TensorProto.FLOAT, [3, "text_steps", 4]),
              helper.make_tensor_value_info("text_mask", TensorProto.BOOL, ["batch", "text_steps"]),
              helper.make_tensor_value_info("text_present", TensorProto.BOOL, ["batch"])]
    graph = helper.make_graph([], "g", inputs, [])
    with pytest.raises(RuntimeError, match="fixed batch of input 'text' to 3"):
        _check_dims(helper.make_model(graph), specs)
    inputs[0] = helper.make_tensor_value_info("text", TensorProto.FLOAT, ["batch", "text_steps", 4])
    _check_dims(helper.make_model(helper.make_graph([], "g", inputs, [])), specs)
    assert onnx  # the export extra is installed for these tests
