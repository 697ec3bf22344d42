"""Label-efficiency curve: accuracy against the number of labels per class."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from taskspace.errors import ConfigError
from taskspace.plotting._common import axes_and_figure

__all__ = ["label_efficiency_curve"]


def label_efficiency_curve(
    records: Sequence[Mapping[str, Any]],
    *,
    ax: Axes | None = None,
    all_labels_accuracy: float | None = None,
    show_draws: bool = True,
    label: str = "mean ± std over draws",
    colour: str | None = None,
    title: str | None = None,
) -> Figure:
    """Plot accuracy against labels per class (log scale), with the all-labels accuracy as a line.

    Each record is one entry of ``records`` in ``benchmarks/results/label_efficiency.json``:
    ``labels_per_class`` (a positive int, or ``"all"``) and ``accuracies`` (one per random draw of the
    labelled examples); ``mean`` and ``std`` are used when present, else computed (sample std).

    Args:
        records: the label-efficiency records.
        ax: axes to draw into; a new figure is made when None. Call again on the same axes with
            another ``label`` to compare curves.
        all_labels_accuracy: height of the dashed "all labels" line; default the mean accuracy of the
            ``"all"`` record, and no line when there is none.
        show_draws: also plot every draw's accuracy as a small dot.
        label: legend entry of the curve.
        colour: colour of the curve; default the axes' next colour.
        title: axes title.

    Returns:
        The figure holding the axes.

    Raises:
        ConfigError: a record is malformed, or no record has a numeric ``labels_per_class`` with
            finite accuracies.
    """
    points, all_records = _parse(records)
    if not points:
        raise ConfigError("records have no entry with a numeric labels_per_class and finite accuracies; pass the "
                          "'records' list of label_efficiency.json")
    if all_labels_accuracy is None and all_records:
        all_labels_accuracy = float(np.mean(all_records))
    ax, figure = axes_and_figure(ax, figsize=(5.5, 4.0))
    points.sort(key=lambda point: point[0])
    counts = np.array([point[0] for point in points], dtype=np.float64)
    means = np.array([point[2] for point in points])
    stds = np.array([point[3] for point in points])
    line = ax.errorbar(counts, means, yerr=stds, fmt="o-", capsize=3, color=colour, label=label, zorder=3)
    drawn_colour = line.lines[0].get_color()
    if show_draws:
        for count, accuracies, *_ in points:
            # Spread the draws a little sideways (in log space) so equal accuracies stay visible.
            offsets = np.linspace(-0.025, 0.025, len(accuracies)) if len(accuracies) > 1 else np.zeros(1)
            ax.scatter(count * 10.0 ** offsets, accuracies, s=10, color=drawn_colour, alpha=0.35,
                       edgecolors="none", zorder=2)
    if all_labels_accuracy is not None:
        ax.axhline(all_labels_accuracy, linestyle="--", color="0.4", linewidth=1.0,
                   label=f"all labels ({all_labels_accuracy:.3f})")
    ax.set_xscale("log")
    unique_counts = sorted(set(counts.tolist()))
    ax.set_xticks(unique_counts, labels=[f"{count:g}" for count in unique_counts])
    ax.minorticks_off()
    ax.set_xlabel("labels per class")
    ax.set_ylabel("accuracy")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize="small", loc="lower right")
    if title is not None:
        ax.set_title(title)
    return figure


def _parse(records: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, list[float], float, float]], list[float]]:
    """``(labels_per_class, accuracies, mean, std)`` per numeric record, and the accuracies of "all" records."""
    if isinstance(records, Mapping) or isinstance(records, (str, bytes)):
        raise ConfigError("records must be a list of record dicts; pass document['records'] of "
                          "label_efficiency.json, not the whole document")
    points, all_accuracies = [], []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "labels_per_class" not in record:
            raise ConfigError(f"record {index} has no 'labels_per_class'; each record needs labels_per_class and "
                              "accuracies")
        accuracies = _finite_numbers(record.get("accuracies", []), index)
        count = record["labels_per_class"]
        if count == "all":
            all_accuracies.extend(accuracies)
            continue
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not count > 0:
            raise ConfigError(f"record {index} has labels_per_class={count!r}; use a positive number or 'all'")
        if not accuracies:
            continue
        mean = _number_or(record.get("mean"), statistics.fmean(accuracies))
        std = _number_or(record.get("std"), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0)
        points.append((float(count), accuracies, mean, std))
    return points, all_accuracies


def _finite_numbers(values: Any, index: int) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"record {index} has accuracies={values!r}; give a list of numbers")
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"record {index} has a non-numeric accuracy {value!r}; give a list of numbers")
        if math.isfinite(value):
            numbers.append(float(value))
    return numbers


def _number_or(value: Any, default: float) -> float:
    """``value`` as a float when it is a finite number (not a bool), else ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default
