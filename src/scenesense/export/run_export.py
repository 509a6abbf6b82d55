"""`export_run`: a finished run as a portable model (ONNX, TorchScript) or as one archive.

An ONNX or TorchScript export writes the model file (`MODEL_FILES`) and `SIDECAR_FILE`
(``model.json``) into one folder. The sidecar says everything a program needs to feed the
graph without scenesense:

```text
{"format": "onnx", "file": "model.onnx", "sha256": "<of the model file>", "opset": 18,
 "run": "<run name>", "task": "classification", "label_names": [...], "modalities": [...],
 "inputs": [{"name": "text", "dtype": "float32", "shape": ["batch", "text_steps", 384],
             "modality": "text", "role": "features"}, ...],   # see scenesense.export.flat
 "outputs": [{"name": "logits", ...}, {"name": "probabilities", ...}],
 "max_sequence_steps": 4096,
 "features": {"text": {"name": ..., "kind": "sequence", "dim": 384, "provenance": {...}}},
 "source": {...},                 # the training data's provenance (model_spec.json)
 "standardized_in_graph": false,  # the run's input z-scoring (model.standardize) is in the graph
 "speaker_norm": false,           # the run z-scored features per speaker: do it before the graph
 "check": {"max_difference": 3e-08, "tolerance": 0.0001},
 "versions": {"scenesense": "...", "torch": "...", "onnx": "...", "onnxscript": "..."}}
```

Every export is checked before it is kept: the exported model and the PyTorch model score
batches of other sizes and lengths than the export example (with padding and a missing
modality), and the export fails when their outputs differ by more than `TOLERANCE`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from scenesense.encoders.base import MAX_SEQUENCE_STEPS
from scenesense.export.archive import file_sha256, pack_run
from scenesense.export.flat import FlatClassifier, TensorSpec, example_inputs, input_specs, output_specs
from scenesense.export.onnx import PURPOSE, export_onnx, run_onnx
from scenesense.export.torchscript import export_torchscript, run_torchscript
from scenesense.extraction.base import package_versions
from scenesense.runs import FINISHED_FILES, LoadedRun, load_run, read_config
from scenesense.utils.extras import Needs
from scenesense.utils.io import temp_beside, write_json

Format = Literal["onnx", "torchscript", "archive"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "archive")
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}
SIDECAR_FILE = "model.json"
DEFAULT_OUT = {"onnx": "export/onnx", "torchscript": "export/torchscript"}
"""Where an export goes by default, inside the run folder (an archive goes beside the folder)."""
TOLERANCE = 1e-4
"""Largest difference allowed between the exported model's and PyTorch's probabilities (or values,
relative to their size)."""

_PACKAGES = {"onnx": ("scenesense", "torch", "onnx", "onnxscript"), "torchscript": ("scenesense", "torch")}
_EXAMPLE = (3, 5)  # export example: batch size, first sequence length (each next modality one more)
_CHECKS = ((4, 9), (1, 1))  # check batches: other sizes and lengths than the example


@dataclass(frozen=True)
class ExportResult:
    """What `export_run` wrote.

    Fields:
        format: ``"onnx"``, ``"torchscript"`` or ``"archive"``.
        files: the model file and ``model.json``, or the archive and its checksum file.
        sha256: the SHA-256 of the model file or archive.
        max_difference: the largest difference of the check (``None`` for an archive).
    """

    format: str
    files: tuple[Path, ...]
    sha256: str
    max_difference: float | None


def _check_exportable(run_dir: Path, format: str) -> None:
    """Refuse a run with dialogue context; fail early when the format's extra is missing."""
    if read_config(run_dir).model.context is not None:
        raise ValueError(f"{run_dir}: a run with dialogue context (model.context) cannot be exported: its model "
                         "reads whole conversations, which the exported graph does not take; export a run without "
                         "model.context, or use the run folder (or its archive) with scenesense")
    if format == "onnx":
        Needs("export", ("onnx", "onnxscript", "onnxruntime"), PURPOSE).check()


def _steps(specs: Sequence[TensorSpec], first: int) -> dict[str, int]:
    """Sequence lengths: ``first`` for the first sequence modality, one more for each next (all 1 for 1)."""
    sequences = sorted({s.modality for s in specs if s.role == "mask"})
    return {m: first if first == 1 else first + i for i, m in enumerate(sequences)}


def _difference(exported: Sequence[Any], reference: Sequence[torch.Tensor]) -> float:
    """Largest difference of the last output (probabilities, or values relative to their size)."""
    got = np.asarray(exported[-1], dtype=np.float64)
    want = reference[-1].double().numpy()
    if got.shape != want.shape:
        raise RuntimeError(f"the exported model gives outputs of shape {got.shape}, PyTorch {want.shape}")
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))) if want.size else 0.0


