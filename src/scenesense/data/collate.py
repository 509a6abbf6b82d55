"""Collate `scenesense.types.Sample` lists into a padded `scenesense.types.Batch`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scenesense.data.labels import Task
from scenesense.types import Batch, Sample


def _infer_task(samples: Sequence[Sample]) -> Task:
    """Classification when every label is an integer (not bool), regression when any is a float."""
    labels = [s["label"] for s in samples]
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in labels):
        return "classification"
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in labels):
        return "regression"
    raise TypeError(f"labels must be ints (classes) or floats (regression), got {labels[:5]!r}")


def _stack_modality(samples: Sequence[Sample], modality: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pad one modality: ``([B, T, D], mask [B, T])`` for sequences, ``([B, D], None)`` for vectors."""
    arrays = []
    for s in samples:
        if modality not in s["inputs"]:
            raise KeyError(f"sample {s['id']!r} has no {modality!r} input; it has {sorted(s['inputs'])}")
        arrays.append(np.asarray(s["inputs"][modality], dtype=np.float32))
    present = [bool(s["present"].get(modality, True)) for s in samples]
    ndims = {a.ndim for a in arrays}
    dims = {a.shape[-1] for a in arrays}
    if len(ndims) != 1 or ndims.pop() not in (1, 2) or len(dims) != 1:
        shapes = {s["id"]: list(a.shape) for s, a in zip(samples, arrays)}
        raise ValueError(f"modality {modality!r}: inconsistent sample shapes {shapes}")
    dim = dims.pop()
    if arrays[0].ndim == 1:
        out = torch.zeros(len(samples), dim)  # [B, D]
        for i, (a, ok) in enumerate(zip(arrays, present)):
            if ok:
                out[i] = torch.from_numpy(a)
        return out, None
    lengths = [a.shape[0] if ok else 0 for a, ok in zip(arrays, present)]
    t_max = max(1, *lengths)  # never an empty time axis, even if all samples miss this modality
    out = torch.zeros(len(samples), t_max, dim)  # [B, T, D]
    mask = torch.zeros(len(samples), t_max, dtype=torch.bool)  # [B, T]
    for i, (a, n) in enumerate(zip(arrays, lengths)):
        if n:
            out[i, :n] = torch.from_numpy(a[:n])
            mask[i, :n] = True
    return out, mask


def collate(samples: Sequence[Sample], task: Task | None = None) -> Batch:
    """Pad and stack samples into a batch.

    Per modality (sorted by name): sequences ``[T_i, D]`` are zero padded to the batch maximum
    ``[B, T, D]`` with a mask ``[B, T]`` (True = real step); vectors ``[D]`` are stacked to
    ``[B, D]``. A sample whose modality is missing (``present`` False) contributes zeros and an
    all-False mask row, whatever its stored values.

    Args:
        samples: ``B`` samples with the same modalities.
        task: ``"classification"`` (long labels) or ``"regression"`` (float labels); inferred
            from the label types when ``None``.

    Returns:
        The `scenesense.types.Batch`; ``present`` is ``[B]`` bool per modality and
        ``label`` is ``[B]`` long or float.

    Raises:
        ValueError: empty batch, or samples whose modalities or shapes disagree.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    modalities = sorted(samples[0]["inputs"])
    for s in samples:
        if sorted(s["inputs"]) != modalities:
            raise ValueError(f"sample {s['id']!r} has modalities {sorted(s['inputs'])}, "
                             f"expected {modalities}")
    task = task or _infer_task(samples)
    inputs: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    present: dict[str, torch.Tensor] = {}
    for m in modalities:
        inputs[m], mask = _stack_modality(samples, m)
        if mask is not None:
            masks[m] = mask
        present[m] = torch.tensor([bool(s["present"].get(m, True)) for s in samples], dtype=torch.bool)
    dtype = torch.long if task == "classification" else torch.float32
    return {
        "ids": [s["id"] for s in samples],
        "inputs": inputs,
        "masks": masks,
        "present": present,
        "label": torch.tensor([s["label"] for s in samples], dtype=dtype),
    }
