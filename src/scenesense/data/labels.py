"""Label spaces: the ordered label names of a task, and the mapping between names and ids.

A `LabelSpace` is stored with every feature store (``label_names`` + ``task`` attributes)
and travels with checkpoints, so class ids never depend on the order labels were first seen.
Presets for MELD and 3- and 5-class sentiment, and `sentiment3_ids` / `sentiment5_ids`, which
discretise continuous sentiment scores (CMU-MOSI / MOSEI, CH-SIMS) into those classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")
UNLABELLED = -1
"""Class id of a row without a label (a clip to predict); training and evaluation refuse such rows."""


def _validate_names(names: tuple[str, ...]) -> None:
    if not names:
        raise ValueError("a label space needs at least one label name")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ValueError(f"label names must be non-empty strings, got {bad!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate label name(s) {duplicates} in {list(names)}")


@dataclass(frozen=True)
class LabelSpace:
    """Ordered label names of one task; the position of a name is its class id.

    Args:
        names: class names in id order (classification), or target names (regression, usually
            one, e.g. ``("valence",)``).
        task: ``"classification"`` or ``"regression"``.

    Raises:
        ValueError: empty, duplicate or non-string names, or an unknown task.
    """

    names: tuple[str, ...]
    task: Task = "classification"

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        _validate_names(self.names)
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {list(TASKS)}")

    @classmethod
    def from_names(cls, names: Iterable[str], task: Task = "classification") -> LabelSpace:
        """Build a label space from any iterable of names, kept in the given order."""
        return cls(tuple(names), task)

    @property
    def is_classification(self) -> bool:
        """True for a classification task."""
        return self.task == "classification"

    @property
    def num_classes(self) -> int:
        """Number of classes (classification only).

        Raises:
            ValueError: for a regression label space, which has targets, not classes.
        """
        if not self.is_classification:
            raise ValueError(f"a regression label space {list(self.names)} has no classes")
        return len(self.names)

    @property
    def num_outputs(self) -> int:
        """Model outputs needed: the number of classes, or of regression targets."""
        return len(self.names)

    def id_of(self, name: str) -> int:
        """Class id of ``name``.

        Raises:
            KeyError: ``name`` is not a label of this space; the message lists the valid ones.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown label {name!r}; valid labels are {list(self.names)}") from None

    def name_of(self, class_id: int) -> str:
        """Label name of class id ``class_id``.

        Raises:
            IndexError: the id is outside ``[0, num_classes)``.
        """
        if isinstance(class_id, bool) or not 0 <= int(class_id) < len(self.names):
            raise IndexError(f"class id {class_id!r} outside [0, {len(self.names)}) for {list(self.names)}")
        return self.names[int(class_id)]

    def encode(self, names: Iterable[str]) -> np.ndarray:
        """Map names to ids.

        Returns:
            ``[N]`` int64 class ids.
        """
        return np.asarray([self.id_of(n) for n in names], dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ``[N]`` class ids to names."""
        return [self.name_of(int(i)) for i in ids]


MELD_EMOTIONS = LabelSpace(("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"))
"""MELD's 7 emotions in the MELD README order (formats.md §1.3)."""

MELD_SENTIMENTS = LabelSpace(("neutral", "positive", "negative"))
"""MELD's 3 sentiments in the MELD order: neutral=0, positive=1, negative=2."""

SENTIMENT3 = LabelSpace(("Negative", "Neutral", "Positive"))
"""3-class sentiment in MMSA's ``classification_labels`` order: 0 = Negative, 1 = Neutral, 2 = Positive."""


def _finite_scores(scores: Iterable[float] | np.ndarray) -> np.ndarray:
    """``scores`` as a float64 ``[N]`` array; ``ValueError`` if not 1-D or a score is NaN / infinite
    (the first is named)."""
    values = np.asarray(scores, dtype=np.float64)  # [N]
    if values.ndim != 1:
        raise ValueError(f"scores must be a 1-D sequence [N], got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"sentiment scores must be finite; score {int(bad[0])} is {float(values[bad[0]])} "
                         f"({bad.size} non-finite)")
    return values


def sentiment3_ids(scores: Iterable[float] | np.ndarray, neutral_band: float = 0.0) -> np.ndarray:
    """Map continuous sentiment scores (CMU-MOSI / MOSEI: [-3, 3]) to `SENTIMENT3` class ids.

    ``s < -neutral_band`` is Negative (0), ``|s| <= neutral_band`` Neutral (1) and
    ``s > neutral_band`` Positive (2). With the default band 0, exactly-zero scores (and only
    they) are Neutral: the convention of MMSA's 3-class labels for MOSI and MOSEI (Negative < 0,
    Neutral = 0, Positive > 0; MMSA's metrics treat class Neutral as they treat a zero score, e.g.
    its ``Non0`` binary scores leave out both), also used by the ``mmsa`` format when a pickle has
    only regression labels. A band of 0.5 reproduces instead the 3-class accuracy MMSA's metrics
    derive from regression outputs (``np.round`` of the score clipped to [-1, 1]: ``|s| <= 0.5``
    gives 0, since ``np.round`` rounds halves to even). Scores are not clipped: any finite value
    is mapped.

    Args:
        scores: ``[N]`` sentiment scores.
        neutral_band: half-width of the Neutral interval, finite and ``>= 0``.

    Returns:
        ``[N]`` int64 class ids in `SENTIMENT3` order.

    Raises:
        ValueError: a score is NaN or infinite (the first is named), or the band is negative or
            not finite.
    """
    if isinstance(neutral_band, bool) or not np.isfinite(neutral_band) or neutral_band < 0:
        raise ValueError(f"neutral_band must be a finite number >= 0, got {neutral_band!r}")
    values = _finite_scores(scores)
    ids = np.ones(values.shape, dtype=np.int64)  # Neutral
    ids[values < -neutral_band] = 0
    ids[values > neutral_band] = 2
    return ids


SENTIMENT5 = LabelSpace(("Strongly Negative", "Negative", "Neutral", "Positive", "Strongly Positive"))
"""5-class sentiment, ids 0..4 from most negative to most positive (class id - 2 is the score's sign
and strength on the MOSI scale: -2 .. 2)."""

SENTIMENT5_RULES: tuple[str, ...] = ("round", "sims")
"""How `sentiment5_ids` forms the 5 classes: ``round`` for scores in [-3, 3], ``sims`` for [-1, 1]."""

SIMS5_EDGES: tuple[float, ...] = (-0.7, -0.1, 0.1, 0.7)
"""Upper bounds of the first four ``sims`` classes: (-inf, -0.7], (-0.7, -0.1], (-0.1, 0.1],
(0.1, 0.7], (0.7, inf) (MMSA's CH-SIMS 5-class intervals)."""


def sentiment5_ids(scores: Iterable[float] | np.ndarray, rule: str = "round") -> np.ndarray:
    """Map continuous sentiment scores to `SENTIMENT5` class ids.

    - ``rule="round"`` (CMU-MOSI / MOSEI, scores in [-3, 3]): ``round(clip(s, -2, 2)) + 2`` with
      ``numpy.round`` (halves to the even integer), the classes of the usual Acc-5 (MulT, MMSA);
    - ``rule="sims"`` (CH-SIMS, scores in [-1, 1]): the interval of `SIMS5_EDGES` holding ``s``
      (right-closed, compared in float32), MMSA's CH-SIMS Acc-5 classes. On SIMS's label grid (multiples of 0.2) this is
      the class mapping of TMT's 5-class training script: -1.0 and -0.8 -> 0; -0.6, -0.4, -0.2 -> 1;
      0 -> 2; 0.2, 0.4, 0.6 -> 3; 0.8 and 1.0 -> 4.

    Args:
        scores: ``[N]`` finite sentiment scores.
        rule: ``"round"`` or ``"sims"`` (`SENTIMENT5_RULES`).

    Returns:
        ``[N]`` int64 class ids in `SENTIMENT5` order.

    Raises:
        ValueError: an unknown rule, scores that are not 1-D, or a NaN / infinite score (the first
            is named).
    """
    if rule not in SENTIMENT5_RULES:
        raise ValueError(f"unknown 5-class rule {rule!r}; expected one of {list(SENTIMENT5_RULES)}")
    values = _finite_scores(scores)
    if rule == "round":
        return (np.round(np.clip(values, -2.0, 2.0)) + 2).astype(np.int64)
    # compared in float32, as MMSA compares its float32 labels with the interval bounds (0.1 is then
    # the bound itself, not just above it)
    edges = np.asarray(SIMS5_EDGES, dtype=np.float32)
    return np.searchsorted(edges, values.astype(np.float32), side="left").astype(np.int64)
