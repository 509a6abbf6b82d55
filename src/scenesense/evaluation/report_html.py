"""Renderings of the experiment report: its tables as CSV, JSON, Markdown and LaTeX, its figures, and
its two documents, ``report.md`` (figures linked) and one self-contained ``report.html`` (figures
embedded as base64 PNG, inline CSS, no external asset)."""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.evaluation import comparison_plots, plots
from scenesense.evaluation.report import markdown_from_cells
from scenesense.evaluation.report_tables import degradation_curves
from scenesense.evaluation.report_types import SPREAD, Group, Scope, Table
from scenesense.utils.io import atomic_write_bytes


def table_to_json(table: Table) -> dict[str, Any]:
    """``{"title", "columns" (displayed headers), "rows" (raw), "notes"}``, plus the table's scope:
    ``"split"``, ``"seeds"``, ``"seeds_per_group"``, ``"data"`` and ``"spread"`` (see
    `scenesense.evaluation.report_types.Scope.to_json`)."""
    scope = table.scope.to_json() if table.scope is not None else {}
    return {"title": table.title, "columns": [c.header for c in table.columns], "rows": table.rows,
            "notes": list(table.notes), **scope}


def _csv_cell(v: Any) -> Any:  # noqa: ANN401
    """Floats at full precision (``repr``), ``None`` as an empty cell, a list (of seeds) as ``0 1 2``."""
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return "" if v is None else repr(v) if isinstance(v, float) else v


_SCOPE_KEYS = ("split", "seed_list", "seeds_a", "seed_list_a", "seeds_b", "seed_list_b")
"""Row keys that say what a row covers; ``tables.csv`` puts them last."""


def tables_to_csv(tables: Sequence[Table]) -> str:
    """One CSV of the raw rows of all tables: a ``table`` column, then the union of the tables' keys
    (a cell is empty where its table has no such key), the split and seed columns last."""
    keys = list(dict.fromkeys(k for t in tables for row in t.rows for k in row))
    keys = [k for k in keys if k not in _SCOPE_KEYS] + [k for k in _SCOPE_KEYS if k in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["table", *keys], lineterminator="\n", restval="")
    writer.writeheader()
    for t in tables:
        for row in t.rows:
            writer.writerow({"table": t.name, **{k: _csv_cell(v) for k, v in row.items()}})
    return buffer.getvalue()


def table_to_markdown(table: Table) -> str:
    """``### title``, a GitHub Markdown table of the displayed cells, then the notes as bullets."""
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    grid = markdown_from_cells([escape(c.header) for c in table.columns],
                               ([escape(x) for x in cells] for cells in table.cells()),
                               [c.numeric for c in table.columns])
    notes = [""] + [f"- {n}" for n in table.notes] if table.notes else []
    return "\n".join([f"### {table.title}", "", grid, *notes])


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                  "[": "{[}", "]": "{]}",  # a row starting with "[" would be read as \\[<length>]
                  "±": r"$\pm$", "Δ": r"$\Delta$", "–": "--"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``_`` -> ``\\_``; ``±`` -> ``$\\pm$``)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(table: Table) -> str:
    """A booktabs ``table`` environment with one ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    body = [" & ".join(latex_escape(x) for x in cells) + r" \\" for cells in table.cells()]
    return "\n".join([r"\begin{table}[ht]", r"\centering", f"\\caption{{{latex_escape(table.title)}}}",
                      f"\\label{{tab:{table.name}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
                      " & ".join(latex_escape(c.header) for c in table.columns) + r" \\", r"\midrule", *body,
                      r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def tables_to_latex(tables: Sequence[Table]) -> str:
    """All tables, one ``table`` environment each."""
    return "% scenesense experiment report; needs \\usepackage{booktabs}\n\n" + "\n".join(
        latex_table(t) for t in tables)


TITLE = "scenesense experiment report"

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; }
th { border-bottom: 2px solid #444; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { font-size: 0.9em; color: #555; }
ul.notes { font-size: 0.9em; }
"""


def markdown_document(tables: Sequence[Table], summary: Sequence[str], figures: Mapping[str, str]) -> str:
    """``report.md``: the summary, every table (with its notes), then the figures as image links.

    Args:
        tables: the report's tables, in order.
        summary: sentences shown first.
        figures: caption -> image path relative to the report.

    Returns:
        Markdown text ending with a newline.
    """
    parts = [f"# {TITLE}", "", *(f"- {s}" for s in summary), "", "## Tables", ""]
    for t in tables:
        parts += [table_to_markdown(t), ""]
    parts += ["## Figures", ""]
    for caption, path in figures.items():
        parts += [f"**{caption}**", "", f"![{caption}]({path})", ""]
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if c.numeric else "text"}">{html.escape(x)}</td>'
                         for c, x in zip(table.columns, cells, strict=True)) + "</tr>\n"
        for cells in table.cells())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f'<table id="{table.name}"><caption>{html.escape(table.title)}</caption>\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n"
            + (f'<ul class="notes">{notes}</ul>\n' if notes else ""))


