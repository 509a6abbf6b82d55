"""Extraction and the model pass: a chunk of items featurised by the plan, then classified.

Every modality of a chunk is extracted (`prepare_chunk`); the items that have any modality
become one batch of `scenesense.types.Sample` (a missing modality is zeros hidden by
``present``), optionally z-scored per speaker as the run's training data was, and go through
the model once (`classify`); the scores, fusion weights and attention maps of each row
fill its `scenesense.predict.output.ItemPrediction`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch

from scenesense.data.collate import collate
from scenesense.data.speaker_norm import Stats, apply_speaker_norm, speaker_statistics
from scenesense.encoders.base import MAX_SEQUENCE_STEPS
from scenesense.extraction.base import ItemError, OutputSpec
from scenesense.extraction.items import extract_items, one_line
from scenesense.predict.inputs import Item
from scenesense.predict.output import ItemPrediction
from scenesense.predict.plan import ModalityPlan
from scenesense.runs import RunSpec
from scenesense.types import ModelOutput, Sample

log = logging.getLogger(__name__)

SpeakerStats = dict[str, dict[str, Stats]]  # modality -> speaker -> (mean [D], std [D])
MIN_SPEAKER_ITEMS = 10  # as FeatureStoreDataset: fewer items of a speaker -> all items' statistics


def source_of(item: Item, plan: ModalityPlan) -> str | None:
    """The raw input ``plan``'s extractor reads for ``item`` (``None``: the item has none)."""
    assert plan.extractor is not None
    kind = plan.extractor.input_kind
    if kind == "text":
        return item.text
    if kind == "audio":
        path = item.audio or item.media or item.video
        return None if path is None else str(path)
    path = item.video or item.media
    return None if path is None else str(path)


def _extract(plan: ModalityPlan, items: Sequence[Item]) -> list[np.ndarray | str | None]:
    """Per item: the feature array (``[D]`` or ``[T, D]``), an error line, or ``None`` (no input).

    An item without the input that was to be made for it (``Item.unmade``: a transcript that
    failed or heard no speech) gets that line instead of ``None``.

    The items are extracted in one `scenesense.extraction.items.extract_items` batch. An
    exception other than `ItemError` (a library failing on an odd file, a bug) is pinned on
    the item that raised it: the batch is retried one item at a time, and an item that still
    raises gets an `ItemError` naming the exception. Only ``MemoryError`` and a missing extra
    (`scenesense.utils.extras.MissingExtraError`) stop. A sequence
    longer than `scenesense.encoders.base.MAX_SEQUENCE_STEPS` is an error line.
    """
    assert plan.extractor is not None and plan.output is not None
    sources = [source_of(item, plan) for item in items]
    todo = [i for i, s in enumerate(sources) if s is not None]
    out: list[np.ndarray | str | None] = [item.unmade.get(plan.extractor.input_kind) for item in items]
    if not todo:
        return out
    outputs = {plan.output: OutputSpec(plan.kind, plan.dim)}  # type: ignore[arg-type]
    batches = extract_items(plan.extractor, [str(sources[i]) for i in todo], outputs=outputs,
                            on_error=partial(_failed, plan.provenance["extractor"]), fatal=(MemoryError,))
    for i, result in zip(todo, (r for batch in batches for r in batch), strict=True):
        value = result if isinstance(result, ItemError) else _usable(result[plan.output], str(sources[i]))
        if isinstance(value, ItemError):
            out[i] = f"{plan.modality}: {str(value) or 'failed (no reason given)'}"
        else:
            out[i] = value
    return out


def _failed(name: str, source: str, err: Exception) -> ItemError:
    """An unexpected exception of extractor ``name`` on ``source``, as that item's error."""
    log.debug("extractor %r failed on %s", name, source, exc_info=err)
    return ItemError(f"{source}: extractor {name!r} failed ({one_line(err)})")


def _usable(value: np.ndarray, source: str) -> np.ndarray | ItemError:
    """``value`` as the model takes it (a writable array), or the error of a sequence too long."""
    if value.ndim == 2 and value.shape[0] > MAX_SEQUENCE_STEPS:
        return ItemError(f"{source}: {value.shape[0]} feature steps, more than the "
                         f"{MAX_SEQUENCE_STEPS} a sequence encoder takes; cut the input shorter")
    return value if value.flags.writeable else value.copy()  # torch wants writable arrays


