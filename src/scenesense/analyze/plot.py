"""The emotions of a recording over time as a figure (``emotions.png``).

Each segment is a stacked column from its start to its end: one band per class, as high as its
probability, in the class's colour (`scenesense.analyze.timeline.label_colors`); stretches
without speech stay blank and a segment without a prediction is a grey outline. Below, a strip
shows the predicted label of each segment. A regression run's values are drawn as steps instead.
The figure is drawn on a stand-alone Agg canvas (matplotlib's global state is untouched) and
written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scenesense.analyze.timeline import NO_PREDICTION_COLOR, Analysis, label_colors
from scenesense.utils.io import atomic_save_with

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _time_axis(ax: Axes, duration: float) -> None:
    """Ticks as ``M:SS`` (``H:MM:SS`` from one hour) over ``[0, duration]``."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def clock(seconds: float, _: int) -> str:
        minutes, sec = divmod(round(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"

    ax.set_xlim(0, max(duration, 1e-3))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(clock))


def draw_emotions(analysis: Analysis, title: str) -> Figure:
    """The figure of `scenesense.analyze.plot` (see the module docstring)."""
    names = list(analysis.label_names)
    fig = _figure(11.0, 4.2)
    top, strip = fig.subplots(2, 1, sharex=True, height_ratios=[5, 1])
    colours = label_colors(names)
    starts = [s.start for s in analysis.segments]
    widths = [max(s.end - s.start, 1e-3) for s in analysis.segments]
    if analysis.task == "regression":
        for s in analysis.segments:
            if s.value is not None:
                top.hlines(s.value, s.start, s.end, colors="#1f77b4", linewidth=2)
        top.set_ylabel(names[0] if names else "value")
    else:
        bottom = [0.0] * len(starts)
        for name in names:
            heights = [s.probabilities.get(name, 0.0) for s in analysis.segments]
            top.bar(starts, heights, widths, bottom=bottom, align="edge", color=colours[name], label=name,
                    linewidth=0)
            bottom = [b + h for b, h in zip(bottom, heights)]
        failed = [s for s in analysis.segments if not s.ok]
        top.bar([s.start for s in failed], [1.0] * len(failed), [max(s.end - s.start, 1e-3) for s in failed],
                align="edge", fill=False, edgecolor=NO_PREDICTION_COLOR,
                label="no prediction" if failed else None)
        top.set_ylim(0, 1)
        top.set_ylabel("probability")
        handles, labels = top.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside right upper", frameon=False)
    strip.bar(starts, [1.0] * len(starts), widths, align="edge", linewidth=0,
              color=[colours.get(s.label or "", NO_PREDICTION_COLOR) for s in analysis.segments])
    strip.set_yticks([])
    strip.set_ylabel("label", rotation=0, ha="right", va="center")
    strip.set_xlabel("time in the recording")
    _time_axis(strip, analysis.duration)
    top.set_title(title)
    return fig


def plot_emotions(analysis: Analysis, path: str | Path, title: str | None = None, dpi: int = 120) -> Path:
    """Write `draw_emotions` to ``path`` (format from the suffix), atomically.

    Args:
        analysis: the analysis to draw.
        path: the image file.
        title: the figure title (default: the media's name and the run's).
        dpi: resolution.

    Returns:
        ``path``.
    """
    from matplotlib.text import Text

    title = title or f"{analysis.media.name}: emotions over time (run {analysis.run_dir.name})"
    fig = draw_emotions(analysis, title)
    for text in fig.findobj(Text):  # names and titles are plain text: "$" is not maths
        text.set_parse_math(False)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_save_with(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))
