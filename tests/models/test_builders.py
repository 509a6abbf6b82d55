from __future__ import annotations

import pytest
import torch
from torch import nn

from scenesense.config import ComponentConfig, ConfigError, build_config
from scenesense.encoders.linear import LinearVectorEncoder, MLPVectorEncoder
from scenesense.encoders.transformer import TransformerSequenceEncoder
from scenesense.fusions import FUSIONS
from scenesense.fusions.cross_attention import ResidualCrossAttentionFusion
from scenesense.models.builders import build_model
from scenesense.recipes import COMPANION_RECIPES, SCENE_SENSE_RECIPES, recipe_delta
from tests.models._common import FEATURE_DIMS, FEATURE_KINDS, NUM_CLASSES, tiny_config

ALL = ("audio", "text", "vision")


def _build(cfg, modalities=ALL, dims=FEATURE_DIMS, kinds=FEATURE_KINDS):
    return build_model(cfg, modalities, dims, kinds, NUM_CLASSES)


def test_sizes_are_derived():
    model = _build(tiny_config())
    text, audio = model.encoders["text"], model.encoders["audio"]
    assert isinstance(text, TransformerSequenceEncoder)
    assert isinstance(audio, LinearVectorEncoder)
    assert (text.in_dim, text.out_dim, audio.in_dim, audio.out_dim) == (6, 8, 5, 8)
    assert model.fusion.modality_dims == {"audio": 8, "text": 8, "vision": 8}
    assert model.fusion.out_dim == 24


def test_head_is_the_paper_mlp():
    model = _build(tiny_config(head_hidden_dim=5, head_dropout=0.3))
    layers = list(model.head.net)
    assert [type(layer) for layer in layers] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[2].p, layers[3].out_features) == (
        24,
        5,
        0.3,
        7,
    )


def test_per_modality_encoder_and_residual_flags():
    cfg = tiny_config(
        use_residual=True,
        encoders={
            "audio": ComponentConfig("mlp", {"hidden_dim": 3}),
            "vision": ComponentConfig(
                "transformer", {"num_layers": 1, "num_heads": 1, "use_residual": False}
            ),
        },
    )
    model = _build(cfg)
    assert isinstance(model.encoders["audio"], MLPVectorEncoder)  # no use_residual argument: not passed
    assert model.encoders["text"].use_residual is True  # from model.use_residual
    assert model.encoders["vision"].use_residual is False  # per-modality params win


def test_fusion_is_told_which_modalities_are_sequences():
    model = _build(tiny_config("residual_cross_attention"))
    assert isinstance(model.fusion, ResidualCrossAttentionFusion)
    assert model.fusion.sequence_modalities == ("text", "vision")
    assert model.fusion.out_dim == 8 + 8 + 8


