"""The main job end to end, on a tiny benchmark."""

from __future__ import annotations

from scenesense.demo import run_demo


def test_demo_writes_a_report_and_reruns_from_its_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    kwargs = {"epochs": 1, "quick": True, "variants": ("concat", "cross_attention")}
    result = run_demo(tmp_path / "demo", **kwargs)
    assert [r["variant"] for r in result.rows] == ["concat", "cross_attention"]
    text = result.report.read_text()
    assert "| concat |" in text and "co_occurrence_f1" in text
    assert (tmp_path / "demo" / "comparison.png").stat().st_size > 0
    expected = result.rows[1]["co_occurrence_f1"] - result.rows[0]["co_occurrence_f1"]
    assert result.margin == expected
    again = run_demo(tmp_path / "demo", **kwargs)  # finished runs are reused, not retrained
    assert [r["accuracy"] for r in again.rows] == [r["accuracy"] for r in result.rows]
