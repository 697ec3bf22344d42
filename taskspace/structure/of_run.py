"""The structure of a finished run: task graph, communities, arborescence and group recovery.

:func:`run_structure` reads a run's matrices and ground truth (when measured) and returns, for one
estimator, the task graph with its communities and maximum spanning arborescence, and for every
estimator and every ground truth how well hierarchical clustering of the matrix recovers the space's
known task groups (adjusted Rand index per view). It writes nothing; :func:`write_structure` keeps
the graph files and ``structure.json`` in the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from taskspace.errors import TaskspaceError
from taskspace.io import write_json
from taskspace.structure.clustering import cluster_tasks, structure_summary
from taskspace.structure.graph import (
    GRAPH_FORMATS,
    communities,
    export_graph,
    maximum_spanning_arborescence,
    task_graph,
)

if TYPE_CHECKING:
    from taskspace.runner.record import AnyRun

__all__ = ["RunStructure", "run_structure", "write_structure", "FORMATS"]

#: The graph file formats written by default.
FORMATS = tuple(suffix.lstrip(".") for suffix in GRAPH_FORMATS)


@dataclass(frozen=True)
class RunStructure:
    """The structure of a run.

    Attributes:
        record: what ``structure.json`` holds (estimator, edges, communities, arborescence, recovery).
        graph: the task graph of the record's estimator.
    """

    record: dict[str, Any]
    graph: nx.DiGraph


def run_structure(
    run: AnyRun,
    *,
    estimator: str | None = None,
    top_k: int | None = 2,
    threshold: float | None = None,
    seed: int = 0,
) -> RunStructure:
    """Task graph, communities, arborescence and group recovery of a run (computed, not written).

    Works on every kind of run: the task graph and its communities on any matrix (a bipartite graph of
    modules and targets where the sources are not the targets), the affinity clustering only where the
    matrix is task by task (``leaf_order_error`` says why otherwise), group recovery only where the task
    space names class groups.

    Args:
        run: the run.
        estimator: the matrix the graph is built from (default: :meth:`Run.default_estimator`).
        top_k: keep the ``top_k`` best sources of every target in the graph (None: all).
        threshold: keep only edges at least this good.
        seed: seed of the community detection.
    """
    estimates, truths = run.estimates(), run.truths()
    if estimates or estimator is not None:
        name = run.default_estimator(estimator)
        matrix = estimates[name]
    else:  # a run imported with truth only: its graph is the measured one
        protocol = run.default_protocol()
        if protocol is None:
            raise TaskspaceError(f"'{run.folder}' holds neither estimator values nor a ground truth to draw")
        name, matrix = protocol, truths[protocol]
    space = getattr(run, "space", None)  # a task space's class groups; a zoo or imported run has none
    task_groups = space.task_groups() if space is not None and space.groups else None
    graph = task_graph(matrix, top_k=top_k, threshold=threshold, groups=task_groups)
    try:
        # on the full graph: pruning to the top k in-edges often disconnects it
        tree = maximum_spanning_arborescence(task_graph(matrix, groups=task_groups))
        arborescence = [[u, v, float(data["score"])] for u, v, data in sorted(tree.edges(data=True))]
    except TaskspaceError as error:
        arborescence = None
        arborescence_error: str | None = str(error)
    else:
        arborescence_error = None
    recovery: dict[str, dict[str, Any]] = {}
    for kind, matrices in (("estimator", estimates), ("ground truth", truths)):
        for key, candidate in matrices.items():
            entry: dict[str, Any] = {"kind": kind}
            if task_groups is not None:
                entry["adjusted_rand_index"] = structure_summary(candidate, task_groups)
            try:
                entry["leaf_order"] = list(cluster_tasks(candidate, view="affinity").ordered_ids)
            except TaskspaceError as error:  # the affinity view needs a task-by-task matrix
                entry["leaf_order"], entry["leaf_order_error"] = None, str(error)
            recovery[key] = entry
    record = {
        "estimator": name,
        "top_k": top_k,
        "threshold": threshold,
        "edges": graph.number_of_edges(),
        "communities": [sorted(members) for members in communities(graph, seed=seed)],
        "arborescence": arborescence,
        "arborescence_error": arborescence_error,
        "task_groups": task_groups,
        "recovery": recovery,
    }
    return RunStructure(record, graph)


def write_structure(
    run: AnyRun, structure: RunStructure, *, formats: tuple[str, ...] = FORMATS
) -> Path:
    """Write the graph (one file per format) and ``structure.json`` into the run; returns their folder."""
    stem = run.path("structure_graph")
    paths = [stem.with_name(f"{stem.name}.{suffix}") for suffix in formats]
    for path in paths:
        export_graph(structure.graph, path)
    write_json(run.path("structure_record"), {**structure.record, "graph_files": [path.name for path in paths]})
    return stem.parent