def _check(flat: FlatClassifier, path: Path, format: str) -> float:
    """Score the check batches with the exported file and with PyTorch; the largest difference."""
    worst = 0.0
    for seed, (batch, first) in enumerate(_CHECKS, start=1):
        tensors = example_inputs(flat.specs, batch, _steps(flat.specs, first), seed=seed)
        with torch.no_grad():
            reference = flat(*tensors)
        exported = run_onnx(path, flat.specs, tensors) if format == "onnx" else run_torchscript(path, tensors)
        worst = max(worst, _difference(exported, reference))
    if not worst <= TOLERANCE:
        raise RuntimeError(f"the exported model disagrees with PyTorch by {worst:.3g} (more than {TOLERANCE:g}); "
                           "it was not kept")
    return worst


def _sidecar(loaded: LoadedRun, format: str, flat: FlatClassifier, outputs: Sequence[TensorSpec],
             sha256: str, opset: int | None, difference: float) -> dict[str, Any]:
    cfg, spec = loaded.config, loaded.spec
    modalities = sorted({s.modality for s in flat.specs})
    return {
        "format": format, "file": MODEL_FILES[format], "sha256": sha256,
        **({"opset": opset} if opset is not None else {}),
        "run": cfg.name, "task": spec.task, "label_names": list(spec.label_names), "modalities": modalities,
        "inputs": [s.to_json() for s in flat.specs], "outputs": [s.to_json() for s in outputs],
        "max_sequence_steps": MAX_SEQUENCE_STEPS,
        "features": {m: {"name": spec.features[m].name, "kind": spec.features[m].kind, "dim": spec.features[m].dim,
                         "provenance": spec.features[m].provenance} for m in modalities},
        "source": spec.source,
        "standardized_in_graph": getattr(loaded.model, "standardizer", None) is not None,
        "speaker_norm": bool(cfg.data.speaker_norm),
        "check": {"max_difference": difference, "tolerance": TOLERANCE},
        "versions": package_versions(_PACKAGES[format]),
    }


def export_model(flat: FlatClassifier, path: str | Path, format: str = "onnx",
                 opset: int | None = None) -> tuple[list[TensorSpec], int | None, float]:
    """Export ``flat`` to ``path`` as ``"onnx"`` or ``"torchscript"`` and check it against PyTorch.

    The file is written beside ``path`` first and moved there only when the check passes.

    Returns:
        The graph's outputs, its ONNX opset (``None`` for TorchScript) and the check's largest difference.

    Raises:
        RuntimeError: the exported model disagrees with PyTorch by more than `TOLERANCE`, or the
            ONNX exporter could not keep the batch size or a sequence length dynamic.
    """
    if format not in MODEL_FILES:
        raise ValueError(f"export_model writes {' or '.join(MODEL_FILES)}, not {format!r}")
    path = Path(path)
    example = example_inputs(flat.specs, _EXAMPLE[0], _steps(flat.specs, _EXAMPLE[1]))
    with torch.no_grad():
        outputs = output_specs(flat.task, int(flat(*example)[0].shape[-1]))
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        if format == "onnx":
            opset = export_onnx(flat, tmp, example, outputs, opset)
        else:
            opset = None
            export_torchscript(flat, tmp, example)
        difference = _check(flat, tmp, format)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return outputs, opset, difference


def export_run(run_dir: str | Path, out: str | Path | None = None, format: Format = "onnx",
               opset: int | None = None) -> ExportResult:
    """Export a finished run.

    Args:
        run_dir: a finished run folder.
        out: for ``onnx``/``torchscript`` the folder to write the model file and ``model.json`` into
            (default: `DEFAULT_OUT` inside the run folder); for ``archive`` the ``.tar.gz`` to write
            (default: ``<run_dir>.tar.gz`` beside the folder).
        format: ``"onnx"``, ``"torchscript"`` or ``"archive"``.
        opset: the ONNX opset (``None``: the exporter's default).

    Returns:
        What was written (`ExportResult`).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: an unknown format, or a run with dialogue context (ONNX and TorchScript).
        RuntimeError: the exported model disagrees with PyTorch, or its sizes could not stay dynamic.
        MissingExtraError: ONNX without ``scenesense[export]`` installed.
    """
    run_path = Path(run_dir)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "archive":
        archive, checksum = pack_run(run_path, out)
        return ExportResult(format, (archive, checksum), file_sha256(archive), None)
    for name in FINISHED_FILES:
        if not (run_path / name).exists():
            raise FileNotFoundError(f"{run_path}: not a finished run (missing {name})")
    _check_exportable(run_path, format)
    loaded = load_run(run_path)
    spec = loaded.spec
    specs = input_specs({m: spec.feature_kinds[m] for m in loaded.model.modalities}, spec.feature_dims)
    flat = FlatClassifier(loaded.model, specs, spec.task).eval()
    folder = Path(out) if out is not None else run_path / DEFAULT_OUT[format]
    path = folder / MODEL_FILES[format]
    outputs, used_opset, difference = export_model(flat, path, format, opset)
    sha256 = file_sha256(path)
    sidecar = _sidecar(loaded, format, flat, outputs, sha256, used_opset, difference)
    return ExportResult(format, (path, write_json(folder / SIDECAR_FILE, sidecar)), sha256, difference)
