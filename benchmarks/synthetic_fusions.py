"""Fusions on the synthetic benchmark: unimodal vs co-occurrence F1 on the test split.

Two ways, both seed 0:

- ``--probe``: each fusion of :data:`PROBE_CASES` trained on the raw features, without encoders
  (:mod:`scenesense.evaluation.fusion_probe`): what the fusion itself can represent. The
  expectations asserted in ``tests/evaluation/test_fusion_probe.py`` come from this table.
- named fusions: the full model with the demo's settings (``scenesense.demo.DEMO_DELTA``, learned
  transformer encoders), selected on dev and scored on test.

The co-occurrence classes (``sync``/``async``) need cross-modal timing; 0.5 is chance.

- ``--padding``: concat and TMT with and without padding masks on padding-heavy data
  (`PADDING_HEAVY`), where an unmasked model attends to the zero padding as if it were real.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py --probe
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py --probe --only amw tmt
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py --padding
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py tacfn late amw
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from typing import Any

CROSS_ATTENTION = {"num_heads": 2, "dim_feedforward": 64, "time_bias": 20.0}
TMT = {"dim": 64, "num_heads": 4, "head_dim": 16, "dropout": 0.1, "input_dropout": 0.0}
PROBE_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("concat", {}), ("hadamard", {}), ("late", {"mode": "average"}), ("late", {"mode": "vote"}),
    ("amw", {"mode": "static"}), ("amw", {"mode": "sample"}), ("modality_attention", {"num_heads": 2}),
    ("tacfn", {"temporal": False}), ("tacfn", {"weight_axis": "features"}), ("tacfn", {"weight_axis": "time"}),
    ("cross_attention", CROSS_ATTENTION), ("residual_cross_attention", CROSS_ATTENTION),
    ("mult", {"num_heads": 2, "num_layers": 2, "self_layers": 1}),
    ("amw", {"mode": "temporal"}),
    ("tmt", {**TMT, "amw": "none"}), ("tmt", {**TMT, "amw": "static"}), ("tmt", {**TMT, "amw": "temporal"}),
)
# TMT trains with its published loss weights (task 10, orthogonality 0.01, similarity 1).
TASK_LOSS_WEIGHT = {"tmt": 10.0}
# Padding-heavy data: lengths 10-40 instead of 12-14 (over a third of the padded steps are padding).
PADDING_HEAVY = {"min_len": 10, "max_len": 40}
PADDING_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("concat", {}), ("tmt", {**TMT, "mask": True}), ("tmt", {**TMT, "mask": False}),
)


def probe(cases: tuple[tuple[str, dict[str, Any]], ...], **data: Any) -> None:
    """Print the probe table (Markdown) of ``cases`` on the probe data with ``data`` overrides;
    with overrides (padding-heavy data) also the share of predictions unchanged by extra padding."""
    from scenesense.evaluation.fusion_probe import EXTRA_PADDING, probe_fusion, write_probe_data

    agreement = f" same prediction with {EXTRA_PADDING} more padded steps |" if data else ""
    print(f"| fusion | params | unimodal F1 | co-occurrence F1 | mean modality weights | train s |{agreement}")
    print("|---|---|---|---|---|---|" + ("---|" if data else ""))
    with tempfile.TemporaryDirectory() as tmp:
        store = write_probe_data(tmp, **data)
        for name, params in cases:
            r = probe_fusion(name, params, store, task_loss_weight=TASK_LOSS_WEIGHT.get(name, 1.0))
            weights = ", ".join(f"{m} {w:.2f}" for m, w in r.modality_weights.items())
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            print(f"| `{name}` | {shown} | {r.unimodal_f1:.3f} | {r.co_occurrence_f1:.3f} | {weights} "
                  f"| {r.seconds:.0f} |" + (f" {r.padding_agreement:.3f} |" if data else ""), flush=True)


def full_models(fusions: list[str], seed: int, output_dir: str) -> None:
    """Train and score each named fusion in the demo's full model; print rounded metrics per fusion."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.demo import DEMO_DELTA, _row

    for fusion in fusions:
        cfg = build_config(DEMO_DELTA, {"name": f"synthetic_{fusion}", "output_dir": output_dir,
                                        "model": {"fusion": {"name": fusion}}, "trainer": {"seed": seed}})
        result = api.train(cfg)
        scored = api.evaluate(result.run_dir, store=api.prepare_store(cfg), split="test")
        row = _row(fusion, scored.metrics, 0.0)
        print(fusion, {k: round(v, 3) for k, v in row.items() if k not in ("variant", "seconds")}, flush=True)


def main() -> None:
    """Parse the arguments and run the probe or the full models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fusions", nargs="*", help="fusion names (`scenesense list fusions`) for full models")
    parser.add_argument("--probe", action="store_true", help="probe every fusion on raw features")
    parser.add_argument("--padding", action="store_true",
                        help="probe concat and TMT masked vs unmasked on padding-heavy data")
    parser.add_argument("--only", nargs="+", default=None, help="with --probe: only these fusion names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/benchmarks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.probe:
        probe(tuple(c for c in PROBE_CASES if args.only is None or c[0] in args.only))
    if args.padding:
        probe(PADDING_CASES, **PADDING_HEAVY)
    if args.fusions:
        full_models(args.fusions, args.seed, args.output_dir)
    if not (args.probe or args.padding or args.fusions):
        parser.error("name fusions to train, or --probe / --padding")


if __name__ == "__main__":
    main()
