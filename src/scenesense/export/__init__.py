"""Portable models: a run's features-to-probabilities graph as ONNX or TorchScript, a run as one archive.

- `scenesense.export.flat`: the model with flat named inputs (``text``, ``text_mask``,
  ``text_present``, ...) and outputs (``logits``, ``probabilities``);
- `scenesense.export.onnx`, `scenesense.export.torchscript`: write and run each format;
- `scenesense.export.archive`: a run folder as a checksummed ``.tar.gz``, and back;
- `scenesense.export.run_export`: `export_run`, what ``scenesense export`` calls.

Layer: beside `scenesense.predict` and `scenesense.evaluation` (it imports neither), above
`scenesense.runs`. ONNX needs the ``export`` extra (``pip install "scenesense[export]"``).
"""

from __future__ import annotations

from scenesense.export.archive import opened_run as opened_run
from scenesense.export.archive import pack_run as pack_run
from scenesense.export.archive import verify_archive as verify_archive
from scenesense.export.flat import FlatClassifier as FlatClassifier
from scenesense.export.flat import TensorSpec as TensorSpec
from scenesense.export.run_export import FORMATS as FORMATS
from scenesense.export.run_export import SIDECAR_FILE as SIDECAR_FILE
from scenesense.export.run_export import ExportResult as ExportResult
from scenesense.export.run_export import export_run as export_run

__all__ = ["FORMATS", "SIDECAR_FILE", "ExportResult", "FlatClassifier", "TensorSpec", "export_run", "opened_run",
           "pack_run", "verify_archive"]
