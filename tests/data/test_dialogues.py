"""Grouping utterances into dialogues, speaker vocabularies, dialogue batches, and training with context."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.dialogues import DialogueCollate, DialogueDataset, SpeakerVocabulary, dialogue_groups
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter


def test_groups_follow_positions_not_rows():
    groups = dialogue_groups(["b", "a", "b", "a", "b"], [2, 1, 0, 0, 1], ["b2", "a1", "b0", "a0", "b1"])
    assert groups == [[2, 4, 0], [3, 1]]  # dialogue b first (first seen), each in position order


@pytest.mark.parametrize(("dialogues", "positions", "message"), [
    (["a", ""], [0, 1], "no dialogue id"), (["a", "a"], [0, -1], "no dialogue id or position"),
    (["a", "a"], [3, 3], "two utterances at position 3")])
def test_groups_reject_what_a_context_model_cannot_order(dialogues, positions, message):
    with pytest.raises(ValueError, match=message):
        dialogue_groups(dialogues, positions, ["x", "y"])


def test_vocabulary_keeps_frequent_speakers_and_maps_the_rest_to_zero():
    vocab = SpeakerVocabulary.from_speakers(["Joey"] * 3 + ["Ross"] * 3 + ["Guest"] + [""] * 5, min_utterances=2)
    assert vocab.names == ("Joey", "Ross")  # ties broken by name
    assert [vocab.id(s) for s in ("Joey", "Ross", "Guest", "", "Nobody")] == [1, 2, 0, 0, 0]
    assert len(vocab) == 3
    with pytest.raises(ValueError, match="unique"):
        SpeakerVocabulary(["A", "A"])


def _write_cue_store(root, rng, dialogues: dict[str, int]) -> None:
    """Dialogues of 5 utterances; audio = one-hot cue + noise; label = the previous utterance's cue."""
    space = LabelSpace(("a", "b", "c"))
    for split, n in dialogues.items():
        ids, labels, audio, dia, pos, spk = [], [], [], [], [], []
        for d in range(n):
            cues = rng.integers(0, 3, size=5)
            for k in range(5):
                ids.append(f"{split}{d}_{k}")
                labels.append(int(cues[k - 1] if k else cues[0]))
                audio.append((np.eye(3)[cues[k]] + 0.1 * rng.normal(size=3)).astype(np.float32))
                dia.append(f"{split}{d}")
                pos.append(k)
                spk.append("AB"[k % 2])
        order = list(range(len(ids)))
        if split == "train":  # rows stored in reverse: dialogues are ordered by key, never by row
            order = order[::-1]
        with StoreWriter(root / f"{split}.h5", label_space=space, features={"audio": FeatureSpec("audio", "vector", 3)},
                         source={"dataset": "fixture", "split": split}) as writer:
            pick = [order[i] for i in range(len(ids))]
            writer.append([ids[i] for i in pick], [labels[i] for i in pick], {"audio": [audio[i] for i in pick]},
                          dialogue_ids=[dia[i] for i in pick], positions=[pos[i] for i in pick],
                          speakers=[spk[i] for i in pick])


def test_dialogue_dataset_and_collate_on_a_store(tmp_path, rng):
    _write_cue_store(tmp_path, rng, {"dev": 2})
    utterances = FeatureStoreDataset(tmp_path / "dev.h5", ["audio"])
    data = DialogueDataset.from_store(utterances)
    assert len(data) == 2
    assert [s["id"] for s in data[1]] == [f"dev1_{k}" for k in range(5)]
    batch = DialogueCollate(SpeakerVocabulary(["A"]))(data.__getitems__([1, 0]))
    assert batch["ids"][:5] == [f"dev1_{k}" for k in range(5)]
    layout = batch["dialogues"]
    assert layout.index.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert layout.speaker.tolist()[0] == [1, 0, 1, 0, 1]  # B is not in the vocabulary
    assert layout.turn_speaker.tolist()[0] == [0, 1, 0, 1, 0]


def test_past_context_learns_what_utterances_alone_cannot(tmp_path, rng):
    """The label is the previous utterance's cue: only a model that reads the past can learn it."""
    from scenesense.api import evaluate, train
    from scenesense.config import build_config

    _write_cue_store(tmp_path / "store", rng, {"train": 80, "dev": 30})
    base = {"name": "cue", "modalities": ["audio"], "output_dir": str(tmp_path / "runs"),
            "data": {"dataset": "store", "root": str(tmp_path / "store"), "speaker_min_utterances": 1},
            "trainer": {"epochs": 20, "lr": 0.005, "batch_size": 8, "patience": 20, "progress": False},
            "model": {"out_dim": 16, "head_hidden_dim": 16, "head_dropout": 0.0}}
    context = {"model": {"context": {"name": "transformer", "window": 1, "d_model": 16, "num_heads": 2,
                                     "dropout": 0.0}}}
    alone = train(build_config(base), tmp_path / "alone")
    with_context = train(build_config(base, context), tmp_path / "context")
    assert alone.metrics["accuracy"] < 0.6
    assert with_context.metrics["accuracy"] > 0.9
    spec = json.loads((tmp_path / "context" / "model_spec.json").read_text())
    assert spec["speakers"] == ["A", "B"]
    scored = evaluate(tmp_path / "context", store=tmp_path / "store", split="dev", output_dir=tmp_path / "eval")
    assert scored.metrics["accuracy"] == pytest.approx(with_context.metrics["accuracy"])
