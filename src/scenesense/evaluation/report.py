"""Render predictions and metrics: a predictions CSV, aligned text tables and Markdown.

Numbers are rounded only here, when rendered; the files and dicts they come from keep full
precision.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.utils.io import atomic_write_text

_OVERALL = ("accuracy", "weighted_f1", "macro_f1", "weighted_precision", "macro_precision", "weighted_recall",
            "macro_recall")


def write_predictions_csv(path: str | Path, ids: Sequence[str], labels: np.ndarray | Sequence[int],
                          probs: np.ndarray, label_names: Sequence[str]) -> Path:
    """Write one row per sample: ``id, label, pred, label_name, pred_name, prob_<class>...``.

    ``pred`` is the arg-max of ``probs``; probabilities are written at full precision (``repr``).
    The file is written atomically.

    Args:
        path: output CSV file.
        ids: ``N`` sample keys.
        labels: ``[N]`` true class ids.
        probs: ``[N, C]`` class probabilities.
        label_names: ``C`` class names (column suffixes and the ``*_name`` columns).

    Returns:
        ``path``.

    Raises:
        ValueError: if the lengths or the class count disagree.
    """
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    n, c = len(ids), len(label_names)
    if p.shape != (n, c) or y.shape != (n,):
        raise ValueError(f"expected {n} ids, labels [{n}] and probs [{n}, {c}]; got labels {y.shape} and "
                         f"probs {p.shape}")
    names = [str(name) for name in label_names]
    pred = p.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "label", "pred", "label_name", "pred_name", *(f"prob_{name}" for name in names)])
    for i in range(n):
        writer.writerow([ids[i], int(y[i]), int(pred[i]), names[int(y[i])], names[int(pred[i])],
                         *(repr(float(v)) for v in p[i])])
    return atomic_write_text(path, buffer.getvalue())


def write_regression_predictions_csv(path: str | Path, ids: Sequence[str], targets: np.ndarray | Sequence[float],
                                     preds: np.ndarray | Sequence[float]) -> Path:
    """Write one row per sample: ``id, label, pred`` (floats at full precision), atomically.

    Raises:
        ValueError: if the lengths disagree.
    """
    t, p = np.asarray(targets, dtype=np.float64), np.asarray(preds, dtype=np.float64)
    if t.shape != (len(ids),) or p.shape != t.shape:
        raise ValueError(f"expected {len(ids)} targets and predictions, got {t.shape} and {p.shape}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "label", "pred"])
    for i, key in enumerate(ids):
        writer.writerow([key, repr(float(t[i])), repr(float(p[i]))])
    return atomic_write_text(path, buffer.getvalue())


def _cell(value: Any, digits: int) -> str:  # noqa: ANN401
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return "" if value is None else str(value)


def _is_number(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def format_metrics_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 4) -> str:
    """A plain aligned text table for stdout (numbers right-aligned, text left-aligned).

    Args:
        rows: one mapping per row; missing keys print as empty cells.
        columns: keys to show, in order (also the header).
        digits: decimals for floats.

    Returns:
        The table, header and a dashed rule first, without a trailing newline.
    """
    cells = [[_cell(row.get(col), digits) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[j]) for r in cells]) for j, col in enumerate(columns)]
    numeric = [all(_is_number(row.get(col)) for row in rows) and bool(rows) for col in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(list(columns)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def markdown_from_cells(header: Sequence[str], cells: Iterable[Sequence[str]],
                        right_aligned: Sequence[bool]) -> str:
    """The package's one GitHub Markdown table writer.

    Args:
        header: the ``K`` column headers.
        cells: one sequence of ``K`` formatted cells per row, written as given (escape a ``|`` first
            where a cell may hold one).
        right_aligned: per column, ``---:`` (right) or ``---`` (left) in the alignment row.

    Returns:
        The header row, the alignment row and one row per entry of ``cells``, without a trailing newline.
    """
    align = "|" + "|".join("---:" if r else "---" for r in right_aligned) + "|"
    lines = ["| " + " | ".join(header) + " |", align]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 4, *,
                   right_align_numbers: bool = True) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns`` (floats to ``digits`` decimals, a
    missing key or ``None`` as an empty cell); a column holding only numbers is right-aligned unless
    ``right_align_numbers`` is false."""
    right = [right_align_numbers and bool(rows) and all(_is_number(r.get(c)) for r in rows) for c in columns]
    cells = ([_cell(row.get(c), digits) for c in columns] for row in rows)
    return markdown_from_cells(columns, cells, right)


def metrics_to_markdown(metrics: Mapping[str, Any], title: str | None = None, digits: int = 4) -> str:
    """Markdown report of a `scenesense.evaluation.functional.classification_metrics` dict.

    Sections: overall scores, per-class precision/recall/F1/support and, if present, the confusion
    matrix (rows = true class, columns = predicted).

    Returns:
        Markdown text ending with a newline.
    """
    parts = [f"## {title}", ""] if title else []
    overall = [{"metric": k, "value": metrics[k]} for k in _OVERALL if k in metrics]
    parts += [markdown_table(overall, ["metric", "value"], digits), ""]
    per_class = metrics.get("per_class", {})
    if per_class:
        rows = [{"class": name, **scores} for name, scores in per_class.items()]
        parts += [markdown_table(rows, ["class", "precision", "recall", "f1", "support"], digits), ""]
    cm = metrics.get("confusion_matrix")
    if cm is not None and per_class:
        names = list(per_class)
        rows = [{"true \\ pred": names[i], **dict(zip(names, row, strict=True))} for i, row in enumerate(cm)]
        parts += [markdown_table(rows, ["true \\ pred", *names], digits), ""]
    return "\n".join(parts)
