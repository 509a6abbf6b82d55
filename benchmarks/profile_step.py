"""Where a training step and a prediction spend their time, per fusion recipe, with the PyTorch profiler.

For each recipe (default: concat, cross_attention, tacfn, mult, tmt) the script builds the model
as ``scenesense train --recipe R`` would over a synthetic feature store (three sequence modalities,
``--dim`` features, 20-``--max-len`` steps), then runs ``--steps`` training steps as the trainer does
(batch from the store through DataLoader + collate; forward and cross-entropy; backward; gradient
clipping + Adam) after ``--warmup`` untimed ones, and ``--steps`` predictions (forward under
``torch.inference_mode`` on the same batches). Each phase is timed on the wall clock; then the
profiler records as many steps again: the share of that wall time outside every PyTorch operator's
self time bounds the Python and framework overhead (data loading included), and the operators with
the most self time are listed. Prints one row per
recipe (milliseconds per step and shares) and the three most expensive operators of each.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_step.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_step.py --recipes mult --steps 50 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from scenesense import api
from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.models.builders import build_model
from scenesense.recipes import RECIPES, resolve_config

PHASES = ("data", "forward", "backward", "optimizer")


def _config(recipe: str, root: Path, args: argparse.Namespace) -> Any:  # noqa: ANN401
    data = {"dataset": "synthetic", "cache_dir": str(root),
            "params": {"dim": args.dim, "max_len": args.max_len, "min_len": 20,
                       "n_train": args.batch_size * (2 * args.steps + args.warmup), "n_dev": 32, "n_test": 32}}
    return resolve_config({"data": data}, RECIPES.get(recipe).delta, {"trainer": {"batch_size": args.batch_size}})


def profile_recipe(recipe: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per step of each phase, the operator self time, and the top operators."""
    cfg = _config(recipe, root, args)
    store = api.prepare_store(cfg)
    dataset = FeatureStoreDataset(store / "train.h5", cfg.modalities)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, dataset.feature_dims, dataset.feature_kinds,
                        dataset.label_space.num_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.trainer.lr)
    loader = iter(DataLoader(dataset, batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                             generator=torch.Generator().manual_seed(0)))
    wall = dict.fromkeys(PHASES, 0.0)
    batches = []

    def step(timed: bool) -> None:
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        out = model(batch["inputs"], batch["masks"], batch["present"])
        loss = torch.nn.functional.cross_entropy(out.logits, batch["label"])
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.grad_clip)
        optimizer.step()
        t4 = time.perf_counter()
        if timed:
            for name, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                wall[name] += seconds
            batches.append(batch)

    model.train()
    for _ in range(args.warmup):
        step(timed=False)
    for _ in range(args.steps):
        step(timed=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:  # the same number of steps again, profiled
        start = time.perf_counter()
        for _ in range(args.steps):
            step(timed=False)
        profiled = time.perf_counter() - start
    ops = prof.key_averages()
    op_seconds = sum(e.self_cpu_time_total for e in ops) / 1e6  # profiler times are microseconds
    top = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)[:3]

    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            model(batch["inputs"], batch["masks"], batch["present"])
    predict = time.perf_counter() - start

    per_step = {k: 1000 * v / args.steps for k, v in wall.items()}
    return {"recipe": recipe, "ms": per_step, "total_ms": sum(per_step.values()),
            "outside_ops": max(1.0 - op_seconds / profiled, 0.0),
            "op_calls": sum(e.count for e in ops) / args.steps,
            "predict_ms": 1000 * predict / args.steps, "parameters": sum(p.numel() for p in model.parameters()),
            "top_ops": [(e.key, e.self_cpu_time_total / 1e3 / args.steps) for e in top]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["concat", "cross_attention", "tacfn", "mult", "tmt"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128, help="features per modality")
    parser.add_argument("--max-len", type=int, default=50, help="longest sequence (shortest: 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scenesense-profile-") as tmp:
        rows = [profile_recipe(r, Path(tmp) / r, args) for r in args.recipes]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"threads {torch.get_num_threads()}, batch {args.batch_size}, 3 sequence modalities x {args.dim} features, "
          f"20-{args.max_len} steps, {args.steps} steps after {args.warmup}")
    print("| recipe | parameters | train step (ms) | data | forward | backward | optimizer | outside operators "
          "(profiled) | operator calls per step | predict (ms per batch) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        share = {k: f"{v:.1f} ({100 * v / r['total_ms']:.0f}%)" for k, v in r["ms"].items()}
        print(f"| `{r['recipe']}` | {r['parameters']:,} | {r['total_ms']:.1f} | {share['data']} | {share['forward']} | "
              f"{share['backward']} | {share['optimizer']} | {100 * r['outside_ops']:.0f}% | {r['op_calls']:.0f} | "
              f"{r['predict_ms']:.1f} |")
    for r in rows:
        print(f"{r['recipe']}: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in r["top_ops"]))


if __name__ == "__main__":
    main()
