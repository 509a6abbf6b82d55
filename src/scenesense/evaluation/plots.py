"""Figures of a run: loss curves (the paper's Figure 3), the confusion matrix, modality weights
and one sample's attention maps. The figures of several runs (overlaid loss curves, grouped bars,
robustness curves) are in `scenesense.evaluation.comparison_plots`, drawn the same way.

Figures are drawn on a stand-alone Agg canvas chosen inside each function, so importing this
module, or calling it, never changes matplotlib's global backend or pyplot state. Legends sit
outside the axes (below them), so they never cover a bar or a line. A ``draw_*`` function returns
the figure, its ``plot_*`` twin writes it. Files are written atomically, cropped to what is drawn;
the format follows the file suffix (``.png``, ``.pdf``, ``.svg``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scenesense.utils.io import atomic_save_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    from matplotlib.text import Text

    for text in fig.findobj(Text):  # ids, names and titles are plain text: "$" is not maths (MMSA ids)
        text.set_parse_math(False)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_save_with(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi,
                                                             bbox_inches="tight"))


def _wrap(fig: Figure, text: str, points: float = 12.0) -> str:
    """``text`` broken into lines that fit the figure's width at a font of ``points`` (its own line
    breaks kept)."""
    width = max(20, int(fig.get_figwidth() * 72 / (points * 0.55)))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def _legend_below(fig: Figure, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """One figure legend under the axes and their tick labels, never over a bar or line.

    As many columns as fit the figure's width at the legend's font size (at least one).
    """
    if not handles:
        return
    width_chars = fig.get_figwidth() * 72 / (8 * 0.6)  # figure width in characters of 8 pt text
    ncol = max(1, min(len(labels), int(width_chars // (max(len(s) for s in labels) + 6))))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


def plot_loss_curves(history: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None,
                     dpi: int = 120) -> Path:
    """Train and dev loss per epoch, with the best (lowest dev loss) epoch marked.

    A history with auxiliary losses (``train_aux_<name>``, ``dev_aux_<name>``, see
    `scenesense.training.aux_losses`) gets a second panel below with each term, unweighted
    (train solid, dev dashed), and the first panel adds the unweighted ``train_task_loss``, the
    train counterpart of the dev loss.

    Args:
        history: per-epoch dicts with ``train_loss``, ``dev_loss`` and optionally ``epoch``
            (1-based; the position is used otherwise), as in ``FitResult.history``.
        path: output image file.
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if ``history`` is empty or lacks a loss.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    missing = [k for k in ("train_loss", "dev_loss") if k not in history[0]]
    if missing:
        raise ValueError(f"history entries need {missing}; they have {sorted(history[0])}")
    epochs = np.array([h.get("epoch", i + 1) for i, h in enumerate(history)])

    def series(key: str) -> np.ndarray:
        return np.array([h.get(key, np.nan) for h in history], dtype=float)

    train, dev = series("train_loss"), series("dev_loss")
    aux = sorted({k.split("_aux_", 1)[1] for h in history for k in h
                  if k.startswith(("train_aux_", "dev_aux_"))})
    best = int(np.nanargmin(dev))
    fig = _new_figure(6.0, 6.5 if aux else 4.0)
    ax = fig.add_subplot(2, 1, 1) if aux else fig.add_subplot()
    ax.plot(epochs, train, marker="o", ms=3, color="C0",
            label="train loss (weighted total)" if aux else "train loss")
    if aux and any("train_task_loss" in h for h in history):
        ax.plot(epochs, series("train_task_loss"), marker="o", ms=3, ls=":", color="C0",
                label="train task loss (unweighted)")
    ax.plot(epochs, dev, marker="o", ms=3, color="C1", label="dev loss")
    ax.axvline(epochs[best], color="grey", ls="--", lw=1)
    ax.scatter([epochs[best]], [dev[best]], s=60, color="red", zorder=3,
               label=f"best epoch {epochs[best]} (dev {dev[best]:.4f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(_wrap(fig, title or "training and validation loss"))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if aux:
        below = fig.add_subplot(2, 1, 2, sharex=ax)
        for i, name in enumerate(aux):
            colour = f"C{(i + 2) % 10}"  # C0 and C1 are the train and dev losses above
            below.plot(epochs, series(f"train_aux_{name}"), marker="o", ms=3, color=colour,
                       label=f"train {name}")
            below.plot(epochs, series(f"dev_aux_{name}"), marker="o", ms=3, ls="--", color=colour,
                       label=f"dev {name}")
        below.axvline(epochs[best], color="grey", ls="--", lw=1)
        below.set_xlabel("epoch")
        below.set_ylabel("auxiliary loss (unweighted)")
        below.grid(alpha=0.3)
        more = below.get_legend_handles_labels()
        handles, labels = [*handles, *more[0]], [*labels, *more[1]]
    _legend_below(fig, handles, labels)
    return _save(fig, path, dpi)


def plot_confusion_matrix(cm: np.ndarray | Sequence[Sequence[int]], label_names: Sequence[str],
                          path: str | Path, normalize: bool = True, title: str | None = None,
                          dpi: int = 120) -> Path:
    r"""Confusion matrix heat map, with the counts written in every cell.

    Args:
        cm: ``[C, C]`` counts, row = true class, column = predicted class.
        label_names: ``C`` class names.
        path: output image file.
        normalize: colour by row-normalised rates (recall per true class); cells then read
            ``"count\\nrate"``. Rows without samples stay 0.
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if ``cm`` is not ``[C, C]`` with ``C == len(label_names)``.
    """
    counts = np.asarray(cm)
    c = len(label_names)
    if counts.shape != (c, c):
        raise ValueError(f"cm must be [{c}, {c}] for {c} label names, got shape {counts.shape}")
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows != 0)
    values = rates if normalize else counts
    size = max(4.0, 0.7 * c + 2.0)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(int(counts.max()), 1))
    fig.colorbar(image, ax=ax, label="rate per true class" if normalize else "count")
    threshold = 0.5 * (1 if normalize else max(int(counts.max()), 1))
    for i in range(c):
        for j in range(c):
            text = f"{int(counts[i, j])}\n{rates[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if values[i, j] > threshold else "black")
    ax.set_xticks(range(c), [str(n) for n in label_names], rotation=45, ha="right")
    ax.set_yticks(range(c), [str(n) for n in label_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_wrap(fig, title or "confusion matrix"))
    return _save(fig, path, dpi)


def mean_modality_weights(weights: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each modality's fusion weight averaged over samples (and over ``D`` for ``[N, D]`` weights).

    Args:
        weights: per modality ``[N]`` or ``[N, D]`` weights, as in ``Predictions.modality_weights``.

    Returns:
        per modality the mean, in sorted order.
    """
    return {m: float(np.asarray(w, dtype=np.float64).mean()) for m, w in sorted(weights.items())}


def modality_weights_per_class(weights: Mapping[str, np.ndarray], labels: np.ndarray,
                               num_classes: int) -> dict[str, np.ndarray]:
    """Mean fusion weight of each modality per true class.

    Args:
        weights: per modality ``[N]`` or ``[N, D]`` weights (``[N, D]`` is averaged over ``D`` first).
        labels: ``[N]`` class ids.
        num_classes: ``C``.

    Returns:
        per modality ``[C]`` means (NaN for a class with no sample).
    """
    labels = np.asarray(labels)
    out = {}
    for m, w in sorted(weights.items()):
        per_sample = np.asarray(w, dtype=np.float64).reshape(len(labels), -1).mean(axis=1)  # [N]
        out[m] = np.array([per_sample[labels == c].mean() if np.any(labels == c) else np.nan
                           for c in range(num_classes)])
    return out


def plot_modality_weights(weights: Mapping[str, np.ndarray], labels: np.ndarray, label_names: Sequence[str],
                          path: str | Path, title: str | None = None, dpi: int = 120) -> Path:
    """Grouped bars: the mean fusion weight of each modality for each true class.

    Args:
        weights: per modality ``[N]`` or ``[N, D]`` weights, as in ``Predictions.modality_weights``.
        labels: ``[N]`` class ids.
        label_names: the ``C`` class names.
        path: output image file.
        title: figure title.
        dpi: resolution of raster formats.

    Returns:
        ``path``.
    """
    means = modality_weights_per_class(weights, labels, len(label_names))
    x = np.arange(len(label_names))
    width = 0.8 / max(len(means), 1)
    fig = _new_figure(max(6.0, 0.8 * len(label_names) + 2), 4.0)
    ax = fig.add_subplot()
    for i, (m, values) in enumerate(means.items()):
        ax.bar(x + (i - (len(means) - 1) / 2) * width, values, width, label=m)
    ax.set_xticks(x, list(label_names), rotation=30, ha="right")
    ax.set_ylabel("mean modality weight")
    ax.set_title(_wrap(fig, title or "which modality the fusion relied on, per true class"))
    _legend_below(fig, *ax.get_legend_handles_labels())
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, dpi)


def sample_attention_maps(attention: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
                          index: int = 0) -> dict[str, np.ndarray]:
    """One sample's attention maps, cropped to its real steps.

    A map named ``"q->k"`` keeps the rows where the sample's ``q`` mask is True and the columns
    where its ``k`` mask is True. An axis whose name is not a masked modality, or whose mask
    length differs from the map's (e.g. an encoder that changed the sequence length), keeps all
    its steps; a map ``"m:steps"`` ``[B, 1, T_m]`` (per-step weights) keeps the columns of
    ``m``'s real steps; every axis of a map with another name, such as ``"modalities"``
    ``[B, M, M]``, is kept whole. A map left with no row or no column (the modality is missing for the
    sample) is dropped.

    Args:
        attention: named maps ``[B, T_q, T_k]``, as in ``ModelOutput.attention``.
        masks: per sequence modality ``[B, T]`` booleans, True = real step (``Batch.masks``).
        index: the sample's position in the batch.

    Returns:
        per map name (sorted) a ``[T_q real, T_k real]`` float array.

    Raises:
        ValueError: if a map is not ``[B, T_q, T_k]`` or ``index`` is outside the batch.
    """
    out: dict[str, np.ndarray] = {}
    for name, maps in sorted(attention.items()):
        maps = np.asarray(maps, dtype=np.float64)
        if maps.ndim != 3:
            raise ValueError(f"attention map {name!r} must be [B, T_q, T_k], got shape {maps.shape}")
        if not 0 <= index < maps.shape[0]:
            raise ValueError(f"sample index {index} is outside the batch of {maps.shape[0]} ({name!r})")
        query, arrow, key = name.partition("->")
        if not arrow and name.endswith(":steps"):  # step weights [B, 1, T] of one modality
            query, key, arrow = "", name.removesuffix(":steps"), "steps"
        rows = _real_steps(masks.get(query) if arrow else None, index, maps.shape[1])  # [T_q]
        cols = _real_steps(masks.get(key) if arrow else None, index, maps.shape[2])  # [T_k]
        if rows.any() and cols.any():
            out[name] = maps[index][rows][:, cols]
    return out


def _real_steps(mask: np.ndarray | None, index: int, steps: int) -> np.ndarray:
    """``[steps]`` booleans: the sample's mask row when it fits, else all True."""
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 2 and mask.shape[1] == steps and index < mask.shape[0]:
            return mask[index]
    return np.ones(steps, dtype=bool)


def plot_attention_maps(maps: Mapping[str, np.ndarray], path: str | Path, title: str | None = None,
                        sample_id: str | None = None, modality_names: Sequence[str] | None = None,
                        dpi: int = 120) -> Path:
    """Heat maps of one sample's attention maps, one panel per map, on a shared colour scale.

    A panel ``"q->k"`` has the query modality's steps as rows and the key modality's steps as
    columns. A map with another name whose rows and columns both number
    ``len(modality_names)`` (e.g. ``"modalities"`` ``[M, M]``) is labelled with the modality
    names, query on rows, key on columns.

    Args:
        maps: per name a ``[T_q, T_k]`` map, e.g. from `sample_attention_maps`.
        path: output image file.
        title: figure title.
        sample_id: the sample's id, added to the title.
        modality_names: the model's modalities in sorted order, for modality-level maps.
        dpi: resolution of raster formats.

    Returns:
        ``path``.

    Raises:
        ValueError: if ``maps`` is empty, or a map is not 2-D or has no cell.
    """
    if not maps:
        raise ValueError("no attention map to plot")
    arrays = {name: np.asarray(a, dtype=np.float64) for name, a in sorted(maps.items())}
    for name, a in arrays.items():
        if a.ndim != 2 or a.size == 0:
            raise ValueError(f"attention map {name!r} must be a non-empty [T_q, T_k] array, "
                             f"got shape {a.shape}")
    vmax = max(float(np.nanmax(a)) if not np.isnan(a).all() else 0.0 for a in arrays.values())
    vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
    fig = _new_figure(4.2 * len(arrays) + 1.0, 4.0)
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    image = None
    for ax, (name, a) in zip(axes, arrays.items()):
        image = ax.imshow(a, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
        query, arrow, key = name.partition("->")
        names = list(modality_names or [])
        if arrow:
            ax.set_ylabel(f"{query} step (query)")
            ax.set_xlabel(f"{key} step (key)")
        elif names and a.shape == (len(names), len(names)):
            ax.set_yticks(range(len(names)), names)
            ax.set_xticks(range(len(names)), names)
            ax.set_ylabel("query modality")
            ax.set_xlabel("key modality")
        else:
            ax.set_ylabel("query step")
            ax.set_xlabel("key step")
        ax.set_title(f"{name}  [{a.shape[0]} x {a.shape[1]}]")
    fig.colorbar(image, ax=list(axes), label="attention weight")
    heading = title or "attention maps"
    fig.suptitle(f"{heading} (sample {sample_id})" if sample_id is not None else heading)
    return _save(fig, path, dpi)
