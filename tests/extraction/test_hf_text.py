from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from scenesense.extraction import EXTRACTORS
from scenesense.extraction.base import ItemError, check_output
from scenesense.extraction.hf_text import HFTextExtractor
from scenesense.extraction.text import TextExtractor

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "oh", "my", "god", ",", "he", "'", "s", "lost", "it",
         "!", "what", "?", "the", "a", "##s"]
TEXTS = ["Oh my God, he's lost it!", "What?", "the " * 40 + "end"]  # "end" is unknown: [UNK]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A random 2-layer, 32-d BERT saved with its tokenizer, and sentence-transformers folders built on it."""
    root = tmp_path_factory.mktemp("models")
    bert = root / "bert"
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(bert)
    transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}).save_pretrained(bert)
    st_lib = pytest.importorskip("sentence_transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sentence_transformers.models moved in v6; the alias still works
        from sentence_transformers import models
    module = models.Transformer(str(bert), max_seq_length=64)
    st = root / "st"
    st_lib.SentenceTransformer(modules=[module, models.Pooling(32, "cls")]).save(str(st))
    dense = root / "st_dense"
    st_lib.SentenceTransformer(modules=[module, models.Pooling(32, "mean"),
                                        models.Dense(in_features=32, out_features=16)]).save(str(dense))
    return {"bert": bert, "st": st, "dense": dense}


def _reference(folder, text):
    """Last hidden state [T, 32] of one text, straight from transformers."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].numpy()


def test_registered_lazy_and_provenance(folders):
    assert EXTRACTORS.get("hf") is HFTextExtractor
    extractor = EXTRACTORS.create("hf", model_path=str(folders["bert"]), max_tokens=8)
    assert isinstance(extractor, TextExtractor)
    provenance = extractor.provenance()
    assert provenance["params"] == {"model_path": str(folders["bert"]), "max_tokens": 8, "pooling": "auto",
                                    "normalize": False}
    assert provenance["backend"] == "transformers"
    assert provenance["sentence_max_tokens"] == 64  # position table; the tokenizer has no limit
    assert extractor._model is None  # provenance loads nothing
    rebuilt = EXTRACTORS.create(provenance["extractor"], **provenance["params"])
    assert rebuilt.provenance() == provenance
    assert HFTextExtractor(str(folders["st"])).provenance()["backend"] == "sentence-transformers"
    assert HFTextExtractor(str(folders["st"]), pooling="mean").provenance()["backend"] == "transformers"


def test_transformers_folder_matches_the_model(folders):
    extractor = HFTextExtractor(str(folders["bert"]), max_tokens=8, batch_size=2)
    assert extractor.dim == 32
    features = extractor.extract(TEXTS)
    assert features.sentence.shape == (3, 32) and features.sentence.dtype == np.float32
    for text, tokens, sentence in zip(TEXTS, features.tokens, features.sentence):
        hidden = _reference(folders["bert"], text)  # [T, 32], whole text (< 64 word-pieces)
        assert tokens.dtype == np.float32
        assert tokens.shape == (min(len(hidden), 8), 32)
        np.testing.assert_allclose(tokens, hidden[:8], atol=1e-5)
        np.testing.assert_allclose(sentence, hidden.mean(axis=0), atol=1e-5)  # covers all, not just 8
    assert [len(t) for t in features.tokens] == [8, 4, 8]  # [CLS] what ? [SEP] is 4
    again = extractor.extract(TEXTS[::-1])  # other batches, other padding: same numbers
    for a, b in zip(again.tokens[::-1], features.tokens):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(again.sentence[::-1], features.sentence, atol=1e-5)


def test_sentence_transformers_folder_uses_its_pipeline(folders):
    from sentence_transformers import SentenceTransformer

    st = HFTextExtractor(str(folders["st"]), max_tokens=50).extract(TEXTS)
    plain = HFTextExtractor(str(folders["bert"]), max_tokens=50).extract(TEXTS)
    expected = SentenceTransformer(str(folders["st"]), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(st.sentence, expected, atol=1e-5)
    for a, b in zip(st.tokens, plain.tokens):  # same weights: same token states
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(st.sentence, np.stack([t[0] for t in st.tokens]), atol=1e-5)  # CLS pooling
    mean = HFTextExtractor(str(folders["st"]), pooling="mean").extract(TEXTS)
    np.testing.assert_allclose(mean.sentence, plain.sentence, atol=1e-5)


def test_normalize_and_batch_contract(folders):
    raw = HFTextExtractor(str(folders["bert"])).extract(TEXTS[:2]).sentence
    extractor = HFTextExtractor(str(folders["bert"]), normalize=True, max_tokens=5)
    results = extractor.extract_batch([TEXTS[0], "  ", TEXTS[1]])
    assert isinstance(results[1], ItemError) and "empty text" in str(results[1])
    specs = extractor.outputs()
    for result, expected in zip((results[0], results[2]), raw):
        for name, spec in specs.items():
            check_output(name, result[name], spec, "item")
        np.testing.assert_allclose(np.linalg.norm(result["sentence"]), 1.0, atol=1e-5)
        np.testing.assert_allclose(result["sentence"], expected / np.linalg.norm(expected), atol=1e-5)
    assert results[0]["tokens"].shape == (5, 32)


def test_clear_errors(folders, tmp_path):
    with pytest.raises(ValueError, match="needs model_path"):
        EXTRACTORS.create("hf", model_path=None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFTextExtractor(str(tmp_path / "missing"))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ValueError, match="not a Hugging Face model folder"):
        HFTextExtractor(str(tmp_path))
    with pytest.raises(ValueError, match="pooling"):
        HFTextExtractor(str(folders["bert"]), pooling="max")
    with pytest.raises(ValueError, match="max_tokens"):
        HFTextExtractor(str(folders["bert"]), max_tokens=0)
    with pytest.raises(TypeError, match="text 1 is int"):
        HFTextExtractor(str(folders["bert"])).extract(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="16-d sentence vectors.*pooling='mean'"):
        _ = HFTextExtractor(str(folders["dense"])).dim
    assert HFTextExtractor(str(folders["dense"]), pooling="mean").dim == 32


# --------------------------------------------------------------------------- hidden state k, model identity, pairs
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny BERT and MPNet folders (tests/support/tiny_hf.py), and a copy of the BERT elsewhere."""
    import shutil

    from tests.support.tiny_hf import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    folders = {family: build_tiny_model(family, root / family) for family in ("bert", "mpnet")}
    folders["bert_copy"] = Path(shutil.copytree(folders["bert"], root / "elsewhere" / "bert"))
    folders["bert_other"] = build_tiny_model("bert", root / "bert_other", seed=1)
    return folders


def test_layer_is_recorded_with_the_model_identity(tiny):
    extractor = HFTextExtractor(str(tiny["bert"]), layer=2)
    provenance = extractor.provenance()
    assert provenance["layer"] == provenance["params"]["layer"] == 2
    assert provenance["tokens"].startswith("hidden state 2 ")
    identity = provenance["model_identity"]
    assert {k: identity[k] for k in ("model_type", "hidden_size", "num_layers")} == {
        "model_type": "bert", "hidden_size": 32, "num_layers": 3}
    assert EXTRACTORS.create(provenance["extractor"], **provenance["params"]).provenance() == provenance
    assert extractor._model is None  # provenance loads nothing
    plain = HFTextExtractor(str(tiny["bert"])).provenance()
    assert "layer" not in plain and "layer" not in plain["params"]  # unset: not recorded
    assert HFTextExtractor(str(tiny["bert_copy"])).provenance()["model_identity"] == identity  # same weights
    assert HFTextExtractor(str(tiny["bert_other"])).provenance()["model_identity"] != identity


def test_layer_out_of_range_or_invalid_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.3 \(hidden states of a 3-layer model\), got 4"):
        HFTextExtractor(str(tiny["bert"]), layer=4)
    for bad in (-1, True, 2.0):
        with pytest.raises(ValueError, match="layer must be None or an int >= 0"):
            HFTextExtractor(str(tiny["bert"]), layer=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_pairs_are_the_tokenizers_pair_encoding(tiny, family):
    from tests.support.tiny_hf import reference_states

    pairs = [("Oh my God!", "Joey: you know [SEP] yeah"), ("What?", ""), ("No!", "the end")]
    extractor = HFTextExtractor(str(tiny[family]), max_tokens=64, batch_size=2, layer=1)
    separator = "[SEP]" if family == "bert" else "</s>"  # a [SEP] in the context is the model's separator
    hidden, mask = reference_states(tiny[family], [(a, b.replace("[SEP]", separator)) for a, b in pairs])
    features = extractor.extract_pairs(pairs)
    for i in range(len(pairs)):
        np.testing.assert_allclose(features.tokens[i], hidden[1][i][mask[i]].numpy(), atol=1e-5, rtol=0)
        real = mask[i].unsqueeze(-1).float()
        np.testing.assert_allclose(features.sentence[i], ((hidden[-1][i] * real).sum(0) / real.sum()).numpy(),
                                   atol=1e-5, rtol=0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny[family])
    ids = tokenizer(pairs[0][0], pairs[0][1].replace("[SEP]", separator))["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids).count(separator) == (3 if family == "bert" else 4)  # 1 inside
    assert extractor.count_tokens(["Oh my God!", "What?", "xyz"]) == [4, 2, 1]  # no special tokens; unknown
    with pytest.raises(TypeError, match="pair 1 is"):
        extractor.extract_pairs([("a", "b"), ("a",)])  # type: ignore[list-item]


def test_sentence_transformers_folder_gives_hidden_state_k_and_pairs(folders):
    bert = HFTextExtractor(str(folders["bert"]), max_tokens=64, layer=1)
    st = HFTextExtractor(str(folders["st"]), max_tokens=64, layer=1)
    assert st.provenance()["backend"] == "sentence-transformers"
    assert st.provenance()["model_identity"] == bert.provenance()["model_identity"]
    a, b = st.extract(TEXTS[:2]), bert.extract(TEXTS[:2])
    for x, y in zip(a.tokens, b.tokens):
        np.testing.assert_allclose(x, y, atol=1e-5)
    np.testing.assert_allclose(a.sentence, np.stack([t[0] for t in HFTextExtractor(str(folders["st"])).extract(
        TEXTS[:2]).tokens]), atol=1e-5)  # still the pipeline's CLS pooling of the last layer
    pairs = [("What?", "oh my god"), ("it", "")]
    for x, y in zip(st.extract_pairs(pairs).tokens, bert.extract_pairs(pairs).tokens):
        np.testing.assert_allclose(x, y, atol=1e-5)
