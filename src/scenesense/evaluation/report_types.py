"""The experiment report's shared types: the runs of one (modality set, variant) and a table as plain data.

`scenesense.evaluation.report_tables` builds `Table` objects from `Group` objects,
`scenesense.evaluation.report_html` renders both, and
`scenesense.evaluation.experiment_report` puts them together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenesense.runs.records import RunRecord

Row = dict[str, Any]
"""A table row at full precision: column key -> value (the CSV and JSON columns)."""


@dataclass(frozen=True)
class Column:
    """A displayed column: its header and how a raw row becomes the cell text."""

    header: str
    cell: Callable[[Row], str]
    numeric: bool = True


@dataclass(frozen=True)
class Table:
    """One report table.

    Fields:
        name: short key (``"table3"``, ``"robustness"``), the ``table`` column of ``tables.csv`` and
            the key of ``tables.json``.
        title: caption.
        rows: raw rows at full precision.
        columns: displayed columns.
        notes: sentences shown under the table (e.g. Table 4's verdicts).
    """

    name: str
    title: str
    rows: list[Row]
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default=())

    def cells(self) -> list[list[str]]:
        """The displayed cells, one list per row."""
        return [[c.cell(row) for c in self.columns] for row in self.rows]


@dataclass(frozen=True, eq=False)
class Group:
    """The runs of one (modality set, variant), sorted by seed."""

    modality_set: str
    variant: str
    runs: tuple[RunRecord, ...]

    @property
    def name(self) -> str:
        """``"<modality set>/<variant>"``, e.g. ``"audio+text/concat"``."""
        return f"{self.modality_set}/{self.variant}"

    @property
    def slug(self) -> str:
        """File-name form of `name`: ``"audio+text__concat"``."""
        return f"{self.modality_set}__{self.variant}"

    @property
    def seeds(self) -> list[int]:
        """The seeds, sorted."""
        return [r.seed for r in self.runs]

    def values(self, metric: str) -> list[float]:
        """``metrics.json[metric]`` of each seed."""
        return [float(r.metrics[metric]) for r in self.runs]

    def pooled(self) -> dict[tuple[int, str], tuple[int, int]]:
        """``(seed, utterance id) -> (label, pred)`` over all seeds."""
        return {(r.seed, key): (int(t), int(p))
                for r in self.runs for key, t, p in zip(r.ids, r.labels, r.preds, strict=True)}

    def pooled_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``labels [S*N]`` and ``preds [S*N]`` of the pooled (seed, utterance) predictions."""
        pairs = np.array(list(self.pooled().values())).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]

    def paired_with(self, other: Group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Align this group's and ``other``'s predictions by (seed, utterance id), never by position.

        Returns:
            ``y_true [P]``, ``pred_self [P]``, ``pred_other [P]`` in sorted key order.

        Raises:
            ValueError: if the (seed, id) sets differ or a shared utterance has two labels.
        """
        mine, theirs = self.pooled(), other.pooled()
        if mine.keys() != theirs.keys():
            only_mine, only_theirs = sorted(mine.keys() - theirs.keys()), sorted(theirs.keys() - mine.keys())
            raise ValueError(
                f"{self.name} and {other.name} were not scored on the same (seed, utterance) pairs: "
                f"{len(only_mine)} only in {self.name} (e.g. {only_mine[:3]}), {len(only_theirs)} only in "
                f"{other.name} (e.g. {only_theirs[:3]}); seeds {self.seeds} vs {other.seeds}")
        keys = sorted(mine)
        y = np.array([mine[k][0] for k in keys])
        if not np.array_equal(y, [theirs[k][0] for k in keys]):
            raise ValueError(f"{self.name} and {other.name} disagree on the labels of shared utterances")
        return y, np.array([mine[k][1] for k in keys]), np.array([theirs[k][1] for k in keys])


def group_runs(runs: Sequence[RunRecord]) -> list[Group]:
    """Group runs by (modality set, variant); groups sorted by modality count, modality set, variant."""
    by_key: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        by_key.setdefault((r.modality_set, r.variant), []).append(r)
    keys = sorted(by_key, key=lambda k: (k[0].count("+"), k[0], k[1]))
    return [Group(m, v, tuple(sorted(by_key[(m, v)], key=lambda r: r.seed))) for m, v in keys]
