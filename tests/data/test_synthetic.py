from __future__ import annotations

import h5py
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.store import open_store_split
from scenesense.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic, synthetic_prototypes

SYNC, ASYNC = SYNTHETIC_CLASSES.id_of("sync"), SYNTHETIC_CLASSES.id_of("async")


def _batch(path):
    ds = FeatureStoreDataset(path, ["audio", "text", "vision"], in_memory=True)
    return collate(ds.__getitems__(list(range(len(ds)))))


def _pooled(batch):
    """Masked mean of text and vision, plus the audio vector: [N, 3D]."""
    parts = []
    for m in ("text", "vision"):
        x, mask = batch["inputs"][m].numpy(), batch["masks"][m].numpy()[..., None]
        parts.append((x * mask).sum(1) / mask.sum(1))
    return np.concatenate([*parts, batch["inputs"]["audio"].numpy()], axis=1)


def _aligned(batch, protos):
    """max_t min(<text_t, e_A>, <vision_t, e_B>): large only where both events share a step. [N, 1]."""
    a = batch["inputs"]["text"].numpy() @ protos["event_a"]
    b = batch["inputs"]["vision"].numpy() @ protos["event_b"]
    return np.minimum(a, b).max(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    root = generate_synthetic(tmp_path_factory.mktemp("syn"), n_train=1800, n_dev=1200, n_test=60, seed=3)
    return _batch(root / "train.h5"), _batch(root / "dev.h5"), synthetic_prototypes(3, 32)


def test_store_structure_and_provenance(tmp_path):
    root = generate_synthetic(tmp_path, n_train=60, n_dev=12, n_test=7, seed=1, min_len=10, max_len=13)
    split = open_store_split(root / "train.h5")
    assert split.label_space == SYNTHETIC_CLASSES
    assert np.bincount(split.labels).tolist() == [10] * 6
    assert {n: (f.modality, f.kind, f.dim) for n, f in split.features.items()} == {
        "audio": ("audio", "vector", 32), "text": ("text", "sequence", 32),
        "vision": ("vision", "sequence", 32)}
    assert split.source["seed"] == 1
    assert split.source["n_train"] == 60
    assert split.source["max_len"] == 13
    assert split.features["text"].provenance["missing_rate"] == 0.0
    assert open_store_split(root / "test.h5").n == 7
    with h5py.File(root / "train.h5", "r") as f:
        lengths = f["features/text/lengths"][:]
        np.testing.assert_array_equal(lengths, f["features/vision/lengths"][:])  # one shared time grid
        assert lengths.min() >= 10
        assert lengths.max() <= 13


def test_same_seed_gives_byte_identical_arrays(tmp_path):
    kwargs = {"n_train": 30, "n_dev": 6, "n_test": 6, "missing_rate": 0.3}
    a, b, c = (generate_synthetic(tmp_path / name, seed=seed, **kwargs) for name, seed in
               (("a", 5), ("b", 5), ("c", 6)))
    with h5py.File(a / "dev.h5") as fa, h5py.File(b / "dev.h5") as fb, h5py.File(c / "dev.h5") as fc:
        for name in ("features/text/data", "features/vision/data", "features/audio/data",
                     "features/audio/present", "meta/label"):
            assert fa[name][()].tobytes() == fb[name][()].tobytes()
        assert fa["features/text/data"][()].tobytes() != fc["features/text/data"][()].tobytes()
    assert (a / "train.h5").read_bytes() == (b / "train.h5").read_bytes()  # even the files are identical


def test_missing_modalities_are_zero_and_never_all_missing(tmp_path):
    root = generate_synthetic(tmp_path, n_train=600, n_dev=6, n_test=6, missing_rate=0.4)
    with h5py.File(root / "train.h5", "r") as f:
        present = np.stack([f[f"features/{m}/present"][:] for m in ("audio", "text", "vision")], axis=1)
        assert present.any(axis=1).all()
        assert 0.3 < 1 - present.mean() < 0.45  # 0.4 minus the rescued all-missing rows (0.4^3)
        gone = ~present[:, 1]
        assert (f["features/text/lengths"][:][gone] == 0).all()
        assert not f["features/text/data"][np.flatnonzero(gone)[:20]].any()
        assert not f["features/audio/data"][np.flatnonzero(~present[:, 0])[:20]].any()


def test_sync_async_event_positions(tmp_path):
    root = generate_synthetic(tmp_path, n_train=120, n_dev=6, n_test=6, noise=0.05, seed=2)
    batch, protos = _batch(root / "train.h5"), synthetic_prototypes(2, 32)
    a = batch["inputs"]["text"].numpy() @ protos["event_a"]  # [N, T]
    b = batch["inputs"]["vision"].numpy() @ protos["event_b"]
    assert ((a > 3).sum(1)[np.isin(batch["label"].numpy(), [SYNC, ASYNC])] == 3).all()  # 3-step events
    assert ((b > 3).sum(1) == 3).all()
    p, q = (a > 3).argmax(1), (b > 3).argmax(1)  # first step of each event
    labels = batch["label"].numpy()
    assert (p[labels == SYNC] == q[labels == SYNC]).all()
    assert (np.abs(p - q)[labels == ASYNC] >= 4).all()  # async events never overlap


def test_pooled_features_are_at_chance_on_sync_async_but_solve_unimodal_classes(benchmark):
    train, dev, _ = benchmark
    x_tr, y_tr, x_dv, y_dv = _pooled(train), train["label"].numpy(), _pooled(dev), dev["label"].numpy()
    pred = LogisticRegression(max_iter=3000).fit(x_tr, y_tr).predict(x_dv)
    for name in ("text_a", "text_b", "audio_a", "audio_b"):
        c = SYNTHETIC_CLASSES.id_of(name)
        assert (pred[y_dv == c] == c).mean() > 0.85, name
    pair_tr, pair_dv = np.isin(y_tr, [SYNC, ASYNC]), np.isin(y_dv, [SYNC, ASYNC])
    assert np.isin(pred[pair_dv], [SYNC, ASYNC]).mean() > 0.85  # the pair itself is recognisable...
    binary = LogisticRegression(max_iter=3000).fit(x_tr[pair_tr], y_tr[pair_tr])
    assert abs(binary.score(x_dv[pair_dv], y_dv[pair_dv]) - 0.5) < 0.09  # ...but sync vs async is chance


def test_an_aligned_feature_separates_sync_from_async(benchmark):
    train, dev, protos = benchmark
    y_tr, y_dv = train["label"].numpy(), dev["label"].numpy()
    pair_tr, pair_dv = np.isin(y_tr, [SYNC, ASYNC]), np.isin(y_dv, [SYNC, ASYNC])
    clf = LogisticRegression().fit(_aligned(train, protos)[pair_tr], y_tr[pair_tr])
    assert clf.score(_aligned(dev, protos)[pair_dv], y_dv[pair_dv]) > 0.94


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dim": 4}, "dim must be an int >= 8"), ({"min_len": 4, "max_len": 8}, "min_len"),
    ({"min_len": 12, "max_len": 11}, "max_len"), ({"missing_rate": 1.0}, "missing_rate"),
    ({"n_dev": 0}, "n_dev"), ({"noise": -1.0}, "noise"),
])
def test_invalid_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_synthetic(tmp_path, **kwargs)