def test_modality_dropout_only_with_two_modalities_and_positive_p():
    assert _build(tiny_config(), ("text",)).modality_dropout is None
    assert _build(tiny_config(modality_dropout=0.0)).modality_dropout is None
    dropout = _build(tiny_config(modality_dropout=0.3, modality_dropout_mode="sample")).modality_dropout
    assert (dropout.p, dropout.mode) == (0.3, "sample")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"encoders": {"audio": ComponentConfig("transformer")}},
            "model.encoders.audio: encoder 'transformer' takes sequence inputs "
            "but modality 'audio' has vector features",
        ),
        ({"encoders": {"text": ComponentConfig("linear")}}, "encoder 'linear' takes vector inputs"),
        ({"encoders": {"text": ComponentConfig("transfomer")}}, "unknown encoder 'transfomer'"),
        ({"fusion": ComponentConfig("concatenate")}, "model.fusion: unknown fusion 'concatenate'"),
        (
            {"fusion": ComponentConfig("cross_attention", {"num_head": 2})},
            r"model.fusion \(fusion 'cross_attention'\): unknown parameter\(s\) \['num_head'\]",
        ),
        ({"fusion": ComponentConfig("concat", {"sequence_modalities": ["text"]})}, "derived"),
        (
            {"vector_encoder": ComponentConfig("linear", {"dropout_p": 0.1})},
            r"model.encoders.audio \(encoder 'linear'\): unknown parameter\(s\) \['dropout_p'\]; "
            r"valid parameters are \['dropout'\]",
        ),
        ({"encoders": {"text": ComponentConfig("transformer", {"in_dim": 3})}}, r"\['in_dim'\] are derived"),
        (
            {"sequence_encoder": ComponentConfig("transformer", {"num_heads": 4, "d_model": 6})},
            r"model.encoders.text \(encoder 'transformer'\): d_model 6 is not divisible by num_heads 4",
        ),
        ({"head_hidden_dim": 0}, "model head"),
        (
            {"encoders": {"vison": ComponentConfig("transformer")}},
            r"model.encoders: unknown modality key\(s\) \['vison'\]",
        ),
    ],
)
def test_config_errors_name_the_component_and_value(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _build(tiny_config(**overrides))


def test_data_errors():
    with pytest.raises(ConfigError, match=r"modality 'vision' is not provided by the data"):
        _build(tiny_config(), dims={"text": 6, "audio": 5})
    with pytest.raises(ConfigError, match="feature kind must be one of"):
        _build(tiny_config(), kinds={**FEATURE_KINDS, "audio": "image"})
    with pytest.raises(ConfigError, match="at least one modality"):
        _build(tiny_config(), modalities=())


@pytest.mark.parametrize("recipe", SCENE_SENSE_RECIPES)
def test_scene_sense_recipes_build_at_paper_sizes(recipe):
    # text GloVe [50, 300], audio [1611], vision [L, 512] (formats.md section 3)
    cfg = build_config(
        recipe_delta(recipe), {"model": {"fusion": {"dropout": 0.0}}} if "cross" in recipe else {}
    )
    torch.manual_seed(0)
    model = build_model(
        cfg.model,
        cfg.modalities,
        {"text": 300, "audio": 1611, "vision": 512},
        {"text": "sequence", "audio": "vector", "vision": "sequence"},
        7,
    ).eval()
    inputs = {"text": torch.randn(2, 6, 300), "audio": torch.randn(2, 1611), "vision": torch.randn(2, 3, 512)}
    masks = {
        "text": torch.tensor([[True] * 6, [True] * 2 + [False] * 4]),
        "vision": torch.ones(2, 3, dtype=torch.bool),
    }
    with torch.no_grad():
        logits = model(inputs, masks).logits
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    assert model.encoders["text"].use_residual is cfg.model.use_residual


@pytest.mark.parametrize("recipe", COMPANION_RECIPES)
def test_companion_recipes_build_and_run(recipe):
    cfg = build_config({"model": {"out_dim": 16, "head_hidden_dim": 8, "sequence_encoder": {
        "name": "transformer", "num_layers": 1, "num_heads": 2, "dim_feedforward": 16}}}, recipe_delta(recipe))
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, {"text": 6, "audio": 5, "vision": 4},
                        {"text": "sequence", "audio": "vector", "vision": "sequence"}, 3).eval()
    expected = {"tacfn": "tacfn", "mosei_early": "concat", "mosei_late": "late",
                "mosei_attention": "modality_attention", "amw": "amw", "amw_sample": "amw",
                "amw_temporal": "amw", "mult": "mult", "tmt": "tmt", "tmt_amw": "tmt", "tmt_amw_temporal": "tmt"}
    assert type(model.fusion) is FUSIONS.get(expected[recipe])
    if recipe.startswith("tmt"):  # TMT projects the features itself
        assert {type(enc).__name__ for enc in model.encoders.values()} == {"IdentitySequenceEncoder",
                                                                            "IdentityVectorEncoder"}
    else:
        last = recipe.startswith("mosei")
        assert all(enc.pooling == ("last" if last else "mean") for m, enc in model.encoders.items() if m != "audio")
    inputs = {"text": torch.randn(2, 6, 6), "audio": torch.randn(2, 5), "vision": torch.randn(2, 3, 4)}
    masks = {"text": torch.tensor([[True] * 6, [True] * 2 + [False] * 4]), "vision": torch.ones(2, 3, dtype=torch.bool)}
    with torch.no_grad():
        logits = model(inputs, masks).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
