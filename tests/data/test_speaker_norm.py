from __future__ import annotations

import numpy as np
import pytest

from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.labels import LabelSpace
from scenesense.data.speaker_norm import apply_speaker_norm, speaker_statistics
from scenesense.data.store import FeatureSpec, StoreWriter


def _s(speaker, vec, present=True):
    return {"speaker": speaker, "inputs": {"audio": np.asarray(vec, dtype=np.float32)},
            "present": {"audio": present}}


def test_statistics_by_hand():
    samples = [_s("a", [1.0]), _s("a", [3.0]), _s("b", [10.0]), _s("", [6.0]), _s("a", [99.0], present=False)]
    stats = speaker_statistics(samples, ["audio"], min_samples=2)
    assert set(stats["audio"]) == {"a", ""}  # b has one sample: the split's statistics
    np.testing.assert_allclose(stats["audio"]["a"][0], [2.0])
    np.testing.assert_allclose(stats["audio"]["a"][1], [1.0])
    np.testing.assert_allclose(stats["audio"][""][0], [5.0])  # 1, 3, 10, 6 (missing one skipped)
    np.testing.assert_allclose(stats["audio"][""][1], [np.sqrt(11.5)])
    out = apply_speaker_norm(samples[1], stats)
    np.testing.assert_allclose(out["inputs"]["audio"], [1.0])
    np.testing.assert_allclose(apply_speaker_norm(samples[2], stats)["inputs"]["audio"], [5.0 / np.sqrt(11.5)])
    np.testing.assert_allclose(samples[1]["inputs"]["audio"], [3.0])  # the input is not modified
    missing = apply_speaker_norm(samples[4], stats)
    np.testing.assert_allclose(missing["inputs"]["audio"], [99.0])


def test_needs_a_present_sample():
    with pytest.raises(ValueError, match="audio"):
        speaker_statistics([_s("a", [1.0], present=False)], ["audio"])


def test_dataset_normalises_each_speaker_with_its_own_clips(tmp_path):
    specs = {"audio": FeatureSpec("audio", "vector", 1), "text": FeatureSpec("text", "sequence", 1, max_len=3)}
    with StoreWriter(tmp_path / "dev.h5", label_space=LabelSpace(("x", "y")), features=specs,
                     source={"dataset": "fixture"}) as w:
        w.append(["a0", "a1", "b0", "b1"], [0, 1, 0, 1],
                 {"audio": [np.array([1.0]), np.array([3.0]), np.array([100.0]), np.array([300.0])],
                  "text": [np.array([[0.0], [2.0]]), np.array([[4.0]]), np.array([[1.0]]), np.array([[1.0]])]},
                 speakers=["a", "a", "b", "b"])
    raw = FeatureStoreDataset(tmp_path / "dev.h5", ["audio", "text"])
    norm = FeatureStoreDataset(tmp_path / "dev.h5", ["audio", "text"], speaker_norm=True, min_speaker_samples=2)
    assert raw[2]["inputs"]["audio"].tolist() == [100.0]
    assert [norm[i]["inputs"]["audio"].tolist() for i in range(4)] == [[-1.0], [1.0], [-1.0], [1.0]]
    np.testing.assert_allclose(norm[0]["inputs"]["text"], (np.array([[0.0], [2.0]]) - 2.0) / np.sqrt(8 / 3))
    np.testing.assert_allclose(norm[3]["inputs"]["text"], [[0.0]])  # speaker b's text is constant: centred
