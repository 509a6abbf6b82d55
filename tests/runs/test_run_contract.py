"""``scenesense.runs``: the typed model spec, and run folders written by older versions still load.

``fixtures/`` holds two run folders written by scenesense before the runs package existed (tiny
models, so the checkpoints are small): ``synthetic_v1`` (the synthetic benchmark, three
modalities) and ``context_v1`` (a store run with dialogue context and known speakers). Only the
files the readers need are kept (no ``last.pt``, no figures).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scenesense.runs import (
    SCHEMA_VERSION,
    FeatureSet,
    LoadedRun,
    RunSpec,
    load_run,
    read_config,
    read_run,
    read_spec,
    write_spec,
)

FIXTURES = Path(__file__).parent / "fixtures"
OLD_RUNS = ("synthetic_v1", "context_v1")


def _raw_spec(name: str) -> dict:
    return json.loads((FIXTURES / name / "model_spec.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", OLD_RUNS)
def test_old_specs_read_and_round_trip(name):
    raw = _raw_spec(name)
    assert "schema_version" not in raw  # written before the key existed: version 1
    spec = read_spec(FIXTURES / name / "model_spec.json")
    assert spec.schema_version == 1
    assert spec.to_json() == {**raw, "schema_version": 1}
    assert list(spec.to_json()) == [*raw, "schema_version"]  # same key order as today's files
    assert RunSpec.from_json(spec.to_json()) == spec


def test_the_fields_of_an_old_synthetic_spec():
    spec = read_spec(FIXTURES / "synthetic_v1" / "model_spec.json")
    assert spec.modalities == ("audio", "text", "vision")
    assert spec.features["text"] == FeatureSet("text", "sequence", 8, spec.features["text"].provenance)
    assert spec.feature_dims == {"audio": 8, "text": 8, "vision": 8}
    assert spec.feature_kinds == {"audio": "vector", "text": "sequence", "vision": "sequence"}
    assert spec.label_names == ("text_a", "text_b", "audio_a", "audio_b", "sync", "async")
    assert spec.task == "classification" and spec.label_space.num_classes == 6
    assert spec.source is not None and spec.source["dataset"] == "synthetic"
    assert spec.provenance_of("audio")["generator"] == "scenesense.data.synthetic"
    assert spec.speakers is None and len(spec.speaker_vocabulary) == 1  # only the unknown speaker


def test_the_speakers_of_an_old_context_spec():
    spec = read_spec(FIXTURES / "context_v1" / "model_spec.json")
    assert spec.speakers == ("A", "B")
    assert spec.speaker_vocabulary.id("B") == 2 and spec.speaker_vocabulary.id("C") == 0
    assert spec.provenance_of("audio") == {}  # recorded, empty


@pytest.mark.parametrize("name", OLD_RUNS)
def test_old_run_folders_load(name):
    run = load_run(FIXTURES / name)
    assert isinstance(run, LoadedRun)
    cfg, spec, model = run
    assert cfg == read_config(FIXTURES / name)
    assert spec == read_spec(FIXTURES / name / "model_spec.json")
    assert not model.training
    assert (getattr(model, "context", None) is not None) == (name == "context_v1")


def test_old_run_records_read():
    record = read_run(FIXTURES / "synthetic_v1")
    assert (record.modality_set, record.variant, record.seed, record.experiment) == (
        "audio+text+vision", "tiny_synthetic", 0, None)
    assert record.label_names == read_spec(FIXTURES / "synthetic_v1" / "model_spec.json").label_names
    assert len(record.ids) == 20 and record.robustness is None


def test_a_spec_without_provenance_round_trips():
    raw = {k: v for k, v in _raw_spec("synthetic_v1").items() if k != "provenance"}
    spec = RunSpec.from_json(raw)
    assert spec.source is None and all(f.provenance is None for f in spec.features.values())
    assert spec.provenance_of("text") is None
    assert spec.to_json() == {**raw, "schema_version": SCHEMA_VERSION}


def test_write_then_read(tmp_path):
    spec = read_spec(FIXTURES / "context_v1" / "model_spec.json")
    path = write_spec(tmp_path / "model_spec.json", replace(spec, store=str(tmp_path)))
    assert read_spec(path) == replace(spec, store=str(tmp_path))
    assert json.loads(path.read_text(encoding="utf-8"))["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(("edit", "match"), [
    (lambda raw: raw.pop("feature_dims"), "no feature_dims"),
    (lambda raw: raw.update(schema_version=SCHEMA_VERSION + 1), "newer than this scenesense reads"),
    (lambda raw: raw.update(feature_kinds={"audio": "vector"}), "name different modalities"),
    (lambda raw: raw.update(feature_kinds={**raw["feature_kinds"], "text": "matrix"}), "feature kind"),
    (lambda raw: raw.update(modalities=["audio"]), "but the modalities are"),
    (lambda raw: raw.update(task="ranking"), "unknown task"),
    (lambda raw: raw.update(label_names="abc"), "label_names must be a list of strings"),
])
def test_invalid_specs_are_refused_naming_the_file(tmp_path, edit, match):
    raw = _raw_spec("synthetic_v1")
    edit(raw)
    path = tmp_path / "model_spec.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match=f"model_spec.json: not a valid model spec .*{match}"):
        read_spec(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid model spec"):
        read_spec(path)


def test_today_writes_what_the_old_version_wrote(tmp_path):
    """Retrain the synthetic fixture run from its config: the same spec (but the store's path),
    the same predictions."""
    from scenesense import api

    cfg = read_config(FIXTURES / "synthetic_v1")
    cfg = replace(cfg, data=replace(cfg.data, cache_dir=str(tmp_path / "cache")))
    run_dir = api.train(cfg, tmp_path / "run").run_dir
    old, new = _raw_spec("synthetic_v1"), json.loads((run_dir / "model_spec.json").read_text(encoding="utf-8"))
    assert {**new, "store": old["store"]} == {**old, "schema_version": SCHEMA_VERSION}
    before, after = _predictions(FIXTURES / "synthetic_v1"), _predictions(run_dir)
    assert [r["pred"] for r in after] == [r["pred"] for r in before]
    probs = [[float(v) for k, v in r.items() if k.startswith("prob_")] for r in (*before, *after)]
    np.testing.assert_allclose(probs[len(before):], probs[:len(before)], atol=1e-5)


def _predictions(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "predictions.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_runs_package_imports_no_layer_above_it():
    above = ("api", "cli", "evaluation", "experiment", "predict", "streaming")
    code = (f"import sys, scenesense.runs; print(sorted({{m for m in sys.modules if m.startswith('scenesense.') "
            f"and m.split('.')[1] in {above!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_folders_are_found_in_experiments_and_in_folders_of_runs(tmp_path):
    from scenesense.runs.records import find_run_dirs

    assert find_run_dirs([FIXTURES / "synthetic_v1"]) == [FIXTURES / "synthetic_v1"]
    assert find_run_dirs([FIXTURES]) == [FIXTURES / name for name in sorted(OLD_RUNS)]  # e.g. the demo's folder
    (tmp_path / "cells" / "b").mkdir(parents=True)
    (tmp_path / "cells" / "a").mkdir()
    assert find_run_dirs([tmp_path]) == [tmp_path / "cells" / "a", tmp_path / "cells" / "b"]
    (tmp_path / "empty").mkdir()
    assert find_run_dirs([tmp_path / "empty"]) == [tmp_path / "empty"]  # read_run then names what is missing
    with pytest.raises(ValueError, match="not a run or experiment folder"):
        find_run_dirs([tmp_path / "absent"])
