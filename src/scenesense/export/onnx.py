"""ONNX: write a `scenesense.export.flat.FlatClassifier` as an ``.onnx`` graph, run one with ONNX Runtime.

The graph is made by PyTorch's ``torch.export``-based exporter (``torch.onnx.export(...,
dynamo=True)``, which needs ``onnxscript``), with the batch size and every sequence length
dynamic; the TorchScript-based exporter bakes the sequence lengths into the attention
reshapes, so it is not used. The exporter falls back to fixed sizes where it cannot keep one
dynamic; `export_onnx` refuses such a graph rather than write one that fails on other sizes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scenesense.export.flat import FlatClassifier, TensorSpec, dynamic_dims
from scenesense.utils.extras import require_extra
from scenesense.utils.io import atomic_write_bytes

PURPOSE = "ONNX export"
_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir", "onnx")
"""The exporter's loggers, silenced while it runs (they log every graph rewrite at INFO)."""


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's warnings and log lines (missing torchvision ops, axis renames)."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _root_cause(err: BaseException, limit: int = 200) -> str:
    """``"<type>: <first line>"`` of the innermost exception ``err`` was raised from, at most ``limit`` characters."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_dims(proto: Any, specs: Sequence[TensorSpec]) -> None:
    """Raise unless every dynamic dimension of ``specs`` is symbolic in the graph's inputs."""
    graph_inputs = {i.name: i for i in proto.graph.input}
    for spec in specs:
        if spec.name not in graph_inputs:
            raise RuntimeError(f"{PURPOSE}: the graph has no input {spec.name!r}")
        dims = graph_inputs[spec.name].type.tensor_type.shape.dim
        for dim, want in zip(dims, spec.shape, strict=True):
            if isinstance(want, str) and not dim.dim_param:
                raise RuntimeError(f"{PURPOSE}: the exporter fixed {want} of input {spec.name!r} to {dim.dim_value}; "
                                   "this model cannot be exported with dynamic sizes")


def export_onnx(flat: FlatClassifier, path: str | Path, example: tuple[Tensor, ...],
                outputs: Sequence[TensorSpec], opset: int | None = None) -> int:
    """Write ``flat`` as an ONNX graph to ``path`` (atomically, one self-contained file).

    Args:
        flat: the model with flat inputs, in eval mode.
        path: the ``.onnx`` file to write.
        example: example inputs (batch size and sequence lengths >= 2).
        outputs: the graph's outputs, in order.
        opset: the ONNX opset (``None``: the exporter's default).

    Returns:
        The graph's ONNX opset.

    Raises:
        MissingExtraError: onnx or onnxscript is not installed (``pip install "scenesense[export]"``).
        RuntimeError: one line: the exporter failed (its root cause), or it could not keep the batch
            size or a sequence length dynamic.
    """
    require_extra("onnx", "export", PURPOSE)
    require_extra("onnxscript", "export", PURPOSE)
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                flat, example, input_names=[s.name for s in flat.specs], output_names=[s.name for s in outputs],
                dynamic_shapes=(dynamic_dims(flat.specs),), opset_version=opset, dynamo=True,
                external_data=False, verbose=False)
    except MemoryError:
        raise
    except Exception as err:  # the exporter's errors are pages long: keep their root cause
        raise RuntimeError(f"{PURPOSE}: this model cannot be exported ({_root_cause(err)})") from err
    if program is None:  # only the TorchScript-based exporter returns None
        raise RuntimeError(f"{PURPOSE}: the exporter returned no program")
    proto = program.model_proto
    _check_dims(proto, flat.specs)
    atomic_write_bytes(path, proto.SerializeToString())
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def run_onnx(path: str | Path, specs: Sequence[TensorSpec], tensors: Sequence[Tensor]) -> list[np.ndarray]:
    """Run the ONNX graph at ``path`` with ONNX Runtime (CPU) on ``tensors``, the inputs of ``specs``.

    Returns:
        The graph's outputs, in order.

    Raises:
        MissingExtraError: onnxruntime is not installed.
    """
    ort = require_extra("onnxruntime", "export", "running an exported ONNX model")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, {s.name: t.numpy() for s, t in zip(specs, tensors, strict=True)}))
