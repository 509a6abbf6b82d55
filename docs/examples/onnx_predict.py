"""Predict with an exported model using ONNX Runtime and NumPy only (no scenesense, no PyTorch).

Usage:
    python onnx_predict.py path/to/export item1.npz [item2.npz ...]

``path/to/export`` is the folder `scenesense export RUN --format onnx` wrote (``model.onnx`` and
``model.json``). Each ``.npz`` file is one item: one array per modality, named by the modality
(``text``, ``audio``, ``vision``), shaped ``[T, D]`` for a sequence modality or ``[D]`` for a
vector one, made by the same feature extractor as the run's training features (``model.json``
records which, under ``features``). A modality the file does not have is missing for that item.
The items are padded into one batch, and one line per item is printed: its file, label and
probability.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_items(paths: list[str], modalities: list[str]) -> list[dict[str, np.ndarray]]:
    """Per item, its arrays of the model's modalities (float32)."""
    items = []
    for path in paths:
        with np.load(path) as data:
            items.append({m: np.asarray(data[m], dtype=np.float32) for m in modalities if m in data.files})
    return items


def batch_inputs(spec: dict, items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of items: features zero padded, masks and presence flags."""
    sequences = [t["modality"] for t in spec["inputs"] if t["role"] == "mask"]
    steps = {m: max([len(item[m]) for item in items if m in item], default=1) for m in sequences}
    feeds = {}
    for tensor in spec["inputs"]:
        m, role, dim = tensor["modality"], tensor["role"], tensor["shape"][-1]
        if role == "present":  # [B]
            feeds[tensor["name"]] = np.array([m in item for item in items], dtype=bool)
        elif role == "mask":  # [B, T], True = a real step
            mask = np.zeros((len(items), steps[m]), dtype=bool)
            for row, item in enumerate(items):
                if m in item:
                    mask[row, :len(item[m])] = True
            feeds[tensor["name"]] = mask
        elif m in steps:  # a sequence [B, T, D], zero padded
            x = np.zeros((len(items), steps[m], dim), dtype=np.float32)
            for row, item in enumerate(items):
                if m in item:
                    x[row, :len(item[m])] = item[m].reshape(-1, dim)
            feeds[tensor["name"]] = x
        else:  # a vector [B, D]
            x = np.zeros((len(items), dim), dtype=np.float32)
            for row, item in enumerate(items):
                if m in item:
                    x[row] = item[m].reshape(dim)
            feeds[tensor["name"]] = x
    return feeds


def main() -> None:
    parser = argparse.ArgumentParser(description="Predict .npz feature files with an exported ONNX model.")
    parser.add_argument("export_dir", help="the folder holding model.onnx and model.json")
    parser.add_argument("items", nargs="+", help=".npz files, one item each (one array per modality)")
    args = parser.parse_args()

    folder = Path(args.export_dir)
    spec = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model_file = folder / spec["file"]
    if sha256(model_file) != spec["sha256"]:
        raise SystemExit(f"{model_file}: its SHA-256 differs from model.json; copy the export again")
    if spec["task"] != "classification":
        raise SystemExit("this example prints class labels; the model is a regression model")

    items = load_items(args.items, spec["modalities"])
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], batch_inputs(spec, items))  # [B, C]
    for path, row in zip(args.items, probabilities):
        best = int(np.argmax(row))
        print(f"{path}\t{spec['label_names'][best]}\t{row[best]:.4f}")


if __name__ == "__main__":
    main()
