from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from scenesense.config import ConfigError
from scenesense.models.builders import build_model
from scenesense.models.classifier import MultimodalClassifier
from scenesense.models.context import DialogueTransformer
from scenesense.models.contextual import ContextualClassifier
from scenesense.types import ModelOutput
from tests.models._common import FEATURE_DIMS, FEATURE_KINDS, NUM_CLASSES, B, tiny_batch, tiny_config

WIRING = [
    ("concat", ("text",)),
    ("concat", ("audio",)),
    ("concat", ("vision",)),
    ("concat", ("audio", "text")),
    ("concat", ("text", "vision")),
    ("concat", ("audio", "text", "vision")),
    ("hadamard", ("audio", "text")),
    ("hadamard", ("audio", "vision")),
    ("hadamard", ("audio", "text", "vision")),
    ("cross_attention", ("text", "vision")),
    ("cross_attention", ("audio", "text", "vision")),
    ("residual_cross_attention", ("text", "vision")),
    ("residual_cross_attention", ("audio", "text", "vision")),
]


def _model(fusion="concat", modalities=("audio", "text", "vision"), **overrides) -> MultimodalClassifier:
    torch.manual_seed(0)
    return build_model(tiny_config(fusion, **overrides), modalities, FEATURE_DIMS, FEATURE_KINDS, NUM_CLASSES)


@pytest.mark.parametrize(("fusion", "modalities"), WIRING, ids=[f"{f}-{'+'.join(m)}" for f, m in WIRING])
def test_builder_wiring(fusion, modalities):
    model = _model(fusion, modalities)
    assert model.modalities == tuple(sorted(modalities))
    assert list(model.encoders) == sorted(modalities)
    assert model.head.in_dim == model.fusion.out_dim
    assert (model.modality_dropout is None) == (len(modalities) == 1)
    inputs, masks = tiny_batch(modalities)
    out = model.train()(inputs, masks)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (B, NUM_CLASSES)
    assert out.fused.shape == (B, model.fusion.out_dim)
    assert torch.isfinite(out.logits).all()
    assert out.aux_losses == {}
    out.logits.sum().backward()


@pytest.mark.parametrize(
    ("fusion", "modalities", "message"),
    [
        ("hadamard", ("text",), r"at least 2 modalities, got \['text'\]"),
        ("cross_attention", ("audio", "text"), r"at least 2 sequence modalities, got \['text'\]"),
        ("residual_cross_attention", ("text",), "at least 2 sequence modalities"),
    ],
)
def test_builder_rejects_fusions_that_cannot_handle_the_modalities(fusion, modalities, message):
    with pytest.raises(ConfigError, match=message):
        _model(fusion, modalities)


def test_missing_modality_error():
    model = _model("concat", ("text", "vision"))
    inputs, masks = tiny_batch(("text",))
    with pytest.raises(ValueError, match=r"model needs modality 'vision' but the batch has only \['text'\]"):
        model(inputs, masks)


def test_extra_input_modalities_are_ignored():
    model = _model("concat", ("text",)).eval()
    inputs, masks = tiny_batch(("audio", "text", "vision"))
    assert_close(model(inputs, masks).logits, model({"text": inputs["text"]}, {"text": masks["text"]}).logits)


def test_present_flags_zero_a_modality():
    model = _model("concat").eval()
    inputs, masks = tiny_batch(("audio", "text", "vision"))
    present = {"vision": torch.tensor([False, True, True])}
    out = model(inputs, masks, present)
    vision = slice(16, 24)  # fused = audio (8), text (8), vision (8)
    assert (out.fused[0, vision] == 0).all()
    assert (out.fused[1:, vision] != 0).any(dim=1).all()
    assert (out.fused[0, :16] != 0).any()
    changed = dict(inputs, vision=inputs["vision"] + torch.randn_like(inputs["vision"]))
    assert_close(model(changed, masks, present).logits[0], out.logits[0])


