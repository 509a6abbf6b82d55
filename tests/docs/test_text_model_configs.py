"""The shipped configs that fine-tune a pretrained text encoder store the hidden state it starts from.

The `hf` (and `minilm`) encoder refuses, before training, features of another layer or model;
these checks catch such a config without extracting anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scenesense.config import build_config, load_yaml

ROOT = Path(__file__).resolve().parents[2]
FINE_TUNED = [p for p in sorted((ROOT / "configs").glob("*.yaml"))
              if load_yaml(p).get("model", {}).get("sequence_encoder", {}).get("name") in ("hf", "minilm")]


def test_the_mpnet_configs_fine_tune_mpnet():
    names = {p.name for p in FINE_TUNED}
    assert {"meld_mpnet.yaml", "meld_mpnet_context.yaml"} <= names
    for name in ("meld_mpnet.yaml", "meld_mpnet_context.yaml"):
        cfg = build_config(load_yaml(ROOT / "configs" / name))
        assert cfg.model.sequence_encoder.name == "hf"
        assert cfg.model.sequence_encoder.params["model_path"] == "all-mpnet-base-v2"
    context = build_config(load_yaml(ROOT / "configs" / "meld_mpnet_context.yaml")).data.params["context"]
    assert context == {"past": 2, "future": 1, "speakers": True}


@pytest.mark.parametrize("path", FINE_TUNED, ids=lambda p: p.name)
def test_the_stored_layer_is_the_encoders_from_layer_of_the_same_model(path):
    cfg = build_config(load_yaml(path))
    data, encoder = cfg.data.params, cfg.model.sequence_encoder
    layer = (data.get("extractor_params") or {}).get("layer")
    assert layer == encoder.params["from_layer"], f"{path.name}: stored layer {layer}"
    if encoder.name == "hf":
        assert data.get("extractor") == "hf"
        assert data.get("model_path") == encoder.params.get("model_path")
    else:
        assert data.get("extractor", "minilm") == "minilm"
