"""The main job: the five Scene Sense variants on the built-in synthetic benchmark.

The benchmark (`scenesense.data.synthetic`) has classes visible in one modality only and two
co-occurrence classes that only a fusion which aligns the text and vision sequences can separate.
``run_demo`` trains each variant (selected on dev), scores it on the held-out test split and writes
a Markdown report with a comparison table and plots, which name the split, the seed and the data.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def run_demo(output_dir: str | Path = "runs/demo", *, seed: int = 0, epochs: int | None = None,
             quick: bool = False, variants: tuple[str, ...] = SCENE_SENSE_RECIPES) -> DemoResult:
    """Train ``variants`` on the synthetic benchmark and write ``<output_dir>/report.md``.

    Args:
        output_dir: folder for the per-variant run directories and the report.
        seed: seed of every run (the benchmark itself is generated with its own fixed seed).
        epochs: override the maximum number of epochs.
        quick: a small benchmark (600 training samples) for smoke tests.
        variants: recipe names to compare.
    """
    out = Path(output_dir)
    rows, n_test = [], None
    for recipe in variants:
        cfg = _variant_config(recipe, out, seed, epochs, quick)
        _discard_stale_run(out / recipe, cfg)
        start = time.perf_counter()
        result = api.train(cfg, run_dir=out / recipe)
        seconds = time.perf_counter() - start
        test = api.evaluate(result.run_dir, store=api.prepare_store(cfg), split="test")
        rows.append(_row(recipe, test.metrics, seconds))
        n_test = test.metrics.get("n", n_test)
    by_name = {r["variant"]: r for r in rows}
    margin = float("nan")
    if "cross_attention" in by_name and "concat" in by_name:
        margin = by_name["cross_attention"]["co_occurrence_f1"] - by_name["concat"]["co_occurrence_f1"]
    report = write_demo_report(out, rows, margin, seed=seed, n_test=n_test)
    return DemoResult(rows, report, margin)
