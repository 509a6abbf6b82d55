from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreError, StoreWriter


def _writer(path, **specs):
    return StoreWriter(path, label_space=LabelSpace(("x", "y")), features=specs, source={"dataset": "t"})


def test_dataset_returns_trimmed_samples(tiny_store):
    ds = FeatureStoreDataset(tiny_store / "train.h5", ["text", "audio"])
    assert len(ds) == 5
    assert ds.feature_dims == {"audio": 3, "text": 4}
    assert ds.feature_kinds == {"audio": "vector", "text": "sequence"}
    sample = ds[2]
    assert sample["id"] == "train2"
    assert sample["label"] == 2
    assert isinstance(sample["label"], int)
    np.testing.assert_allclose(sample["inputs"]["text"], 2 + 0.01 * np.arange(3)[:, None] * np.ones((1, 4)))
    np.testing.assert_array_equal(sample["inputs"]["audio"], [-2, -2, -2])
    missing = ds[1]
    assert missing["present"] == {"audio": False, "text": True}
    np.testing.assert_array_equal(missing["inputs"]["audio"], np.zeros(3))
    assert ds[-1]["id"] == "train4"
    with pytest.raises(IndexError):
        ds[5]


def test_getitems_keeps_order_and_duplicates_and_matches_getitem(tiny_store):
    ds = FeatureStoreDataset(tiny_store / "train.h5", ["text", "audio"])
    batch = ds.__getitems__([3, 0, 3, 4])
    assert [s["id"] for s in batch] == ["train3", "train0", "train3", "train4"]
    for s, i in zip(batch, [3, 0, 3, 4]):
        single = ds[i]
        for m in ("text", "audio"):
            np.testing.assert_array_equal(s["inputs"][m], single["inputs"][m])


def test_in_memory_equals_lazy(tiny_store):
    lazy = FeatureStoreDataset(tiny_store / "train.h5", ["text", "audio"])
    eager = FeatureStoreDataset(tiny_store / "train.h5", ["text", "audio"], in_memory=True)
    for i in range(len(lazy)):
        for m in ("text", "audio"):
            np.testing.assert_array_equal(lazy[i]["inputs"][m], eager[i]["inputs"][m])


def test_feature_set_resolution(tiny_store):
    path = tiny_store / "train.h5"
    assert FeatureStoreDataset(path, ["text"]).feature_names == {"text": "text"}
    chosen = FeatureStoreDataset(path, ["text"], features={"text": "text_sentence"})
    assert chosen.feature_kinds == {"text": "vector"}
    with pytest.raises(StoreError, match=r"model needs modality 'vision' but train.h5 has feature sets "
                                         r"\['audio', 'text', 'text_sentence'\]"):
        FeatureStoreDataset(path, ["vision", "text"])
    with pytest.raises(StoreError, match="holds modality 'audio', not 'text'"):
        FeatureStoreDataset(path, ["text"], features={"text": "audio"})
    with pytest.raises(StoreError, match="no feature set 'nope'"):
        FeatureStoreDataset(path, ["text"], features={"text": "nope"})
    audio_only = FeatureStoreDataset(path, ["audio"], features={"text": "text_sentence"})  # ablation
    assert audio_only.feature_names == {"audio": "audio"}
    with pytest.raises(ValueError, match="unknown modality 'txt'"):
        FeatureStoreDataset(path, ["text"], features={"txt": "text"})


def test_unique_feature_set_of_a_modality_and_ambiguity(tmp_path):
    specs = {"tok": FeatureSpec("text", "sequence", 2, max_len=3), "sent": FeatureSpec("text", "vector", 2),
             "mfcc": FeatureSpec("audio", "vector", 2)}
    with _writer(tmp_path / "train.h5", **specs) as w:
        w.append(["u"], [0], {"tok": [np.ones((2, 2))], "sent": [np.ones(2)], "mfcc": [np.ones(2)]})
    assert FeatureStoreDataset(tmp_path / "train.h5", ["audio"]).feature_names == {"audio": "mfcc"}
    with pytest.raises(StoreError, match=r"several feature sets for modality 'text': \['sent', 'tok'\]"):
        FeatureStoreDataset(tmp_path / "train.h5", ["text"])


def test_dataset_detects_corrupted_rows_naming_the_id(tiny_store):
    with h5py.File(tiny_store / "train.h5", "r+") as f:
        f["features/audio/data"][3, 1] = np.nan
    ds = FeatureStoreDataset(tiny_store / "train.h5", ["audio"])
    assert ds[2]["id"] == "train2"  # clean rows still load
    with pytest.raises(StoreError, match="id 'train3'.*NaN or inf"):
        ds.__getitems__([0, 3])


def test_dataloader_batches_with_workers_match_single_process(tiny_store):
    ds = FeatureStoreDataset(tiny_store / "train.h5", ["audio", "text"])
    _ = ds[0]  # open the handle in this process before forking
    single = list(DataLoader(ds, batch_size=2, collate_fn=collate))
    forked = list(DataLoader(ds, batch_size=2, collate_fn=collate, num_workers=2,
                             multiprocessing_context="fork"))
    assert [b["ids"] for b in forked] == [b["ids"] for b in single]
    for a, b in zip(single, forked):
        torch.testing.assert_close(a["inputs"]["text"], b["inputs"]["text"])
        assert torch.equal(a["masks"]["text"], b["masks"]["text"])
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[4]["inputs"]["text"], ds[4]["inputs"]["text"])


def test_allow_nonfinite_spec_accepts_nan(tmp_path):
    specs = {"audio": FeatureSpec("audio", "vector", 2, allow_nonfinite=True)}
    with _writer(tmp_path / "t.h5", **specs) as w:
        w.append(["u"], [0], {"audio": [np.array([np.nan, 1.0])]})
    sample = FeatureStoreDataset(tmp_path / "t.h5", ["audio"])[0]
    assert np.isnan(sample["inputs"]["audio"][0])


def test_regression_store_round_trip(tmp_path):
    specs = {"audio": FeatureSpec("audio", "vector", 2)}
    space = LabelSpace(("valence",), "regression")
    with StoreWriter(tmp_path / "t.h5", label_space=space, features=specs, source={}) as w:
        w.append(["u", "v"], [0.5, -1.25], {"audio": [np.ones(2), np.zeros(2)]})
        with pytest.raises(StoreError, match="non-finite target"):
            w.append(["w"], [float("nan")], {"audio": [np.ones(2)]})
    ds = FeatureStoreDataset(tmp_path / "t.h5", ["audio"])
    assert ds.label_space.task == "regression"
    batch = collate(ds.__getitems__([0, 1]))
    assert batch["label"].dtype == torch.float32
    assert batch["label"].tolist() == [0.5, -1.25]


def test_sequence_lengths_add_up_the_real_steps_of_sequence_modalities(tiny_store):
    both = FeatureStoreDataset(tiny_store / "train.h5", ["audio", "text"])
    assert both.sequence_lengths().tolist() == [1, 2, 3, 4, 1]  # text T_i = 1 + i % 4; audio is a vector
    assert FeatureStoreDataset(tiny_store / "train.h5", ["audio"]).sequence_lengths().tolist() == [0] * 5
