"""MELD with MPNet-base beside MiniLM: extraction time, and training cost per number of trained layers.

Two measurements, each printed as a table (and one JSON line):

``extract``: builds (or reuses) the feature store of a config, e.g. ``configs/meld_mpnet.yaml``,
and prints the wall time and utterances per second (train + dev; a store already in the cache
reads as a few seconds)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/meld_mpnet.py extract -c configs/meld_mpnet.yaml \
        --root path/to/MELD

``cost``: seconds per training step of the ``hf`` encoder with 0, 1 and 2 trained layers, for the
bundled all-MiniLM-L6-v2 (6 layers, 384-d) and all-mpnet-base-v2 (12 layers, 768-d), and the
implied time of one MELD train epoch. One step is what the trainer does per batch: the encoder
over a batch of stored hidden states, a linear head, cross-entropy, backward and an Adam step
(pretrained layers unfrozen). The batches are those of an epoch with random batches: the real
word-piece lengths of MELD train (each model's own tokenizer, at most ``--max-tokens``), shuffled,
cut into batches of ``--batch``, each padded to its longest utterance. For each model and layer
count, ``--warmup`` steps run untimed, then ``--steps`` batches are timed; an epoch is their mean
times the number of batches in MELD train (the dev pass after each epoch, forward only, is not
counted). The hidden states are random: the cost does not depend on their values. ``CPU s per
step`` is the process's CPU time: on a machine shared with other work it stays close to what the
step costs on a core of its own, while the wall time grows with the load::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/meld_mpnet.py cost --root path/to/MELD
    .venv/bin/python benchmarks/meld_mpnet.py cost --root path/to/MELD --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger("meld_mpnet")

MODELS = {"MiniLM-L6": None, "MPNet-base": "all-mpnet-base-v2"}
"""The models compared: name -> the ``hf`` encoder's ``model_path`` (``None``: the bundled MiniLM)."""


def _extract(args: argparse.Namespace) -> dict[str, Any]:
    """Build or reuse the store of ``args.config``; time it."""
    import h5py

    from scenesense import api
    from scenesense.config import build_config, load_yaml, parse_override

    cfg = build_config(load_yaml(args.config), {"data": {"root": args.root}},
                       *(parse_override(o) for o in args.set))
    start = time.perf_counter()
    store = api.prepare_store(cfg)
    seconds = time.perf_counter() - start
    rows = {}
    for split in (cfg.data.train_split, cfg.data.dev_split):
        with h5py.File(store / f"{split}.h5", "r") as f:
            rows[split] = int(f["meta/label"].shape[0])
    total = sum(rows.values())
    result = {"config": args.config, "store": str(store), "rows": rows, "seconds": seconds,
              "utterances_per_s": total / seconds, "threads": torch.get_num_threads()}
    print(f"{args.config}: {total} utterances ({', '.join(f'{k} {v}' for k, v in rows.items())}) in "
          f"{seconds / 60:.1f} min, {total / seconds:.1f} utterances/s on {result['threads']} thread(s); "
          f"store {store}")
    return result


def _lengths(root: str, model_path: str | None, max_tokens: int) -> list[int]:
    """Word-pieces (special tokens included, at most ``max_tokens``) of every MELD train utterance."""
    from scenesense.data.meld import find_meld_csv, read_meld_csv
    from scenesense.encoders.hf import model_folder
    from scenesense.utils.extras import require_extra

    transformers = require_extra("transformers", "text", "the MELD cost benchmark")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_folder(model_path)), local_files_only=True)
    csv = find_meld_csv(Path(root), "train", required=True)
    assert csv is not None
    texts = [u.text for u in read_meld_csv(csv)]
    return [min(len(ids), max_tokens) for ids in tokenizer(texts)["input_ids"]]


