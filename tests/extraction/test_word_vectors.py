from __future__ import annotations

import gzip
import re
import sys

import numpy as np
import pytest

from scenesense.extraction import EXTRACTORS, word_vector_files
from scenesense.extraction.base import ItemError, check_output
from scenesense.extraction.word_vector_files import load_word_vectors
from scenesense.extraction.word_vectors import WordVectorTextExtractor, tokenize

# Exactly representable values, so means can be checked by hand.
VECTORS = {
    "oh": [1.0, 2.0, 3.0],
    "my": [3.0, 2.0, 1.0],
    "!": [2.0, -1.0, 0.5],
    "he": [0.5, 0.5, 0.5],
    "'s": [-1.0, 0.0, 1.0],
    "lost": [0.25, -0.25, 4.0],
    "it": [8.0, 0.0, -2.0],
}


def _lines(vectors):
    return [f"{w} " + " ".join(str(v) for v in vec) for w, vec in vectors.items()]


@pytest.fixture
def glove(tmp_path):
    path = tmp_path / "glove.tiny.3d.txt"
    path.write_text("\n".join(_lines(VECTORS)) + "\n", encoding="utf-8")
    return path


def _vec(*words):
    return np.array([VECTORS[w] for w in words], dtype=np.float32)


def test_tokenize_rules():
    assert tokenize("Oh my God, he’s lost it… Don't!") == [
        "oh", "my", "god", ",", "he", "'s", "lost", "it", "...", "do", "n't", "!"]
    assert tokenize("I can't, won't. U.S. 3.5 e-mail “Good”", lowercase=False) == [
        "I", "ca", "n't", ",", "wo", "n't", ".", "U.S", ".", "3.5", "e-mail", '"', "Good", '"']
    assert tokenize("Oh my God, he's  lost it!", rule="whitespace") == [
        "oh", "my", "god,", "he's", "lost", "it!"]


def test_registered_lazy_and_provenance(glove):
    assert EXTRACTORS.get("word_vectors") is WordVectorTextExtractor
    # the MELD source passes model_path, max_tokens, batch_size and device to every text extractor
    extractor = EXTRACTORS.create("word_vectors", model_path=str(glove), max_tokens=50, batch_size=64,
                                  device="cpu", vocab_limit=None)
    assert extractor.dim == 3
    assert extractor._vectors is None  # dim reads the first line only
    provenance = extractor.provenance()
    assert provenance["params"] == {"model_path": str(glove), "max_tokens": 50, "tokenizer": "ptb",
                                    "lowercase": True, "oov": "zero", "vocab_limit": None}
    assert provenance["vectors"]["file"] == glove.name
    assert provenance["vectors"]["bytes"] == glove.stat().st_size
    assert EXTRACTORS.create(provenance["extractor"], **provenance["params"]).provenance() == provenance
    assert extractor._vectors is None


def test_exact_rows_and_mean_with_unknown_words(glove):
    text = "Oh my unicorn, he's lost it!"  # unknown: unicorn and ","
    zero = WordVectorTextExtractor(str(glove)).extract([text])
    known = _vec("oh", "my", "he", "'s", "lost", "it", "!")
    expected_mean = np.array([13.75 / 7, 3.25 / 7, 8.0 / 7], dtype=np.float32)  # summed by hand
    np.testing.assert_allclose(known.mean(axis=0), expected_mean, rtol=1e-6)
    np.testing.assert_allclose(zero.sentence[0], expected_mean, rtol=1e-6)
    rows = np.concatenate([_vec("oh", "my"), np.zeros((2, 3)), _vec("he", "'s", "lost", "it", "!")])
    np.testing.assert_array_equal(zero.tokens[0], rows)
    assert zero.tokens[0].dtype == np.float32 and zero.sentence.dtype == np.float32

    skip = WordVectorTextExtractor(str(glove), oov="skip").extract([text])
    np.testing.assert_array_equal(skip.tokens[0], known)
    np.testing.assert_array_equal(skip.sentence, zero.sentence)

    random = WordVectorTextExtractor(str(glove), oov="random").extract([text, "unicorn"])
    unknown = random.tokens[0][2:4]  # unicorn, ","
    assert np.all(np.abs(unknown) <= 0.25) and not np.allclose(unknown[0], unknown[1])
    np.testing.assert_array_equal(random.tokens[1][0], unknown[0])  # fixed per word
    np.testing.assert_array_equal(WordVectorTextExtractor(str(glove), oov="random").extract([text]).tokens[0],
                                  random.tokens[0])
    np.testing.assert_array_equal(random.tokens[0][[0, 1, 4]], zero.tokens[0][[0, 1, 4]])
    np.testing.assert_array_equal(random.sentence[0], zero.sentence[0])  # the mean uses known words only