def _html_figure(caption: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def _code_spans(text: str) -> str:
    """Markdown code spans (`` `x` ``) of already escaped text as ``<code>x</code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def html_document(tables: Sequence[Table], summary: Sequence[str], figures: Mapping[str, Path]) -> str:
    """``report.html``: the same content as `markdown_document`, with the PNG figures embedded.

    Args:
        tables: the report's tables, in order.
        summary: sentences shown first.
        figures: caption -> PNG file (read and inlined as base64).

    Returns:
        One HTML page.
    """
    items = "".join(f"<li>{_code_spans(html.escape(s))}</li>" for s in summary)
    return "".join([
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{TITLE}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{TITLE}</h1>\n<ul>{items}</ul>\n<h2>Tables</h2>\n",
        *(_html_table(t) for t in tables),
        "<h2>Figures</h2>\n",
        *(_html_figure(c, p) for c, p in figures.items()),
        "</body>\n</html>\n"])


def _seeds_of(group: Group) -> str:
    """``"seed 0 (one run)"`` or ``"seeds 0, 1, 2 (summed over 3 runs)"``."""
    if len(group.runs) == 1:
        return f"seed {group.seeds[0]} (one run)"
    return f"seeds {', '.join(map(str, group.seeds))} (summed over {len(group.runs)} runs)"


def write_figures(groups: Sequence[Group], label_names: Sequence[str], robustness: Table | None,
                  folder: Path, dpi: int = 120) -> dict[str, Path]:
    """Draw the report's figures into ``folder``; every title and caption names what is shown, the
    split, the data and the seeds.

    Figure 3 (loss curves overlaid), per-class F1 bars (error bars: the sample std over seeds, none
    for single runs), one confusion matrix per group (summed over seeds, row-normalised), a copy of
    one run's ``modality_weights.png`` per group that has one, and the robustness degradation curves
    when ``robustness`` has rows with a severity.

    Returns:
        caption -> PNG path, in report order.
    """
    names = list(label_names)
    scope = Scope.of(groups)
    histories = {g.name: [list(r.history) for r in g.runs] for g in groups}
    loss = (f"training loss (solid) and dev loss (dashed) per epoch on {scope.data}; "
            f"{scope.seeds_text('mean')}")
    figures = {f"Figure 3: {loss}": comparison_plots.plot_loss_overlay(
        histories, folder / "loss_curves.png", title=loss[0].upper() + loss[1:], dpi=dpi)}
    f1 = {g.name: np.array([[r.metrics["per_class"][c]["f1"] for c in names] for r in g.runs])
          for g in groups}  # [S, C] per group
    title = f"Per-class F1, {scope.describe()}"
    bars = "" if scope.single_seed else f" (error bars: {SPREAD})"
    figures[title + bars] = comparison_plots.plot_per_class_f1(
        {k: v.mean(axis=0) for k, v in f1.items()}, names, folder / "per_class_f1.png",
        errors={k: v.std(axis=0, ddof=1) for k, v in f1.items() if len(v) > 1}, title=title, dpi=dpi)
    for g in groups:
        cm = np.sum([np.asarray(r.metrics["confusion_matrix"]) for r in g.runs], axis=0)
        where = f"{Scope.of([g]).split} split of {Scope.of([g]).data}, {_seeds_of(g)}"
        figures[f"Confusion matrix of {g.name}, {where}, row-normalised"] = plots.plot_confusion_matrix(
            cm, names, folder / f"confusion_{g.slug}.png", title=f"{g.name}\n{where}", dpi=dpi)
    for g in groups:
        source = next((r for r in g.runs if (r.run_dir / "modality_weights.png").exists()), None)
        if source is not None:
            caption = (f"Modality weights of {g.name} per true class, dev split of "
                       f"{source.dataset or 'the data'}, seed {source.seed} (run {source.run_dir.name})")
            figures[caption] = atomic_write_bytes(folder / f"modality_weights_{g.slug}.png",
                                                  (source.run_dir / "modality_weights.png").read_bytes())
    curves, clean = degradation_curves(robustness) if robustness else ({}, {})
    if robustness and curves:
        metric = robustness.rows[0]["metric"]
        where = robustness.scope.describe("mean") if robustness.scope is not None else ""
        title = f"Robustness: {metric} against the perturbation's severity, {where}"
        figures[f"{title} (dotted: clean)"] = comparison_plots.plot_degradation_curves(
            curves, folder / "robustness.png", ylabel=metric, clean=clean, title=title, dpi=dpi)
    return figures
