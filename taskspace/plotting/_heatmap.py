"""Annotated heatmap of a transferability matrix (rows = sources, columns = targets)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import Colormap, Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from taskspace.errors import ConfigError, did_you_mean
from taskspace.matrix import TransferabilityMatrix
from taskspace.plotting._common import axes_and_figure, require_cells

__all__ = ["heatmap"]

MISSING_COLOUR = "#d9d9d9"


def heatmap(
    matrix: TransferabilityMatrix,
    *,
    ax: Axes | None = None,
    annotate: bool = True,
    fmt: str = ".2f",
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    mark_diagonal: bool = True,
    order: Sequence[str] | None = None,
    colorbar: bool = True,
    annot_fontsize: float | None = None,
) -> Figure:
    """Draw ``matrix`` as a heatmap, one row per source and one column per target.

    Missing (NaN) cells are grey and carry no number. The cells where a task is its own source (the
    diagonal by id, whatever the order) are outlined: they are not transfers.

    Args:
        matrix: the scores to draw.
        ax: axes to draw into; a new figure is made when None.
        annotate: write each cell's value in it.
        fmt: format spec of the annotations (as in ``format(value, fmt)``).
        cmap: colormap name or object. Default ``"viridis"``, reversed when lower scores are better, so
            the bright end always means "transfers well".
        vmin: lower end of the colour scale (default: smallest finite score).
        vmax: upper end of the colour scale (default: largest finite score).
        title: axes title; default the estimator's name.
        mark_diagonal: outline the cells whose source is the target.
        order: task ids giving the order of rows and of columns; ids of an axis that are not listed
            keep their order after the listed ones.
        colorbar: add a colour bar labelled with the estimator and its direction.
        annot_fontsize: font size of the annotations; default shrinks with the matrix size.

    Returns:
        The figure holding the axes.

    Raises:
        ConfigError: the matrix is empty, or ``order`` names an id that is neither a source nor a target.
    """
    require_cells(matrix)
    rows = _ordered(matrix.sources, order, matrix)
    columns = _ordered(matrix.targets, order, matrix)
    scores = matrix.scores[np.ix_(rows, columns)]
    ax, figure = axes_and_figure(ax, figsize=_figsize(*scores.shape))
    mesh = draw_matrix(
        ax,
        scores,
        [matrix.sources[i] for i in rows],
        [matrix.targets[j] for j in columns],
        annotate=annotate,
        fmt=fmt,
        cmap=cmap if cmap is not None else default_cmap(matrix),
        vmin=vmin,
        vmax=vmax,
        mark_diagonal=mark_diagonal,
        annot_fontsize=annot_fontsize,
    )
    ax.set_title(matrix.estimator if title is None else title)
    if colorbar:
        figure.colorbar(mesh, ax=ax, label=direction_label(matrix))
    return figure


def default_cmap(matrix: TransferabilityMatrix) -> str:
    """``viridis`` when greater is better, ``viridis_r`` otherwise."""
    return "viridis" if matrix.greater_is_better else "viridis_r"


def direction_label(matrix: TransferabilityMatrix) -> str:
    """``"<estimator> (higher is better)"`` or ``"... (lower is better)"``."""
    return f"{matrix.estimator} ({'higher' if matrix.greater_is_better else 'lower'} is better)"


def draw_matrix(
    ax: Axes,
    scores: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    annotate: bool,
    fmt: str,
    cmap: str | Colormap,
    vmin: float | None,
    vmax: float | None,
    mark_diagonal: bool,
    annot_fontsize: float | None,
    label_rows_on_right: bool = False,
) -> QuadMesh:
    """Draw ``scores`` (already ordered) on ``ax`` with cell ``(i, j)`` at x in [j, j+1], y in [i, i+1].

    Row 0 is at the top. Returns the mesh, for a colour bar.
    """
    colormap = (colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(bad=MISSING_COLOUR)
    finite = scores[np.isfinite(scores)]
    low = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    high = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if high == low:  # a constant matrix still needs a scale
        low, high = low - 0.5, high + 0.5
    norm = Normalize(vmin=low, vmax=high)
    mesh = ax.pcolormesh(np.ma.masked_invalid(scores), cmap=colormap, norm=norm, edgecolors="white", linewidth=0.5)
    n_rows, n_columns = scores.shape
    ax.set_xlim(0, n_columns)
    ax.set_ylim(n_rows, 0)
    ax.set_aspect("auto")
    ax.set_xticks(np.arange(n_columns) + 0.5, labels=list(column_labels), rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(np.arange(n_rows) + 0.5, labels=list(row_labels))
    ax.tick_params(length=0)
    if label_rows_on_right:
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("right")
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for side in ax.spines.values():
        side.set_visible(False)
    if annotate:
        fontsize = annot_fontsize if annot_fontsize is not None else max(4.0, min(9.0, 110.0 / max(n_rows, n_columns)))
        for i in range(n_rows):
            for j in range(n_columns):
                value = scores[i, j]
                if np.isfinite(value):
                    background = colormap(norm(value))
                    ax.text(j + 0.5, i + 0.5, format(value, fmt), ha="center", va="center", fontsize=fontsize,
                            color=_readable_on(background))
    if mark_diagonal:
        columns_by_id = {task: j for j, task in enumerate(column_labels)}
        for i, task in enumerate(row_labels):
            if task in columns_by_id:
                ax.add_patch(Rectangle((columns_by_id[task], i), 1, 1, fill=False, edgecolor="black",
                                       linewidth=1.5, zorder=3))
    return mesh


def _readable_on(background: tuple[float, float, float, float]) -> str:
    # Relative luminance (sRGB, as seaborn does) decides black or white text.
    channels = np.array(to_rgba(background)[:3])
    linear = np.where(channels <= 0.03928, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return "black" if float(linear @ [0.2126, 0.7152, 0.0722]) > 0.408 else "white"


def _ordered(ids: Sequence[str], order: Sequence[str] | None, matrix: TransferabilityMatrix) -> list[int]:
    """Positions of ``ids``: those listed in ``order`` first, in that order, then the rest as they were."""
    if order is None:
        return list(range(len(ids)))
    if isinstance(order, str):
        raise ConfigError(f"order must be a list of task ids, got the string '{order}'; pass e.g. ['{order}']")
    known = set(matrix.sources) | set(matrix.targets)
    for task in order:
        if task not in known:
            raise ConfigError(f"order names '{task}', which is neither a source nor a target of "
                              f"'{matrix.estimator}'{did_you_mean(str(task), known)}")
    rank = {task: position for position, task in enumerate(dict.fromkeys(order))}
    return sorted(range(len(ids)), key=lambda index: (rank.get(ids[index], len(rank)), index))


def _figsize(n_rows: int, n_columns: int) -> tuple[float, float]:
    return (min(20.0, 2.5 + 0.55 * n_columns), min(18.0, 1.8 + 0.45 * n_rows))
