"""The demo's report says what it scores (split, seed, data) and its figure keeps the legend off the bars."""

from __future__ import annotations

from scenesense.demo_report import write_demo_report
from tests.support.figures import catch_saved_figures, covered, titles

VARIANTS = ("concat", "hadamard", "cross_attention", "residual", "residual_cross_attention")


def test_the_demo_report_names_split_seed_and_data_and_its_legend_covers_no_bar(tmp_path, monkeypatch):
    drawn = catch_saved_figures(monkeypatch)
    rows = [{"variant": v, "accuracy": 0.9, "weighted_f1": 0.9, "macro_f1": 0.9, "seconds": 1.0,
             "unimodal_f1": 0.97 - 0.01 * i, "co_occurrence_f1": 0.95}  # tall bars everywhere
            for i, v in enumerate(VARIANTS)]
    text = write_demo_report(tmp_path, rows, 0.0).read_text()
    scope = "test split of the synthetic benchmark; seed 0, one run per variant (n = 1, no spread)"
    assert f"Scores: {scope}." in text
    assert "±" not in text
    command = f"scenesense report {tmp_path} --split test"
    assert f"    {command}\n" in text  # the command that rebuilds these numbers
    (fig,) = drawn
    assert titles(fig) == ("Mean F1 of unimodal and co-occurrence classes per variant test split of the "
                           "synthetic benchmark, seed 0 (one run per variant)")
    assert len(fig.axes[0].patches) == 2 * len(VARIANTS)
    assert covered(fig) == []
