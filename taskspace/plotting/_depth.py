"""Depth profiles of a zoo run: each source's score, and measured accuracy, layer by layer."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from taskspace.errors import ConfigError, did_you_mean
from taskspace.matrix import TransferabilityMatrix

__all__ = ["depth_profiles"]


def _by_source(modules: tuple[str, ...]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for index, module in enumerate(modules):
        rows.setdefault(module.partition(":")[0], []).append(index)
    return rows


def _column(matrix: TransferabilityMatrix, target: str | None) -> np.ndarray:
    if target is None:
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(matrix.scores)
            counts = finite.sum(axis=1)
            totals = np.where(finite, matrix.scores, 0.0).sum(axis=1)
            return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    if target not in matrix.targets:
        shown = ", ".join(matrix.targets[:8]) + (f" (and {len(matrix.targets) - 8} more)" if len(matrix.targets) > 8
                                                   else "")
        raise ConfigError(f"unknown target '{target}'{did_you_mean(target, matrix.targets)}; pass one of the run's "
                          f"targets: {shown}")
    return matrix.column(target)


def depth_profiles(estimate: TransferabilityMatrix, truth: TransferabilityMatrix | None = None, *,
                   target: str | None = None) -> Figure:
    """One line per source: the estimator's score at each of its layers (left) and, where measured, the
    accuracy there (right); ``target`` None draws the mean over targets."""
    panels = 2 if truth is not None else 1
    figure = Figure(figsize=(5.2 * panels, 3.8), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    where = target if target is not None else "mean over targets"
    series = [(axes[0], estimate, f"{estimate.estimator} ({where})")]
    if truth is not None:
        series.append((axes[1], truth, f"measured {truth.estimator} accuracy ({where})"))
    for ax, matrix, title in series:
        values = _column(matrix, target)
        for source, rows in _by_source(matrix.sources).items():
            depth = np.arange(1, len(rows) + 1) / len(rows)
            ax.plot(depth, values[rows], marker="o", label=source)
        ax.set_xlabel("relative depth of the layer in its network")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    return figure
