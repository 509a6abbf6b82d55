"""Seconds per training step of the ``minilm`` encoder, fine-tuning 0, 2 or all 6 MiniLM layers.

One step is what the trainer does per batch: the encoder over a batch of stored MiniLM hidden
states, a linear head, cross-entropy, backward, and an Adam step over the model's parameter
groups (pretrained layers unfrozen). The batch imitates MELD: ``--batch`` utterances whose
lengths (word-pieces incl. ``[CLS]``/``[SEP]``) are drawn uniformly from ``--min-tokens ..
--max-tokens`` (mean ~20), zero padded to the longest. In one process, for each ``from_layer``
(6 = no pretrained layer: mean pooling and the projection only, the baseline) the step runs
``--warmup`` times untimed, then ``--steps`` times; the median wall time is printed with its ratio
to the baseline, the process CPU time per step, and the implied time of one MELD train epoch
(9,989 utterances). Pin the run to 2 cores, the project's reference machine::

    OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/minilm_finetune_step.py
    .venv/bin/python benchmarks/minilm_finetune_step.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from torch import nn

from scenesense.encoders.minilm import MiniLMEncoder

MELD_TRAIN = 9989  # utterances in MELD's train split


def _batch(batch: int, min_tokens: int, max_tokens: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(min_tokens, max_tokens + 1, (batch,), generator=g)  # [B]
    mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    x = torch.randn(batch, mask.shape[1], 384, generator=g) * mask.unsqueeze(-1)  # [B, T, 384]
    y = torch.randint(0, 7, (batch,), generator=g)
    return x.to(device), mask.to(device), y.to(device), lengths


def _time_steps(from_layer: int, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, warmup: int,
                steps: int, lr: float) -> tuple[float, float]:
    """Median wall seconds and mean process CPU seconds per step."""
    torch.manual_seed(0)
    encoder = MiniLMEncoder(384, 256, from_layer=from_layer, freeze_epochs=0).to(x.device).train()
    head = nn.Linear(256, 7).to(x.device)
    groups = [{"params": g["params"], "lr": lr * g["lr_scale"]} for g in encoder.parameter_groups()]
    optimizer = torch.optim.Adam([*groups, {"params": list(head.parameters()), "lr": lr}])

    def step() -> None:
        loss = nn.functional.cross_entropy(head(encoder(x, mask).pooled), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    walls, cpu = [], time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        step()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (time.process_time() - cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--min-tokens", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=28)
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 4, 0],
                        help="from_layer values; the first is the baseline")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    x, mask, y, lengths = _batch(args.batch, args.min_tokens, args.max_tokens, device)
    steps_per_epoch = math.ceil(MELD_TRAIN / args.batch)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"tokens mean {lengths.float().mean():.1f} (padded to {mask.shape[1]}), {args.steps} timed steps")
    print(f"{'from_layer':>10} {'layers':>6} {'s/step':>8} {'x base':>7} {'cpu s/step':>10} "
          f"{'MELD epoch':>11}")
    base = None
    for from_layer in args.layers:
        wall, cpu = _time_steps(from_layer, x, mask, y, args.warmup, args.steps, args.lr)
        base = wall if base is None else base
        epoch_min = wall * steps_per_epoch / 60
        print(f"{from_layer:>10} {6 - from_layer:>6} {wall:>8.4f} {wall / base:>7.2f} {cpu:>10.4f} "
              f"{epoch_min:>8.1f} min")
    print(f"(MELD epoch = {steps_per_epoch} train steps of {args.batch}; dev/test passes not included)")


if __name__ == "__main__":
    main()
