"""Figures caught as they are saved, and the checks that a legend covers no bar or line and that a
title says what is shown."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox


def catch_saved_figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure saved from now on (by any code path: `Figure.savefig`), in order; still saved."""
    caught: list[Figure] = []
    save = Figure.savefig

    def savefig(fig: Figure, *args: object, **kwargs: object) -> None:
        caught.append(fig)
        save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return caught


def legend_boxes(fig: Figure) -> list[Bbox]:
    """The window extents of the figure's legends (figure legends and axes legends), after a draw."""
    if not hasattr(fig.canvas, "get_renderer"):  # a pyplot figure closed after saving has lost its canvas
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    return [legend.get_window_extent(renderer) for legend in legends]


def covered(fig: Figure) -> list[str]:
    """What a legend of ``fig`` overlaps: ``"bar <i> of axes <j>"`` for every bar (a `Rectangle` patch)
    and ``"axes <j>"`` for every axes with a line whose plotting area a legend overlaps."""
    boxes = legend_boxes(fig)
    assert boxes, "the figure has no legend"
    renderer = fig.canvas.get_renderer()
    hits = []
    for j, ax in enumerate(fig.axes):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        hits += [f"bar {i} of axes {j}" for i, bar in enumerate(bars)
                 if any(box.overlaps(bar.get_window_extent(renderer)) for box in boxes)]
        if ax.lines and any(box.overlaps(ax.get_window_extent(renderer)) for box in boxes):
            hits.append(f"axes {j}")
    return hits


def titles(fig: Figure) -> str:
    """The figure's suptitle and axes titles, line breaks and runs of spaces as one space."""
    texts = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
    return " ".join(" ".join(texts).split())
