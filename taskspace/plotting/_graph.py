"""Drawing of a task graph: tasks as nodes, transfers as weighted (directed) edges."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from taskspace.errors import ConfigError, did_you_mean
from taskspace.plotting._common import axes_and_figure, task_colours

__all__ = ["task_graph_plot", "GRAPH_LAYOUTS"]

GRAPH_LAYOUTS = ("spring", "kamada_kawai", "circular", "shell")
_UNGROUPED_COLOUR = "#bdbdbd"


def task_graph_plot(
    graph: nx.Graph,
    *,
    ax: Axes | None = None,
    layout: str | Mapping[Hashable, tuple[float, float]] = "spring",
    seed: int = 0,
    node_groups: Mapping[Hashable, str] | None = None,
    weight: str = "weight",
    node_size: float = 700.0,
    font_size: float = 8.0,
    width_range: tuple[float, float] = (0.5, 4.0),
    title: str | None = None,
    legend: bool = True,
) -> Figure:
    """Draw a task graph with edge widths proportional to their weight and nodes coloured by group.

    Args:
        graph: a networkx graph (usually a ``DiGraph`` source -> target); edges carry ``weight``
            (missing means 1), nodes may carry a ``group`` attribute.
        ax: axes to draw into; a new figure is made when None.
        layout: one of :data:`GRAPH_LAYOUTS` or a mapping node -> (x, y) of precomputed positions.
            ``"spring"`` pulls heavily weighted pairs together (weights used only when all positive).
        seed: seed of the spring layout, so the same graph is drawn the same way every time.
        node_groups: node -> group name; overrides the nodes' ``group`` attribute. Nodes with no
            group are grey; with no group at all, every node has one colour and there is no legend.
        weight: the edge attribute holding the weight.
        node_size: marker area of the nodes, in points².
        font_size: font size of the node labels.
        width_range: line widths (points) of the lightest and the heaviest edge.
        title: axes title.
        legend: show a legend of the groups when there are groups.

    Returns:
        The figure holding the axes.

    Raises:
        ConfigError: the graph has no node, an edge weight is not a finite number, the layout is
            unknown or a position is missing.
    """
    if not isinstance(graph, nx.Graph):
        raise ConfigError(f"graph must be a networkx graph, got {type(graph).__name__}; build a networkx.DiGraph")
    if graph.number_of_nodes() == 0:
        raise ConfigError("graph has no nodes; build the task graph from a non-empty matrix")
    ax, figure = axes_and_figure(ax, figsize=(7.0, 6.0))
    weights = _edge_weights(graph, weight)
    positions = _positions(graph, layout, seed=seed, weight=weight if weights.size and (weights > 0).all() else None)
    groups = _groups(graph, node_groups)
    nodes = list(graph.nodes)
    group_colours = task_colours([group for group in dict.fromkeys(groups.values()) if group is not None])
    node_colours = [_node_colour(groups[node], group_colours) for node in nodes]
    nx.draw_networkx_nodes(graph, positions, nodelist=nodes, node_color=node_colours, node_size=node_size,
                           edgecolors="0.2", linewidths=0.8, ax=ax)
    if graph.number_of_edges():
        directed = graph.is_directed()
        nx.draw_networkx_edges(
            graph, positions, edgelist=list(graph.edges), width=_scaled(weights, width_range).tolist(),
            edge_color="0.35", alpha=0.75, ax=ax, node_size=node_size, arrows=directed,
            arrowstyle="-|>" if directed else "-", arrowsize=12,
            # Curved edges keep a -> b and b -> a apart.
            connectionstyle="arc3,rad=0.1" if directed else "arc3",
        )
    nx.draw_networkx_labels(graph, positions, font_size=font_size, ax=ax,
                            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none",
                                  "alpha": 0.75})
    if legend and group_colours:
        handles = [Line2D([], [], linestyle="", marker="o", markersize=8, markerfacecolor=colour,
                          markeredgecolor="0.2", label=str(group)) for group, colour in group_colours.items()]
        ax.legend(handles=handles, title="group", fontsize="small", loc="best", frameon=False)
    ax.margins(0.12)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return figure


def _edge_weights(graph: nx.Graph, weight: str) -> np.ndarray:
    values = []
    for source, target, data in graph.edges(data=True):
        value = data.get(weight, 1.0)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"edge ({source!r}, {target!r}) has {weight}={value!r}, which is not a finite number; "
                              "drop the edge or give it a weight")
        values.append(number)
    return np.array(values, dtype=np.float64)


def _scaled(weights: np.ndarray, width_range: tuple[float, float]) -> np.ndarray:
    thin, thick = width_range
    spread = weights.max() - weights.min() if weights.size else 0.0
    if spread == 0:
        return np.full(weights.shape, (thin + thick) / 2)
    return np.asarray(thin + (weights - weights.min()) / spread * (thick - thin))


def _node_colour(group: str | None, group_colours: Mapping[str, object]) -> object:
    """The node's group colour; a node in no group is grey, and every node is blue when no group is known."""
    if not group_colours:
        return "#9ecae1"
    return group_colours.get(group, _UNGROUPED_COLOUR) if group is not None else _UNGROUPED_COLOUR


def _positions(
    graph: nx.Graph, layout: str | Mapping[Hashable, tuple[float, float]], *, seed: int, weight: str | None
) -> dict[Hashable, np.ndarray]:
    if isinstance(layout, Mapping):
        missing = [node for node in graph.nodes if node not in layout]
        if missing:
            raise ConfigError(f"layout has no position for node(s) {missing[:5]}; give every node an (x, y)")
        return {node: np.asarray(layout[node], dtype=np.float64) for node in graph.nodes}
    placed: Mapping[Hashable, np.ndarray] | None
    if layout == "spring":
        placed = nx.spring_layout(graph, seed=seed, weight=weight)
    elif layout == "kamada_kawai":
        # Kamada-Kawai reads weights as distances, the opposite of a transfer strength: ignore them.
        placed = nx.kamada_kawai_layout(graph, weight=None)
    elif layout == "circular":
        placed = nx.circular_layout(graph)
    elif layout == "shell":
        placed = nx.shell_layout(graph)
    else:
        placed = None
    if placed is not None:
        return {node: np.asarray(placed[node], dtype=np.float64) for node in graph.nodes}
    raise ConfigError(f"unknown layout '{layout}'{did_you_mean(str(layout), GRAPH_LAYOUTS)}; "
                      f"choose one of {', '.join(GRAPH_LAYOUTS)} or pass positions")


def _groups(graph: nx.Graph, node_groups: Mapping[Hashable, str] | None) -> dict[Hashable, str | None]:
    groups = {node: data.get("group") for node, data in graph.nodes(data=True)}
    if node_groups is not None:
        groups.update({node: group for node, group in node_groups.items() if node in groups})
    return groups
