"""The main job: the five Scene Sense variants on the built-in synthetic benchmark.

The benchmark (`scenesense.data.synthetic`) has classes visible in one modality only and two
co-occurrence classes that only a fusion which aligns the text and vision sequences can separate.
``run_demo`` trains each variant (selected on dev), scores it on the held-out test split and writes
a Markdown report with a comparison table and plots, which name the split, the seed and the data.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scenesense import api
from scenesense.config import ExperimentConfig, build_config, from_dict, load_yaml
from scenesense.demo_report import write_demo_report
from scenesense.recipes import SCENE_SENSE_RECIPES, recipe_delta

# A laptop-sized model: the paper's architecture at width 64 instead of 512.
DEMO_DELTA: dict[str, Any] = {
    "modalities": ["audio", "text", "vision"],
    "data": {"dataset": "synthetic"},
    "model": {
        "out_dim": 64,
        "sequence_encoder": {"name": "transformer", "num_layers": 2, "num_heads": 4,
                             "dim_feedforward": 128, "dropout": 0.1},
        "head_hidden_dim": 64,
    },
    "trainer": {"epochs": 25, "lr": 1e-3, "batch_size": 32, "patience": 6, "progress": False},
}
# Cross-attention at width 64: 4 heads, a position-wise feed-forward sublayer and the same-moment
# time prior (see CrossAttentionBlock); the paper's version has neither extra.
CROSS_ATTENTION_PARAMS: dict[str, Any] = {"num_heads": 4, "dim_feedforward": 128, "time_bias": 20.0}
QUICK_DATA: dict[str, Any] = {"n_train": 600, "n_dev": 200, "n_test": 200}
CO_OCCURRENCE = ("sync", "async")


@dataclass(frozen=True)
class DemoResult:
    """Rows of the comparison table (one per variant) and the report path."""

    rows: list[dict[str, Any]]
    report: Path
    margin: float  # cross-attention minus concat, mean F1 on the co-occurrence classes (test)


def _variant_config(recipe: str, out_dir: Path, seed: int, epochs: int | None, quick: bool) -> Any:  # noqa: ANN401
    delta = recipe_delta(recipe)
    fusion = delta["model"]["fusion"]["name"]
    if "cross_attention" in fusion:
        delta = {**delta, "model": {**delta["model"], "fusion": {"name": fusion, **CROSS_ATTENTION_PARAMS}}}
    layers: list[dict[str, Any]] = [DEMO_DELTA, delta, {"name": recipe, "output_dir": str(out_dir),
                                                        "trainer": {"seed": seed}}]
    if epochs is not None:
        layers.append({"trainer": {"epochs": epochs}})
    if quick:
        layers.append({"data": {"params": QUICK_DATA}})
    return build_config(*layers)


def _row(recipe: str, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    per_class = metrics["per_class"]
    co = [per_class[c]["f1"] for c in CO_OCCURRENCE]
    uni = [v["f1"] for k, v in per_class.items() if k not in CO_OCCURRENCE]
    return {
        "variant": recipe,
        "accuracy": metrics["accuracy"],
        "weighted_f1": metrics["weighted_f1"],
        "macro_f1": metrics["macro_f1"],
        "unimodal_f1": sum(uni) / len(uni),
        "co_occurrence_f1": sum(co) / len(co),
        "seconds": seconds,
    }


def _discard_stale_run(run_dir: Path, cfg: Any) -> None:  # noqa: ANN401
    """The demo owns its run folders: one made with other settings is replaced, a matching one resumed."""
    saved = run_dir / "config.yaml"
    if saved.exists() and from_dict(ExperimentConfig, load_yaml(saved)) != cfg:
        shutil.rmtree(run_dir)


def _train_variant(recipe: str, out: Path, seed: int, epochs: int | None, quick: bool,
                   threads: int | None = None, log_level: int | None = None) -> tuple[dict[str, Any], int | None]:
    """Train (or resume) one variant, score it on test; returns its table row and the test size.

    ``threads`` and ``log_level`` are set in a worker process (``None``: left as they are).
    """
    if log_level is not None:
        logging.basicConfig(level=log_level, format="%(asctime)s %(message)s")
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = _variant_config(recipe, out, seed, epochs, quick)
    _discard_stale_run(out / recipe, cfg)
    start = time.perf_counter()
    result = api.train(cfg, run_dir=out / recipe)
    seconds = time.perf_counter() - start
    test = api.evaluate(result.run_dir, store=api.prepare_store(cfg), split="test")
    return _row(recipe, test.metrics, seconds), test.metrics.get("n")


def default_workers(n_variants: int) -> int:
    """Parallel variants by default: one per CPU core, at most one per variant."""
    return max(1, min(n_variants, os.cpu_count() or 1))


def run_demo(output_dir: str | Path = "runs/demo", *, seed: int = 0, epochs: int | None = None,
             quick: bool = False, variants: tuple[str, ...] = SCENE_SENSE_RECIPES,
             workers: int | None = None) -> DemoResult:
    """Train ``variants`` on the synthetic benchmark and write ``<output_dir>/report.md``.

    With ``workers`` above 1 the variants train in that many spawned processes, each with
    ``cpu_count // workers`` torch threads (at least 1), the cross-attention variants (the slowest)
    first; the rows keep the order of ``variants``. A variant's scores depend on its thread count
    in the last digits (floating-point sums in another order), not on the other variants.

    Args:
        output_dir: folder for the per-variant run directories and the report.
        seed: seed of every run (the benchmark itself is generated with its own fixed seed).
        epochs: override the maximum number of epochs.
        quick: a small benchmark (600 training samples) for smoke tests.
        variants: recipe names to compare.
        workers: variants trained at once (default: `default_workers`, one per CPU core).
    """
    out = Path(output_dir)
    workers = default_workers(len(variants)) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        results = {recipe: _train_variant(recipe, out, seed, epochs, quick) for recipe in variants}
    else:
        api.prepare_store(_variant_config(variants[0], out, seed, epochs, quick))  # once, before the workers
        threads = max(1, (os.cpu_count() or 1) // workers)
        slowest_first = sorted(variants, key=lambda r: "cross_attention" not in r)
        context = multiprocessing.get_context("spawn")  # no forked torch/HDF5 state
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {r: pool.submit(_train_variant, r, out, seed, epochs, quick, threads,
                                      logging.getLogger().getEffectiveLevel()) for r in slowest_first}
            results = {r: futures[r].result() for r in variants}
    rows = [results[r][0] for r in variants]
    n_test = next((n for _, n in results.values() if n is not None), None)
    by_name = {r["variant"]: r for r in rows}
    margin = float("nan")
    if "cross_attention" in by_name and "concat" in by_name:
        margin = by_name["cross_attention"]["co_occurrence_f1"] - by_name["concat"]["co_occurrence_f1"]
    report = write_demo_report(out, rows, margin, seed=seed, n_test=n_test)
    return DemoResult(rows, report, margin)