def test_max_tokens_cut_and_texts_without_known_words(glove):
    text = "oh my oh my oh my it it"
    features = WordVectorTextExtractor(str(glove), max_tokens=3).extract([text, "xyzzy plugh", ""])
    np.testing.assert_array_equal(features.tokens[0], _vec("oh", "my", "oh"))
    np.testing.assert_allclose(features.sentence[0], [(6 * 2 + 16) / 8, 12 / 8, (6 * 2 - 4) / 8])  # all 8
    np.testing.assert_array_equal(features.tokens[1], np.zeros((2, 3)))  # two unknown words: zero rows
    np.testing.assert_array_equal(features.sentence[1:], np.zeros((2, 3)))
    np.testing.assert_array_equal(features.tokens[2], np.zeros((1, 3)))  # nothing to keep: one zero row
    skipped = WordVectorTextExtractor(str(glove), oov="skip").extract(["xyzzy plugh"])
    np.testing.assert_array_equal(skipped.tokens[0], np.zeros((1, 3)))


def test_batch_contract(glove):
    extractor = WordVectorTextExtractor(str(glove), max_tokens=4)
    results = extractor.extract_batch(["Oh my!", " ", "he's lost it, oh"])
    assert isinstance(results[1], ItemError) and "empty text" in str(results[1])
    for result in (results[0], results[2]):
        for name, spec in extractor.outputs().items():
            check_output(name, result[name], spec, "item")
    assert results[0]["tokens"].shape == (3, 3) and results[2]["tokens"].shape == (4, 3)
    again = extractor.extract_batch(["Oh my!", " ", "he's lost it, oh"])
    np.testing.assert_array_equal(again[2]["sentence"], results[2]["sentence"])
    assert extractor.extract([]).sentence.shape == (0, 3)


def test_word2vec_gzip_crlf_and_glove_quirks(tmp_path, glove):
    reference = load_word_vectors(glove)
    assert reference.format == "glove" and reference.matrix.shape == (7, 3)
    w2v = tmp_path / "vectors.w2v.txt.gz"
    with gzip.open(w2v, "wt", encoding="utf-8", newline="") as f:
        f.write("7 3\r\n" + "".join(line + " \r\n" for line in _lines(VECTORS)))  # word2vec's trailing space
    loaded = load_word_vectors(w2v)
    assert loaded.format == "word2vec" and loaded.index == reference.index
    np.testing.assert_array_equal(loaded.matrix, reference.matrix)

    quirks = tmp_path / "quirks.txt"
    quirks.write_text("oh 1 2 3\n. . . 4 5 6\n\noh 7 8 9\nat name@domain.com 1 1 1\n", encoding="utf-8")
    vectors = load_word_vectors(quirks)
    assert vectors.index == {"oh": 0, ". . .": 1, "at name@domain.com": 3}  # repeated word: first row wins
    np.testing.assert_array_equal(vectors.matrix[vectors.index[". . ."]], [4, 5, 6])


