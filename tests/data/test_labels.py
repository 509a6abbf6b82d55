from __future__ import annotations

import numpy as np
import pytest

from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS, LabelSpace


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