def test_missing_modality_is_absent_for_cross_attention():
    model = _model("cross_attention", ("text", "vision")).eval()
    inputs, masks = tiny_batch(("text", "vision"))
    out = model(inputs, masks, {"vision": torch.tensor([False, True, True])})
    assert torch.isfinite(out.logits).all()
    assert (out.attention["text->vision"][0] == 0).all()  # nothing to attend to
    assert (out.attention["vision->text"][0] == 0).all()  # vision has no real query step
    assert (out.attention["text->vision"][1].sum(-1)[:2] > 0.99).all()


def test_present_flags_are_validated():
    model = _model("concat", ("text",))
    inputs, masks = tiny_batch(("text",))
    with pytest.raises(ValueError, match=r"present\['text'\] must have shape \[3\]"):
        model(inputs, masks, {"text": torch.ones(2, dtype=torch.bool)})


def test_modality_dropout_batch_mode_in_training_and_none_in_eval():
    model = _model("concat", modality_dropout=0.5, modality_dropout_mode="batch")
    inputs, masks = tiny_batch(("audio", "text", "vision"))
    slices = {"audio": slice(0, 8), "text": slice(8, 16), "vision": slice(16, 24)}
    model.train()
    torch.manual_seed(1)
    seen = {m: set() for m in slices}
    for _ in range(30):
        fused = model(inputs, masks).fused
        for m, s in slices.items():
            zero_rows = (fused[:, s] == 0).all(dim=1)
            assert zero_rows.all() or not zero_rows.any()  # one decision for the whole batch
            seen[m].add(bool(zero_rows[0]))
    assert all(v == {True, False} for v in seen.values())
    model.eval()
    reference = model(inputs, masks).logits
    for _ in range(5):
        assert torch.equal(model(inputs, masks).logits, reference)
    model.modality_dropout = None
    assert torch.equal(model(inputs, masks).logits, reference)


def test_modality_dropout_sample_mode_keeps_one_modality_per_sample():
    model = _model("concat", modality_dropout=0.9, modality_dropout_mode="sample").train()
    inputs, masks = tiny_batch(("audio", "text", "vision"))
    torch.manual_seed(0)
    for _ in range(20):
        fused = model(inputs, masks).fused.view(B, 3, 8)  # [B, modality, out_dim]
        assert (fused != 0).any(dim=2).any(dim=1).all()


def test_fusion_must_match_encoders():
    model = _model("concat", ("text", "vision"))
    other = _model("concat", ("text",))
    with pytest.raises(
        ValueError, match=r"fusion was built for \['text'\] but the encoders are \['text', 'vision'\]"
    ):
        MultimodalClassifier(model.encoders, other.fusion, model.head)


def test_parameter_groups_take_encoder_groups_and_put_the_rest_in_one_default_group():
    model = _model()
    plain = model.parameter_groups()
    assert len(plain) == 1
    assert [id(p) for p in plain[0]["params"]] == [id(p) for p in model.parameters()]
    assert (plain[0]["lr_scale"], plain[0]["frozen_epochs"]) == (1.0, 0)

    text = model.encoders["text"]
    first = next(text.parameters())
    text.parameter_groups = lambda: [{"params": [first], "lr_scale": 0.1, "frozen_epochs": 2}]
    groups = model.parameter_groups()
    assert [(g["lr_scale"], g["frozen_epochs"]) for g in groups] == [(0.1, 2), (1.0, 0)]
    assert groups[0]["params"] == [first]
    assert [id(p) for p in groups[1]["params"]] == [id(p) for p in model.parameters() if p is not first]


def test_aux_loss_weights_are_the_fusions_defaults_for_both_classifiers():
    model = _model()
    contextual = ContextualClassifier(model, DialogueTransformer(in_dim=model.fusion.out_dim, num_speakers=1))
    assert model.aux_loss_weights() == {} == contextual.aux_loss_weights()  # a fusion without defaults
    model.fusion.aux_loss_weights = {"orthogonality": 0.01, "similarity": 1.0}
    assert model.aux_loss_weights() == {"orthogonality": 0.01, "similarity": 1.0}
    assert contextual.aux_loss_weights() == {"orthogonality": 0.01, "similarity": 1.0}
    model.aux_loss_weights()["similarity"] = 5.0  # a copy: the caller cannot change the fusion's
    assert model.fusion.aux_loss_weights["similarity"] == 1.0
