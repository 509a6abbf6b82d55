"""Experiment report: tables recomputed from the runs' own files, pairing by id, every output format."""

from __future__ import annotations

import csv
import html
import json
import random
import shutil

import numpy as np
import pytest
from sklearn.metrics import f1_score

from scenesense.evaluation.experiment_report import (
    build_report,
    default_output_dir,
    write_report,
)
from scenesense.evaluation.report_html import latex_escape
from scenesense.evaluation.statistics import mcnemar_test, paired_permutation_test
from scenesense.runs import load_runs, read_run

FAST = {"n_bootstrap": 300, "n_permutations": 300}
NOISE = [(20.0, 0.30, 0.25), (5.0, 0.20, 0.10)]  # (SNR dB, weighted F1 seed 0, seed 1)


def _train(tmp, run_dir, modalities, fusion, name, seed, cell=True):
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.demo import DEMO_DELTA

    cfg = build_config(DEMO_DELTA, {
        "name": name, "modalities": modalities, "output_dir": str(tmp / "unused"),
        "data": {"cache_dir": str(tmp / "cache"), "params": {"n_train": 60, "n_dev": 30, "n_test": 30}},
        "model": {"out_dim": 16, "head_hidden_dim": 16, "fusion": {"name": fusion},
                  "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2,
                                       "dim_feedforward": 16}},
        "trainer": {"epochs": 1, "seed": seed}})
    run_dir.mkdir(parents=True)
    if cell:
        (run_dir / "cell.json").write_text(json.dumps(
            {"modalities": modalities, "variant": name, "seed": seed, "experiment": "exp"}))
    return api.train(cfg, run_dir).run_dir


