"""Report rendering: predictions CSV, text tables and Markdown."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from scenesense.evaluation.functional import classification_metrics
from scenesense.demo_report import comparison_table
from scenesense.evaluation.report import (
    format_metrics_table,
    markdown_from_cells,
    markdown_table,
    metrics_to_markdown,
    write_predictions_csv,
)


def test_predictions_csv_columns_and_full_precision(tmp_path):
    probs = np.array([[0.1, 0.7, 0.2], [1 / 3, 1 / 3 - 1e-9, 1 / 3 + 1e-9]])
    names = ["neu", "joy", "sad"]
    path = write_predictions_csv(tmp_path / "p.csv", ["a", "b"], np.array([1, 0]), probs, names)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "label", "pred", "label_name", "pred_name",
                             "prob_neu", "prob_joy", "prob_sad"]
    assert rows[0] == {"id": "a", "label": "1", "pred": "1", "label_name": "joy", "pred_name": "joy",
                       "prob_neu": "0.1", "prob_joy": "0.7", "prob_sad": "0.2"}
    assert rows[1]["pred_name"] == "sad"
    assert float(rows[1]["prob_neu"]) == 1 / 3


def test_predictions_csv_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"probs \[2, 3\]"):
        write_predictions_csv(tmp_path / "p.csv", ["a", "b"], [0, 1], np.ones((2, 2)), ["x", "y", "z"])
    assert not (tmp_path / "p.csv").exists()


def test_text_table_is_aligned():
    rows = [{"run": "concat", "seed": 1, "accuracy": 0.51234567}, {"run": "cross_attention", "seed": 12}]
    text = format_metrics_table(rows, ["run", "seed", "accuracy"])
    lines = text.splitlines()
    assert lines[0].split() == ["run", "seed", "accuracy"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["concat", "1", "0.5123"]
    assert lines[2].index("1") + 1 == lines[3].index("12") + 2  # numbers right-aligned
    assert lines[3].startswith("cross_attention")
    assert len(lines) == 4


def test_markdown_report_sections():
    m = classification_metrics([0, 1, 1], [0, 1, 0], ["neu", "joy"])
    md = metrics_to_markdown(m, title="dev")
    assert md.startswith("## dev\n")
    assert "| accuracy | 0.6667 |" in md
    assert "| joy | 1.0000 | 0.5000 | 0.6667 | 2 |" in md
    assert "| neu | 1 | 0 |" in md  # confusion row: true neu -> 1 neu, 0 joy
    assert markdown_table([{"a": 1.23456}], ["a"], digits=2) == "| a |\n|---:|\n| 1.23 |"


def test_one_markdown_writer_behind_every_table():
    assert markdown_from_cells(["a", "b"], [["1", "x|y"], ["2", ""]], [True, False]) == (
        "| a | b |\n|---:|---|\n| 1 | x|y |\n| 2 |  |")  # cells verbatim: the caller escapes
    rows = [{"variant": "concat", "accuracy": 0.51234, "n": 3, "gone": None}]
    assert markdown_table(rows, ["variant", "accuracy", "n", "gone"], digits=3) == (
        "| variant | accuracy | n | gone |\n|---|---:|---:|---|\n| concat | 0.512 | 3 |  |")
    assert markdown_table(rows, ["variant", "n"], right_align_numbers=False) == (
        "| variant | n |\n|---|---|\n| concat | 3 |")
    demo_row = {"variant": "concat", "accuracy": 0.5, "weighted_f1": 0.25, "macro_f1": 1 / 3, "unimodal_f1": 1.0,
                "co_occurrence_f1": 0.5, "seconds": 12.3456}
    assert comparison_table([demo_row]).splitlines() == [
        "| variant | accuracy | weighted_f1 | macro_f1 | unimodal_f1 | co_occurrence_f1 | seconds |",
        "|---|---|---|---|---|---|---|",
        "| concat | 0.500 | 0.250 | 0.333 | 1.000 | 0.500 | 12.346 |"]
