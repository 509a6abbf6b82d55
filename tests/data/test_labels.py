from __future__ import annotations

import numpy as np
import pytest

from scenesense.data.labels import (
    MELD_EMOTIONS,
    MELD_SENTIMENTS,
    SENTIMENT3,
    SENTIMENT5,
    LabelSpace,
    sentiment3_ids,
    sentiment5_ids,
)


def test_meld_presets_follow_the_meld_order():
    assert MELD_EMOTIONS.names == ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
    assert MELD_SENTIMENTS.names == ("neutral", "positive", "negative")
    assert MELD_EMOTIONS.num_classes == 7
    assert MELD_EMOTIONS.id_of("joy") == 4
    assert MELD_SENTIMENTS.id_of("negative") == 2


def test_encode_decode_round_trip():
    space = LabelSpace.from_names(["b", "a", "c"])
    ids = space.encode(["c", "b", "b", "a"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [2, 0, 0, 1]
    assert space.decode(ids) == ["c", "b", "b", "a"]


def test_unknown_label_lists_the_valid_ones():
    with pytest.raises(KeyError, match=r"unknown label 'happy'.*'neutral', 'positive', 'negative'"):
        MELD_SENTIMENTS.id_of("happy")


def test_class_id_out_of_range():
    with pytest.raises(IndexError, match="class id 3"):
        MELD_SENTIMENTS.name_of(3)


@pytest.mark.parametrize(("names", "message"), [((), "at least one"), (("a", "b", "a"), "duplicate"),
                                                (("a", ""), "non-empty")])
def test_invalid_names(names, message):
    with pytest.raises(ValueError, match=message):
        LabelSpace(names)


def test_regression_space_has_outputs_but_no_classes():
    space = LabelSpace(("valence",), "regression")
    assert space.num_outputs == 1
    assert not space.is_classification
    with pytest.raises(ValueError, match="no classes"):
        _ = space.num_classes
    with pytest.raises(ValueError, match="unknown task"):
        LabelSpace(("a",), "ranking")  # type: ignore[arg-type]


def test_label_space_is_frozen_and_hashable():
    space = LabelSpace.from_names(["x", "y"])
    assert space == LabelSpace(("x", "y"))
    assert len({space, LabelSpace(("x", "y"))}) == 1
    with pytest.raises(AttributeError):
        space.names = ("z",)  # type: ignore[misc]


def test_sentiment3_is_mmsa_s_three_classes():
    from scenesense.datasets.mmsa import SENTIMENT3 as MMSA_SENTIMENT3

    assert SENTIMENT3.names == ("Negative", "Neutral", "Positive")
    assert SENTIMENT3 == MMSA_SENTIMENT3  # one label space for MOSEI from MMSA pickles and from .csd files


def test_sentiment3_ids_by_hand():
    scores = [-3.0, -0.0001, -0.0, 0.0, 0.0001, 3.0, -1 / 3, 2 / 3]
    assert sentiment3_ids(scores).tolist() == [0, 0, 1, 1, 2, 2, 0, 2]
    assert sentiment3_ids(np.array(scores, dtype=np.float32)).dtype == np.int64
    assert sentiment3_ids([]).tolist() == []


def test_sentiment3_ids_band_edges_are_neutral():
    scores = [-0.51, -0.5, -0.49, 0.0, 0.49, 0.5, 0.51, -3.0, 3.0]
    assert sentiment3_ids(scores, neutral_band=0.5).tolist() == [0, 1, 1, 1, 1, 1, 2, 0, 2]
    assert sentiment3_ids(scores, neutral_band=3).tolist() == [1] * 9
    # band 0.5 gives the classes of MMSA's regression Acc-3: round(clip(s, -1, 1)) + 1
    grid = np.linspace(-3, 3, 601)
    expected = (np.round(np.clip(grid, -1, 1)) + 1).astype(int)
    assert sentiment3_ids(grid, neutral_band=0.5).tolist() == expected.tolist()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sentiment3_ids_reject_non_finite_scores(bad):
    with pytest.raises(ValueError, match=r"score 2 is (nan|inf|-inf) \(1 non-finite\)"):
        sentiment3_ids([0.5, -1.0, bad])


@pytest.mark.parametrize("band", [-0.1, np.nan, np.inf, True])
def test_sentiment3_ids_reject_a_bad_band(band):
    with pytest.raises(ValueError, match="neutral_band must be a finite number >= 0"):
        sentiment3_ids([0.0], neutral_band=band)


def test_sentiment3_ids_need_a_1d_sequence():
    with pytest.raises(ValueError, match=r"1-D sequence \[N\], got shape \(2, 1\)"):
        sentiment3_ids([[0.0], [1.0]])


def test_sentiment5_round_rule_is_the_rounded_clipped_score_plus_two():
    scores = [-3.0, -2.5, -1.5, -0.5, 0.0, 0.49, 0.5, 1.5, 2.5, 3.0]
    assert sentiment5_ids(scores).tolist() == [0, 0, 0, 2, 2, 2, 2, 4, 4, 4]  # halves to even
    assert SENTIMENT5.decode([0, 4]) == ["Strongly Negative", "Strongly Positive"]


def test_sentiment5_sims_rule_matches_tmt_on_the_sims_grid_and_closes_intervals_on_the_right():
    grid = np.round(np.arange(-5, 6) / 5, 1).astype(np.float32)  # CH-SIMS scores: multiples of 0.2
    # TMT's 5-class training script: -1, -0.8 -> 0; -0.6 .. -0.2 -> 1; 0 -> 2; 0.2 .. 0.6 -> 3; 0.8, 1 -> 4
    assert sentiment5_ids(grid, "sims").tolist() == [0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4]
    edges = [-0.7, -0.69, -0.1, -0.09, 0.1, 0.11, 0.7, 0.71, -5.0, 5.0]
    assert sentiment5_ids(edges, "sims").tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 0, 4]
    assert sentiment5_ids(np.float32(edges), "sims").tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 0, 4]


def test_sentiment5_rejects_an_unknown_rule_and_non_finite_scores():
    with pytest.raises(ValueError, match="unknown 5-class rule 'thirds'"):
        sentiment5_ids([0.0], "thirds")
    with pytest.raises(ValueError, match="score 1 is nan"):
        sentiment5_ids([0.0, float("nan")])
