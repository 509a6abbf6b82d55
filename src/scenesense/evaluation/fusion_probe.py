"""What a fusion can capture on its own: train it on the synthetic benchmark's raw features.

The probe skips the learned encoders: each modality's raw features are its "encoder output"
(``sequence`` = the steps, ``pooled`` = their masked mean), so a result says what the *fusion*
can represent, not what an encoder learned to write into a pooled vector (see the caveat in
`scenesense.data.synthetic`). The fusion and an MLP head (none for decision-level fusions)
are trained with Adam on cross-entropy and scored on the test split by the mean F1 of the
single-modality classes and of the co-occurrence classes (``sync``/``async``, chance 0.5).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py --probe
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score

from scenesense.config import ComponentConfig
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic
from scenesense.layers.mlp import MLP
from scenesense.layers.pooling import masked_mean
from scenesense.models.builders import build_fusion
from scenesense.types import Batch, EncoderOutput
from scenesense.utils.seed import seed_everything

PROBE_DATA: dict[str, Any] = {"n_train": 1200, "n_dev": 60, "n_test": 600, "dim": 16, "min_len": 12,
                              "max_len": 14, "seed": 0}
CO_OCCURRENCE = ("sync", "async")
EXTRA_PADDING = 16  # padded steps added to every test sequence to check that predictions ignore them


@dataclass(frozen=True)
class ProbeResult:
    """Test-split scores of one probed fusion.

    Fields:
        unimodal_f1: mean F1 of the classes visible in one modality.
        co_occurrence_f1: mean F1 of ``sync`` and ``async`` (0.5 = chance).
        modality_weights: per modality the mean of ``FusionOutput.modality_weights`` over the
            test split (empty when the fusion gives none).
        seconds: training time.
        padding_agreement: share of test predictions that stay the same when every sequence gets
            `EXTRA_PADDING` more padded steps (1.0 for a fusion that honours its masks).
    """

    unimodal_f1: float
    co_occurrence_f1: float
    modality_weights: dict[str, float]
    seconds: float
    padding_agreement: float = 1.0


def write_probe_data(out_dir: str | Path, **overrides: Any) -> Path:
    """Write the probe's synthetic store (`PROBE_DATA`, with ``overrides`` such as ``min_len``) to
    ``out_dir`` once; return it."""
    out = Path(out_dir)
    if not (out / "test.h5").exists():
        generate_synthetic(out, **{**PROBE_DATA, **overrides})
    return out


def _load(store: Path, split: str) -> Batch:
    data = FeatureStoreDataset(store / f"{split}.h5", ("audio", "text", "vision"))
    return collate(data.__getitems__(range(len(data))), task="classification")


def _raw_encoded(batch: Batch, rows: torch.Tensor) -> dict[str, EncoderOutput]:
    """Per modality the raw features of ``rows`` as an encoder output (sequences keep their steps)."""
    out = {}
    for m, x in batch["inputs"].items():
        x = x[rows]
        if x.dim() == 3:
            mask = batch["masks"][m][rows]
            out[m] = EncoderOutput(x, masked_mean(x, mask), mask)
        else:
            out[m] = EncoderOutput(None, x, None)
    return out


def _padded(batch: Batch, extra: int) -> Batch:
    """``batch`` with ``extra`` more zero, masked-out steps at the end of every sequence modality."""
    inputs, masks = dict(batch["inputs"]), dict(batch["masks"])
    for m, mask in batch["masks"].items():
        x = inputs[m]
        inputs[m] = torch.cat([x, x.new_zeros(x.shape[0], extra, x.shape[2])], dim=1)
        masks[m] = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)
    return {**batch, "inputs": inputs, "masks": masks}


def probe_fusion(name: str, params: Mapping[str, Any] | None, store: str | Path, *, epochs: int = 15,
                 lr: float = 3e-3, batch_size: int = 32, seed: int = 0, task_loss_weight: float = 1.0) -> ProbeResult:
    """Train fusion ``name`` (with ``params``) and a head on raw synthetic features; score the test split.

    The training loss is ``task_loss_weight * cross-entropy`` plus the fusion's auxiliary losses
    (``FusionOutput.aux_losses``, e.g. TMT's), each times the weight the fusion declares in its
    ``aux_loss_weights`` attribute (1 if it declares none).

    Args:
        name: registered fusion name.
        params: its constructor parameters (sizes and modality kinds are derived).
        store: a synthetic store folder (`write_probe_data`).
        epochs: passes over the train split (no model selection: the probe has no dev step).
        lr: Adam learning rate.
        batch_size: samples per step.
        seed: seeds the weights and the batch order.
        task_loss_weight: weight of the cross-entropy (TMT's published recipe uses 10).

    Returns:
        `ProbeResult`.
    """
    store = Path(store)
    train, test = _load(store, "train"), _load(store, "test")
    dims = {m: int(x.shape[-1]) for m, x in train["inputs"].items()}
    seed_everything(seed)
    fusion = build_fusion(ComponentConfig(name, dict(params or {})), dims, sorted(train["masks"]),
                          SYNTHETIC_CLASSES.num_classes)
    head = (torch.nn.Identity() if fusion.level == "decision"
            else MLP(fusion.out_dim, SYNTHETIC_CLASSES.num_classes, hidden_dims=(64,), dropout=0.0))
    params_all = [*fusion.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params_all, lr=lr)
    labels = train["label"]
    start = time.perf_counter()
    fusion.train()
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for i in range(0, len(labels), batch_size):
            rows = order[i:i + batch_size]
            out = fusion(_raw_encoded(train, rows))
            loss = task_loss_weight * torch.nn.functional.cross_entropy(head(out.fused), labels[rows])
            weights = getattr(fusion, "aux_loss_weights", {})
            for term, value in (out.aux_losses or {}).items():
                loss = loss + weights.get(term, 1.0) * value
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    fusion.eval()
    head.eval()
    rows = torch.arange(len(test["label"]))
    with torch.no_grad():
        out = fusion(_raw_encoded(test, rows))
        predicted = head(out.fused).argmax(dim=-1).numpy()
        repadded = head(fusion(_raw_encoded(_padded(test, EXTRA_PADDING), rows)).fused).argmax(dim=-1).numpy()
    f1 = f1_score(test["label"].numpy(), predicted, average=None, labels=range(SYNTHETIC_CLASSES.num_classes))
    co = [SYNTHETIC_CLASSES.id_of(c) for c in CO_OCCURRENCE]
    uni = [i for i in range(SYNTHETIC_CLASSES.num_classes) if i not in co]
    weights = {m: float(w.mean()) for m, w in (out.modality_weights or {}).items()}
    return ProbeResult(float(np.mean(f1[uni])), float(np.mean(f1[co])), weights, seconds,
                       float(np.mean(predicted == repadded)))
