from __future__ import annotations

import pytest

from scenesense.config import (
    ComponentConfig,
    ConfigError,
    ExperimentConfig,
    build_config,
    diff_mappings,
    dump_yaml,
    from_dict,
    load_yaml,
    parse_override,
)


def test_parse_override_nests_keys_and_parses_yaml_values():
    assert parse_override("trainer.epochs=3") == {"trainer": {"epochs": 3}}
    assert parse_override("modalities=[text, audio]") == {"modalities": ["text", "audio"]}
    assert parse_override("model.fusion.params.num_heads=2") == {"model": {"fusion": {"params": {"num_heads": 2}}}}
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        parse_override("trainer.epochs")


@pytest.mark.parametrize(("raw", "expected"), [("3e-4", 3e-4), ("0.001", 1e-3), ("2", 2.0), ("1.5E+1", 15.0)])
def test_float_fields_accept_every_number_spelling(raw, expected):
    # PyYAML reads "3e-4" as a string (YAML 1.1 wants a dot); the config must still take it.
    cfg = build_config(parse_override(f"trainer.lr={raw}"))
    assert cfg.trainer.lr == expected
    assert isinstance(cfg.trainer.lr, float)


@pytest.mark.parametrize("raw", ["nan", ".inf", "-inf", "fast", "true"])
def test_float_fields_reject_non_numbers_and_non_finite_values(raw):
    with pytest.raises(ConfigError, match=r"config.trainer.lr: expected"):
        build_config(parse_override(f"trainer.lr={raw}"))


def test_layers_merge_in_order_and_a_new_component_name_replaces_its_params():
    cfg = build_config(
        {"model": {"fusion": {"name": "cross_attention", "params": {"num_heads": 2}}}},
        parse_override("model.fusion.params.dropout=0.3"),
        {"trainer": {"epochs": 4}},
        {"trainer": {"epochs": 7}},
    )
    assert cfg.model.fusion == ComponentConfig("cross_attention", {"num_heads": 2, "dropout": 0.3})
    assert cfg.trainer.epochs == 7
    replaced = build_config({"model": {"fusion": {"name": "cross_attention", "params": {"num_heads": 2}}}},
                            {"model": {"fusion": {"name": "concat"}}})
    assert replaced.model.fusion == ComponentConfig("concat", {})


def test_a_later_params_key_replaces_the_same_key_written_flat_before():
    flat = {"model": {"context": {"name": "transformer", "window": 8, "direction": "past"}}}
    cfg = build_config(flat, parse_override("model.context.params.window=4"))
    assert cfg.model.context == ComponentConfig("transformer", {"window": 4, "direction": "past"})
    cfg = build_config(flat, parse_override("model.context.window=2"))  # the flat form, later: also wins
    assert cfg.model.context.params["window"] == 2
    cfg = build_config({"model": {"fusion": {"name": "tacfn", "params": {"num_heads": 2}}}},
                       {"model": {"fusion": {"num_heads": 4}}})  # flat after params wins, as before
    assert cfg.model.fusion.params == {"num_heads": 4}
    data = build_config({"data": {"dataset": "synthetic", "params": {"n_train": 10}}})
    assert data.data.params == {"n_train": 10}  # data.params is not a component: untouched


@pytest.mark.parametrize(("layer", "message"), [
    ({"trainer": {"epoch": 3}}, r"config.trainer: unknown key\(s\) \['epoch'\]"),
    ({"trainer": {"epochs": "many"}}, r"config.trainer.epochs: expected int, got 'many'"),
    ({"trainer": {"progress": "yes"}}, "expected true/false"),
    ({"modalities": ["txt"]}, "unknown modality 'txt'"),
    ({"modalities": ["text", "text"]}, "duplicates"),
    ({"model": {"modality_dropout": 1.0}}, r"modality_dropout must be in \[0, 1\)"),
    ({"trainer": {"epochs": 0}}, "epochs, batch_size, patience must be >= 1"),
    ({"trainer": {"bucket_batches": -1}}, "trainer.bucket_batches must be >= 0"),
    ({"trainer": {"bucket_batches": 50}, "model": {"context": {"name": "transformer"}}},
     "a model with model.context trains on whole dialogues"),
    ({"trainer": {"lr_schedule": "cosine"}}, r"lr_schedule must be one of \['constant', 'linear'\]"),
    ({"trainer": {"warmup": 1.0}}, r"warmup is a fraction of the training steps in \[0, 1\)"),
    ({"trainer": {"warmup": -0.1}}, "warmup is a fraction"),
])
def test_invalid_configs_name_the_key(layer, message):
    with pytest.raises(ConfigError, match=message):
        build_config(layer)


def test_yaml_round_trip_is_exact(tmp_path):
    cfg = build_config({"name": "x", "modalities": ["text"], "trainer": {"betas": [0.8, 0.9], "lr": 3e-4},
                        "model": {"fusion": {"name": "cross_attention", "num_heads": 2}}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert from_dict(ExperimentConfig, load_yaml(path)) == cfg


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(tmp_path / "bad.yaml")


@pytest.mark.parametrize(("override", "key"), [
    ({"precision": "bogus"}, "trainer.precision"), ({"devices": 0}, "trainer.devices"),
    ({"accelerator": "abacus"}, "trainer.accelerator"), ({"seed": -1}, "trainer.seed"),
    ({"seed": 2**32}, "trainer.seed"), ({"num_workers": -2}, "trainer.num_workers"),
    ({"betas": [0.9, 1.0]}, "trainer.betas"), ({"weight_decay": -0.1}, "trainer.weight_decay"),
])
def test_hardware_and_seed_settings_are_checked_in_the_config(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config({"trainer": override})


def test_diff_mappings_lists_changed_leaves_by_dotted_key():
    old = {"name": "a", "trainer": {"lr": 0.1, "betas": [0.9, 0.99]}, "data": {"params": {"n": 1}}}
    new = {"name": "a", "trainer": {"lr": 0.5, "betas": [0.9, 0.99]}, "data": {"params": {"n": 1, "m": 2}}}
    assert diff_mappings(old, new) == ["data.params.m: None -> 2", "trainer.lr: 0.1 -> 0.5"]
    assert diff_mappings(old, old) == []
