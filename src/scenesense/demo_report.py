"""Markdown report and comparison plot of the demo.

Everything the demo reports is the held-out test split of the synthetic benchmark, one run (one
seed) per variant; the report and the figure say so, and name the command that rebuilds the same
numbers from the runs with `scenesense report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenesense.evaluation import comparison_plots
from scenesense.evaluation.report import markdown_table
from scenesense.utils.io import atomic_write_text

COLUMNS = ("variant", "accuracy", "weighted_f1", "macro_f1", "unimodal_f1", "co_occurrence_f1", "seconds")
SPLIT = "test"
"""The split every number of the demo's report scores."""


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """The variants' scores as a GitHub Markdown table (`COLUMNS`, floats to 3 decimals, all
    columns left-aligned)."""
    return markdown_table(rows, COLUMNS, digits=3, right_align_numbers=False)


def scope_line(seed: int, n_test: int | None = None) -> str:
    """What the numbers are: ``"test split of the synthetic benchmark (200 utterances); seed 0, one run
    per variant (n = 1, no spread)"``."""
    size = f" ({n_test} utterances)" if n_test is not None else ""
    return (f"{SPLIT} split of the synthetic benchmark{size}; seed {seed}, one run per variant "
            "(n = 1, no spread)")


def comparison_figure_title(seed: int) -> str:
    """The comparison figure's title: metric, split, data and seed."""
    return (f"Mean F1 of unimodal and co-occurrence classes per variant\n"
            f"{SPLIT} split of the synthetic benchmark, seed {seed} (one run per variant)")


def _plot(rows: list[dict[str, Any]], path: Path, seed: int) -> Path:
    values = {"unimodal classes": [r["unimodal_f1"] for r in rows],
              "co-occurrence classes": [r["co_occurrence_f1"] for r in rows]}
    return comparison_plots.plot_grouped_bars(
        values, [r["variant"] for r in rows], path, dpi=110, ylabel=f"mean F1 ({SPLIT})",
        title=comparison_figure_title(seed), ylim=(0, 1),
        reference=(0.5, "chance on the co-occurrence classes"))


def report_command(out_dir: Path) -> str:
    """The `scenesense report` command that rebuilds the demo's numbers from its runs."""
    return f"scenesense report {out_dir} --split {SPLIT}"


def write_demo_report(out_dir: Path, rows: list[dict[str, Any]], margin: float, seed: int = 0,
                      n_test: int | None = None) -> Path:
    """Write ``report.md`` and ``comparison.png`` into ``out_dir``; return the report path.

    Args:
        out_dir: the demo's folder (one run folder per variant inside).
        rows: one row per variant (`COLUMNS`), scored on the test split.
        margin: cross-attention minus concatenation, mean F1 on the co-occurrence classes.
        seed: the seed of every run.
        n_test: the number of test utterances, when known.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot(rows, out_dir / "comparison.png", seed)
    command = report_command(out_dir)
    text = "\n".join([
        "# Scene Sense variants on the synthetic benchmark",
        "",
        f"Scores: {scope_line(seed, n_test)}.",
        "",
        "Each variant was trained on the train split, selected on dev (early stopping on dev loss),",
        "and scored once on the held-out test split. `unimodal_f1` is the mean F1 over the classes",
        "visible in one modality; `co_occurrence_f1` over `sync`/`async`, which only a fusion that",
        "aligns the text and vision sequences can separate (chance is 0.5).",
        "",
        comparison_table(rows),
        "",
        f"Cross-attention minus concatenation on the co-occurrence classes: **{margin:+.3f}** F1 ({SPLIT}).",
        "",
        "![comparison](comparison.png)",
        "",
        "Per-variant loss curves and confusion matrices: `<variant>/loss_curves.png`,",
        "`<variant>/eval/test/confusion_matrix.png`. The same test scores, with confidence intervals",
        "and paired tests between the variants:",
        "",
        f"    {command}",
        "",
    ])
    path = out_dir / "report.md"
    atomic_write_text(path, text)
    return path
