from __future__ import annotations

import numpy as np
import pytest
import torch

from scenesense import api
from scenesense.config import build_config
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.models.standardize import FeatureStandardizer, feature_statistics


def _sample(vec, seq, present=True):
    return {"inputs": {"audio": np.asarray(vec, dtype=np.float32), "text": np.asarray(seq, dtype=np.float32)},
            "present": {"audio": present, "text": True}}


def test_statistics_by_hand_over_real_steps_of_present_samples():
    samples = [_sample([1.0, 10.0], [[0.0], [2.0]]),
               _sample([3.0, 30.0], [[4.0]]),
               _sample([100.0, 100.0], [[6.0]], present=False)]  # missing audio is not counted
    stats = feature_statistics(samples, ["audio", "text"])
    np.testing.assert_allclose(stats["audio"][0], [2.0, 20.0])
    np.testing.assert_allclose(stats["audio"][1], [1.0, 10.0])  # population std
    np.testing.assert_allclose(stats["text"][0], [3.0])  # steps 0, 2, 4, 6
    np.testing.assert_allclose(stats["text"][1], [np.sqrt(5.0)])


def test_statistics_need_a_present_sample():
    with pytest.raises(ValueError, match="audio"):
        feature_statistics([_sample([1.0, 2.0], [[1.0]], present=False)], ["audio"])


def test_forward_z_scores_and_keeps_padding_zero():
    std = FeatureStandardizer({"audio": 2, "text": 1})
    std.set_statistics({"audio": (np.array([2.0, 20.0]), np.array([1.0, 0.0])),  # std 0 -> only centred
                        "text": (np.array([3.0]), np.array([2.0]))})
    out = std({"audio": torch.tensor([[4.0, 25.0]]), "text": torch.tensor([[[5.0], [0.0]]]),
               "vision": torch.ones(1, 3)},
              {"text": torch.tensor([[True, False]])})
    torch.testing.assert_close(out["audio"], torch.tensor([[2.0, 5.0]]))
    torch.testing.assert_close(out["text"], torch.tensor([[[1.0], [0.0]]]))  # padded step stays 0
    torch.testing.assert_close(out["vision"], torch.ones(1, 3))  # unknown modality passes through


def _store(root):
    rng = np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 3)}
    for split, n in (("train", 64), ("dev", 32)):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = (x[:, 0] > 0).astype(int)
        x = x * np.array([1000.0, 1.0, 1.0], dtype=np.float32) + 500.0  # badly scaled features
        with StoreWriter(root / f"{split}.h5", label_space=LabelSpace(("neg", "pos")),
                         features=specs, source={"dataset": "fixture"}) as w:
            w.append([f"{split}{i}" for i in range(n)], y.tolist(), {"audio": list(x)})
    return root


def test_run_stores_train_statistics_and_evaluate_reuses_them(tmp_path):
    store = _store(tmp_path / "store")
    cfg = build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(store)},
                        "model": {"out_dim": 8, "head_hidden_dim": 8, "standardize": True},
                        "trainer": {"epochs": 20, "batch_size": 16, "lr": 1e-2, "progress": False}})
    result = api.train(cfg, tmp_path / "run")
    _, _, model = api.load_run(tmp_path / "run")
    mean = model.standardizer.mean_audio.numpy()
    assert abs(mean[0] - 500.0) < 300.0 and abs(mean[1] - 500.0) < 1.0  # fitted on train, then saved
    assert result.metrics["accuracy"] >= 0.9
    scored = api.evaluate(tmp_path / "run", store=store, split="dev")
    assert scored.metrics["accuracy"] == result.metrics["accuracy"]
