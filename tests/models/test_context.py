"""Dialogue context models: masks (window, past-only), speaker terms, padding, the contextual classifier."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from scenesense.config import ConfigError, build_config
from scenesense.data.dialogues import DialogueCollate, SpeakerVocabulary, dialogue_layout
from scenesense.fusions import FUSIONS
from scenesense.models import CONTEXTS
from scenesense.models.builders import build_model
from scenesense.models.context import DialogueTransformer
from scenesense.models.contextual import ContextualClassifier, to_dialogues, to_rows


def _sample(dialogue: str, position: int, speaker: str, x: np.ndarray) -> dict:
    return {"id": f"{dialogue}_{position}", "dialogue_id": dialogue, "position": position, "speaker": speaker,
            "inputs": {"audio": x.astype(np.float32)}, "present": {"audio": True}, "label": 0}


def _layout(speakers: list[list[str]], known: list[str] | None = None):
    dialogues = [[_sample(f"d{g}", k, s, np.zeros(2)) for k, s in enumerate(d)] for g, d in enumerate(speakers)]
    return dialogue_layout(dialogues, SpeakerVocabulary(known or []))


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Give the zero-initialised output layer and biases non-zero weights, so the context matters."""
    torch.manual_seed(3)
    for name, p in model.named_parameters():
        if "output" in name or "bias" in name.split(".")[-2:][0] or "speaker" in name:
            torch.nn.init.normal_(p, std=0.5)
    return model.eval()


@pytest.mark.parametrize("name", CONTEXTS.names())
def test_contract_shape_padding_and_causality(name):
    model = _trained_like(CONTEXTS.create(name, in_dim=6, num_speakers=3, direction="past", window=2))
    layout = _layout([["A", "B", "A", "C"], ["B"]], known=["A", "B"])
    x = torch.randn(2, 4, 6)
    out = model(x, layout)
    assert out.shape == (2, 4, 6)
    assert torch.equal(out[1, 1:], x[1, 1:])  # padding slots are passed through
    later = x.clone()
    later[0, 3] += torch.linspace(-5, 5, 6)  # change the last utterance: earlier outputs must not move (past-only)
    moved = model(later, layout)
    assert torch.allclose(moved[0, :3], out[0, :3], atol=1e-6)
    assert not torch.allclose(moved[0, 3], out[0, 3])


def test_fresh_model_is_the_identity():
    model = DialogueTransformer(in_dim=5, num_speakers=2, speaker="both").eval()
    x = torch.randn(1, 3, 5)
    assert torch.equal(model(x, _layout([["A", "B", "A"]])), x)


def test_window_bounds_the_receptive_field():
    model = _trained_like(DialogueTransformer(in_dim=4, window=1, num_layers=2, direction="both"))
    assert model.receptive_field == 2
    layout = _layout([["A", "B", "A", "B", "A", "B"]])
    x = torch.randn(1, 6, 4)
    out = model(x, layout)
    far, near = x.clone(), x.clone()
    kick = torch.tensor([10.0, -10.0, 5.0, 0.0])  # not a constant shift (the input LayerNorm removes those)
    far[0, 5] += kick  # 3 steps from utterance 2: beyond 2 layers x window 1
    near[0, 4] += kick  # 2 steps away: within reach through the intermediate utterance
    assert torch.allclose(model(far, layout)[0, 2], out[0, 2], atol=1e-6)
    assert not torch.allclose(model(near, layout)[0, 2], out[0, 2])


def test_attention_bias_by_hand():
    """One head, window 1, past-only, speaker relation: bias = distance bias + same/other, -inf outside."""
    model = DialogueTransformer(in_dim=4, window=1, direction="past", speaker="relation", num_heads=1, d_model=4)
    with torch.no_grad():
        model.distance_bias.weight.copy_(torch.tensor([[-1.0], [0.0], [1.0]]))  # distance -1, 0, +1
        model.speaker_bias.copy_(torch.tensor([[0.5], [-0.5]]))  # same speaker, other speaker
    # dialogue 1: speakers A, B, A; dialogue 2: C, C and one padding slot
    layout = _layout([["A", "B", "A"], ["C", "C"]])
    bias = model._bias(layout, torch.float32)
    inf = -math.inf
    expected_0 = torch.tensor([[0.0 + 0.5, inf, inf],          # utt 0 sees itself
                               [1.0 - 0.5, 0.0 + 0.5, inf],    # utt 1 sees 0 (other speaker, distance +1)
                               [inf, 1.0 - 0.5, 0.0 + 0.5]])   # utt 2: utt 0 is 2 away (> window)
    # the padding slot (position 0, no speaker) attends only to itself: distance 0, "other speaker"
    expected_1 = torch.tensor([[0.5, inf, inf], [1.0 + 0.5, 0.5, inf], [inf, inf, 0.0 - 0.5]])
    assert torch.equal(bias[0], expected_0)
    assert torch.equal(bias[1], expected_1)


def test_unseen_speakers_are_told_apart():
    layout = _layout([["Guest1", "Guest2", "Guest1", ""]], known=["Joey"])
    assert layout.speaker.tolist() == [[0, 0, 0, 0]]  # all unknown to the vocabulary
    assert layout.turn_speaker.tolist() == [[0, 1, 0, -1]]  # but distinct within the dialogue


