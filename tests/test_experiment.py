from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from scenesense.config import ConfigError, build_config, to_dict
from scenesense.demo import DEMO_DELTA
from scenesense.experiment import build_grid, modality_sets, parse_modality_set, run_experiment
from scenesense.utils.extras import MissingExtraError

KINDS = {"audio": "vector", "text": "sequence", "vision": "sequence"}


def _dict(cfg):
    from scenesense.config import to_dict

    return to_dict(cfg)


def _base(tmp_path, **trainer):
    return build_config(DEMO_DELTA, {
        "data": {"cache_dir": str(tmp_path / "cache"), "params": {"n_train": 48, "n_dev": 24, "n_test": 24}},
        "model": {"out_dim": 16, "head_hidden_dim": 16,
                  "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2, "dim_feedforward": 16}},
        "trainer": {"epochs": 1, **trainer}})


def test_modality_sets_and_parsing():
    assert modality_sets(["vision", "audio", "text"]) == [
        ("audio",), ("text",), ("vision",), ("audio", "text"), ("audio", "vision"), ("text", "vision"),
        ("audio", "text", "vision")]
    assert parse_modality_set("text+audio") == ("audio", "text") == parse_modality_set("audio,text")
    with pytest.raises(ConfigError, match="empty modality set"):
        parse_modality_set("+")


def test_default_grid_is_table_3(tmp_path):
    cells = build_grid(_base(tmp_path), KINDS, seeds=[0])
    assert len(cells) == 3 + 4 * 5  # unimodal: the base model; multimodal: the five Scene Sense recipes
    assert [c.id for c in cells[:4]] == ["audio__base__s0", "text__base__s0", "vision__base__s0",
                                         "audio+text__concat__s0"]
    tokens = {c.id for c in cells if c.delta}
    # cross-attention needs two sequences: audio (a vector) joins as a token where only one is present
    assert tokens == {f"{s}__{v}__s0" for s in ("audio+text", "audio+vision")
                      for v in ("cross_attention", "residual_cross_attention")}
    cfg = next(c for c in cells if c.id == "audio+text__cross_attention__s0").config({}, "exp")
    assert cfg.model.fusion.params["vector_tokens"] is True and tuple(cfg.modalities) == ("audio", "text")
    two_seeds = build_grid(_base(tmp_path), KINDS, sets=[("text",)], seeds=[1, 2])
    assert [c.id for c in two_seeds] == ["text__base__s1", "text__base__s2"]
    # "base" keeps the base config's model; a recipe replaces parts of it
    base_cfg = build_config(_dict(_base(tmp_path)), {"model": {"use_residual": True}})
    plain, recipe = build_grid(base_cfg, KINDS, sets=[("audio", "text")], variants=["base", "concat"], seeds=[0])
    assert plain.config(_dict(base_cfg), "e").model.use_residual is True
    assert recipe.config(_dict(base_cfg), "e").model.use_residual is False
    # recipes that choose no fusion (context, losses) run on one modality too; fusions do not
    mixed = build_grid(_base(tmp_path), KINDS, sets=[("text",), ("audio", "text")],
                       variants=["base", "concat", "context_past", "focal"], seeds=[0])
    assert [c.id for c in mixed] == ["text__base__s0", "text__context_past__s0", "text__focal__s0",
                                     "audio+text__base__s0", "audio+text__concat__s0",
                                     "audio+text__context_past__s0", "audio+text__focal__s0"]
    context = mixed[1].config({}, "e")
    assert context.model.context.params["direction"] == "past"


def test_grid_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown variant 'nope'; use 'base' or a recipe"):
        build_grid(_base(tmp_path), KINDS, variants=["nope"])
    with pytest.raises(ConfigError, match=r"the data has no \['face'\]"):
        build_grid(_base(tmp_path), KINDS, sets=[("face", "text")])
    with pytest.raises(ConfigError, match="at least one seed"):
        build_grid(_base(tmp_path), KINDS, seeds=[])


def test_run_resume_and_refuse_another_grid(tmp_path):
    base, folder = _base(tmp_path), tmp_path / "exp"
    seen = []
    result = run_experiment(base, folder, sets=[("text",), ("audio", "text")], variants=["concat", "hadamard"],
                            seeds=[0, 1], after_cell=seen.append)
    assert len(result.run_dirs) == 6 and len(result.trained) == 6 and result.skipped == []
    assert sorted(p.name for p in seen) == sorted(result.run_dirs)
    cell = json.loads((folder / "cells" / "audio+text__hadamard__s1" / "cell.json").read_text())
    assert cell == {"modalities": ["audio", "text"], "variant": "hadamard", "seed": 1, "experiment": "exp"}
    metrics = json.loads((folder / "cells" / "audio+text__hadamard__s1" / "metrics.json").read_text())
    assert metrics["seed"] == 1
    recorded = json.loads((folder / "experiment.json").read_text())
    assert [c["id"] for c in recorded["cells"]] == [c for c in result.run_dirs]
    # a finished grid is skipped; a cell without metrics.json (killed) runs again
    (folder / "cells" / "text__base__s0" / "metrics.json").unlink()
    again = run_experiment(base, folder, sets=[("text",), ("audio", "text")], variants=["concat", "hadamard"],
                           seeds=[0, 1])
    assert again.trained == ["text__base__s0"] and len(again.skipped) == 5
    with pytest.raises(ConfigError, match="another base configuration"):
        run_experiment(_base(tmp_path, lr=0.5), folder, sets=[("text",)], seeds=[0])


def test_two_worker_processes(tmp_path):
    result = run_experiment(_base(tmp_path), tmp_path / "exp", sets=[("text",)], seeds=[0, 1], workers=2, threads=1)
    assert sorted(result.trained) == ["text__base__s0", "text__base__s1"]
    for run_dir in result.run_dirs.values():
        assert (run_dir / "metrics.json").exists() and (run_dir / "checkpoint.pt").exists()


def test_ray_backend_without_ray_says_how_to_install_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(MissingExtraError, match=r'the ray backend: ray is not installed; run '
                                                r'pip install "scenesense\[ray\]"'):
        run_experiment(_base(tmp_path), tmp_path / "exp", sets=[("text",)], seeds=[0], backend="ray")
    assert not (tmp_path / "exp").exists()


def test_synthetic_config_is_the_demo_model():
    from dataclasses import replace
    from pathlib import Path

    from scenesense.config import load_yaml

    path = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"
    from_yaml, demo = build_config(load_yaml(path)), build_config(DEMO_DELTA, {"name": "synthetic"})
    assert from_yaml == replace(demo, trainer=replace(demo.trainer, progress=from_yaml.trainer.progress))


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (extra: scenesense[ray])")
def test_ray_backend_trains_the_cells(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        result = run_experiment(_base(tmp_path), tmp_path / "exp", sets=[("text",)], seeds=[0, 1], workers=2,
                                threads=1, backend="ray")
    finally:
        ray.shutdown()
    assert sorted(result.trained) == ["text__base__s0", "text__base__s1"]
    assert all((d / "metrics.json").exists() for d in result.run_dirs.values())


def test_a_ray_cell_on_gpus_asks_ray_for_them():
    from scenesense.experiment import ray_gpus

    assert ray_gpus(to_dict(build_config())) == 0  # the default accelerator: CPU
    assert ray_gpus({"trainer": {"accelerator": "cuda", "devices": 2}}) == 2
    assert ray_gpus({"trainer": {"accelerator": "gpu"}}) == 1
    assert ray_gpus({"trainer": {"accelerator": "auto", "devices": 4}}) == 0  # unknown until run: none asked
