"""TorchScript: trace a `scenesense.export.flat.FlatClassifier` into a ``.ts`` file, load one.

Tracing records the operations run on example inputs; every size it reads stays symbolic, so the
traced module takes any batch size and sequence length. The checks that compare sizes in Python
(validation only: they raise on bad shapes and change no value) are recorded as they went on the
example. PyTorch marks TorchScript as deprecated in favour of ``torch.export``; prefer ONNX for a
portable model, and use TorchScript where a C++ program already loads ``torch::jit`` modules.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from scenesense.export.flat import FlatClassifier
from scenesense.utils.io import atomic_write_bytes


def export_torchscript(flat: FlatClassifier, path: str | Path, example: tuple[Tensor, ...]) -> None:
    """Trace ``flat`` on ``example`` and save the TorchScript module to ``path`` (atomically)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings of the shape checks; the deprecation notice
        traced = torch.jit.trace(flat, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run_torchscript(path: str | Path, tensors: Sequence[Tensor]) -> list[Tensor]:
    """Load the TorchScript module at ``path`` (on the CPU) and run it on ``tensors``.

    Returns:
        Its outputs, in order.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return list(module(*tensors))
