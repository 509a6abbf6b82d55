"""The experiment report: the paper's Tables 3-5, robustness and efficiency tables, and figures, rebuilt
from finished runs.

The runs are records read from their folders (`scenesense.runs.load_runs`, which reads
``config.yaml``, the scores of one split (``metrics.json`` and ``predictions.csv`` for the dev
split, ``eval/<split>/`` for another) and, when present, ``cell.json``, ``robustness.json`` and
``efficiency.json``). Runs are grouped by (modality set, variant); the runs of a group differ only
by seed. `write_report` writes ``report.md``, ``report.html`` (self-contained), ``tables.csv``,
``tables.json``, ``tables.tex`` and ``figures/*.png``; every table and figure names the split it
scores, its seeds and its data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenesense.evaluation import report_html, report_tables
from scenesense.evaluation.report_types import SPREAD, Group, Scope, Table, group_runs
from scenesense.runs.records import RunRecord
from scenesense.utils.io import atomic_write_text, write_json


@dataclass(frozen=True)
class ExperimentReport:
    """Everything the report shows: the groups, the chosen comparisons and the tables, in order."""

    runs: list[RunRecord]
    groups: list[Group]
    ablation_set: str
    baseline: Group
    models: tuple[Group, Group]
    tables: list[Table]

    @property
    def scope(self) -> Scope:
        """The split, seeds and data of all the runs."""
        return Scope.of(self.groups)


def _ablation_set(groups: Sequence[Group], modalities: str | None) -> str:
    sets = list(dict.fromkeys(g.modality_set for g in groups))
    if modalities is not None:
        wanted = "+".join(sorted(m.strip() for m in modalities.split("+")))
        if wanted not in sets:
            raise ValueError(f"no runs of modality set {wanted!r}; the runs have {sets}")
        return wanted
    return max(sets, key=lambda s: (s.count("+"), sum(g.modality_set == s for g in groups)))


def _resolve(groups: Sequence[Group], name: str, ablation_set: str, what: str = "model") -> Group:
    """A group by ``"<set>/<variant>"`` or by variant (preferring ``ablation_set``)."""
    if "/" in name:
        matches = [g for g in groups if g.name == name]
    else:
        matches = [g for g in groups if g.variant == name and g.modality_set == ablation_set]
        matches = matches or [g for g in groups if g.variant == name]
    if len(matches) != 1:
        how = "matches several groups" if matches else "matches no group"
        raise ValueError(f"{what} {name!r} {how}; choose one of {[g.name for g in groups]}")
    return matches[0]


def build_report(runs: Sequence[RunRecord], *, baseline: str | None = None,
                 models: Sequence[str] | None = None, modalities: str | None = None,
                 n_bootstrap: int = 2000, n_permutations: int = 5000, seed: int = 0) -> ExperimentReport:
    """Group the runs and build every table.

    Args:
        runs: finished runs, e.g. from `scenesense.runs.load_runs`.
        baseline: Table 4's reference variant (default ``"concat"`` if the ablation set has it, else
            its first variant).
        models: Table 5's two models, each ``"<set>/<variant>"`` or a variant name (default: the best
            group by mean weighted F1 and the baseline; the runner-up if the best is the baseline).
        modalities: Table 4's modality set, e.g. ``"audio+text"`` (default: the set with the most
            modalities).
        n_bootstrap: bootstrap resamples of the confidence intervals.
        n_permutations: resamples of the paired permutation test.
        seed: random seed of the resampling.

    Returns:
        `ExperimentReport`.

    Raises:
        ValueError: no runs, runs scored on different splits, unknown modality set, baseline or
            model, or Table 4 groups scored on different (seed, utterance) pairs.
    """
    if not runs:
        raise ValueError("no runs to report on")
    splits = {r.split: r.run_dir for r in runs}
    if len(splits) > 1:
        raise ValueError("the runs were scored on different splits: "
                         + ", ".join(f"{split} ({path})" for split, path in splits.items()))
    groups = group_runs(runs)
    ablation_set = _ablation_set(groups, modalities)
    in_set = [g for g in groups if g.modality_set == ablation_set]
    default = "concat" if any(g.variant == "concat" for g in in_set) else in_set[0].variant
    base = _resolve(in_set, baseline or default, ablation_set, what="baseline")
    if models is not None:
        if len(models) != 2:
            raise ValueError(f"Table 5 compares exactly two models, got {list(models)}")
        pair = (_resolve(groups, models[0], ablation_set), _resolve(groups, models[1], ablation_set))
    else:
        ranked = sorted(groups, key=lambda g: -float(np.mean(g.values("weighted_f1"))))
        best = next((g for g in ranked if g is not base), base)
        pair = (best, base)
    label_names = list(runs[0].label_names)
    tables = [report_tables.fusion_comparison_table(groups, n_bootstrap=n_bootstrap, seed=seed),
              report_tables.fusion_ablation_table(in_set, base, n_permutations=n_permutations, seed=seed),
              report_tables.per_class_f1_table(pair[0], pair[1], label_names)]
    extra = (report_tables.robustness_table(groups), report_tables.efficiency_table(groups))
    tables += [t for t in extra if t is not None]
    return ExperimentReport(list(runs), groups, ablation_set, base, pair, tables)


def default_output_dir(paths: Sequence[str | Path]) -> Path:
    """``<common parent>/report``: an experiment folder is its own parent, a run folder's is its folder."""
    bases = [Path(p) if (Path(p) / "cells").is_dir() else Path(p).parent for p in paths]
    return Path(os.path.commonpath([str(b.resolve()) for b in bases])) / "report"


