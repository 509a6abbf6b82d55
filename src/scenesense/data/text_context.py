"""Dialogue context written into the text encoder's input (``data.params.context`` of ``meld``).

Instead of (or beside) a context model over utterance vectors (``model.context``), the text
encoder itself can read the neighbouring turns: utterance ``i`` of a dialogue becomes the
sentence pair ``(current, context)``, where ``current`` is its transcript (``"Speaker: text"``
with ``speakers``) and ``context`` holds up to ``past`` earlier turns, oldest first, and with
``future > 0`` a ``[SEP]`` and up to ``future`` later turns. Turns are added nearest first while
the pair still fits ``max_tokens`` word-pieces (``[CLS] current [SEP] context [SEP]``), so the
current utterance is never cut for its context. The settings are recorded in the feature
provenance, so a CSV scored for a run gets the same pairs; runs with them do not predict single
items or live conversations (`scenesense.predict`, `scenesense.streaming` refuse them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

SEPARATOR = "[SEP]"  # BERT's separator; the tokenizer keeps it as one special token


@dataclass(frozen=True)
class TextContext:
    """How many neighbouring turns the text input carries.

    Fields:
        past: earlier turns of the dialogue, at most (``>= 0``).
        future: later turns, at most (``>= 0``; ``0`` keeps the input causal).
        speakers: prefix every turn with ``"Speaker: "``.
    """

    past: int = 0
    future: int = 0
    speakers: bool = False

    def __post_init__(self) -> None:
        for name in ("past", "future"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"context.{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.speakers, bool):
            raise ValueError(f"context.speakers must be true or false, got {self.speakers!r}")

    @classmethod
    def from_mapping(cls, given: Mapping[str, Any] | None) -> TextContext | None:
        """``None`` for ``None``; else the settings (unknown keys are a ``ValueError``)."""
        if given is None:
            return None
        if not isinstance(given, Mapping):
            raise ValueError(f"context must be a mapping with past/future/speakers, got {given!r}")
        unknown = sorted(set(given) - {"past", "future", "speakers"})
        if unknown:
            raise ValueError(f"context: unknown key(s) {unknown}; valid keys are future, past, speakers")
        return cls(**dict(given))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain mapping (for provenance)."""
        return asdict(self)

    def turn(self, speaker: str, text: str) -> str:
        """One turn as written into the input."""
        return f"{speaker}: {text}" if self.speakers and speaker else text


@dataclass(frozen=True)
class Turn:
    """One utterance of a dialogue: who said what."""

    speaker: str
    text: str


def context_pairs(dialogue: Sequence[Turn], context: TextContext, count_tokens: Callable[[list[str]], list[int]],
                  max_tokens: int) -> list[tuple[str, str]]:
    """The ``(current, context)`` input of every turn of one dialogue.

    Args:
        dialogue: the turns in the order they were said.
        context: how many neighbours to include.
        count_tokens: word-pieces of each string, special tokens excluded (the extractor's
            tokenizer; counts add up over space-joined strings).
        max_tokens: the longest input kept, special tokens included.

    Returns:
        One pair per turn, in order. A neighbour is included only if the whole pair, with
        ``[CLS]``/``[SEP]`` tokens, stays within ``max_tokens``; nearer turns come first.
    """
    turns = [context.turn(t.speaker, t.text) for t in dialogue]
    sizes = count_tokens(turns) if turns else []
    pairs = []
    for i, current in enumerate(turns):
        budget = max_tokens - 3 - sizes[i] - (1 if context.future else 0)  # [CLS], 2x[SEP], inner [SEP]
        past = _fit(range(i - 1, max(-1, i - 1 - context.past), -1), sizes, budget)
        budget -= sum(sizes[j] for j in past)
        future = _fit(range(i + 1, min(len(turns), i + 1 + context.future)), sizes, budget)
        parts = [turns[j] for j in sorted(past)]
        if context.future:
            parts += [SEPARATOR, *(turns[j] for j in future)]
        pairs.append((current, " ".join(parts)))
    return pairs


def _fit(candidates: range, sizes: Sequence[int], budget: int) -> list[int]:
    """The leading ``candidates`` (nearest first) whose sizes add up to at most ``budget``."""
    taken = []
    for j in candidates:
        if sizes[j] > budget:
            break
        taken.append(j)
        budget -= sizes[j]
    return taken
