"""Clustered heatmap: the matrix reordered by hierarchical clustering, with row and column dendrograms.

seaborn's ``clustermap`` makes its own figure and cannot draw into a given axes, so this one splits the
given axes with :func:`mpl_toolkits.axes_grid1.make_axes_locatable`: a dendrogram of the sources on the
left, one of the targets on top, a horizontal colour bar above that, and the reordered heatmap in the
axes itself (row labels on its right, clear of the dendrogram).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1 import make_axes_locatable
from scipy.cluster import hierarchy

from taskspace.errors import ConfigError
from taskspace.matrix import TransferabilityMatrix
from taskspace.plotting._common import axes_and_figure, require_cells
from taskspace.plotting._heatmap import default_cmap, direction_label, draw_matrix

__all__ = ["clustermap", "matrix_linkage"]

Linkages = tuple[np.ndarray | None, np.ndarray | None]


def matrix_linkage(
    matrix: TransferabilityMatrix, *, method: str = "average", metric: str = "euclidean"
) -> Linkages:
    """Hierarchical clusterings of the sources (by their rows) and of the targets (by their columns).

    Missing cells are filled with the mean of their column (the target's mean over the sources that
    were scored on it; the mean of the whole matrix if the column has no score), so a missing cell
    neither pulls a source towards nor away from the others on that target. Leaves are put in the
    optimal order (``optimal_ordering=True``) so neighbours in the order are similar.

    Args:
        matrix: the scores.
        method: linkage method of :func:`scipy.cluster.hierarchy.linkage`.
        metric: distance between profiles, as in :func:`scipy.spatial.distance.pdist`.

    Returns:
        ``(row_linkage, column_linkage)``, scipy linkage matrices of shape ``(n - 1, 4)``; an entry is
        None when that axis has fewer than two tasks.

    Raises:
        ConfigError: the matrix is empty or has no finite score.
    """
    require_cells(matrix)
    scores = matrix.scores
    if not np.isfinite(scores).any():
        raise ConfigError(f"matrix '{matrix.estimator}' has no finite score to cluster on; compute some cells first")
    finite = np.isfinite(scores)
    counts = finite.sum(axis=0)
    sums = np.where(finite, scores, 0.0).sum(axis=0)
    column_means = np.where(counts > 0, sums / np.maximum(counts, 1), scores[finite].mean())
    filled = np.where(finite, scores, column_means[np.newaxis, :])
    return (_linkage(filled, method, metric), _linkage(filled.T, method, metric))


def _linkage(profiles: np.ndarray, method: str, metric: str) -> np.ndarray | None:
    if len(profiles) < 2:
        return None
    try:
        return np.asarray(hierarchy.linkage(profiles, method=method, metric=metric, optimal_ordering=True))
    except ValueError as error:
        raise ConfigError(f"cannot cluster with method '{method}' and metric '{metric}' ({error}); "
                          "use e.g. method='average', metric='euclidean'") from None


def clustermap(
    matrix: TransferabilityMatrix,
    *,
    ax: Axes | None = None,
    linkage: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    method: str = "average",
    metric: str = "euclidean",
    annotate: bool = True,
    fmt: str = ".2f",
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    mark_diagonal: bool = True,
    colorbar: bool = True,
    dendrogram_size: float = 0.15,
    annot_fontsize: float | None = None,
) -> Figure:
    """Draw ``matrix`` reordered by clustering, with a source dendrogram (left) and a target one (top).

    Args:
        matrix: the scores to draw.
        ax: axes to split and draw into; a new figure is made when None. The heatmap stays in ``ax``;
            dendrograms and colour bar go into axes appended beside it.
        linkage: precomputed ``(row_linkage, column_linkage)`` (scipy linkage matrices over the sources
            and over the targets; either may be None to compute it). Default: :func:`matrix_linkage`.
        method: linkage method used for linkages that are computed.
        metric: profile distance used for linkages that are computed.
        annotate: write each cell's value in it.
        fmt: format spec of the annotations.
        cmap: colormap; default ``"viridis"``, reversed when lower scores are better.
        vmin: lower end of the colour scale.
        vmax: upper end of the colour scale.
        title: title above the plot; default the estimator's name.
        mark_diagonal: outline the cells whose source is the target.
        colorbar: add a horizontal colour bar above the column dendrogram.
        dendrogram_size: thickness of each dendrogram as a fraction of the heatmap's size.
        annot_fontsize: font size of the annotations; default shrinks with the matrix size.

    Returns:
        The figure holding the axes.

    Raises:
        ConfigError: the matrix is empty or all NaN, or a given linkage does not fit the matrix.
    """
    require_cells(matrix)
    row_linkage, column_linkage = _resolve_linkage(matrix, linkage, method=method, metric=metric)
    rows = _leaves(row_linkage, len(matrix.sources))
    columns = _leaves(column_linkage, len(matrix.targets))
    n_rows, n_columns = len(rows), len(columns)
    created = ax is None
    ax, figure = axes_and_figure(
        ax,
        figsize=(min(22.0, 3.5 + 0.55 * n_columns), min(20.0, 3.0 + 0.45 * n_rows)),
        layout=None,  # the divider places the axes; a layout engine would fight it
    )
    if created:
        figure.subplots_adjust(left=0.04, right=0.78, bottom=0.2, top=0.95)
    mesh = draw_matrix(
        ax,
        matrix.scores[np.ix_(rows, columns)],
        [matrix.sources[i] for i in rows],
        [matrix.targets[j] for j in columns],
        annotate=annotate,
        fmt=fmt,
        cmap=cmap if cmap is not None else default_cmap(matrix),
        vmin=vmin,
        vmax=vmax,
        mark_diagonal=mark_diagonal,
        annot_fontsize=annot_fontsize,
        label_rows_on_right=True,
    )
    size = f"{100.0 * dendrogram_size:g}%"
    divider = make_axes_locatable(ax)
    left = divider.append_axes("left", size=size, pad=0.05)
    top = divider.append_axes("top", size=size, pad=0.05)
    _draw_dendrogram(left, row_linkage, n_rows, side="left")
    _draw_dendrogram(top, column_linkage, n_columns, side="top")
    topmost = top
    if colorbar:
        colorbar_axes = divider.append_axes("top", size="4%", pad=0.4)
        figure.colorbar(mesh, cax=colorbar_axes, orientation="horizontal")
        colorbar_axes.tick_params(labelsize="small")
        topmost = colorbar_axes
    topmost.set_title(direction_label(matrix) if title is None else title)
    return figure


def _resolve_linkage(
    matrix: TransferabilityMatrix, linkage: Sequence[np.ndarray | None] | None, *, method: str, metric: str
) -> Linkages:
    if linkage is None:
        return matrix_linkage(matrix, method=method, metric=metric)
    if len(linkage) != 2:
        raise ConfigError(f"linkage must be a pair (row_linkage, column_linkage), got {len(linkage)} items; "
                          "pass e.g. matrix_linkage(matrix)")
    given = list(linkage)
    if given[0] is None or given[1] is None:
        computed = matrix_linkage(matrix, method=method, metric=metric)
        given = [computed[k] if given[k] is None else given[k] for k in range(2)]
    for name, value, count in (("row", given[0], len(matrix.sources)), ("column", given[1], len(matrix.targets))):
        if value is None:
            continue
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != 2 or array.shape != (count - 1, 4) or not hierarchy.is_valid_linkage(array):
            raise ConfigError(f"{name} linkage has shape {array.shape}, expected a scipy linkage of shape "
                              f"({count - 1}, 4) for {count} tasks; compute it with matrix_linkage(matrix)")
    return (None if given[0] is None else np.asarray(given[0], dtype=np.float64),
            None if given[1] is None else np.asarray(given[1], dtype=np.float64))


def _leaves(linkage: np.ndarray | None, count: int) -> list[int]:
    if linkage is None:
        return list(range(count))
    return [int(leaf) for leaf in hierarchy.dendrogram(linkage, no_plot=True, no_labels=True)["leaves"]]


def _draw_dendrogram(ax: Axes, linkage: np.ndarray | None, count: int, *, side: str) -> None:
    """Draw a dendrogram whose leaves line up with the heatmap cells (leaf k at 10k + 5, as scipy places it)."""
    ax.set_axis_off()
    if linkage is None:
        return
    # scipy computes the branch coordinates; drawing them as one LineCollection needs no pyplot.
    tree = hierarchy.dendrogram(linkage, no_plot=True, no_labels=True)
    height = max((max(heights) for heights in tree["dcoord"]), default=0.0) or 1.0
    if side == "top":
        segments = [np.column_stack([xs, ys]) for xs, ys in zip(tree["icoord"], tree["dcoord"], strict=False)]
        ax.set_xlim(0, 10 * count)
        ax.set_ylim(0, 1.05 * height)
    else:
        segments = [np.column_stack([ys, xs]) for xs, ys in zip(tree["icoord"], tree["dcoord"], strict=False)]
        ax.set_xlim(1.05 * height, 0)  # root on the left
        ax.set_ylim(10 * count, 0)  # first leaf at the top, like the heatmap's first row
    ax.add_collection(LineCollection(segments, colors="0.25", linewidths=0.9))
