"""Any registered fusions on the demo's synthetic benchmark: unimodal vs co-occurrence F1 on the test split.

Each fusion is trained with the demo's settings (``scenesense.demo.DEMO_DELTA``, seed 0), selected on
dev, and scored on test. The co-occurrence classes (``sync``/``async``) need cross-modal timing;
fusions that pool each modality first sit at chance (0.5) on them.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_fusions.py tacfn late amw
"""

from __future__ import annotations

import argparse
import logging


def main() -> None:
    """Train and score each named fusion; print one line of rounded metrics per fusion."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.demo import DEMO_DELTA, _row

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fusions", nargs="+", help="fusion names (`scenesense list fusions`)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/benchmarks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for fusion in args.fusions:
        cfg = build_config(DEMO_DELTA, {"name": f"synthetic_{fusion}", "output_dir": args.output_dir,
                                        "model": {"fusion": {"name": fusion}}, "trainer": {"seed": args.seed}})
        result = api.train(cfg)
        scored = api.evaluate(result.run_dir, store=api.prepare_store(cfg), split="test")
        row = _row(fusion, scored.metrics, 0.0)
        print(fusion, {k: round(v, 3) for k, v in row.items() if k not in ("variant", "seconds")}, flush=True)


if __name__ == "__main__":
    main()