def speaker_norm_warnings(items: Sequence[Item]) -> list[str]:
    """The warning when per-speaker normalisation falls back to all items' statistics (else none)."""
    counts = Counter(item.speaker for item in items)
    few = sorted(s or "(no speaker)" for s, n in counts.items() if n < MIN_SPEAKER_ITEMS or not s)
    if not few:
        return []
    return [f"the run normalises features per speaker (data.speaker_norm); {', '.join(few[:5])} "
            f"{'has' if len(few) == 1 else 'have'} fewer than {MIN_SPEAKER_ITEMS} items or no speaker, so "
            f"{'it is' if len(few) == 1 else 'they are'} normalised with the statistics of all {len(items)} "
            f"items given; give each clip's speaker (a 'speaker' column) and >= {MIN_SPEAKER_ITEMS} clips "
            "per speaker for the normalisation the run was trained with"]


def predict_chunk(model: torch.nn.Module, spec: RunSpec, plans: Mapping[str, ModalityPlan],
                  items: Sequence[Item], device: str, speaker_norm: bool = False) -> list[ItemPrediction]:
    """Extract every modality of a chunk of items, then classify the items that have any.

    With ``speaker_norm`` the items' features are z-scored per speaker over the chunk first
    (`scenesense.data.speaker_norm`), as the run's training data was.
    """
    results, samples = prepare_chunk(spec, plans, items)
    if speaker_norm and samples:
        stats = chunk_statistics(samples, plans)
        samples = [apply_speaker_norm(s, stats) for s in samples]
    return classify(model, spec, results, samples, device)


def chunk_statistics(samples: Sequence[Sample], plans: Mapping[str, ModalityPlan]) -> SpeakerStats:
    """Per-speaker feature statistics of ``samples``, as the run's training data was normalised."""
    return speaker_statistics(samples, [m for m in plans if any(s["present"][m] for s in samples)],
                              MIN_SPEAKER_ITEMS)


def classify(model: torch.nn.Module, spec: RunSpec, results: Sequence[ItemPrediction],
             samples: Sequence[Sample], device: str) -> list[ItemPrediction]:
    """``results`` (from `prepare_chunk`) with the model's scores of ``samples`` filled in."""
    regression = spec.task == "regression"
    scores = iter(_score(model, samples, list(spec.label_names), regression, device) if samples else [])
    return [result if not result.used else replace(result, **next(scores)) for result in results]


def prepare_chunk(spec: RunSpec, plans: Mapping[str, ModalityPlan],
                  items: Sequence[Item]) -> tuple[list[ItemPrediction], list[Sample]]:
    """Extract every modality of a chunk of items.

    Returns:
        Per item its `ItemPrediction` without scores (an error row when no modality could
        be extracted), and one `scenesense.types.Sample` per item that has a modality
        (``used`` non-empty), in item order.
    """
    features = {m: _extract(p, items) if p.extractor is not None else [None] * len(items)
                for m, p in plans.items()}
    regression = spec.task == "regression"
    results: list[ItemPrediction] = []
    samples: list[Sample] = []
    for i, item in enumerate(items):
        problems = tuple(item.problems) + tuple(f[i] for f in features.values() if isinstance(f[i], str))
        arrays = {m: f[i] for m, f in features.items() if isinstance(f[i], np.ndarray)}
        result = ItemPrediction(item.id, item.raw, used=tuple(sorted(arrays)),
                                missing=tuple(sorted(set(plans) - set(arrays))), problems=problems)
        if not arrays:
            extractable = ", ".join(m for m, p in plans.items() if p.extractor is not None)
            why = "; ".join(problems) or (f"its inputs ({', '.join(item.raw)}) feed none of the run's "
                                          f"extractable modalities ({extractable})")
            result = replace(result, error=f"no modality could be extracted: {why}")
        else:
            samples.append({
                "id": item.id, "dialogue_id": "", "position": -1, "speaker": item.speaker,
                "inputs": {m: arrays.get(m, _placeholder(plans[m])) for m in plans},
                "present": {m: m in arrays for m in plans},
                "label": 0.0 if regression else 0,
            })
        results.append(result)
    return results, samples