def test_speaker_dropout_only_while_training():
    model = DialogueTransformer(in_dim=4, num_speakers=3, speaker="embedding", speaker_dropout=0.5)
    layout = _layout([["A", "B", "A"]], known=["A", "B"])
    x = torch.randn(1, 3, 4)
    model.eval()
    assert torch.equal(model(x, layout), model(x, layout))
    with pytest.raises(ValueError, match="speaker must be"):
        DialogueTransformer(in_dim=4, speaker="names")
    with pytest.raises(ValueError, match="window"):
        DialogueTransformer(in_dim=4, window=-1)


def test_rows_and_dialogues_round_trip():
    layout = _layout([["A", "B", "A"], ["C"]])
    rows = torch.arange(8.0).view(4, 2)
    grouped = to_dialogues(rows, layout)
    assert grouped.tolist() == [[[0, 1], [2, 3], [4, 5]], [[6, 7], [0, 0], [0, 0]]]
    assert torch.equal(to_rows(grouped, layout, 4), rows)


def _model(context: dict | None) -> torch.nn.Module:
    cfg = build_config({"modalities": ["audio"], "model": {"out_dim": 8, "context": context}})
    torch.manual_seed(0)
    return build_model(cfg.model, cfg.modalities, {"audio": 2}, {"audio": "vector"}, 3, num_speakers=3)


def test_builder_wraps_the_utterance_model_and_starts_from_it():
    plain, contextual = _model(None), _model({"name": "transformer", "window": 2})
    assert isinstance(contextual, ContextualClassifier)
    contextual.utterance.load_state_dict(plain.state_dict())
    plain.eval()
    contextual.eval()
    dialogues = [[_sample("d", k, s, np.random.default_rng(k).normal(size=2)) for k, s in enumerate("ABA")]]
    batch = DialogueCollate(SpeakerVocabulary(["A"]))(dialogues)
    expected = plain(batch["inputs"], batch["masks"], batch["present"]).logits
    got = contextual(batch["inputs"], batch["masks"], batch["present"], dialogues=batch["dialogues"]).logits
    assert torch.allclose(got, expected, atol=1e-6)  # zero-initialised context: the context-free model
    with pytest.raises(ConfigError, match="unknown parameter"):
        _model({"name": "transformer", "widow": 2})


def test_batch_padding_does_not_change_predictions():
    model = _trained_like(_model({"name": "transformer", "window": 0, "direction": "both", "speaker": "both"}))
    rng = np.random.default_rng(0)
    short = [_sample("s", k, "AB"[k % 2], rng.normal(size=2)) for k in range(2)]
    long = [_sample("l", k, "BA"[k % 2], rng.normal(size=2)) for k in range(5)]
    collate = DialogueCollate(SpeakerVocabulary(["A", "B"]))
    alone = collate([short])
    both = collate([long, short])
    a = model(alone["inputs"], alone["masks"], alone["present"], dialogues=alone["dialogues"]).logits
    b = model(both["inputs"], both["masks"], both["present"], dialogues=both["dialogues"]).logits
    assert torch.allclose(a, b[5:], atol=1e-5)


def test_parameter_groups_cover_the_context_model_once():
    model = _model({"name": "transformer"})
    groups = model.parameter_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert groups[-1]["params"] == list(model.context.parameters())


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_takes_dialogue_context(fusion):
    """Fusion per utterance, context across utterances: each fusion trains under a context model."""
    accepted = inspect.signature(FUSIONS.get(fusion)).parameters
    wanted = {"num_heads": 2, "dropout": 0.0, "vector_tokens": True}  # audio is a vector: one token
    params = {k: v for k, v in wanted.items() if k in accepted}
    cfg = build_config({"modalities": ["audio", "text"], "model": {
        "out_dim": 8, "fusion": {"name": fusion, **params}, "modality_dropout": 0.0,
        "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2, "dim_feedforward": 8},
        "context": {"name": "transformer", "window": 2, "d_model": 8, "num_heads": 2}}})
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.modalities, {"audio": 3, "text": 8}, {"audio": "vector", "text": "sequence"},
                        4, num_speakers=2)
    rng = np.random.default_rng(0)
    dialogues = [[{**_sample(f"d{g}", k, "AB"[k % 2], rng.normal(size=3)),
                   "inputs": {"audio": rng.normal(size=3).astype(np.float32),
                              "text": rng.normal(size=(2 + k, 8)).astype(np.float32)},
                   "present": {"audio": True, "text": True}} for k in range(n)] for g, n in enumerate((3, 1))]
    batch = DialogueCollate(SpeakerVocabulary(["A"]))(dialogues)
    out = model(batch["inputs"], batch["masks"], batch["present"], dialogues=batch["dialogues"])
    assert out.logits.shape == (4, 4) and torch.isfinite(out.logits).all()
    out.logits.sum().backward()
    assert model.context.output.weight.grad is not None and model.context.output.weight.grad.abs().sum() > 0
