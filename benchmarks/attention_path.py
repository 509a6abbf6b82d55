"""Attention with its weights returned against the fused kernel, one training step of ``nn.MultiheadAttention``.

scenesense's cross-attention, MulT and TACFN blocks return their head-averaged attention maps
(``FusionOutput.attention``), which makes ``nn.MultiheadAttention`` compute the weights
explicitly (``need_weights=True``) instead of calling ``scaled_dot_product_attention``
(``need_weights=False``). This times a forward + backward of one block both ways, with a
key-padding mask as the blocks pass it and with an additive float mask (the time-biased
cross-attention), in alternating rounds; prints milliseconds per step and the ratio weights /
fused (> 1: returning the weights costs time).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/attention_path.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/attention_path.py --batch 64 --steps 100 --dropout 0
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


def main() -> None:
    """Time both attention paths for each mask form; print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50, help="length of the sequences (20 %% of each is padding)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout on the attention weights")
    parser.add_argument("--repeats", type=int, default=30, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    b, t, h = args.batch, args.steps, args.heads
    block = nn.MultiheadAttention(args.dim, h, dropout=args.dropout, batch_first=True)
    x = torch.randn(b, t, args.dim, requires_grad=True)
    padding = torch.zeros(b, t, dtype=torch.bool)
    padding[:, int(0.8 * t):] = True  # True = padded key
    bias = torch.zeros(b * h, t, t).masked_fill(padding.repeat_interleave(h, 0).unsqueeze(1), float("-inf"))
    masks = {"key_padding_mask": {"key_padding_mask": padding}, "float mask": {"attn_mask": bias}}

    best: dict[tuple[str, bool], float] = {}
    for _ in range(args.rounds):
        for mask_name, kwargs in masks.items():
            for need_weights in (True, False):
                start = time.perf_counter()
                for _ in range(args.repeats):
                    out, _ = block(x, x, x, need_weights=need_weights, **kwargs)
                    out.sum().backward()
                ms = 1000 * (time.perf_counter() - start) / args.repeats
                key = (mask_name, need_weights)
                best[key] = min(best.get(key, ms), ms)

    rows = [{"mask": m, "weights_ms": best[(m, True)], "fused_ms": best[(m, False)],
             "ratio": best[(m, True)] / best[(m, False)]} for m in masks]
    print(f"[{b}, {t}, {args.dim}], {h} heads, dropout {args.dropout}, {torch.get_num_threads()} threads; "
          f"best of {args.rounds} rounds")
    print("| mask | weights returned (ms/step) | scaled_dot_product_attention (ms/step) | weights / fused |\n"
          "|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mask']} | {r['weights_ms']:.2f} | {r['fused_ms']:.2f} | {r['ratio']:.2f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
