from __future__ import annotations

import json

import yaml

from scenesense.cli import main
from scenesense.demo import DEMO_DELTA


def test_experiment_command_trains_profiles_stresses_and_reports(tmp_path, capsys):
    config = {**DEMO_DELTA, "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                                     "params": {"n_train": 48, "n_dev": 24, "n_test": 24}},
              "model": {**DEMO_DELTA["model"], "out_dim": 16, "head_hidden_dim": 16}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))
    folder = tmp_path / "exp"
    argv = ["experiment", "-c", str(tmp_path / "base.yaml"), "--sets", "audio+text", "--variants", "concat",
            "hadamard", "--seeds", "0", "1", "--epochs", "1", "--output-dir", str(folder), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] == 4 and len(summary["trained"]) == 4
    assert summary["robustness"] == []  # stressed by the worker right after training
    assert sorted(summary["profiled"]) == sorted(summary["trained"])
    for cell in summary["trained"]:
        assert (folder / "cells" / cell / "robustness.json").exists()
        assert (folder / "cells" / cell / "efficiency.json").exists()
    html = (folder / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html and "hadamard" in html
    assert (folder / "report" / "tables.tex").exists()
    # resuming does no training, robustness or profiling again
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["trained"] == [] and again["robustness"] == [] and again["profiled"] == []


def test_experiment_takes_the_data_root_from_root_or_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SCENESENSE_MELD_ROOT", raising=False)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"data": {"dataset": "meld"}}))
    argv = ["experiment", "-c", str(tmp_path / "base.yaml"), "--output-dir", str(tmp_path / "exp")]
    assert main(argv) == 2
    assert "(--root path/to/MELD), or set SCENESENSE_MELD_ROOT" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()
    missing = tmp_path / "no_such_folder"
    for extra, env in (["--root", str(missing)], None), ([], str(missing)):
        if env:
            monkeypatch.setenv("SCENESENSE_MELD_ROOT", env)
        assert main([*argv, *extra]) == 1  # the root is used: the missing folder is named
        assert f"{missing}: no such file or folder" in capsys.readouterr().err
