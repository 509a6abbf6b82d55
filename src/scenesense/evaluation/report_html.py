"""The experiment report's two documents: ``report.md`` (figures linked) and one self-contained
``report.html`` (figures embedded as base64 PNG, inline CSS, no external asset)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from scenesense.evaluation.report_tables import Table, markdown_table

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
        parts += [markdown_table(t), ""]
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


def html_document(tables: Sequence[Table], summary: Sequence[str], figures: Mapping[str, Path]) -> str:
    """``report.html``: the same content as :func:`markdown_document`, with the PNG figures embedded.

    Args:
        tables: the report's tables, in order.
        summary: sentences shown first.
        figures: caption -> PNG file (read and inlined as base64).

    Returns:
        One HTML page.
    """
    items = "".join(f"<li>{html.escape(s)}</li>" for s in summary)
    return "".join([
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{TITLE}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{TITLE}</h1>\n<ul>{items}</ul>\n<h2>Tables</h2>\n",
        *(_html_table(t) for t in tables),
        "<h2>Figures</h2>\n",
        *(_html_figure(c, p) for c, p in figures.items()),
        "</body>\n</html>\n"])