def _batches(lengths: list[int], batch: int, count: int, seed: int) -> list[list[int]]:
    """The utterance lengths of the first ``count`` random batches of one shuffled epoch."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=g).tolist()
    return [[lengths[i] for i in order[s:s + batch]] for s in range(0, len(order), batch)][:count]


def _time_layers(model_path: str | None, trained: int, batches: list[list[int]], args: argparse.Namespace
                 ) -> dict[str, float]:
    """Mean wall and process CPU seconds per step with the top ``trained`` layers of the model."""
    from scenesense.encoders.hf import HFEncoder, model_folder
    from scenesense.utils.hf_folders import read_json

    config = read_json(model_folder(model_path) / "config.json")
    hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    torch.manual_seed(0)
    device = torch.device(args.device)
    encoder = HFEncoder(hidden, 256, from_layer=layers - trained, model_path=model_path,
                        freeze_epochs=0).to(device).train()
    head = nn.Linear(256, 7).to(device)
    groups = [{"params": g["params"], "lr": args.lr * g["lr_scale"]} for g in encoder.parameter_groups()]
    optimizer = torch.optim.Adam([*groups, {"params": list(head.parameters()), "lr": args.lr}])
    g = torch.Generator().manual_seed(1)

    def step(batch: list[int]) -> None:
        lengths = torch.tensor(batch)
        mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        x = torch.randn(*mask.shape, hidden, generator=g) * mask.unsqueeze(-1)  # [B, T, D]
        y = torch.randint(0, 7, (len(batch),), generator=g)
        x, mask, y = x.to(device), mask.to(device), y.to(device)
        loss = nn.functional.cross_entropy(head(encoder(x, mask).pooled), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for batch in batches[:args.warmup]:
        step(batch)
    walls, cpu = [], time.process_time()
    for batch in batches[args.warmup:]:
        start = time.perf_counter()
        step(batch)
        walls.append(time.perf_counter() - start)
    return {"wall_s": statistics.fmean(walls), "median_s": statistics.median(walls),
            "cpu_s": (time.process_time() - cpu) / len(walls)}


def _cost(args: argparse.Namespace) -> dict[str, Any]:
    """The cost table: per model and trained-layer count, seconds per step and per MELD train epoch."""
    rows = []
    for name, model_path in MODELS.items():
        lengths = _lengths(args.root, model_path, args.max_tokens)
        batches = -(-len(lengths) // args.batch)
        sampled = _batches(lengths, args.batch, args.warmup + args.steps, args.seed)
        for trained in args.layers:
            timing = _time_layers(model_path, trained, sampled, args)
            rows.append({"model": name, "trained_layers": trained, **timing,
                         "mean_padded": statistics.fmean(max(b) for b in sampled[args.warmup:]),
                         "mean_real": statistics.fmean(lengths), "batches": batches,
                         "epoch_min": timing["wall_s"] * batches / 60})
            logger.info("%s, %d trained layers: %.3f s per step", name, trained, timing["wall_s"])
    print(f"MELD train, random batches of {args.batch}, {args.steps} timed steps after {args.warmup}, "
          f"device {args.device}, {torch.get_num_threads()} thread(s)")
    print("| model | trained layers | s per step | CPU s per step | word-pieces per row (padded) | "
          "MELD train epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['trained_layers']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | "
              f"{r['mean_real']:.1f} ({r['mean_padded']:.1f}) | {r['epoch_min']:.1f} min |")
    return {"device": args.device, "threads": torch.get_num_threads(), "rows": rows}


def main() -> None:
    """Run ``extract`` or ``cost`` and print its table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    root = {"default": os.environ.get("SCENESENSE_MELD_ROOT"),
            "required": "SCENESENSE_MELD_ROOT" not in os.environ, "help": "folder with the MELD CSVs"}
    extract = sub.add_parser("extract", help="build or reuse a config's feature store, timed")
    extract.add_argument("--root", **root)
    extract.add_argument("-c", "--config", required=True, help="model config (YAML)")
    extract.add_argument("--set", action="append", default=[], help="config overrides, key.path=value")
    cost = sub.add_parser("cost", help="seconds per training step and per epoch, 0-2 trained layers")
    cost.add_argument("--root", **root)
    cost.add_argument("--layers", type=int, nargs="+", default=[0, 1, 2], help="trained layer counts")
    cost.add_argument("--batch", type=int, default=32)
    cost.add_argument("--max-tokens", type=int, default=50, help="the extractor's max_tokens")
    cost.add_argument("--warmup", type=int, default=2)
    cost.add_argument("--steps", type=int, default=10)
    cost.add_argument("--lr", type=float, default=1e-4)
    cost.add_argument("--seed", type=int, default=0)
    cost.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = _extract(args) if args.command == "extract" else _cost(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
