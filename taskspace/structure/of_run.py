"""The structure of a finished run: task graph files, communities, arborescence and group recovery.

Reads a run's matrices (``matrix.json``) and ground truth (``truth.csv``, when measured), writes
``<run>/structure/graph.{graphml,gexf,json}`` for one estimator and ``<run>/structure/structure.json``
with, for every estimator and every ground truth, how well hierarchical clustering of the matrix
recovers the space's known task groups (adjusted Rand index per view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskspace.errors import TaskspaceError
from taskspace.io import write_json
from taskspace.runner import RunContext
from taskspace.runner.results import choose_estimator, run_matrices
from taskspace.structure.clustering import cluster_tasks, structure_summary
from taskspace.structure.graph import GRAPH_FORMATS, communities, export_graph, maximum_spanning_arborescence, task_graph

__all__ = ["run_structure"]

def run_structure(
    context: RunContext,
    *,
    estimator: str | None = None,
    top_k: int | None = 2,
    threshold: float | None = None,
    formats: tuple[str, ...] = tuple(suffix.lstrip(".") for suffix in GRAPH_FORMATS),
    seed: int = 0,
) -> dict[str, Any]:
    """Task graph, communities, arborescence and group recovery of a run; written under ``<run>/structure``.

    Args:
        context: the run.
        estimator: the matrix the graph is built from (default: :func:`choose_estimator`).
        top_k: keep the ``top_k`` best sources of every target in the graph (None: all).
        threshold: keep only edges at least this good.
        formats: graph file formats to write.
        seed: seed of the community detection.

    Returns:
        The contents of ``structure.json``.
    """
    folder = Path(context.run_dir)
    estimates, truths = run_matrices(folder)
    name = choose_estimator(estimates, folder, requested=estimator)
    space = context.space
    task_groups = space.task_groups() if space.groups else None
    matrix = estimates[name]
    graph = task_graph(matrix, top_k=top_k, threshold=threshold, groups=task_groups)
    for suffix in formats:
        export_graph(graph, folder / "structure" / f"graph.{suffix}")
    try:
        # on the full graph: pruning to the top k in-edges often disconnects it
        tree = maximum_spanning_arborescence(task_graph(matrix, groups=task_groups))
        arborescence = [[u, v, float(data["score"])] for u, v, data in sorted(tree.edges(data=True))]
    except TaskspaceError as error:
        arborescence = None
        arborescence_error = str(error)
    else:
        arborescence_error = None
    recovery: dict[str, dict[str, Any]] = {}
    for kind, matrices in (("estimator", estimates), ("ground truth", truths)):
        for key, candidate in matrices.items():
            entry: dict[str, Any] = {"kind": kind}
            if task_groups is not None:
                entry["adjusted_rand_index"] = structure_summary(candidate, task_groups)
            entry["leaf_order"] = list(cluster_tasks(candidate, view="affinity").ordered_ids)
            recovery[key] = entry
    record = {
        "estimator": name,
        "top_k": top_k,
        "threshold": threshold,
        "graph_files": [f"graph.{suffix}" for suffix in formats],
        "edges": graph.number_of_edges(),
        "communities": [sorted(members) for members in communities(graph, seed=seed)],
        "arborescence": arborescence,
        "arborescence_error": arborescence_error,
        "task_groups": task_groups,
        "recovery": recovery,
    }
    write_json(folder / "structure" / "structure.json", record)
    return record