def write_report(report: ExperimentReport, output_dir: str | Path, dpi: int = 120) -> dict[str, Path]:
    """Write the figures, the tables (CSV, JSON, LaTeX) and the Markdown and HTML reports, atomically.

    ``tables.csv`` is one CSV of every table's raw rows: a ``table`` column (``table3``, ``table4``,
    ``table5``, ``robustness``, ``efficiency``), then the union of the tables' columns.

    Returns:
        ``"markdown"``, ``"html"``, ``"csv"``, ``"json"``, ``"latex"`` and ``"figure:<name>"`` -> path.
    """
    out = Path(output_dir)
    robustness = next((t for t in report.tables if t.name == "robustness"), None)
    figures = report_html.write_figures(report.groups, report.runs[0].label_names, robustness,
                                        out / "figures", dpi)
    links = {caption: path.relative_to(out).as_posix() for caption, path in figures.items()}
    summary = _summary_lines(report)
    runs = [{"run_dir": str(r.run_dir), "modalities": r.modality_set, "variant": r.variant, "seed": r.seed,
             "split": r.split, "dataset": r.dataset, "store": r.store} for r in report.runs]
    written = {
        "markdown": atomic_write_text(out / "report.md",
                                      report_html.markdown_document(report.tables, summary, links)),
        "html": atomic_write_text(out / "report.html",
                                  report_html.html_document(report.tables, summary, figures)),
        "csv": atomic_write_text(out / "tables.csv", report_html.tables_to_csv(report.tables)),
        "json": write_json(out / "tables.json", {
            "runs": runs, "tables": {t.name: report_html.table_to_json(t) for t in report.tables},
            "figures": links, "scope": report.scope.to_json()}),
        "latex": atomic_write_text(out / "tables.tex", report_html.tables_to_latex(report.tables)),
    }
    return {**written, **{f"figure:{path.stem}": path for path in figures.values()}}


def _split_line(split: str) -> str:
    if split == "dev":
        return ("Scored split: dev, the split each run selected its best epoch on (so its scores are "
                "optimistic); for held-out scores, score the runs with "
                "`scenesense evaluate RUN --store STORE --split test` and rebuild the report with "
                "`scenesense report --split test`")
    return f"Scored split: {split}, each run's `eval/{split}/` scores"


def _summary_lines(report: ExperimentReport) -> list[str]:
    first, scope = report.runs[0], report.scope
    experiments = sorted({r.experiment for r in report.runs if r.experiment})
    runs = f"{len(report.runs)} runs in {len(report.groups)} groups (modality set / variant)"
    stores = f" (feature store {', '.join(scope.stores)})" if scope.stores else ""
    if scope.single_seed:
        seeds = (f"Seeds: {', '.join(map(str, scope.seeds))}, one run per group (n = 1): values are single "
                 "runs, shown without a spread")
    else:
        counts = "-".join(str(c) for c in (scope.per_group[0], scope.per_group[-1])) \
            if len(scope.per_group) > 1 else str(scope.per_group[0])
        seeds = (f"Seeds: {', '.join(map(str, scope.seeds))}, n = {counts} per group; ± is the {SPREAD}"
                 + (" (none where a group has one run)" if 1 in scope.per_group else ""))
    return [runs + (f", experiment {', '.join(experiments)}" if experiments else ""),
            _split_line(first.split),
            f"Data: {scope.data}{stores}; modality sets {', '.join(scope.modality_sets)}; "
            f"{len(first.label_names)} classes: {', '.join(first.label_names)}",
            seeds,
            f"Table 4 compares the {report.ablation_set} variants with {report.baseline.name}; "
            f"Table 5 compares {report.models[0].name} with {report.models[1].name}."]
