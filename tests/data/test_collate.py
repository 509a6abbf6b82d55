from __future__ import annotations

import numpy as np
import pytest
import torch

from scenesense.data.collate import collate


def _sample(sid, text, audio, label, present=None):
    return {"id": sid, "dialogue_id": "", "position": -1, "speaker": "",
            "inputs": {"text": np.asarray(text, np.float32), "audio": np.asarray(audio, np.float32)},
            "present": present or {"text": True, "audio": True}, "label": label}


def test_pads_sequences_builds_masks_and_stacks_vectors():
    batch = collate([
        _sample("a", [[1, 2], [3, 4]], [1, 1, 1], 2),
        _sample("b", [[5, 6], [7, 8], [9, 10]], [2, 2, 2], 0),
    ])
    assert batch["ids"] == ["a", "b"]
    expected = torch.tensor([[[1, 2], [3, 4], [0, 0]], [[5, 6], [7, 8], [9, 10]]], dtype=torch.float32)
    torch.testing.assert_close(batch["inputs"]["text"], expected)
    assert batch["masks"]["text"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["inputs"]["audio"].shape == (2, 3)
    assert "audio" not in batch["masks"]
    assert batch["present"]["text"].dtype == torch.bool
    assert batch["label"].dtype == torch.long
    assert batch["label"].tolist() == [2, 0]


def test_missing_modality_gives_zeros_and_an_all_false_mask():
    batch = collate([
        _sample("a", [[1, 2], [3, 4]], [7, 7, 7], 1, present={"text": False, "audio": False}),
        _sample("b", [[5, 6]], [2, 2, 2], 0),
    ])
    assert batch["present"]["text"].tolist() == [False, True]
    assert batch["masks"]["text"].tolist() == [[False], [True]]
    torch.testing.assert_close(batch["inputs"]["text"][0], torch.zeros(1, 2))
    torch.testing.assert_close(batch["inputs"]["audio"][0], torch.zeros(3))


def test_all_missing_sequence_keeps_one_padded_step():
    batch = collate([_sample("a", np.zeros((0, 2)), [1, 1, 1], 0, present={"text": False, "audio": True})])
    assert batch["inputs"]["text"].shape == (1, 1, 2)
    assert batch["masks"]["text"].tolist() == [[False]]


def test_regression_labels_are_float():
    batch = collate([_sample("a", [[1, 2]], [1, 1, 1], 0.25), _sample("b", [[1, 2]], [1, 1, 1], -1.5)])
    assert batch["label"].dtype == torch.float32
    assert batch["label"].tolist() == [0.25, -1.5]
    forced = collate([_sample("a", [[1, 2]], [1, 1, 1], 1)], task="regression")
    assert forced["label"].dtype == torch.float32


def test_inconsistent_dims_name_the_samples():
    with pytest.raises(ValueError, match=r"'text'.*'a': \[1, 2\].*'b': \[1, 3\]"):
        collate([_sample("a", [[1, 2]], [1, 1, 1], 0), _sample("b", [[1, 2, 3]], [1, 1, 1], 0)])


def test_empty_batch_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        collate([])
