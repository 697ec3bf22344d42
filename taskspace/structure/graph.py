"""The task graph: which source serves which target, as a weighted directed graph (networkx).

An edge ``source -> target`` carries ``score`` (the matrix cell as the estimator wrote it) and
``weight``, oriented so that a larger weight always means a more transferable source: the score itself
when the estimator's ``greater_is_better``, its negation otherwise. Missing (NaN) cells give no edge, nor
does the diagonal (a task's own module is not a transfer) unless asked for.

On that graph: the maximum spanning arborescence (each task's single best feeder, as a tree), the
communities of the symmetrised graph (Louvain, seeded) and export to GraphML, GEXF or node-link JSON.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import networkx as nx
from networkx.algorithms.tree import branchings

from taskspace.errors import ConfigError, TaskspaceError, did_you_mean
from taskspace.io import write_bytes, write_text
from taskspace.matrix import TransferabilityMatrix

__all__ = [
    "GRAPH_FORMATS",
    "task_graph",
    "maximum_spanning_arborescence",
    "communities",
    "export_graph",
]

#: File suffixes :func:`export_graph` writes.
GRAPH_FORMATS: tuple[str, ...] = (".graphml", ".gexf", ".json")


def task_graph(
    matrix: TransferabilityMatrix,
    *,
    top_k: int | None = None,
    threshold: float | None = None,
    include_diagonal: bool = False,
    groups: Mapping[str, str] | None = None,
) -> nx.DiGraph:
    """The directed task graph of a transferability matrix.

    Nodes are the sources then the targets that are not sources, in matrix order. An edge
    ``source -> target`` exists for every finite cell that survives the pruning and has attributes
    ``score`` (raw) and ``weight`` (larger = more transferable, see the module docstring). The graph's own
    attributes are ``estimator`` and ``greater_is_better``.

    Args:
        matrix: the scores; ``scores[i, j]`` is how well ``sources[i]`` serves ``targets[j]``.
        top_k: keep only the ``top_k`` best sources of every target (ties go to the earlier source).
        threshold: keep only cells at least this good in the estimator's direction: ``score >= threshold``
            when greater is better, ``score <= threshold`` otherwise. Both prunings may be combined.
        include_diagonal: keep the self-loop ``task -> task`` where a task is both source and target.
        groups: ``{task id: group label}`` (e.g. :meth:`TaskSpace.task_groups`), stored as the node
            attribute ``group``; every node must have one.

    Returns:
        A :class:`networkx.DiGraph`.

    Raises:
        ConfigError: ``top_k`` below 1, or a node without a group when ``groups`` is given.
    """
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}; use e.g. top_k=3 or None for no limit")
    direction = 1.0 if matrix.greater_is_better else -1.0
    graph = nx.DiGraph(estimator=matrix.estimator, greater_is_better=matrix.greater_is_better)
    for node in dict.fromkeys(matrix.sources + matrix.targets):
        if groups is None:
            graph.add_node(node)
        elif node in groups:
            graph.add_node(node, group=str(groups[node]))
        else:
            raise ConfigError(
                f"task '{node}' has no group in the groups given{did_you_mean(node, groups)}; "
                "give a group for every source and target"
            )
    for column, target in enumerate(matrix.targets):
        candidates = []
        for row, source in enumerate(matrix.sources):
            score = float(matrix.scores[row, column])
            if math.isnan(score) or (source == target and not include_diagonal):
                continue
            if threshold is not None and direction * score < direction * threshold:
                continue
            candidates.append((direction * score, row, source, score))
        candidates.sort(key=lambda candidate: (-candidate[0], candidate[1]))  # best first, then matrix order
        kept = candidates if top_k is None else candidates[:top_k]
        for weight, _, source, score in sorted(kept, key=lambda candidate: candidate[1]):
            graph.add_edge(source, target, weight=weight, score=score)
    return graph


def maximum_spanning_arborescence(graph: nx.DiGraph) -> nx.DiGraph:
    """The spanning arborescence of largest total ``weight``: every task but the root gets its one feeder.

    Self-loops are ignored. Node and edge attributes are kept.

    Raises:
        TaskspaceError: no spanning arborescence exists (some task cannot be reached, e.g. after heavy
            pruning).
    """
    without_loops = nx.DiGraph(graph)
    without_loops.remove_edges_from(list(nx.selfloop_edges(without_loops)))
    try:
        tree = branchings.maximum_spanning_arborescence(without_loops, attr="weight", preserve_attrs=True)
    except nx.NetworkXException:
        raise TaskspaceError(
            f"the task graph of {graph.number_of_nodes()} tasks and {without_loops.number_of_edges()} edges has "
            "no spanning arborescence; prune less (a larger top_k or a looser threshold)"
        ) from None
    tree.graph.update(graph.graph)
    for node, attributes in graph.nodes(data=True):
        tree.nodes[node].update(attributes)
    return tree


def communities(graph: nx.DiGraph, *, seed: int = 0, resolution: float = 1.0) -> list[frozenset[str]]:
    """Louvain communities of the symmetrised task graph.

    The undirected weight of ``{u, v}`` is the mean of ``u -> v`` and ``v -> u``, a missing direction
    counting as 0 (the graph analogue of ``(A + A.T) / 2``). Modularity needs non-negative weights, so if
    any ``weight`` is negative (a lower-is-better estimator) all are first shifted up by the smallest;
    that keeps their order. Self-loops are left out.

    Args:
        graph: a task graph from :func:`task_graph`.
        seed: Louvain's random seed; equal seeds give equal communities.
        resolution: above 1 favours smaller communities, below 1 larger ones.

    Returns:
        The communities, largest first, ties by their sorted members.
    """
    weights = {(u, v): float(w) for u, v, w in graph.edges(data="weight", default=1.0) if u != v}
    shift = -min(min(weights.values(), default=0.0), 0.0)
    undirected = nx.Graph()
    undirected.add_nodes_from(graph.nodes)
    for (u, v), weight in weights.items():
        previous = undirected.edges[u, v]["weight"] if undirected.has_edge(u, v) else 0.0
        undirected.add_edge(u, v, weight=previous + (weight + shift) / 2.0)
    found = nx.community.louvain_communities(undirected, weight="weight", resolution=resolution, seed=seed)
    return sorted((frozenset(community) for community in found), key=lambda c: (-len(c), sorted(c)))


def export_graph(graph: nx.Graph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` atomically in the format its suffix names.

    ``.graphml`` (:func:`networkx.write_graphml`), ``.gexf`` (:func:`networkx.write_gexf`) or ``.json``
    (node-link JSON, :func:`networkx.node_link_data` with ``edges="edges"``; read it back with
    ``networkx.node_link_graph(data, edges="edges")``).

    Raises:
        ConfigError: another suffix.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".json":
        document = nx.node_link_data(graph, edges="edges")
        write_text(file, json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")
        return
    writers = {".graphml": nx.write_graphml, ".gexf": nx.write_gexf}
    if suffix not in writers:
        raise ConfigError(
            f"cannot export a graph to '{file}': unknown suffix '{file.suffix}'{did_you_mean(suffix, GRAPH_FORMATS)} "
            f"(use {', '.join(GRAPH_FORMATS)})"
        )
    buffer = io.BytesIO()
    writers[suffix](graph, buffer)
    write_bytes(file, buffer.getvalue())
