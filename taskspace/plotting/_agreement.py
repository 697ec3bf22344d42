"""Estimate against measured truth: one dot per (source, target) cell, coloured by target."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from taskspace.analysis import per_target_agreement
from taskspace.errors import ConfigError, did_you_mean
from taskspace.matrix import TransferabilityMatrix
from taskspace.plotting._common import axes_and_figure, require_cells, task_colours

__all__ = ["estimate_vs_truth", "estimate_vs_truth_grid", "NORMALISATIONS"]

NORMALISATIONS = ("zscore", "rank")
_DISPLAY_NAMES = {"zscore": "z-score", "rank": "rank"}


def estimate_vs_truth(
    estimate: TransferabilityMatrix,
    truth: TransferabilityMatrix,
    *,
    ax: Axes | None = None,
    exclude_diagonal: bool = True,
    normalise_per_target: bool = True,
    normalisation: str = "zscore",
    legend: bool = True,
    title: str | None = None,
    marker_size: float = 22.0,
) -> Figure:
    """Scatter the estimator's score against the measured accuracy, one dot per (source, target).

    Scores and accuracies live on different scales on every target, so by default each target's
    values are normalised on their own (``"zscore"``: mean 0, standard deviation 1; ``"rank"``: ranks
    scaled to [0, 1]); only the ordering within a target is what an estimator is judged on. When the
    estimator's lower scores are better its scores are negated, so up-and-right always means agreement.
    The title gives the mean over targets of Kendall's τ from
    :func:`taskspace.analysis.per_target_agreement`.

    Args:
        estimate: the estimator's matrix.
        truth: the measured accuracies (ground-truth matrix).
        ax: axes to draw into; a new figure is made when None.
        exclude_diagonal: leave out cells whose source is the target (not transfers).
        normalise_per_target: normalise each target's values on their own.
        normalisation: ``"zscore"`` or ``"rank"``, when normalising.
        legend: show a legend of the targets.
        title: axes title; default ``"<estimator>: mean τ = …"``.
        marker_size: dot area in points².

    Returns:
        The figure holding the axes.

    Raises:
        ConfigError: a matrix is empty, the normalisation is unknown, or the two matrices share no
            cell where both are finite.
    """
    ax, figure = axes_and_figure(ax, figsize=(6.0, 4.8))
    _draw(ax, estimate, truth, exclude_diagonal=exclude_diagonal, normalise_per_target=normalise_per_target,
          normalisation=normalisation, colours=task_colours(list(truth.targets)), title=title,
          marker_size=marker_size)
    if legend:
        ax.legend(title="target", fontsize="x-small", title_fontsize="small", loc="center left",
                  bbox_to_anchor=(1.02, 0.5), frameon=False, ncols=1 if len(ax.collections) <= 16 else 2)
    return figure


def estimate_vs_truth_grid(
    estimates: Mapping[str, TransferabilityMatrix],
    truth: TransferabilityMatrix,
    *,
    columns: int = 4,
    exclude_diagonal: bool = True,
    normalise_per_target: bool = True,
    normalisation: str = "zscore",
    panel_size: tuple[float, float] = (3.0, 2.7),
    legend: bool = True,
) -> Figure:
    """One :func:`estimate_vs_truth` panel per estimator in one figure, targets coloured alike in all.

    Args:
        estimates: estimator name -> its matrix; panels follow the mapping's order.
        truth: the measured accuracies.
        columns: panels per row.
        exclude_diagonal: leave out cells whose source is the target.
        normalise_per_target: normalise each target's values on their own.
        normalisation: ``"zscore"`` or ``"rank"``.
        panel_size: width and height of one panel, in inches.
        legend: one legend of the targets for the whole figure.

    Returns:
        The new figure.

    Raises:
        ConfigError: no estimates, ``columns`` < 1, or a panel's :func:`estimate_vs_truth` error.
    """
    if not estimates:
        raise ConfigError("estimates is empty; pass a mapping of estimator name to TransferabilityMatrix")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ConfigError(f"columns must be a positive integer, got {columns!r}; pass e.g. columns=4")
    require_cells(truth, what="truth")
    count = len(estimates)
    n_columns = min(columns, count)
    n_rows = math.ceil(count / n_columns)
    figure = Figure(figsize=(panel_size[0] * n_columns + (2.0 if legend else 0.0), panel_size[1] * n_rows),
                    layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    colours = task_colours(list(truth.targets))
    for panel, (name, estimate) in zip(axes.flat, estimates.items(), strict=False):
        _draw(panel, estimate, truth, exclude_diagonal=exclude_diagonal, normalise_per_target=normalise_per_target,
              normalisation=normalisation, colours=colours, title=None, marker_size=10.0, name=name)
        panel.title.set_fontsize("medium")
        panel.xaxis.label.set_fontsize("small")
        panel.yaxis.label.set_fontsize("small")
        panel.tick_params(labelsize="x-small")
    for panel in axes.flat[count:]:
        panel.set_visible(False)
    if legend:
        handles: dict[str, Artist] = {}
        for panel in axes.flat[:count]:
            for handle, label in zip(*panel.get_legend_handles_labels(), strict=False):
                handles.setdefault(label, handle)
        shown = [target for target in truth.targets if target in handles]
        figure.legend([handles[target] for target in shown], shown, title="target", loc="outside right center",
                      fontsize="x-small", title_fontsize="small", frameon=False)
    return figure


def _draw(
    ax: Axes,
    estimate: TransferabilityMatrix,
    truth: TransferabilityMatrix,
    *,
    exclude_diagonal: bool,
    normalise_per_target: bool,
    normalisation: str,
    colours: Mapping[str, tuple[float, float, float, float]],
    title: str | None,
    marker_size: float,
    name: str | None = None,
) -> None:
    require_cells(estimate, what="estimate")
    require_cells(truth, what="truth")
    if normalise_per_target and normalisation not in NORMALISATIONS:
        raise ConfigError(
            f"unknown normalisation '{normalisation}'{did_you_mean(str(normalisation), NORMALISATIONS)}; "
            f"choose one of {', '.join(NORMALISATIONS)}"
        )
    cells = _shared_cells(estimate, truth, exclude_diagonal=exclude_diagonal)
    if not cells:
        raise ConfigError(
            f"estimate '{estimate.estimator}' and truth '{truth.estimator}' share no (source, target) cell where "
            "both are finite" + (" off the diagonal" if exclude_diagonal else "") + "; compare matrices of the same run"
        )
    sign = 1.0 if estimate.greater_is_better else -1.0
    for target, (predicted, measured) in cells.items():
        predicted = sign * predicted
        if normalise_per_target:
            predicted, measured = _normalised(predicted, normalisation), _normalised(measured, normalisation)
        ax.scatter(predicted, measured, s=marker_size, color=colours.get(target, "0.5"), label=target,
                   edgecolors="none", alpha=0.85)
    suffix = f" ({_DISPLAY_NAMES[normalisation]} per target)" if normalise_per_target else ""
    negated = "" if estimate.greater_is_better else "−"
    ax.set_xlabel(f"{negated}{estimate.estimator} score{suffix}")
    ax.set_ylabel(f"{truth.estimator} accuracy{suffix}")
    tau = _mean_kendall_tau(estimate, truth, exclude_diagonal=exclude_diagonal)
    tau_text = "n/a" if math.isnan(tau) else f"{tau:.2f}"
    ax.set_title(title if title is not None else f"{name or estimate.estimator}: mean τ = {tau_text}")
    ax.grid(True, linewidth=0.4, alpha=0.5)


def _shared_cells(
    estimate: TransferabilityMatrix, truth: TransferabilityMatrix, *, exclude_diagonal: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per target (in the estimate's order): the finite (estimate, truth) pairs over shared sources."""
    sources = [source for source in estimate.sources if source in truth.sources]
    cells = {}
    for target in (target for target in estimate.targets if target in truth.targets):
        kept = [source for source in sources if not (exclude_diagonal and source == target)]
        predicted = np.array([estimate.score(source, target) for source in kept], dtype=np.float64)
        measured = np.array([truth.score(source, target) for source in kept], dtype=np.float64)
        valid = np.isfinite(predicted) & np.isfinite(measured)
        if valid.any():
            cells[target] = (predicted[valid], measured[valid])
    return cells


def _normalised(values: np.ndarray, normalisation: str) -> np.ndarray:
    if normalisation == "rank":
        if len(values) == 1:
            return np.full(1, 0.5)
        return np.asarray((stats.rankdata(values) - 1.0) / (len(values) - 1.0))
    spread = values.std()
    # A constant target has no ordering to show: its dots sit at 0.
    return np.zeros_like(values) if spread == 0 else (values - values.mean()) / spread


def _mean_kendall_tau(
    estimate: TransferabilityMatrix, truth: TransferabilityMatrix, *, exclude_diagonal: bool
) -> float:
    if sum(source in truth.sources for source in estimate.sources) < 2:
        return math.nan  # a single source has no ranking
    agreements = per_target_agreement(estimate, truth, exclude_diagonal=exclude_diagonal)
    taus = np.array([agreement.kendall_tau for agreement in agreements])
    return float(taus[np.isfinite(taus)].mean()) if np.isfinite(taus).any() else math.nan
