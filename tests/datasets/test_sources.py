from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from scenesense.config import ConfigError, DataConfig
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.store import StoreError, open_store_split
from scenesense.data.text_context import TextContext
from scenesense.datasets.meld_text import extract_meld_for_run, extract_meld_split
from scenesense.datasets.sources import DATASETS, prepare_dataset
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.text import TextFeatures
from tests.support.extractors import StubTextExtractor

TINY = {"n_train": 12, "n_dev": 6, "n_test": 6, "min_len": 10, "max_len": 12}


class StubPairExtractor(StubTextExtractor):
    """Also reads (text, context) pairs: one token per word of both (+3 specials); keeps the pairs."""

    pairs: ClassVar[list[tuple[str, str]]] = []

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "stub_pairs", "params": {"max_tokens": self.max_tokens}}

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def extract_pairs(self, pairs: list[tuple[str, str]]) -> TextFeatures:
        StubPairExtractor.pairs += pairs
        return self.extract([f"{a} {b}" for a, b in pairs])


def test_registered_sources():
    assert {"meld", "store", "synthetic"} <= set(DATASETS.names())


def test_synthetic_is_cached_by_parameters(tmp_path):
    cfg = DataConfig(params=TINY)
    root = prepare_dataset(cfg, tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["dev.h5", "test.h5", "train.h5"]
    stamp = (root / "train.h5").stat().st_mtime_ns
    assert prepare_dataset(cfg, tmp_path) == root
    assert (root / "train.h5").stat().st_mtime_ns == stamp  # reused, not regenerated
    (root / "dev.h5").unlink()
    assert prepare_dataset(cfg, tmp_path) == root
    assert open_store_split(root / "dev.h5").n == 6
    assert prepare_dataset(DataConfig(params={**TINY, "seed": 1}), tmp_path) != root


def test_synthetic_rejects_unknown_params_and_a_root(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_trian'\].*'n_train'"):
        prepare_dataset(DataConfig(params={"n_trian": 5}), tmp_path)
    with pytest.raises(ConfigError, match="root must be unset"):
        prepare_dataset(DataConfig(root="/data"), tmp_path)


def test_store_source_validates_the_directory(tiny_store, tmp_path):
    cfg = DataConfig(dataset="store", root=str(tiny_store))
    assert prepare_dataset(cfg, tmp_path) == tiny_store
    with pytest.raises(StoreError, match=r"no test.h5 \(has \['dev', 'train'\]\)"):
        prepare_dataset(DataConfig(dataset="store", root=str(tiny_store), dev_split="test"), tmp_path)
    with pytest.raises(ConfigError, match="data.root must name the source of dataset 'store'"):
        prepare_dataset(DataConfig(dataset="store"), tmp_path)
    with pytest.raises(FileNotFoundError, match="nope: no such file or folder"):
        prepare_dataset(DataConfig(dataset="store", root=str(tmp_path / "nope")), tmp_path)
    with pytest.raises(StoreError, match="not a store directory"):
        prepare_dataset(DataConfig(dataset="store", root=str(tiny_store / "train.h5")), tmp_path)


def test_extract_meld_split_writes_text_feature_sets(write_meld_csv, tmp_path, stub_text_extractor):
    csv_path = write_meld_csv()
    out = extract_meld_split(csv_path, tmp_path / "s" / "dev.h5", extractor=stub_text_extractor(max_tokens=5))
    split = open_store_split(out)
    assert split.ids[4] == "dia1_utt4"
    assert split.dialogue_ids[4] == "dia1"
    assert split.positions.tolist() == [0, 1, 0, 1, 2, 0, 1, 2]
    assert split.speakers[1] == "The Interviewer"
    assert split.labels.tolist() == [0, 0, 3, 1, 4, 6, 5, 2]
    assert split.source["label"] == "emotion"
    assert split.source["rows"] == 8
    assert {n: (f.modality, f.kind, f.max_len) for n, f in split.features.items()} == {
        "text": ("text", "sequence", 5), "text_sentence": ("text", "vector", None)}
    ds = FeatureStoreDataset(out, ["text"])
    assert ds[3]["inputs"]["text"].shape == (3, 4)  # "What?" -> 1 word + 2 specials
    sentiment = extract_meld_split(csv_path, tmp_path / "t.h5", extractor=stub_text_extractor(), label="sentiment")
    assert open_store_split(sentiment).labels.tolist() == [0, 0, 2, 2, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="unknown MELD label"):
        extract_meld_split(csv_path, tmp_path / "u.h5", extractor=stub_text_extractor(), label="arousal")


def test_meld_source_extracts_once_and_keys_the_cache_by_csv_bytes(write_meld_csv, tmp_path, stub_text_extractor):
    write_meld_csv("meld/train_sent_emo.csv")
    dev = write_meld_csv("meld/dev_sent_emo.csv")
    params = {"extractor": "stub", "max_tokens": 8}
    cfg = DataConfig(dataset="meld", root=str(tmp_path / "meld"), params=params)
    root = prepare_dataset(cfg, tmp_path / "cache")
    assert sorted(p.name for p in root.iterdir()) == ["dev.h5", "train.h5"]
    assert stub_text_extractor.calls == 2
    assert prepare_dataset(cfg, tmp_path / "cache") == root
    assert stub_text_extractor.calls == 2
    dev.write_bytes(dev.read_bytes().replace(b"What?", b"What now?"))
    assert prepare_dataset(cfg, tmp_path / "cache") != root
    with pytest.raises(ConfigError, match="label must be one of"):
        prepare_dataset(DataConfig(dataset="meld", root=cfg.root, params={"label": "arousal"}), tmp_path)
    with pytest.raises(FileNotFoundError, match="train_sent_emo.csv"):
        prepare_dataset(DataConfig(dataset="meld", root=str(tmp_path / "cache")), tmp_path)


def test_extract_meld_for_run_reuses_the_runs_extractor(write_meld_csv, tmp_path, stub_text_extractor):
    write_meld_csv("meld/train_sent_emo.csv")
    write_meld_csv("meld/dev_sent_emo.csv")
    params = {"extractor": "stub", "max_tokens": 3, "label": "sentiment"}
    cfg = DataConfig(dataset="meld", root=str(tmp_path / "meld"), params=params)
    root = prepare_dataset(cfg, tmp_path / "c")
    train = FeatureStoreDataset(root / "train.h5", ["text"])
    spec = {"provenance": train.provenance, "label_names": list(train.label_space.names)}
    assert spec["provenance"]["features"]["text"] == {"extractor": "stub", "params": {"max_tokens": 3}}
    calls = stub_text_extractor.calls
    csv_path = write_meld_csv("elsewhere/my_test.csv")
    out = extract_meld_for_run(csv_path, spec["provenance"]["features"]["text"], spec["label_names"], tmp_path / "c")
    assert out.name == "my_test.h5"
    scored = FeatureStoreDataset(out, ["text"])
    assert scored.label_space == train.label_space
    assert scored.split.features["text"].max_len == 3
    assert extract_meld_for_run(csv_path, spec["provenance"]["features"]["text"], spec["label_names"],
                                tmp_path / "c") == out
    assert stub_text_extractor.calls == calls + 1  # extracted once, then reused


def test_meld_context_pairs_follow_dialogue_order_not_row_order(write_meld_csv, meld_rows, tmp_path,
                                                                monkeypatch):
    monkeypatch.setitem(EXTRACTORS._items, "stub_pairs", StubPairExtractor)
    StubPairExtractor.pairs = []
    rows = [meld_rows[i] for i in (4, 0, 3, 7, 1, 2, 6, 5)]  # shuffled rows
    csv_path = write_meld_csv(rows=rows)
    context = TextContext(past=1, future=1, speakers=True)
    out = extract_meld_split(csv_path, tmp_path / "dev.h5", extractor=StubPairExtractor(), context=context)
    split = open_store_split(out)
    pairs = dict(zip(split.ids, StubPairExtractor.pairs))  # the stub saw the rows in file order
    assert pairs["dia1_utt1"] == ("Monica: What?", "Phoebe: Oh my God, he’s lost it… He’s totally lost it! "
                                  "[SEP] Richard’s Date: Emma!  See? “Good” — that’s it.")
    assert pairs["dia0_utt0"][1].startswith("[SEP] The Interviewer: ")
    assert pairs["dia3_utt5"] == ("Joey: I’m scared – really.", "Ross: Ugh. [SEP]")
    assert split.features["text"].provenance["dialogue_context"] == context.to_dict()
    with pytest.raises(NotImplementedError, match="reads single texts, not .* pairs"):
        extract_meld_split(csv_path, tmp_path / "x.h5", extractor=StubTextExtractor(), context=context)


def test_meld_source_keys_the_cache_by_context_and_checks_it(write_meld_csv, tmp_path, monkeypatch):
    monkeypatch.setitem(EXTRACTORS._items, "stub_pairs", StubPairExtractor)
    write_meld_csv("meld/train_sent_emo.csv")
    write_meld_csv("meld/dev_sent_emo.csv")
    plain = DataConfig(dataset="meld", root=str(tmp_path / "meld"), params={"extractor": "stub_pairs"})
    source = DATASETS.get("meld")()
    identity = source.identity(Path(plain.root), source.params(plain.params))
    assert "context" not in identity["params"]  # stores made before the option keep their key
    with_context = replace(plain, params={"extractor": "stub_pairs", "context": {"past": 2}})
    root = prepare_dataset(with_context, tmp_path / "c")
    assert root != prepare_dataset(plain, tmp_path / "c")
    train = FeatureStoreDataset(root / "train.h5", ["text"])
    assert train.provenance["features"]["text"]["dialogue_context"] == {"past": 2, "future": 0, "speakers": False}
    # a CSV scored for the run is featurised with the same context
    StubPairExtractor.pairs = []
    spec = {"provenance": train.provenance, "label_names": list(train.label_space.names)}
    scored = extract_meld_for_run(write_meld_csv("elsewhere/t.csv"), spec["provenance"]["features"]["text"],
                                  spec["label_names"], tmp_path / "c")
    assert open_store_split(scored).features["text"].provenance["dialogue_context"]["past"] == 2
    assert ("What?", "Oh my God, he’s lost it… He’s totally lost it!") in StubPairExtractor.pairs
    for bad, match in (({"past": -1}, "context.past must be an int >= 0"),
                       ({"turns": 2}, r"unknown key\(s\) \['turns'\]")):
        with pytest.raises(ConfigError, match=match):
            prepare_dataset(replace(plain, params={"extractor": "stub_pairs", "context": bad}), tmp_path / "c")


def test_extract_meld_for_run_rejects_runs_without_a_text_extractor(tmp_path, tiny_store):
    spec = {"provenance": FeatureStoreDataset(tiny_store / "train.h5", ["text"]).provenance,
            "label_names": ["neutral", "positive", "negative"]}
    with pytest.raises(ValueError, match="not made by a registered extractor"):
        extract_meld_for_run(tmp_path / "x.csv", spec["provenance"]["features"]["text"], spec["label_names"],
                             tmp_path)
