"""Experiment grids: modality sets x variants (recipes) x seeds, run in worker processes, resumable.

A *cell* is one training run: a modality set, a variant (a recipe of `scenesense.recipes`)
and a seed, layered over a base configuration. Each cell trains into its own run directory
``<experiment>/cells/<modalities>__<variant>__s<seed>/`` (a normal run directory plus
``cell.json``); a cell whose ``metrics.json`` exists is finished and skipped, and a killed cell
resumes from its ``last.pt``. Cells run in a local process pool (``workers`` processes, each with
``threads`` torch threads) or, with ``backend="ray"`` and Ray installed, as Ray tasks on the
cluster ``ray.init()`` connects to (``RAY_ADDRESS``). With ``robustness=True`` each worker runs the
robustness suite on its cell right after training, so that work is parallel too.

The default grid is the Scene Sense paper's Table 3: every non-empty subset of the base
configuration's modalities; one-modality sets train the base configuration's own model (variant
``base``: no recipe) and multimodal sets every Scene Sense recipe. Variants that choose no fusion
(dialogue context, losses) also run on one-modality sets, e.g. ``--variants base context_past``.
A cross-attention variant on a set with fewer than two sequence modalities gets
``vector_tokens: true`` (vector modalities join as one-step sequences).
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scenesense import api
from scenesense.config import ConfigError, ExperimentConfig, build_config, from_dict, to_dict
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.evaluation.robustness import evaluate_robustness
from scenesense.recipes import RECIPES, SCENE_SENSE_RECIPES, recipe_delta
from scenesense.registry import load_plugins
from scenesense.runs import CELL_FILE, METRICS_FILE, SPEC_FILE, read_spec
from scenesense.utils.extras import Needs
from scenesense.utils.io import write_json

log = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.json"
BASE_VARIANT = "base"  # the base configuration's own model, no recipe layered over it
BACKENDS = ("local", "ray")

RAY_NEEDS = Needs("ray", ("ray",), "the ray backend")
"""What ``backend="ray"`` imports: Ray, from the ``ray`` extra."""


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    Fields:
        modalities: sorted modality names.
        variant: recipe name, or ``"base"`` for the base configuration's own model.
        seed: training seed.
        delta: configuration layered over the base config and the recipe (e.g. ``vector_tokens``).
    """

    modalities: tuple[str, ...]
    variant: str
    seed: int
    delta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``audio+text__concat__s0``: the cell's folder name."""
        return f"{'+'.join(self.modalities)}__{self.variant}__s{self.seed}"

    def config(self, base: Mapping[str, Any], experiment: str) -> ExperimentConfig:
        """The cell's full configuration: base < recipe < delta < modalities, name and seed."""
        recipe = {} if self.variant == BASE_VARIANT else recipe_delta(self.variant)
        return build_config(base, recipe, dict(self.delta), {
            "modalities": list(self.modalities), "name": f"{experiment}-{self.id}",
            "trainer": {"seed": self.seed}})


@dataclass(frozen=True)
class ExperimentResult:
    """What `run_experiment` did: the folder, every cell's run directory, and which it trained now."""

    folder: Path
    run_dirs: dict[str, Path]
    trained: list[str]
    skipped: list[str]


