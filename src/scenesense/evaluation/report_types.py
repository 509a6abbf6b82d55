"""The experiment report's shared types: the runs of one (modality set, variant), what a table or
figure covers (its `Scope`: split, seeds, data) and a table as plain data.

`scenesense.evaluation.report_tables` builds `Table` objects from `Group` objects,
`scenesense.evaluation.report_html` renders both, and
`scenesense.evaluation.experiment_report` puts them together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


SPREAD = "sample std over seeds (ddof = 1)"
"""What the ``±`` of every mean over seeds is."""


def _data_name(run: RunRecord) -> str:
    """The dataset's name; a run trained on a store folder (dataset ``"store"``) names the folder."""
    if run.dataset and run.dataset != "store":
        return run.dataset
    return f"store {Path(run.store).name}" if run.store else run.dataset or "unknown data"


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


@dataclass(frozen=True)
class Scope:
    """What a table or figure covers: the scored split, the seeds and the data.

    Fields:
        split: the scored split (``"dev"``, ``"test"``); ``None`` for what scores nothing (timings).
        seeds: every seed of the runs covered, sorted.
        per_group: the distinct numbers of seeds per (modality set, variant), sorted.
        datasets: the runs' ``data.dataset`` names (``"synthetic"``, ``"meld"``).
        stores: the runs' feature store folders.
        modality_sets: the runs' modality sets (``"audio+text"``).
    """

    split: str | None
    seeds: tuple[int, ...]
    per_group: tuple[int, ...]
    datasets: tuple[str, ...]
    stores: tuple[str, ...] = ()
    modality_sets: tuple[str, ...] = ()

    @classmethod
    def of(cls, groups: Sequence[Group], split: str | None = None) -> Scope:
        """The scope of ``groups`` (``split``: default the runs' own split, ``"a, b"`` when they differ)."""
        runs = [r for g in groups for r in g.runs]
        splits = sorted({r.split for r in runs})
        return cls(split if split is not None else ", ".join(splits),
                   tuple(sorted({r.seed for r in runs})), tuple(sorted({len(g.runs) for g in groups})),
                   tuple(sorted({_data_name(r) for r in runs})),
                   tuple(sorted({r.store for r in runs if r.store})),
                   tuple(dict.fromkeys(g.modality_set for g in groups)))

    @property
    def single_seed(self) -> bool:
        """Every group has one run: values are single runs, shown without a spread."""
        return self.per_group == (1,)

    @property
    def data(self) -> str:
        """The dataset names, e.g. ``"synthetic"``."""
        return ", ".join(self.datasets)

    def seeds_text(self, how: str = "spread") -> str:
        """The seeds, their count per group and how the table combines them.

        Args:
            how: ``"spread"`` (mean ± std over seeds), ``"mean"`` (mean over seeds) or ``"pooled"``
                (predictions of all seeds pooled).

        Returns:
            e.g. ``"seeds 0, 1, n = 2 per group: mean ± sample std over seeds (ddof = 1)"`` or
            ``"seed 0, n = 1 per group: single runs, no spread"``.
        """
        word = "seed" if len(self.seeds) == 1 else "seeds"
        counts = self.per_group
        n = f"n = {counts[0]} per group" if len(counts) == 1 else f"n = {counts[0]}-{counts[-1]} per group"
        if self.single_seed:
            combined = "single runs, no spread" if how == "spread" else "single runs"
        else:
            combined = {"spread": f"mean ± {SPREAD}" + ("" if 1 not in counts else
                                                         ", a single run's value where n = 1"),
                        "mean": "mean over seeds", "pooled": "predictions pooled over seeds"}[how]
        return f"{word} {_seed_list(self.seeds)}, {n}: {combined}"

    def describe(self, how: str = "spread") -> str:
        """``"<split> split of <data>; <seeds_text>"``, the part every caption and title carries."""
        where = f"{self.split} split of {self.data}" if self.split else f"data {self.data}"
        return f"{where}; {self.seeds_text(how)}"

    def to_json(self) -> dict[str, Any]:
        """``{"split", "seeds", "seeds_per_group", "data": {"datasets", "stores", "modality_sets"},
        "spread"}``."""
        return {"split": self.split, "seeds": list(self.seeds), "seeds_per_group": list(self.per_group),
                "data": {"datasets": list(self.datasets), "stores": list(self.stores),
                         "modality_sets": list(self.modality_sets)},
                "spread": None if self.single_seed else SPREAD}


@dataclass(frozen=True)
class Table:
    """One report table.

    Fields:
        name: short key (``"table3"``, ``"robustness"``), the ``table`` column of ``tables.csv`` and
            the key of ``tables.json``.
        title: caption (it names the split, the seeds and the data).
        rows: raw rows at full precision.
        columns: displayed columns.
        notes: sentences shown under the table (e.g. Table 4's verdicts).
        scope: the split, seeds and data the table covers.
    """

    name: str
    title: str
    rows: list[Row]
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default=())
    scope: Scope | None = None

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
