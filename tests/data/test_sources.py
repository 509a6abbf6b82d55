from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from scenesense.config import ConfigError, DataConfig
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.formats.meld_text import extract_meld_for_spec, extract_meld_split
from scenesense.data.sources import prepare_dataset
from scenesense.data.store import StoreError, open_store_split
from scenesense.extraction.text import TextExtractor, TextFeatures
from scenesense.registry import DATASETS, EXTRACTORS

TINY = {"n_train": 12, "n_dev": 6, "n_test": 6, "min_len": 10, "max_len": 12}


class StubTextExtractor(TextExtractor):
    """Deterministic stand-in: one token per word (+2 specials), D=4; counts its calls."""

    calls: ClassVar[int] = 0

    def __init__(self, max_tokens: int = 50, batch_size: int = 64, device: str = "cpu") -> None:
        self.max_tokens = max_tokens

    @property
    def dim(self) -> int:
        return 4

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "stub", "params": {"max_tokens": self.max_tokens}}

    def extract(self, texts: list[str]) -> TextFeatures:
        StubTextExtractor.calls += 1
        tokens = [np.full((min(len(t.split()) + 2, self.max_tokens), 4), len(t), np.float32) for t in texts]
        return TextFeatures(tokens, np.stack([tok[0] for tok in tokens]))


@pytest.fixture
def stub_extractor(monkeypatch):
    monkeypatch.setitem(EXTRACTORS._items, "stub", StubTextExtractor)
    StubTextExtractor.calls = 0
    return StubTextExtractor


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


def test_extract_meld_split_writes_text_feature_sets(write_meld_csv, tmp_path, stub_extractor):
    csv_path = write_meld_csv()
    out = extract_meld_split(csv_path, tmp_path / "s" / "dev.h5", extractor=stub_extractor(max_tokens=5))
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
    sentiment = extract_meld_split(csv_path, tmp_path / "t.h5", extractor=stub_extractor(), label="sentiment")
    assert open_store_split(sentiment).labels.tolist() == [0, 0, 2, 2, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="unknown MELD label"):
        extract_meld_split(csv_path, tmp_path / "u.h5", extractor=stub_extractor(), label="arousal")


def test_meld_source_extracts_once_and_keys_the_cache_by_csv_bytes(write_meld_csv, tmp_path, stub_extractor):
    write_meld_csv("meld/train_sent_emo.csv")
    dev = write_meld_csv("meld/dev_sent_emo.csv")
    params = {"extractor": "stub", "max_tokens": 8}
    cfg = DataConfig(dataset="meld", root=str(tmp_path / "meld"), params=params)
    root = prepare_dataset(cfg, tmp_path / "cache")
    assert sorted(p.name for p in root.iterdir()) == ["dev.h5", "train.h5"]
    assert stub_extractor.calls == 2
    assert prepare_dataset(cfg, tmp_path / "cache") == root
    assert stub_extractor.calls == 2
    dev.write_bytes(dev.read_bytes().replace(b"What?", b"What now?"))
    assert prepare_dataset(cfg, tmp_path / "cache") != root
    with pytest.raises(ConfigError, match="label must be one of"):
        prepare_dataset(DataConfig(dataset="meld", root=cfg.root, params={"label": "arousal"}), tmp_path)
    with pytest.raises(FileNotFoundError, match="train_sent_emo.csv"):
        prepare_dataset(DataConfig(dataset="meld", root=str(tmp_path / "cache")), tmp_path)


def test_extract_meld_for_spec_reuses_the_runs_extractor(write_meld_csv, tmp_path, stub_extractor):
    write_meld_csv("meld/train_sent_emo.csv")
    write_meld_csv("meld/dev_sent_emo.csv")
    params = {"extractor": "stub", "max_tokens": 3, "label": "sentiment"}
    cfg = DataConfig(dataset="meld", root=str(tmp_path / "meld"), params=params)
    root = prepare_dataset(cfg, tmp_path / "c")
    train = FeatureStoreDataset(root / "train.h5", ["text"])
    spec = {"provenance": train.provenance, "label_names": list(train.label_space.names)}
    assert spec["provenance"]["features"]["text"] == {"extractor": "stub", "params": {"max_tokens": 3}}
    calls = stub_extractor.calls
    csv_path = write_meld_csv("elsewhere/my_test.csv")
    out = extract_meld_for_spec(csv_path, spec, tmp_path / "c")
    assert out.name == "my_test.h5"
    scored = FeatureStoreDataset(out, ["text"])
    assert scored.label_space == train.label_space
    assert scored.split.features["text"].max_len == 3
    assert extract_meld_for_spec(csv_path, spec, tmp_path / "c") == out
    assert stub_extractor.calls == calls + 1  # extracted once, then reused


def test_extract_meld_for_spec_rejects_runs_without_a_text_extractor(tmp_path, tiny_store):
    spec = {"provenance": FeatureStoreDataset(tiny_store / "train.h5", ["text"]).provenance,
            "label_names": ["neutral", "positive", "negative"]}
    with pytest.raises(ValueError, match="not made by a registered extractor"):
        extract_meld_for_spec(tmp_path / "x.csv", spec, tmp_path)