def _robustness(clean, noise_f1):
    return {"metric": "weighted_f1", "clean": {"accuracy": 0.5, "weighted_f1": clean, "macro_f1": 0.4},
            "conditions": [{"kind": "remove", "modality": "audio", "severity": None, "label": "remove audio",
                            "accuracy": 0.3, "weighted_f1": clean - 0.2, "macro_f1": 0.2}]
            + [{"kind": "noise", "modality": "audio", "severity": snr, "label": f"noise audio {snr:g} dB",
                "accuracy": 0.3, "weighted_f1": f1, "macro_f1": 0.2} for snr, f1 in noise_f1]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An experiment folder (2 variants x 2 seeds of audio+text) and a plain text-only run."""
    tmp = tmp_path_factory.mktemp("report")
    exp = tmp / "exp"
    for variant, fusion in (("concat", "concat"), ("amw_gate", "amw")):
        for seed in (0, 1):
            run_dir = exp / "cells" / f"audio+text__{variant}__s{seed}"
            _train(tmp, run_dir, ["audio", "text"], fusion, variant, seed)
    plain = _train(tmp, tmp / "runs" / "text_only", ["text"], "concat", "text_only", 0, cell=False)
    amw = [exp / "cells" / f"audio+text__amw_gate__s{s}" for s in (0, 1)]
    for s, run_dir in enumerate(amw):
        noise = [(snr, f1[s]) for snr, *f1 in NOISE]
        (run_dir / "robustness.json").write_text(json.dumps(_robustness(0.5 + 0.1 * s, noise)))
    (amw[0] / "efficiency.json").write_text(json.dumps(
        {"device": "cpu", "parameters": 1000, "macs_per_sample": 2.0e6, "flops_per_sample": 4.0e6,
         "latency_ms": {"1": {"median": 2.0, "p90": 3.0}, "32": {"median": 10.0, "p90": 12.0}},
         "throughput_per_s": 3200.0, "peak_memory_mb": None, "epoch_seconds": 0.5, "threads": 1}))
    (amw[1] / "efficiency.json").write_text(json.dumps(
        {"device": "cpu", "parameters": 1000, "macs_per_sample": 2.0e6, "flops_per_sample": None,
         "latency_ms": {"1": 4.0, "32": 14.0}, "throughput_per_s": 2800.0, "peak_memory_mb": None,
         "epoch_seconds": 0.7, "threads": 1}))
    return {"tmp": tmp, "exp": exp, "plain": plain}


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _predictions(run_dir):
    with (run_dir / "predictions.csv").open() as handle:
        return {r["id"]: (int(r["label"]), int(r["pred"])) for r in csv.DictReader(handle)}


def _cells(runs, variant):
    return [runs["exp"] / "cells" / f"audio+text__{variant}__s{s}" for s in (0, 1)]


def _table(report, name):
    return next(t for t in report.tables if t.name == name)


def test_load_runs_expands_the_experiment_and_reads_cell_and_config(runs):
    records = load_runs([runs["exp"], runs["plain"]])
    assert [(r.modality_set, r.variant, r.seed, r.experiment) for r in records] == [
        ("audio+text", "amw_gate", 0, "exp"), ("audio+text", "amw_gate", 1, "exp"),
        ("audio+text", "concat", 0, "exp"), ("audio+text", "concat", 1, "exp"),
        ("text", "text_only", 0, None)]
    first = records[0]
    assert first.label_names == ("text_a", "text_b", "audio_a", "audio_b", "sync", "async")
    assert len(first.ids) == 30
    pairs = zip(first.labels.tolist(), first.preds.tolist(), strict=True)
    assert dict(zip(first.ids, pairs, strict=True)) == _predictions(first.run_dir)
    assert first.robustness["metric"] == "weighted_f1"
    assert records[2].robustness is None
    assert default_output_dir([runs["exp"]]) == runs["exp"].resolve() / "report"
    assert default_output_dir(_cells(runs, "concat")) == (runs["exp"] / "cells" / "report").resolve()


def test_unfinished_regression_and_duplicate_runs_are_refused(runs, tmp_path):
    unfinished = tmp_path / "exp" / "cells" / "audio__concat__s0"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("name: x\n")
    with pytest.raises(ValueError, match=r"audio__concat__s0: not a finished run \(missing metrics.json, "):
        load_runs([tmp_path / "exp"])
    regression = tmp_path / "reg"
    shutil.copytree(runs["plain"], regression)
    (regression / "metrics.json").write_text(json.dumps({"mae": 0.5, "corr": 0.1}))
    with pytest.raises(ValueError, match="reg: regression runs are not supported"):
        read_run(regression)
    with pytest.raises(ValueError, match="both text/text_only seed 0"):
        load_runs([runs["plain"], runs["plain"]])


def test_table3_is_the_seed_mean_std_and_a_bootstrap_ci_of_the_pooled_predictions(runs):
    report = build_report(load_runs([runs["exp"], runs["plain"]]), **FAST)
    rows = _table(report, "table3").rows
    assert [(r["modalities"], r["variant"], r["seeds"]) for r in rows] == [
        ("text", "text_only", 1), ("audio+text", "amw_gate", 2), ("audio+text", "concat", 2)]
    for row in rows[1:]:
        dirs = _cells(runs, row["variant"])
        for metric in ("accuracy", "weighted_f1", "macro_f1"):
            values = [_metrics(d)[metric] for d in dirs]
            assert row[f"{metric}_mean"] == pytest.approx(np.mean(values), abs=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        pairs = np.array([p for d in dirs for p in _predictions(d).values()])  # [60, 2] (label, pred)
        assert (row["n_utterances"], row["n_pooled"]) == (30, 60)
        assert row["accuracy_pooled"] == pytest.approx(np.mean(pairs[:, 0] == pairs[:, 1]), abs=1e-12)
        assert row["weighted_f1_pooled"] == pytest.approx(
            f1_score(pairs[:, 0], pairs[:, 1], average="weighted", zero_division=0), abs=1e-12)
        for metric in ("accuracy", "weighted_f1"):
            assert row[f"{metric}_ci_low"] <= row[f"{metric}_pooled"] <= row[f"{metric}_ci_high"]
            assert row[f"{metric}_ci_low"] < row[f"{metric}_ci_high"]
    assert rows[0]["accuracy_std"] == 0.0 and rows[0]["n_pooled"] == 30
    assert report.ablation_set == "audio+text"
    assert report.baseline.name == "audio+text/concat"


def test_table4_pairs_by_seed_and_id_not_by_position(runs, tmp_path):
    baseline = build_report(load_runs([runs["exp"]]), **FAST)
    row = _table(baseline, "table4").rows[0]
    assert (row["variant"], row["baseline"], row["n_pairs"]) == ("amw_gate", "concat", 60)
    amw, concat = ([_predictions(d) for d in _cells(runs, v)] for v in ("amw_gate", "concat"))
    keys = sorted((seed, key) for seed in (0, 1) for key in amw[seed])  # the (seed, id) pairs
    y = np.array([amw[s][k][0] for s, k in keys])
    a, b = np.array([amw[s][k][1] for s, k in keys]), np.array([concat[s][k][1] for s, k in keys])
    expected_f1 = paired_permutation_test(y, a, b, "weighted_f1", n_resamples=300, seed=0)
    assert row["delta_weighted_f1"] == pytest.approx(
        f1_score(y, a, average="weighted") - f1_score(y, b, average="weighted"), abs=1e-12)
    assert row["p_weighted_f1"] == expected_f1.p_value
    assert row["p_accuracy"] == mcnemar_test(y, a, b).p_value
    assert row["verdict_weighted_f1"] in _table(baseline, "table4").notes
    assert row["verdict_weighted_f1"].startswith(("no significant difference between amw_gate and concat",
                                                  "amw_gate beats", "concat beats"))

    # a copy of one run with its predictions in another order gives the same table
    experiment = tmp_path / "exp"
    shutil.copytree(runs["exp"] / "cells", experiment / "cells")
    shuffled = experiment / "cells" / "audio+text__amw_gate__s0" / "predictions.csv"
    header, *lines = shuffled.read_text().splitlines()
    random.Random(0).shuffle(lines)
    shuffled.write_text("\n".join([header, *lines]) + "\n")
    again = _table(build_report(load_runs([experiment]), **FAST), "table4").rows[0]
    assert again == row
    # ... whereas pairing the shuffled file by position would change the paired test
    positional = np.array([int(line.split(",")[2]) for line in lines] + a[30:].tolist())
    naive = (np.mean(positional == y), mcnemar_test(y, positional, b).p_value,
             paired_permutation_test(y, positional, b, "weighted_f1", n_resamples=300).p_value)
    assert naive != (row["accuracy"], row["p_accuracy"], row["p_weighted_f1"])

    # a run scored on other utterances cannot be paired
    shuffled.write_text("\n".join([header, *lines[1:]]) + "\n")
    message = (r"amw_gate and audio\+text/concat were not scored on the same \(seed, utterance\) pairs: "
               r"0 only in .*, 1 only in audio\+text/concat")
    with pytest.raises(ValueError, match=message):
        build_report(load_runs([experiment]), **FAST)


def test_table5_and_the_choice_of_models(runs):
    records = load_runs([runs["exp"], runs["plain"]])
    report = build_report(records, **FAST)
    means = {g.name: np.mean(g.values("weighted_f1")) for g in report.groups}
    best = max((n for n in means if n != "audio+text/concat"), key=means.get)
    assert [g.name for g in report.models] == [best, "audio+text/concat"]
    chosen = build_report(records, models=["text_only", "audio+text/amw_gate"], baseline="amw_gate", **FAST)
    assert chosen.baseline.variant == "amw_gate"
    table = _table(chosen, "table5")
    amw = [_metrics(d)["per_class"] for d in _cells(runs, "amw_gate")]
    text = _metrics(runs["plain"])["per_class"]
    assert [r["class"] for r in table.rows] == list(text)
    for row in table.rows:
        assert (row["model_a"], row["model_b"]) == ("text/text_only", "audio+text/amw_gate")
        assert row["f1_a_mean"] == text[row["class"]]["f1"] and row["f1_a_std"] == 0.0
        assert row["f1_b_mean"] == pytest.approx(np.mean([m[row["class"]]["f1"] for m in amw]), abs=1e-12)
        assert row["support"] == 5
    with pytest.raises(ValueError, match="model 'nope' matches no group"):
        build_report(records, models=["nope", "concat"], **FAST)
    with pytest.raises(ValueError, match=r"no runs of modality set 'audio\+vision'"):
        build_report(records, modalities="vision+audio", **FAST)
    assert build_report(records, modalities="text", **FAST).baseline.name == "text/text_only"


def test_robustness_and_efficiency_tables(runs):
    report = build_report(load_runs([runs["exp"]]), **FAST)
    rows = _table(report, "robustness").rows
    assert [r["condition"] for r in rows] == ["clean", "remove audio", "noise audio 20 dB",
                                              "noise audio 5 dB"]
    assert {(r["modalities"], r["variant"], r["seeds"]) for r in rows} == {("audio+text", "amw_gate", 2)}
    clean = np.mean([0.5, 0.6])
    for (snr, *f1), row in zip(NOISE, rows[2:], strict=True):
        assert row["severity"] == snr
        assert row["value_mean"] == pytest.approx(np.mean(f1), abs=1e-12)
        assert row["value_std"] == pytest.approx(np.std(f1, ddof=1), abs=1e-12)
        assert row["delta_vs_clean"] == pytest.approx(np.mean(f1) - clean, abs=1e-12)
    assert rows[1]["delta_vs_clean"] == pytest.approx(-0.2, abs=1e-12)
    (eff,) = _table(report, "efficiency").rows
    assert (eff["variant"], eff["device"], eff["seeds"], eff["parameters"]) == ("amw_gate", "cpu", 2, 1000.0)
    assert (eff["latency_ms_1"], eff["latency_ms_32"], eff["epoch_seconds"]) == (3.0, 12.0, 0.6)
    assert eff["flops_per_sample"] == 4.0e6 and eff["peak_memory_mb"] is None
    assert "latency b=32 (ms)" in [c.header for c in _table(report, "efficiency").columns]
    # without the profiles the tables are left out
    plain = build_report(load_runs(_cells(runs, "concat")), **FAST)
    assert [t.name for t in plain.tables] == ["table3", "table4", "table5"]


def test_latex_escaping():
    assert latex_escape("amw_gate & 50% ± #1 {x} $ [0.1, 0.2]") == \
        r"amw\_gate \& 50\% $\pm$ \#1 \{x\} \$ {[}0.1, 0.2{]}"


def test_write_report_writes_every_format(runs, tmp_path):
    report = build_report(load_runs([runs["exp"], runs["plain"]]), **FAST)
    files = write_report(report, tmp_path / "out", dpi=40)
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert figures == ["confusion_audio+text__amw_gate.png", "confusion_audio+text__concat.png",
                       "confusion_text__text_only.png", "loss_curves.png",
                       "modality_weights_audio+text__amw_gate.png", "per_class_f1.png", "robustness.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "figures", "report.html", "report.md", "tables.csv", "tables.json", "tables.tex"]
    for path in files.values():
        assert path.exists() and path.stat().st_size > 0
    page = files["html"].read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    assert 'src="figures/' not in page and page.count('src="') == len(figures) and "<link" not in page
    assert "<caption>Table 3:" in page
    assert html.escape(_table(report, "table4").rows[0]["verdict_weighted_f1"]) in page
    markdown = files["markdown"].read_text()
    assert "](figures/loss_curves.png)" in markdown
    assert "### Table 4: fusion ablation on audio+text" in markdown
    tex = files["latex"].read_text()
    assert r"audio+text & amw\_gate &" in tex and "amw_gate" not in tex.replace(r"amw\_gate", "")
    assert tex.count(r"\begin{tabular}") == 5 and tex.count(r"\toprule") == 5
    saved = json.loads(files["json"].read_text())
    table3 = _table(report, "table3").rows
    assert saved["tables"]["table3"]["rows"] == table3
    assert [r["run_dir"] for r in saved["runs"]][-1] == str(runs["plain"])
    with files["csv"].open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["table"] == "table3"]
    assert [float(r["weighted_f1_ci_high"]) for r in rows] == [r["weighted_f1_ci_high"] for r in table3]
    assert not list((tmp_path / "out").glob(".*.tmp"))


def _column(table, header):
    """The displayed cells of one column."""
    j = [c.header for c in table.columns].index(header)
    return [cells[j] for cells in table.cells()]


def test_every_table_and_document_names_its_split_seeds_and_data(runs, tmp_path):
    report = build_report(load_runs([runs["exp"]]), **FAST)
    files = write_report(report, tmp_path / "out", dpi=40)
    markdown, page = files["markdown"].read_text(), html.unescape(files["html"].read_text())
    assert [t.name for t in report.tables] == ["table3", "table4", "table5", "robustness", "efficiency"]
    for t in report.tables:
        assert f"### {t.title}" in markdown and f"<caption>{t.title}</caption>" in page
        assert "synthetic" in t.title and "seeds 0, 1, n = 2 per group" in t.title, t.title
        assert ("dev split of synthetic" in t.title) is (t.name != "efficiency"), t.title
    assert "mean ± sample std over seeds (ddof = 1)" in _table(report, "table3").title
    assert "no split scored" in _table(report, "efficiency").title
    for document in (markdown, page):
        assert "Scored split: dev, the split each run selected its best epoch on" in document
        assert "Data: synthetic (feature store " in document and "modality sets audio+text" in document
        assert "Seeds: 0, 1, n = 2 per group; ± is the sample std over seeds (ddof = 1)" in document
    saved = json.loads(files["json"].read_text())
    (store,) = saved["scope"]["data"]["stores"]
    assert saved["scope"] == {"split": "dev", "seeds": [0, 1], "seeds_per_group": [2],
                              "data": {"datasets": ["synthetic"], "stores": [store],
                                       "modality_sets": ["audio+text"]},
                              "spread": "sample std over seeds (ddof = 1)"}
    assert all(r["split"] == "dev" and r["store"] == store for r in saved["runs"])
    for name, table in saved["tables"].items():
        assert (table["split"], table["seeds"], table["data"]["datasets"]) == (
            None if name == "efficiency" else "dev", [0, 1], ["synthetic"])
        assert table["title"].startswith(("Table 3:", "Table 4:", "Table 5:", "Robustness:", "Efficiency:"))
    with files["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[-6:] == ["split", "seed_list", "seeds_a", "seed_list_a", "seeds_b", "seed_list_b"]
    for row in rows:
        if row["table"] in ("table3", "table4", "robustness"):
            assert (row["split"], row["seed_list"]) == ("dev", "0 1")
        if row["table"] == "table5":
            assert (row["split"], row["seed_list_a"], row["seed_list_b"]) == ("dev", "0 1", "0 1")


def test_a_single_seed_is_shown_without_a_spread(runs, tmp_path):
    report = build_report(load_runs([d for v in ("amw_gate", "concat") for d in _cells(runs, v)[:1]]), **FAST)
    table3, table5 = _table(report, "table3"), _table(report, "table5")
    assert "seed 0, n = 1 per group: single runs, no spread" in table3.title
    assert "seed 0, n = 1 per group: single runs, no spread" in table5.title
    for cells in (_column(table3, "accuracy"), _column(table3, "weighted F1"), *(
            _column(table5, c.header) for c in table5.columns if c.header.endswith(" F1"))):
        assert all("±" not in cell for cell in cells)
    row = table3.rows[0]
    assert _column(table3, "accuracy")[0] == f"{row['accuracy_mean']:.3f}"
    files = write_report(report, tmp_path / "out", dpi=40)
    for kind in ("markdown", "html", "latex"):
        text = files[kind].read_text()
        assert "±" not in text and r"\pm" not in text, kind
    assert "Seeds: 0, one run per group (n = 1): values are single runs, shown without a spread" in \
        files["markdown"].read_text()
    assert json.loads(files["json"].read_text())["scope"]["spread"] is None


def test_two_seeds_show_the_mean_and_sample_std_numpy_computes(runs):
    report = build_report(load_runs([runs["exp"], runs["plain"]]), **FAST)
    table3 = _table(report, "table3")
    for metric, header in (("accuracy", "accuracy"), ("weighted_f1", "weighted F1")):
        for row, cell in zip(table3.rows, _column(table3, header), strict=True):
            if row["variant"] == "text_only":  # one seed: the value alone
                assert cell == f"{_metrics(runs['plain'])[metric]:.3f}"
                continue
            values = [_metrics(d)[metric] for d in _cells(runs, row["variant"])]
            assert cell == f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    assert "seeds 0, 1, n = 1-2 per group: mean ± sample std" in table3.title
    assert "a single run's value where n = 1" in table3.title
    table5 = _table(build_report(load_runs([runs["exp"]]), models=["amw_gate", "concat"], **FAST), "table5")
    amw = [_metrics(d)["per_class"] for d in _cells(runs, "amw_gate")]
    for row, cell in zip(table5.rows, _column(table5, "audio+text/amw_gate F1"), strict=True):
        f1 = [m[row["class"]]["f1"] for m in amw]
        assert cell == f"{np.mean(f1):.3f} ± {np.std(f1, ddof=1):.3f}"


def test_the_report_scores_the_split_it_is_given(runs, tmp_path):
    from scenesense import api
    from scenesense.runs import read_spec

    shutil.copytree(runs["exp"] / "cells", tmp_path / "exp" / "cells")
    cells = sorted((tmp_path / "exp" / "cells").iterdir())
    message = (r"no test scores \(missing eval/test/metrics.json, predictions.csv\); "
               r"score the run first with `scenesense evaluate ")
    with pytest.raises(ValueError, match=message):
        load_runs([tmp_path / "exp"], split="test")
    for cell in cells:
        api.evaluate(cell, store=read_spec(cell / "model_spec.json").store, split="test")
    dev, test = load_runs([tmp_path / "exp"]), load_runs([tmp_path / "exp"], split="dev")
    assert [r.metrics for r in dev] == [r.metrics for r in test]
    test = load_runs([tmp_path / "exp"], split="test")
    for record, cell in zip(test, cells, strict=True):
        assert record.split == "test" and all(key.startswith("syn-test-") for key in record.ids)
        assert record.metrics == json.loads((cell / "eval" / "test" / "metrics.json").read_text())
        assert list(record.history) == _metrics(cell)["history"]  # training curves stay the run's own
    report = build_report(test, **FAST)
    table3 = _table(report, "table3")
    assert "test split of synthetic" in table3.title and "dev split" not in table3.title
    for row in table3.rows:
        values = [json.loads((c / "eval" / "test" / "metrics.json").read_text())["accuracy"]
                  for c in cells if f"__{row['variant']}__" in c.name]
        assert row["accuracy_mean"] == pytest.approx(np.mean(values), abs=1e-12) and row["split"] == "test"
    markdown = write_report(report, tmp_path / "out", dpi=40)["markdown"].read_text()
    assert "Scored split: test, each run's `eval/test/` scores" in markdown
    with pytest.raises(ValueError, match="the runs were scored on different splits: dev .*, test "):
        build_report([*dev[:2], *test[2:]], **FAST)


def test_every_report_figure_names_what_it_shows_and_keeps_its_legend_off_the_data(runs, tmp_path,
                                                                                   monkeypatch):
    from tests.support.figures import catch_saved_figures, covered, titles

    drawn = catch_saved_figures(monkeypatch)
    files = write_report(build_report(load_runs([runs["exp"]]), **FAST), tmp_path / "out", dpi=40)
    markdown = files["markdown"].read_text()
    assert len(drawn) == 5  # loss, per-class F1, 2 confusion matrices, robustness (weights are copied)
    by_title = {titles(fig): fig for fig in drawn}
    for title, fig in by_title.items():
        assert "synthetic" in title and "seeds 0, 1" in title, title
        if fig.legends or any(ax.get_legend() for ax in fig.axes):
            assert covered(fig) == [], title
    loss, f1, *confusion, robustness = by_title
    assert loss.startswith("Training loss (solid) and dev loss (dashed) per epoch on synthetic")
    assert f1.startswith("Per-class F1, dev split of synthetic; seeds 0, 1, n = 2 per group: mean ± sample")
    assert all("dev split of synthetic, seeds 0, 1 (summed over 2 runs)" in t for t in confusion)
    assert robustness.startswith("Robustness: weighted_f1 against the perturbation's severity, dev split")
    assert "**Per-class F1, dev split of synthetic; seeds 0, 1" in markdown
    assert "(error bars: sample std over seeds (ddof = 1))" in markdown
