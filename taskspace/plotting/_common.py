"""Helpers shared by the plots: figures without pyplot, matrix checks, task colours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from taskspace.errors import ConfigError
from taskspace.matrix import TransferabilityMatrix


def axes_and_figure(
    ax: Axes | None,
    *,
    figsize: tuple[float, float],
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
) -> tuple[Axes, Figure]:
    """Return ``ax`` and its top-level figure, or a new ``Figure`` with one axes when ``ax`` is None.

    New figures are plain :class:`matplotlib.figure.Figure` objects: no pyplot, no backend chosen, no
    global figure registry, so they work headless and are garbage-collected like any object.
    """
    if ax is None:
        figure = Figure(figsize=figsize, layout=layout)
        return figure.add_subplot(), figure
    return ax, root_figure(ax)


def root_figure(ax: Axes) -> Figure:
    """The top-level figure of ``ax`` (for an axes in a SubFigure, the Figure that holds it)."""
    figure = ax.figure
    # A SubFigure's ``figure`` attribute is the root Figure.
    return figure if isinstance(figure, Figure) else figure.figure


def require_cells(matrix: TransferabilityMatrix, *, what: str = "matrix") -> None:
    """Raise :class:`ConfigError` if ``matrix`` has no source or no target."""
    if not isinstance(matrix, TransferabilityMatrix):
        raise ConfigError(f"{what} must be a TransferabilityMatrix, got {type(matrix).__name__}; load one with "
                          "taskspace.matrix.read_matrix_set")
    if matrix.scores.size == 0:
        raise ConfigError(
            f"{what} '{matrix.estimator}' is empty ({len(matrix.sources)} sources x {len(matrix.targets)} "
            "targets); pass a matrix with at least one source and one target"
        )


def task_colours(tasks: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """One distinct colour per task id, stable for a given order (tab10, tab20, then evenly spaced hues)."""
    count = len(tasks)
    if count <= 10:
        colours = [colormaps["tab10"](index) for index in range(count)]
    elif count <= 20:
        colours = [colormaps["tab20"](index) for index in range(count)]
    else:
        colours = [colormaps["hsv"](value) for value in np.linspace(0.0, 1.0, count, endpoint=False)]
    return dict(zip(tasks, colours, strict=False))
