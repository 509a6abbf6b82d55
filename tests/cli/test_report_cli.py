"""``scenesense report`` on an experiment-like folder (tested through its own parser)."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from scenesense.cli import report as report_cli


def _parse(argv):
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["report", *argv])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """``<exp>/cells/audio+text__{concat,hadamard}__s0``: two finished one-epoch runs with ``cell.json``."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.demo import DEMO_DELTA

    tmp = tmp_path_factory.mktemp("report_cli")
    for variant in ("concat", "hadamard"):
        run_dir = tmp / "exp" / "cells" / f"audio+text__{variant}__s0"
        run_dir.mkdir(parents=True)
        (run_dir / "cell.json").write_text(json.dumps(
            {"modalities": ["audio", "text"], "variant": variant, "seed": 0, "experiment": "exp"}))
        cfg = build_config(DEMO_DELTA, {
            "name": variant, "modalities": ["audio", "text"],
            "data": {"cache_dir": str(tmp / "cache"), "params": {"n_train": 40, "n_dev": 30, "n_test": 6}},
            "model": {"out_dim": 16, "head_hidden_dim": 16, "fusion": {"name": variant},
                      "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2,
                                           "dim_feedforward": 16}},
            "trainer": {"epochs": 1, "seed": 0}})
        api.train(cfg, run_dir)
    return tmp / "exp"


def test_report_prints_table_3_and_writes_into_the_experiment(experiment, capsys):
    args = _parse([str(experiment), "--bootstrap", "50", "--permutations", "50", "--dpi", "40"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("### Table 3: accuracy and weighted F1")
    assert lines[2].startswith("| modalities | variant | seeds | n | accuracy |")
    assert [line.split(" | ")[1] for line in lines[4:6]] == ["concat", "hadamard"]
    report_dir = experiment.resolve() / "report"
    assert f"html: {report_dir / 'report.html'}" in lines
    assert f"latex: {report_dir / 'tables.tex'}" in lines
    for name in ("report.html", "report.md", "tables.csv", "tables.json", "tables.tex",
                 "figures/loss_curves.png"):
        assert (report_dir / name).exists()
    tables = json.loads((report_dir / "tables.json").read_text())["tables"]
    assert tables["table4"]["rows"][0]["variant"] == "hadamard"
    assert tables["table4"]["rows"][0]["baseline"] == "concat"


def test_report_json_options_and_errors(experiment, tmp_path, capsys):
    cell = experiment / "cells" / "audio+text__hadamard__s0"
    args = _parse([str(cell), str(experiment / "cells" / "audio+text__concat__s0"), "--output-dir",
                   str(tmp_path / "out"), "--baseline", "hadamard", "--models", "concat", "hadamard",
                   "--modalities", "text+audio", "--bootstrap", "20", "--permutations", "20", "--dpi", "40",
                   "--json"])
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output_dir"] == str(tmp_path / "out")
    assert [r["variant"] for r in result["table3"]] == ["concat", "hadamard"]
    assert result["files"]["html"] == str(tmp_path / "out" / "report.html")
    table4 = json.loads((tmp_path / "out" / "tables.json").read_text())["tables"]["table4"]["rows"]
    assert [(r["variant"], r["baseline"]) for r in table4] == [("concat", "hadamard")]
    with pytest.raises(ValueError, match="--bootstrap must be at least 1"):
        report_cli.run(_parse([str(experiment), "--bootstrap", "0"]))
    with pytest.raises(ValueError, match="baseline 'late' matches no group"):
        report_cli.run(_parse([str(experiment), "--baseline", "late"]))
    with pytest.raises(ValueError, match="not a run or experiment folder"):
        report_cli.run(_parse([str(tmp_path / "missing")]))


def test_report_says_which_split_it_scores_and_takes_split(experiment, tmp_path, capsys):
    from scenesense import api
    from scenesense.runs import read_spec

    with pytest.raises(SystemExit):
        _parse(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "--split SPLIT the scored split every table and figure reports: dev (default;" in usage
    fast = ["--bootstrap", "20", "--permutations", "20", "--dpi", "40"]
    args = _parse([str(experiment), "--output-dir", str(tmp_path / "dev"), *fast])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(
        "### Table 3: accuracy and weighted F1 per modality set and fusion (dev split of synthetic; seed 0, "
        "n = 1 per group: single runs, no spread;")
    message = (r"audio\+text__concat__s0: no test scores .* "
               r"`scenesense evaluate .*audio\+text__concat__s0 --store .* --split test`")
    with pytest.raises(ValueError, match=message):
        report_cli.run(_parse([str(experiment), "--split", "test", *fast]))
    copy = tmp_path / "exp"
    shutil.copytree(experiment / "cells", copy / "cells")
    scores = {}
    for cell in sorted((copy / "cells").iterdir()):
        test = api.evaluate(cell, store=read_spec(cell / "model_spec.json").store, split="test")
        scores[json.loads((cell / "cell.json").read_text())["variant"]] = test.metrics
    args = _parse([str(copy), "--split", "test", "--json", *fast])
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scope"]["split"] == "test" and result["scope"]["seeds"] == [0]
    for row in result["table3"]:
        assert (row["split"], row["n_utterances"]) == ("test", 6)
        assert row["accuracy_mean"] == scores[row["variant"]]["accuracy"]
        assert row["weighted_f1_mean"] == scores[row["variant"]]["weighted_f1"]
    markdown = (copy / "report" / "report.md").read_text()
    assert "Scored split: test" in markdown and "(test split of synthetic; seed 0" in markdown
