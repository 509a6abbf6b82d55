"""How fast could the ``mult`` recipe train? Its step time with parts of the work taken away, in one process.

The store and model of ``benchmarks/mmsa_peer.py`` (the synthetic benchmark, 600 training samples:
text and vision 12-20 steps of 32 features, audio a 32-vector; the demo's encoders and head;
batch 32): one training step (forward, backward, Adam) of the ``mult`` recipe as it is, then
of variants that do less work, each timed over the same batches after 3 warm-up steps:

* ``identity encoders``: the raw features go straight into the fusion, as in MulT itself
  (no Transformer encoders before it);
* ``no fusion dropout``: ``dropout`` and ``attn_dropout`` of the fusion set to 0 (an upper
  bound on what cheaper dropout masks could save, not a setting of equal quality);
* both.

Prints milliseconds per step and each variant's speed-up over the recipe (> 1: faster).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mult_bounds.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.synthetic import generate_synthetic
from scenesense.demo import DEMO_DELTA
from scenesense.models.builders import build_model
from scenesense.recipes import RECIPES, resolve_config

IDENTITY = {"model": {"sequence_encoder": {"name": "identity"}, "vector_encoder": {"name": "identity_vector"}}}
NO_DROPOUT = {"model": {"fusion": {"dropout": 0.0, "attn_dropout": 0.0}}}
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "recipe": [],
    "identity encoders": [IDENTITY],
    "no fusion dropout": [NO_DROPOUT],
    "identity encoders, no fusion dropout": [IDENTITY, NO_DROPOUT],
}


def step_ms(store: Path, layers: list[dict[str, Any]], batch_size: int, warmup: int) -> dict[str, Any]:
    """Mean milliseconds of one training step over one epoch of batches, and the parameter count."""
    cfg = resolve_config(DEMO_DELTA, {"data": {"dataset": "store", "root": str(store)}},
                         RECIPES.get("mult").delta, *layers)
    dataset = FeatureStoreDataset(store / "train.h5", cfg.modalities)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, dataset.feature_dims, dataset.feature_kinds,
                        dataset.label_space.num_outputs).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.trainer.lr)
    batches = list(DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                              generator=torch.Generator().manual_seed(0)))

    def step(batch: dict[str, Any]) -> None:
        out = model(batch["inputs"], batch["masks"], batch["present"])
        loss = torch.nn.functional.cross_entropy(out.logits, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for batch in batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    return {"ms": 1000 * (time.perf_counter() - start) / len(batches),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scenesense-mult-") as tmp:
        store = generate_synthetic(Path(tmp) / "store", n_train=600, n_dev=200, n_test=200, seed=0)
        rows = {name: step_ms(store, layers, args.batch_size, args.warmup) for name, layers in VARIANTS.items()}
    base = rows["recipe"]["ms"]
    if args.json:
        print(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=1))
        return
    print(f"mult training step, batch {args.batch_size}, {torch.get_num_threads()} thread(s)")
    print("| variant | parameters | ms per step | speed-up over the recipe |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['parameters']:,} | {row['ms']:.1f} | {base / row['ms']:.2f} |")


if __name__ == "__main__":
    main()
