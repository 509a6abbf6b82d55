"""Whole dialogues as training items, for context models (`scenesense.models.context`).

A `DialogueDataset` groups the utterances of an utterance dataset by ``dialogue_id``,
ordered by ``position`` (alignment by key, never by row order); one item is one dialogue.
`DialogueCollate` flattens a list of dialogues into the usual padded
`scenesense.types.Batch` (one row per utterance) and adds a
`scenesense.types.DialogueLayout` under ``"dialogues"`` that says where each row sits.
Speakers are mapped to ids by a `SpeakerVocabulary` built on the training split; a
speaker it does not know (a guest, or anyone in a new show) gets id 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from scenesense.data.collate import collate
from scenesense.data.labels import Task
from scenesense.types import Batch, DialogueLayout, Sample

UNKNOWN_SPEAKER = 0


class SpeakerVocabulary:
    """Speaker name -> id; ids ``1..K`` for the known speakers, 0 for everyone else.

    Args:
        names: the known speakers, in id order (id ``i + 1`` for ``names[i]``).
    """

    def __init__(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names) or "" in names:
            raise ValueError(f"speaker names must be unique and non-empty, got {list(names)[:10]}")
        self.names = tuple(names)
        self._ids = {n: i + 1 for i, n in enumerate(self.names)}

    @classmethod
    def from_speakers(cls, speakers: Iterable[str], min_utterances: int = 20) -> SpeakerVocabulary:
        """Known speakers: those with at least ``min_utterances`` utterances (most frequent first)."""
        counts = Counter(s for s in speakers if s)
        return cls([s for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_utterances])

    def __len__(self) -> int:
        """``K + 1``: the known speakers plus the unknown id 0."""
        return len(self.names) + 1

    def id(self, name: str) -> int:
        """The speaker's id, 0 when unknown."""
        return self._ids.get(name, UNKNOWN_SPEAKER)


def dialogue_groups(dialogue_ids: Sequence[str], positions: Sequence[int], ids: Sequence[str]) -> list[list[int]]:
    """Row indices of each dialogue, ordered by position; dialogues in order of first appearance.

    Raises:
        ValueError: a row without a dialogue id or position, or two rows at one position of a dialogue.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for row, (dialogue, pos) in enumerate(zip(dialogue_ids, positions)):
        if not dialogue or int(pos) < 0:
            raise ValueError(f"utterance {ids[row]!r} has no dialogue id or position; a context model needs both")
        groups[dialogue].append(row)
    out = []
    for dialogue, rows in groups.items():
        rows.sort(key=lambda r: int(positions[r]))
        pos = [int(positions[r]) for r in rows]
        if len(set(pos)) != len(pos):
            dup = next(p for p in pos if pos.count(p) > 1)
            raise ValueError(f"dialogue {dialogue!r} has two utterances at position {dup}")
        out.append(rows)
    return out


class DialogueDataset(Dataset):
    """One item per dialogue: its utterance samples in position order.

    Args:
        utterances: a map-style dataset of `scenesense.types.Sample` (with
            ``__getitems__`` for batched reads, as `scenesense.data.dataset.FeatureStoreDataset`).
        dialogue_ids: the dialogue of each row of ``utterances`` (e.g. from its ``split``).
        positions: the position of each row in its dialogue.
        ids: the utterance key of each row.

    Attributes:
        groups: per dialogue, its rows of ``utterances`` in position order.
        labels, label_space: of the utterances (for class weights and priors), when ``utterances`` has them.
    """

    def __init__(self, utterances: Any, dialogue_ids: Sequence[str], positions: Sequence[int],  # noqa: ANN401
                 ids: Sequence[str]) -> None:
        if not len(dialogue_ids) == len(positions) == len(ids) == len(utterances):
            raise ValueError("dialogue_ids, positions and ids must have one entry per utterance")
        self.utterances = utterances
        self.groups = dialogue_groups(dialogue_ids, positions, ids)
        self.labels = getattr(utterances, "labels", None)
        self.label_space = getattr(utterances, "label_space", None)

    @classmethod
    def from_store(cls, dataset: Any) -> DialogueDataset:  # noqa: ANN401
        """Group a `scenesense.data.dataset.FeatureStoreDataset` (or a wrapper with ``split``)."""
        split = dataset.split
        return cls(dataset, split.dialogue_ids, [int(p) for p in split.positions], split.ids)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> list[Sample]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[list[Sample]]:
        """The dialogues ``indices``, read from the utterance dataset in one batched call."""
        groups = [self.groups[i] for i in indices]
        rows = [r for g in groups for r in g]
        read = getattr(self.utterances, "__getitems__", None)
        samples = read(rows) if read is not None else [self.utterances[r] for r in rows]
        out, start = [], 0
        for g in groups:
            out.append(list(samples[start:start + len(g)]))
            start += len(g)
        return out


def dialogue_layout(dialogues: Sequence[Sequence[Sample]], vocabulary: SpeakerVocabulary) -> DialogueLayout:
    """The `scenesense.types.DialogueLayout` of dialogues flattened in order (``G`` dialogues)."""
    longest = max(len(d) for d in dialogues)
    shape = (len(dialogues), longest)
    index = torch.full(shape, -1, dtype=torch.long)
    position = torch.zeros(shape, dtype=torch.long)
    speaker = torch.zeros(shape, dtype=torch.long)
    turn = torch.full(shape, -1, dtype=torch.long)
    row = 0
    for g, dialogue in enumerate(dialogues):
        local: dict[str, int] = {}
        for k, s in enumerate(dialogue):
            index[g, k], position[g, k] = row, int(s["position"])
            speaker[g, k] = vocabulary.id(s["speaker"])
            if s["speaker"]:  # an unnamed speaker is nobody's "same speaker"
                turn[g, k] = local.setdefault(s["speaker"], len(local))
            row += 1
    return DialogueLayout(index=index, mask=index >= 0, position=position, speaker=speaker, turn_speaker=turn)


class DialogueCollate:
    """Collate dialogues: a flat utterance `scenesense.types.Batch` plus ``"dialogues"``.

    Args:
        vocabulary: speaker name -> id.
        task: ``"classification"`` or ``"regression"`` (inferred when ``None``).
    """

    def __init__(self, vocabulary: SpeakerVocabulary, task: Task | None = None) -> None:
        self.vocabulary = vocabulary
        self.task = task

    def __call__(self, dialogues: Sequence[Sequence[Sample]]) -> Batch:
        """Returns the batch of ``N = sum of dialogue lengths`` utterances, dialogue by dialogue."""
        if not dialogues or any(len(d) == 0 for d in dialogues):
            raise ValueError("cannot collate an empty dialogue (or no dialogues)")
        batch = collate([s for d in dialogues for s in d], self.task)
        batch["dialogues"] = dialogue_layout(dialogues, self.vocabulary)
        return batch


def single_layout(n: int, device: torch.device | None = None) -> DialogueLayout:
    """Every one of ``n`` utterances as a dialogue of its own (no context, unknown speakers)."""
    index = torch.arange(n, device=device).view(n, 1)
    zeros = torch.zeros_like(index)
    return DialogueLayout(index=index, mask=torch.ones_like(index, dtype=torch.bool), position=zeros,
                          speaker=zeros, turn_speaker=zeros)