def _score(model: torch.nn.Module, samples: Sequence[Sample], label_names: Sequence[str], regression: bool,
           device: str) -> list[dict[str, Any]]:
    """One model pass over ``B`` samples: per sample the `ItemPrediction` fields it sets."""
    batch = collate(samples, task="regression" if regression else "classification")
    with torch.no_grad():
        out = model({m: x.to(device) for m, x in batch["inputs"].items()},
                    {m: x.to(device) for m, x in batch["masks"].items()},
                    {m: x.to(device) for m, x in batch["present"].items()})
    return scores_from_output(out, batch["masks"], label_names, regression)


def scores_from_output(out: ModelOutput, masks: Mapping[str, torch.Tensor], label_names: Sequence[str],
                       regression: bool) -> list[dict[str, Any]]:
    """Per row of a model output (``logits [B, C]``): the `ItemPrediction` fields it sets."""
    logits = out.logits.float().cpu()  # [B, C]
    probs = torch.softmax(logits, dim=-1).numpy()  # [B, C]
    weights = _weights_per_item(out.modality_weights)
    attention = _attention_per_item(out.attention, masks)
    scored: list[dict[str, Any]] = []
    for b in range(logits.shape[0]):
        fields: dict[str, Any] = {"modality_weights": None if weights is None else weights[b],
                                  "attention": None if attention is None else attention[b]}
        if regression:
            fields["value"] = float(logits[b, 0])
        else:
            fields["label"] = label_names[int(probs[b].argmax())]
            fields["probabilities"] = {name: float(p) for name, p in zip(label_names, probs[b])}
        scored.append(fields)
    return scored


def _placeholder(plan: ModalityPlan) -> np.ndarray:
    """Zeros standing in for a missing modality (hidden from the model by ``present``)."""
    shape = (1, plan.dim) if plan.kind == "sequence" else (plan.dim,)
    return np.zeros(shape, dtype=np.float32)


def _weights_per_item(weights: Mapping[str, torch.Tensor] | None) -> list[dict[str, float]] | None:
    """Per item, modality -> weight: ``[B]`` values, or ``[B, D]`` averaged over ``D``."""
    if not weights:
        return None
    per_modality = {m: w.detach().float().cpu().reshape(w.shape[0], -1).mean(dim=1)  # [B]
                    for m, w in weights.items()}
    batch = next(iter(per_modality.values())).shape[0]
    return [{m: float(w[b]) for m, w in sorted(per_modality.items())} for b in range(batch)]


def _attention_per_item(attention: Mapping[str, torch.Tensor] | None,
                        masks: Mapping[str, torch.Tensor]) -> list[dict[str, list[float]]] | None:
    """Per item, map ``"q->k"`` -> mean attention per real key step over the real query steps.

    Step weights ``"m:steps"`` ``[B, 1, T_m]`` keep ``m``'s real steps.

    A map whose query or key modality has no real step for an item is left out for that item.
    Real steps come from the input masks when their lengths match the map, else all steps count.
    """
    if not attention:
        return None
    batch = next(iter(attention.values())).shape[0]
    out: list[dict[str, list[float]]] = [{} for _ in range(batch)]
    for name, maps in sorted(attention.items()):
        maps = maps.detach().float().cpu()  # [B, T_q, T_k]
        query, arrow, key = name.partition("->")
        if not arrow and name.endswith(":steps"):  # per-step weights [B, 1, T] of one modality
            query, key = "", name.removesuffix(":steps")
        q_mask = _real_steps(masks.get(query), maps.shape[0], maps.shape[1])  # [B, T_q]
        k_mask = _real_steps(masks.get(key), maps.shape[0], maps.shape[2])  # [B, T_k]
        for b in range(batch):
            if not q_mask[b].any() or not k_mask[b].any():
                continue
            mean = maps[b][q_mask[b]][:, k_mask[b]].mean(dim=0)  # [T_k real]
            out[b][name] = [float(v) for v in mean]
    return out


def _real_steps(mask: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor:
    if mask is not None and tuple(mask.shape) == (batch, steps):
        return mask.cpu().bool()
    return torch.ones(batch, steps, dtype=torch.bool)