def test_vocab_limit_chunks_and_numpy_fallback(monkeypatch, glove, tmp_path):
    monkeypatch.setattr(word_vector_files, "_CHUNK_ROWS", 2)
    reference = load_word_vectors(glove)
    np.testing.assert_array_equal(reference.matrix, np.array(list(VECTORS.values()), dtype=np.float32))
    limited = load_word_vectors(glove, vocab_limit=5)
    assert list(limited.index) == list(VECTORS)[:5]
    np.testing.assert_array_equal(limited.matrix, reference.matrix[:5])
    features = WordVectorTextExtractor(str(glove), vocab_limit=1).extract(["oh my"])
    np.testing.assert_array_equal(features.tokens[0], [VECTORS["oh"], [0, 0, 0]])
    monkeypatch.setitem(sys.modules, "pandas", None)  # import fails: numpy parses
    np.testing.assert_array_equal(load_word_vectors(glove).matrix, reference.matrix)
    header = tmp_path / "short.w2v.txt"
    header.write_text("9 3\n" + "\n".join(_lines(VECTORS)), encoding="utf-8")
    with pytest.raises(ValueError, match="announces 9 vectors, the file holds 7"):
        load_word_vectors(header)
    assert load_word_vectors(header, vocab_limit=6).matrix.shape == (6, 3)


@pytest.mark.parametrize(("content", "message"), [
    ("oh 1 2 3\nmy 1 2\n", r":2: expected a word and 3 numbers, found 2 numbers"),
    ("oh 1 2 3\nmy 1 2 3\nhe 1 2 3 4\n", r":3: 4 numbers after the word, expected 3"),
    ("oh 1 2 3\nmy 1 abc 3\n", r":2: 'abc' is not a number"),
    ("oh 1 2 3\nmy 1 nan 3\n", r":2: NaN or infinite value"),
    ("oh 1 2 3\nmy 1  2 3\n", r":2: empty field"),
    ("2 3\noh 1 2 3\nmy x 2 3\n", r":3: 'x' is not a number"),
    ("\n", r": empty first line"),
    ("oh\n", r":1: expected a word and its numbers"),
])
def test_malformed_files_name_file_and_line(monkeypatch, tmp_path, content, message):
    monkeypatch.setattr(word_vector_files, "_CHUNK_ROWS", 2)  # the culprit may sit in a later chunk
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}{message}"):
        load_word_vectors(path)


def test_other_bad_inputs(tmp_path, glove):
    binary = tmp_path / "vectors.bin"
    binary.write_bytes(b"2 3\noh \x80\x81\xfe\xff\x00\x00\x80?\nmy \x00\x00\x80?\x00\x00\x80?\x00\x00\x80?\n")
    with pytest.raises(ValueError, match="binary word2vec files are not read"):
        load_word_vectors(binary)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WordVectorTextExtractor(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="needs model_path"):
        EXTRACTORS.create("word_vectors", model_path=None)
    for bad in ({"oov": "unk"}, {"tokenizer": "spacy"}, {"max_tokens": 0}, {"vocab_limit": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            WordVectorTextExtractor(str(glove), **bad)
    with pytest.raises(TypeError, match="text 0 is NoneType"):
        WordVectorTextExtractor(str(glove)).extract([None])  # type: ignore[list-item]


def test_cache_is_reused_and_keyed_by_content(monkeypatch, tmp_path, glove):
    cache = tmp_path / "cache"
    first = load_word_vectors(glove, cache_dir=cache)
    (folder,) = [p for p in cache.iterdir()]
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "vectors.f32", "vocab.txt"]

    def no_parsing(*args):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(word_vector_files, "_parse_into", no_parsing)
        cached = load_word_vectors(glove, cache_dir=cache)
        assert isinstance(cached.matrix, np.memmap)
        assert cached.index == first.index
        np.testing.assert_array_equal(cached.matrix, first.matrix)
        features = WordVectorTextExtractor(str(glove), cache_dir=str(cache)).extract(["oh my"])
        np.testing.assert_array_equal(features.tokens[0], _vec("oh", "my"))
    glove.write_text("oh 9 9 9\n", encoding="utf-8")  # new content: new key, parsed again
    assert load_word_vectors(glove, cache_dir=cache).matrix.tolist() == [[9, 9, 9]]
    load_word_vectors(glove, cache_dir=cache, vocab_limit=1)
    assert len(list(cache.iterdir())) == 3 and not list(cache.glob("*partial*"))
