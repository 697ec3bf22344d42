"""Figures of a task space: heatmaps, clustered heatmaps, task graphs, estimate-vs-truth scatters and
label-efficiency curves, and atomic saving.

Every plot takes ``ax=`` (draws into it) or makes its own :class:`matplotlib.figure.Figure`, and returns
the figure. Nothing here uses pyplot's global state or calls ``show()``: figures are plain objects, so
plotting works headless and never leaves windows or registered figures behind. Save with
:func:`save_figure`.
"""

from taskspace.plotting._agreement import (
    NORMALISATIONS,
    estimate_vs_truth,
    estimate_vs_truth_grid,
)
from taskspace.plotting._cluster import clustermap, matrix_linkage
from taskspace.plotting._curves import label_efficiency_curve
from taskspace.plotting._depth import depth_profiles
from taskspace.plotting._graph import GRAPH_LAYOUTS, task_graph_plot
from taskspace.plotting._heatmap import heatmap
from taskspace.plotting._save import save_figure

__all__ = [
    "heatmap",
    "clustermap",
    "matrix_linkage",
    "task_graph_plot",
    "GRAPH_LAYOUTS",
    "estimate_vs_truth",
    "estimate_vs_truth_grid",
    "NORMALISATIONS",
    "label_efficiency_curve",
    "depth_profiles",
    "save_figure",
]
