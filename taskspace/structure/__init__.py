"""Structure in a task space: the task graph, its communities and hierarchical task clusters.

``task_graph`` turns a :class:`~taskspace.matrix.TransferabilityMatrix` into a weighted directed graph
(networkx); ``cluster_tasks`` clusters the tasks by what they transfer to or from; ``structure_summary``
measures how well those clusters recover known task groups (:meth:`TaskSpace.task_groups`).
"""

from taskspace.structure.clustering import (
    LINKAGE_METHODS,
    NORMALISATIONS,
    VIEWS,
    TaskClustering,
    affinity,
    cluster_tasks,
    grouping_agreement,
    structure_summary,
)
from taskspace.structure.graph import (
    GRAPH_FORMATS,
    communities,
    export_graph,
    maximum_spanning_arborescence,
    task_graph,
)

__all__ = [
    "GRAPH_FORMATS",
    "LINKAGE_METHODS",
    "NORMALISATIONS",
    "VIEWS",
    "TaskClustering",
    "affinity",
    "cluster_tasks",
    "communities",
    "export_graph",
    "grouping_agreement",
    "maximum_spanning_arborescence",
    "structure_summary",
    "task_graph",
]
