"""A run's model with flat, named tensor inputs and outputs: the graph that is exported.

The model itself takes ``dict[str, Tensor]`` features, masks and presence flags
(`scenesense.models.classifier.MultimodalClassifier.forward`); an exported graph takes one
named tensor each. Per modality ``m`` of the model, in sorted order:

- ``m``: the features, ``[B, T_m, D_m]`` float32 for a sequence modality (zero padded) or
  ``[B, D_m]`` for a vector modality;
- ``m_mask``: ``[B, T_m]`` bool, True = real step (sequence modalities only);
- ``m_present``: ``[B]`` bool, False = the modality is missing for that row (its features are
  then ignored; give zeros).

Outputs: ``logits`` ``[B, C]`` and ``probabilities`` ``[B, C]`` (softmax over the classes) for a
classifier, ``values`` ``[B, K]`` for a regression run. ``B`` and every ``T_m`` are dynamic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scenesense.data.labels import Task
from scenesense.encoders.base import MAX_SEQUENCE_STEPS
from scenesense.models.classifier import MultimodalClassifier

BATCH = "batch"
"""The symbolic name of the batch dimension ``B``."""


def steps_name(modality: str) -> str:
    """The symbolic name of a sequence modality's length ``T_m``, e.g. ``"text_steps"``."""
    return f"{modality}_steps"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the exported graph.

    Fields:
        name: the tensor's name in the graph (``"text"``, ``"text_mask"``, ``"probabilities"``).
        dtype: ``"float32"`` or ``"bool"``.
        shape: per dimension its size, or its symbolic name (`BATCH`, `steps_name`).
        modality: the modality an input belongs to (``""`` for outputs).
        role: ``"features"``, ``"mask"`` or ``"present"`` for inputs; ``"logits"``,
            ``"probabilities"`` or ``"values"`` for outputs.
    """

    name: str
    dtype: str
    shape: tuple[str | int, ...]
    modality: str
    role: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``model.json``."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "modality": self.modality,
                "role": self.role}


def input_specs(feature_kinds: Mapping[str, str], feature_dims: Mapping[str, int]) -> list[TensorSpec]:
    """The graph's inputs, in order: per modality (sorted) its features, mask (sequences) and flags."""
    specs = []
    for m in sorted(feature_kinds):
        if feature_kinds[m] == "sequence":
            specs.append(TensorSpec(m, "float32", (BATCH, steps_name(m), int(feature_dims[m])), m, "features"))
            specs.append(TensorSpec(f"{m}_mask", "bool", (BATCH, steps_name(m)), m, "mask"))
        else:
            specs.append(TensorSpec(m, "float32", (BATCH, int(feature_dims[m])), m, "features"))
        specs.append(TensorSpec(f"{m}_present", "bool", (BATCH,), m, "present"))
    return specs


def output_specs(task: Task, num_outputs: int) -> list[TensorSpec]:
    """The graph's outputs: ``logits`` and ``probabilities`` ``[B, C]``, or ``values`` ``[B, K]``."""
    if task == "regression":
        return [TensorSpec("values", "float32", (BATCH, num_outputs), "", "values")]
    return [TensorSpec("logits", "float32", (BATCH, num_outputs), "", "logits"),
            TensorSpec("probabilities", "float32", (BATCH, num_outputs), "", "probabilities")]


class FlatClassifier(nn.Module):
    """``model`` with one tensor per input (see the module docstring) and a tuple of outputs.

    Args:
        model: the run's model, in eval mode.
        inputs: the graph's inputs (`input_specs` of the model's modalities).
        task: ``"classification"`` (outputs logits and probabilities) or ``"regression"`` (values).
    """

    def __init__(self, model: MultimodalClassifier, inputs: Sequence[TensorSpec], task: Task) -> None:
        super().__init__()
        self.model = model
        self.specs = tuple(inputs)
        self.task = task

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """Classify a batch given as the flat tensors of `input_specs`, in that order.

        Returns:
            ``(logits [B, C], probabilities [B, C])``, or ``(values [B, K],)`` for regression.
        """
        by_role: dict[str, dict[str, Tensor]] = {"features": {}, "mask": {}, "present": {}}
        for spec, tensor in zip(self.specs, tensors, strict=True):
            by_role[spec.role][spec.modality] = tensor
        features, masks, present = by_role["features"], by_role["mask"], by_role["present"]
        logits = self.model(features, masks, present).logits  # [B, C]
        if self.task == "regression":
            return (logits,)
        return logits, torch.softmax(logits, dim=-1)


def flat_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor],
                present: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
    """A collated batch (`scenesense.types.Batch` fields) as the graph's flat inputs, in order.

    A sequence modality without a mask gets an all-True one; a modality without flags is present.
    """
    out = []
    for spec in specs:
        x = inputs[spec.modality]
        if spec.role == "features":
            out.append(x.float())
        elif spec.role == "mask":
            mask = masks.get(spec.modality)
            out.append(torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask.bool())
        else:
            flags = present.get(spec.modality)
            out.append(torch.ones(x.shape[0], dtype=torch.bool) if flags is None else flags.bool())
    return tuple(out)


def example_inputs(specs: Sequence[TensorSpec], batch_size: int, steps: Mapping[str, int],
                   seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs of ``batch_size`` rows: the first row's sequences are half padding, the last row
    misses its first modality, and each sequence modality ``m`` has ``steps[m]`` steps.

    With ``batch_size`` 1 the one row is both; an export example needs >= 2 rows and steps (sizes 0 and 1
    are fixed by the exporter).
    """
    gen = torch.Generator().manual_seed(seed)
    first = specs[0].modality
    out = []
    for spec in specs:
        shape = [batch_size if d == BATCH else steps[spec.modality] if isinstance(d, str) else d
                 for d in spec.shape]
        if spec.role == "features":
            out.append(torch.randn(*shape, generator=gen))
        elif spec.role == "mask":
            mask = torch.ones(*shape, dtype=torch.bool)
            mask[0, max(1, shape[1] // 2):] = False  # [B, T]
            out.append(mask)
        else:
            flags = torch.ones(batch_size, dtype=torch.bool)
            flags[-1] = spec.modality != first
            out.append(flags)
    return tuple(out)


def dynamic_dims(specs: Sequence[TensorSpec]) -> tuple[dict[int, Any], ...]:
    """Per input, its dynamic dimensions as `torch.export.Dim`s (``B`` shared, ``T_m`` per modality)."""
    dims: dict[str, Any] = {BATCH: torch.export.Dim(BATCH)}
    for spec in specs:
        for d in spec.shape:
            if isinstance(d, str) and d not in dims:
                dims[d] = torch.export.Dim(d, max=MAX_SEQUENCE_STEPS)
    return tuple({i: dims[d] for i, d in enumerate(spec.shape) if isinstance(d, str)} for spec in specs)
