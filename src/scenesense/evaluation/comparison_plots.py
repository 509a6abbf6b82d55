"""Figures of several runs: overlaid loss curves, grouped bars (per-class F1) and robustness curves.

They are drawn like the figures of one run (`scenesense.evaluation.plots`): on a stand-alone Agg
canvas (matplotlib's global backend and pyplot state are never changed), with the legend below the
axes. A ``draw_*`` function returns the figure, its ``plot_*`` twin writes it atomically, cropped to
what is drawn, in the format of the file suffix (``.png``, ``.pdf``, ``.svg``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scenesense.evaluation.plots import _legend_below, _new_figure, _save, _wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _seed_mean_curve(histories: Sequence[Sequence[Mapping[str, Any]]], key: str) -> np.ndarray:
    """``[E]`` mean of ``key`` over seeds, for the ``E`` epochs every seed ran (empty if one has none)."""
    epochs = min((len(h) for h in histories), default=0)
    if epochs == 0:
        return np.zeros(0)
    return np.array([[float(h[e][key]) for e in range(epochs)] for h in histories]).mean(axis=0)


def draw_loss_overlay(histories: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
                      title: str | None = None) -> Figure:
    """The figure of `plot_loss_overlay`, not saved.

    Raises:
        ValueError: if no model has an epoch.
    """
    from matplotlib.lines import Line2D

    curves = {name: (_seed_mean_curve(h, "train_loss"), _seed_mean_curve(h, "dev_loss"))
              for name, h in histories.items()}
    curves = {name: c for name, c in curves.items() if c[0].size}
    if not curves:
        raise ValueError("no model has a loss history: nothing to plot")
    fig = _new_figure(7.5, 4.5)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(curves))]
    for color, (name, (train, dev)) in zip(colors, curves.items(), strict=True):
        epochs = np.arange(1, train.size + 1)
        ax.plot(epochs, train, color=color, lw=1.5, label=name)
        ax.plot(epochs, dev, color=color, lw=1.5, ls="--")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(_wrap(fig, title or "training loss (solid) and dev loss (dashed), mean over seeds"))
    handles, labels = ax.get_legend_handles_labels()
    styles = [Line2D([], [], color="grey", lw=1.5, ls=ls) for ls in ("-", "--")]
    _legend_below(fig, [*handles, *styles], [*labels, "train loss", "dev loss"])
    ax.grid(alpha=0.3)
    return fig


def plot_loss_overlay(histories: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], path: str | Path,
                      title: str | None = None, dpi: int = 120) -> Path:
    """Training loss (solid) and dev loss (dashed) per epoch, one colour per model, overlaid.

    Each model's curve is the mean over its seeds of the epochs that every seed ran (early
    stopping may end seeds at different epochs).

    Args:
        histories: model name -> one ``history`` per seed (per-epoch dicts with ``train_loss`` and
            ``dev_loss``, as in ``metrics.json``).
        path: output image file.
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if no model has an epoch.
    """
    return _save(draw_loss_overlay(histories, title), path, dpi)


def draw_grouped_bars(values: Mapping[str, np.ndarray | Sequence[float]], categories: Sequence[str], *,
                      errors: Mapping[str, np.ndarray | Sequence[float]] | None = None, ylabel: str = "",
                      title: str = "", ylim: tuple[float, float] | None = None,
                      reference: tuple[float, str] | None = None) -> Figure:
    """Grouped bars: one bar per series within each category, the legend below the axes.

    Args:
        values: series name -> ``[K]`` values, one per category.
        categories: the ``K`` category names (x axis).
        errors: series name -> ``[K]`` error-bar half-lengths; a series without one has no error bars.
        ylabel: y axis label.
        title: figure title.
        ylim: y axis limits.
        reference: ``(y, label)`` of a dashed horizontal line (e.g. chance), listed in the legend.

    Returns:
        The figure (not saved).

    Raises:
        ValueError: if ``values`` is empty or a series has not ``K`` values.
    """
    k = len(categories)
    if not values:
        raise ValueError("no series to plot")
    for name, v in values.items():
        if np.shape(v) != (k,):
            raise ValueError(f"{name}: expected {k} values, one per category, got shape {np.shape(v)}")
    x = np.arange(k)
    width = 0.8 / len(values)
    fig = _new_figure(max(6.0, k * (0.35 * len(values) + 0.5) + 2), 4.5)
    ax = fig.add_subplot()
    handles: list[Any] = []
    for i, (name, v) in enumerate(values.items()):
        err = None if errors is None else errors.get(name)
        handles.append(ax.bar(x + (i - (len(values) - 1) / 2) * width, v, width, yerr=err,
                              capsize=2 if err is not None else 0, label=name))
    labels = list(values)
    if reference is not None:
        handles.append(ax.axhline(reference[0], color="grey", lw=0.8, ls="--"))
        labels.append(reference[1])
    ax.set_xticks(x, [str(c) for c in categories], rotation=30 if k > 4 else 15, ha="right")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(fig, title))
    _legend_below(fig, handles, labels)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_grouped_bars(values: Mapping[str, np.ndarray | Sequence[float]], categories: Sequence[str],
                      path: str | Path, dpi: int = 120, **options: Any) -> Path:  # noqa: ANN401
    """`draw_grouped_bars` written to ``path`` (``options``: its keyword arguments); returns ``path``."""
    return _save(draw_grouped_bars(values, categories, **options), path, dpi)


def plot_per_class_f1(scores: Mapping[str, np.ndarray | Sequence[float]], label_names: Sequence[str],
                      path: str | Path, errors: Mapping[str, np.ndarray | Sequence[float]] | None = None,
                      title: str | None = None, dpi: int = 120) -> Path:
    """Grouped bars: each model's F1 per class, models side by side within a class.

    Args:
        scores: model name -> ``[C]`` F1 per class.
        label_names: the ``C`` class names.
        path: output image file.
        errors: model name -> ``[C]`` error-bar half-lengths (e.g. the std over seeds; leave a model
            out, or ``errors`` ``None``, for no error bars, e.g. a single seed).
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if ``scores`` is empty or a model has not ``C`` scores.
    """
    return plot_grouped_bars(scores, label_names, path, dpi, errors=errors, ylabel="F1",
                             title=title or "per-class F1", ylim=(0, 1.05))


_SEVERITY_AXIS = {"noise": "SNR (dB)", "drop_frames": "fraction of frames dropped"}


def draw_degradation_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
                            ylabel: str = "weighted_f1", clean: Mapping[str, float] | None = None,
                            title: str | None = None) -> Figure:
    """The figure of `plot_degradation_curves`, not saved.

    Raises:
        ValueError: if ``curves`` is empty.
    """
    from matplotlib.lines import Line2D

    if not curves:
        raise ValueError("no robustness curve to plot")
    models = list(dict.fromkeys(m for panel in curves.values() for m in panel))
    color = {m: f"C{i % 10}" for i, m in enumerate(models)}
    n_cols = min(3, len(curves))
    n_rows = -(-len(curves) // n_cols)
    fig = _new_figure(4.5 * n_cols + 1.0, 3.8 * n_rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[len(curves):]:
        ax.set_axis_off()
    for ax, (condition, panel) in zip(axes, curves.items()):  # more axes than panels: zip stops early
        for model, (xs, ys) in panel.items():
            ax.plot(xs, ys, marker="o", ms=3, color=color[model], label=model)
            if clean and model in clean:
                ax.axhline(clean[model], color=color[model], ls=":", lw=1)
        kind = condition.split(" ", 1)[0]
        ax.set_xlabel(_SEVERITY_AXIS.get(kind, "severity"))
        if kind == "noise":
            ax.invert_xaxis()  # lower SNR is the stronger perturbation: severity grows to the right
        ax.set_ylabel(ylabel)
        ax.set_title(condition)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=color[m], marker="o", ms=3) for m in models]
    labels = list(models)
    if clean:
        handles.append(Line2D([], [], color="grey", ls=":", lw=1))
        labels.append("clean (no perturbation)")
    _legend_below(fig, handles, labels)
    fig.suptitle(_wrap(fig, title or f"{ylabel} under perturbation (dotted: clean)"))
    return fig


def plot_degradation_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
                            path: str | Path, ylabel: str = "weighted_f1",
                            clean: Mapping[str, float] | None = None, title: str | None = None,
                            dpi: int = 120) -> Path:
    """Robustness: the metric against the perturbation's severity, one panel per condition (three per
    row), one line per model (its clean score dotted in the same colour). Noise panels run from high
    to low SNR, so the perturbation grows to the right in every panel.

    Args:
        curves: condition (e.g. ``"noise audio"``) -> model name -> ``(severities, values)``.
        path: output image file.
        ylabel: the metric's name.
        clean: model name -> its score without perturbation.
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if ``curves`` is empty.
    """
    return _save(draw_degradation_curves(curves, ylabel, clean, title), path, dpi)
