"""The main job end to end, on a tiny benchmark."""

from __future__ import annotations

import os

import torch

from scenesense.demo import run_demo
from scenesense.evaluation.experiment_report import build_report
from scenesense.runs import load_runs


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


def test_variants_trained_in_parallel_processes_score_as_trained_one_by_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    kwargs = {"epochs": 1, "quick": True, "variants": ("concat", "cross_attention")}
    parallel = run_demo(tmp_path / "parallel", workers=2, **kwargs)
    assert [r["variant"] for r in parallel.rows] == ["concat", "cross_attention"]  # the order asked for
    assert (tmp_path / "parallel" / "report.md").exists()
    one_thread = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))  # the workers' thread count
    try:
        serial = run_demo(tmp_path / "serial", workers=1, **kwargs)
    finally:
        torch.set_num_threads(one_thread)
    for p, s in zip(parallel.rows, serial.rows, strict=True):
        assert {k: v for k, v in p.items() if k != "seconds"} == {k: v for k, v in s.items() if k != "seconds"}


def test_the_demo_and_the_report_agree_on_the_test_split(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    result = run_demo(tmp_path / "demo", epochs=1, quick=True, seed=3, variants=("concat", "hadamard"))
    text = result.report.read_text()
    assert "test split of the synthetic benchmark (200 utterances); seed 3, one run per variant" in text
    assert f"scenesense report {tmp_path / 'demo'} --split test" in text
    runs = [tmp_path / "demo"]  # the demo's folder holds its runs
    table3 = next(t for t in build_report(load_runs(runs, split="test"), n_bootstrap=50,
                                          n_permutations=50).tables if t.name == "table3")
    assert "test split of synthetic; seed 3, n = 1 per group" in table3.title
    for demo_row, row, cells in zip(result.rows, table3.rows, table3.cells(), strict=True):
        assert (row["variant"], row["split"], row["seed_list"]) == (demo_row["variant"], "test", [3])
        for metric in ("accuracy", "weighted_f1", "macro_f1"):
            assert row[f"{metric}_mean"] == demo_row[metric]
        assert cells[4] == f"{demo_row['accuracy']:.3f}"  # the same cell as the demo's table
    dev = build_report(load_runs(runs), n_bootstrap=50, n_permutations=50).tables[0]
    assert "dev split of synthetic" in dev.title  # the default, and it says so
