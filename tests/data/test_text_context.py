"""Dialogue context written into the text input: pair building, budgets, settings."""

from __future__ import annotations

import pytest

from scenesense.data.text_context import TextContext, Turn, context_pairs

DIALOGUE = [Turn("Ross", "a b"), Turn("Rachel", "c"), Turn("Ross", "d e f"), Turn("Joey", "g")]


def words(texts: list[str]) -> list[int]:
    """A stand-in tokenizer: one word-piece per space-separated word."""
    return [len(t.split()) for t in texts]


def test_past_only_takes_earlier_turns_oldest_first():
    pairs = context_pairs(DIALOGUE, TextContext(past=2), words, max_tokens=100)
    assert pairs == [("a b", ""), ("c", "a b"), ("d e f", "a b c"), ("g", "c d e f")]


def test_future_follows_a_separator_and_speakers_prefix_every_turn():
    pairs = context_pairs(DIALOGUE, TextContext(past=1, future=1, speakers=True), words, max_tokens=100)
    assert pairs[0] == ("Ross: a b", "[SEP] Rachel: c")
    assert pairs[2] == ("Ross: d e f", "Rachel: c [SEP] Joey: g")
    assert pairs[3] == ("Joey: g", "Ross: d e f [SEP]")  # the separator marks the missing future


def test_the_budget_drops_farthest_turns_first_and_never_cuts_the_utterance():
    # turn 3 ("g", 1 piece): [CLS] g [SEP] ... [SEP] leaves 8 - 3 - 1 = 4 pieces for the past:
    # "d e f" (3) fits, then "c" (1) fits, then "a b" (2) does not.
    pairs = context_pairs(DIALOGUE, TextContext(past=3), words, max_tokens=8)
    assert pairs[3] == ("g", "c d e f")
    # nearer turns come first: "d e f" (3) does not fit 2 pieces, so nothing older is tried
    assert context_pairs(DIALOGUE, TextContext(past=3), words, max_tokens=6)[3] == ("g", "")
    # [CLS] d e f [SEP] c [SEP] g [SEP] is exactly 9 pieces; with 8 the past ("c") is served first
    pairs = context_pairs(DIALOGUE, TextContext(past=1, future=1), words, max_tokens=9)
    assert pairs[2] == ("d e f", "c [SEP] g")
    assert context_pairs(DIALOGUE, TextContext(past=1, future=1), words, max_tokens=8)[2] == ("d e f", "c [SEP]")
    # an utterance longer than the budget is kept whole, without context
    assert context_pairs(DIALOGUE, TextContext(past=2), words, max_tokens=4)[2] == ("d e f", "")


def test_no_turns_no_pairs():
    assert context_pairs([], TextContext(past=1), words, max_tokens=10) == []


def test_settings_are_checked():
    assert TextContext.from_mapping(None) is None
    assert TextContext.from_mapping({"past": 3}) == TextContext(past=3)
    assert TextContext(1, 2, True).to_dict() == {"past": 1, "future": 2, "speakers": True}
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['window'\]"):
        TextContext.from_mapping({"window": 2})
    with pytest.raises(ValueError, match="context.past must be an int >= 0, got -1"):
        TextContext(past=-1)
    with pytest.raises(ValueError, match="context.future must be an int >= 0, got True"):
        TextContext(future=True)
    with pytest.raises(ValueError, match="context.speakers must be true or false"):
        TextContext(speakers="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="context must be a mapping"):
        TextContext.from_mapping(3)  # type: ignore[arg-type]
    assert TextContext(speakers=True).turn("", "hi") == "hi"  # an unnamed speaker gets no prefix