def modality_sets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities``, by size then name (Table 3's rows)."""
    names = sorted(set(modalities))
    return [s for k in range(1, len(names) + 1) for s in itertools.combinations(names, k)]


def parse_modality_set(text: str) -> tuple[str, ...]:
    """``"audio+text"`` (or ``"audio,text"``) -> ``("audio", "text")``."""
    parts = [p.strip() for p in text.replace(",", "+").split("+") if p.strip()]
    if not parts:
        raise ConfigError(f"empty modality set {text!r}")
    return tuple(sorted(set(parts)))


def build_grid(base: ExperimentConfig, feature_kinds: Mapping[str, str], *,
               sets: Sequence[Sequence[str]] | None = None, variants: Sequence[str] | None = None,
               seeds: Sequence[int] = (0, 1, 2)) -> list[Cell]:
    """The cells of a grid.

    Args:
        base: the base configuration (its ``modalities`` give the default sets).
        feature_kinds: ``"sequence"`` or ``"vector"`` per modality of the data.
        sets: modality sets (default: every non-empty subset of ``base.modalities``).
        variants: recipes (or ``"base"``) for the multimodal sets (default: the five Scene Sense
            recipes). A one-modality set trains the variants that choose no fusion (``base``,
            context or loss recipes), or `BASE_VARIANT` when every variant is a fusion.
        seeds: training seeds.

    Returns:
        Cells ordered seed-major (a partial grid covers every variant early).

    Raises:
        ConfigError: unknown modality or recipe, or no seeds.
    """
    chosen_sets = [tuple(sorted(set(s))) for s in (sets or modality_sets(base.modalities))]
    chosen_variants = list(variants or SCENE_SENSE_RECIPES)
    for s in chosen_sets:
        unknown = sorted(set(s) - set(feature_kinds))
        if unknown:
            raise ConfigError(f"modality set {'+'.join(s)}: the data has no {unknown} (it has {sorted(feature_kinds)})")
    for v in chosen_variants:
        if v != BASE_VARIANT and v not in RECIPES.names():
            raise ConfigError(f"unknown variant {v!r}; use {BASE_VARIANT!r} or a recipe: {RECIPES.names()}")
    if not seeds:
        raise ConfigError("an experiment needs at least one seed")
    cells = []
    for seed in seeds:
        for s in chosen_sets:
            for variant in (_unimodal(chosen_variants) if len(s) == 1 else chosen_variants):
                cells.append(Cell(s, variant, int(seed), _delta(variant, s, feature_kinds)))
    return cells


def _unimodal(variants: Sequence[str]) -> list[str]:
    """The variants that choose no fusion (so they mean something for one modality), else ``base``."""
    kept = [v for v in variants if v == BASE_VARIANT or "fusion" not in recipe_delta(v).get("model", {})]
    return kept or [BASE_VARIANT]


def _delta(variant: str, modalities: Sequence[str], feature_kinds: Mapping[str, str]) -> dict[str, Any]:
    if variant == BASE_VARIANT:
        return {}
    fusion = recipe_delta(variant).get("model", {}).get("fusion", {}).get("name", "")
    sequences = [m for m in modalities if feature_kinds[m] == "sequence"]
    if "cross_attention" in fusion and len(sequences) < 2:
        return {"model": {"fusion": {"vector_tokens": True}}}
    return {}


def run_experiment(base: ExperimentConfig, folder: str | Path, *, sets: Sequence[Sequence[str]] | None = None,
                   variants: Sequence[str] | None = None, seeds: Sequence[int] = (0, 1, 2), workers: int = 1,
                   threads: int | None = None, backend: str = "local", robustness: bool = False,
                   after_cell: Callable[[Path], None] | None = None) -> ExperimentResult:
    """Run (or resume) a grid into ``folder``.

    Args:
        base: the base configuration.
        folder: the experiment folder (created; an existing one must hold the same grid).
        sets: modality sets (see `build_grid`).
        variants: recipes for multimodal sets.
        seeds: training seeds.
        workers: parallel cells (local processes, or concurrent Ray tasks).
        threads: torch threads per cell (default: CPU count // workers, at least 1).
        backend: ``"local"`` (process pool) or ``"ray"``.
        robustness: run the robustness suite on each cell right after training, in its worker.
        after_cell: called in the parent with each finished cell's run directory (e.g. robustness).

    Returns:
        `ExperimentResult`.

    Raises:
        ConfigError: bad grid, unknown backend, or a folder holding another grid.
        MissingExtraError: ``backend="ray"`` without the ``ray`` extra (checked before any work).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "ray":
        RAY_NEEDS.check()
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    folder = Path(folder)
    store = api.prepare_store(base)  # once, in the parent: workers then only read it
    kinds = FeatureStoreDataset(store / f"{base.data.train_split}.h5", base.modalities).feature_kinds
    cells = build_grid(base, kinds, sets=sets, variants=variants, seeds=seeds)
    base_dict = to_dict(base)
    name = folder.name
    configs = {c.id: to_dict(c.config(base_dict, name)) for c in cells}  # validates every cell up front
    _claim_folder(folder, base_dict, cells)
    run_dirs = {c.id: folder / "cells" / c.id for c in cells}
    pending = [c for c in cells if not (run_dirs[c.id] / METRICS_FILE).exists()]
    skipped = [c.id for c in cells if c not in pending]
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    for cell in pending:
        write_json(run_dirs[cell.id] / CELL_FILE, {"modalities": list(cell.modalities), "variant": cell.variant,
                                                   "seed": cell.seed, "experiment": name})
    log.info("experiment %s: %d cells, %d finished, %d to run (%d workers x %d threads, %s)",
             folder, len(cells), len(skipped), len(pending), workers, threads, backend)
    jobs = [(configs[c.id], str(run_dirs[c.id]), threads, robustness) for c in pending]
    runner = _run_ray if backend == "ray" else _run_local
    for finished in runner(jobs, workers):
        log.info("cell finished: %s", finished.name)
        if after_cell is not None:
            after_cell(finished)
    return ExperimentResult(folder, run_dirs, [c.id for c in pending], skipped)


def _as_config(values: Any) -> ExperimentConfig | None:  # noqa: ANN401
    try:
        return from_dict(ExperimentConfig, json.loads(json.dumps(values)))
    except (ConfigError, TypeError):
        return None


def _claim_folder(folder: Path, base: Mapping[str, Any], cells: Sequence[Cell]) -> None:
    """Write ``experiment.json``, or check an existing one describes the same base config and grid."""
    record = {"base_config": base, "cells": [
        {"id": c.id, "modalities": list(c.modalities), "variant": c.variant, "seed": c.seed, "delta": dict(c.delta)}
        for c in cells]}
    path = folder / EXPERIMENT_FILE
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if _as_config(saved.get("base_config")) != _as_config(base):  # defaults of newer fields fill in
            raise ConfigError(f"{folder} holds an experiment with another base configuration; "
                              "use another --output-dir")
        old = {c["id"] for c in saved.get("cells", [])}
        record["cells"] = saved["cells"] + [c for c in record["cells"] if c["id"] not in old]  # grids may grow
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def train_cell(config: dict[str, Any], run_dir: str, threads: int, robustness: bool = False) -> str:
    """Train one cell in this process (the worker entry point), then optionally stress it; returns its folder.

    A spawned worker imports the plugin modules first (`load_plugins`), so cells may use your components.
    """
    load_plugins()
    torch.set_num_threads(threads)
    api.train(from_dict(ExperimentConfig, config), run_dir=run_dir)
    if robustness and not is_regression_run(run_dir):
        evaluate_robustness(run_dir)
    return run_dir


def is_regression_run(run_dir: str | Path) -> bool:
    """Whether a finished run predicts scores (MOSI/MOSEI sentiment): the robustness suite and the
    experiment report are for classification runs, so an experiment skips them for these."""
    return read_spec(Path(run_dir) / SPEC_FILE).task == "regression"


def _run_local(jobs: Sequence[tuple[dict[str, Any], str, int, bool]], workers: int):  # noqa: ANN202
    """Yield each finished cell's run directory; cells run in ``workers`` spawned processes."""
    if workers == 1:
        for job in jobs:
            yield Path(train_cell(*job))
        return
    context = multiprocessing.get_context("spawn")  # no forked torch/HDF5 state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(train_cell, *job) for job in jobs]
        for future in as_completed(futures):
            yield Path(future.result())


def ray_gpus(config: Mapping[str, Any]) -> int:
    """GPUs a cell asks Ray for: ``trainer.devices`` when ``trainer.accelerator`` is ``cuda`` or
    ``gpu`` (Ray hides GPUs from a task that requests none), else 0."""
    trainer = config.get("trainer", {})
    return int(trainer.get("devices", 1)) if trainer.get("accelerator") in ("cuda", "gpu") else 0


def _run_ray(jobs: Sequence[tuple[dict[str, Any], str, int, bool]], workers: int):  # noqa: ANN202
    """Yield each finished cell's run directory; cells run as Ray tasks (at most ``workers`` at once)."""
    ray = RAY_NEEDS.require("ray")
    if not ray.is_initialized():
        ray.init()  # RAY_ADDRESS selects a cluster; otherwise a local one
    pending: list[Any] = []
    queue = list(jobs)
    while queue or pending:
        while queue and len(pending) < workers:
            config, run_dir, threads, stress = queue.pop(0)
            task = ray.remote(num_cpus=threads, num_gpus=ray_gpus(config))(train_cell)
            pending.append(task.remote(config, run_dir, threads, stress))
        done, pending = ray.wait(pending, num_returns=1)
        yield Path(ray.get(done[0]))
