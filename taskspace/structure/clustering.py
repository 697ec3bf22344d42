"""Clusters of tasks in a transferability matrix, and how well they match known task groups.

Three views of one matrix give three task-by-task distances:

* ``sources``: each source's row, its profile over the targets. Sources that serve the same targets
  well (and the same badly) are close.
* ``targets``: each target's column, its profile over the sources. Targets that are served well by the
  same sources are close.
* ``affinity``: a square matrix read as a symmetric affinity (:func:`affinity`); distance is the
  largest affinity minus the affinity.

Scores for different targets are not on one scale: an estimator's value depends on the target's data
(its size, class balance, feature spread), and even accuracies differ in how hard each target is. Only
the order of sources *within* one target's column is meaningful, so every view first normalises each
target column on its own (ranks by default) and orients it so that larger means more transferable.
Ranks ignore the size of gaps, so sources that are nearly tied on a target still take whole rank steps
apart; on a noisy matrix with many near-equal sources ``zscore`` keeps those differences small.

Missing cells: the diagonal (a task as its own source is not a transfer) is always left out, as is any
NaN cell. A profile distance is the root-mean-square difference over the coordinates both profiles
have; a pair with no shared coordinate, or an affinity pair unscored both ways, gets the mean of the
known values, which favours neither joining nor splitting them.

Trees come from :func:`scipy.cluster.hierarchy.linkage` with ``optimal_ordering=True`` and flat
clusters from :func:`scipy.cluster.hierarchy.fcluster` (``maxclust``); agreement with known groups is
the adjusted Rand index (:func:`sklearn.metrics.adjusted_rand_score`): 1 for the same partition, about 0
for chance.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

from taskspace.errors import ConfigError, did_you_mean
from taskspace.matrix import TransferabilityMatrix

__all__ = [
    "VIEWS",
    "NORMALISATIONS",
    "LINKAGE_METHODS",
    "TaskClustering",
    "affinity",
    "cluster_tasks",
    "grouping_agreement",
    "structure_summary",
]

View = Literal["sources", "targets", "affinity"]
Normalisation = Literal["rank", "zscore"] | None

#: The ways :func:`cluster_tasks` can read a matrix.
VIEWS: tuple[str, ...] = ("sources", "targets", "affinity")
#: Per-target normalisations (``None``, no normalisation, is also accepted).
NORMALISATIONS: tuple[str, ...] = ("rank", "zscore")
#: Linkage methods that are valid for any dissimilarity (ward, centroid and median assume Euclidean).
LINKAGE_METHODS: tuple[str, ...] = ("average", "complete", "single", "weighted")


@dataclass(frozen=True, eq=False)
class TaskClustering:
    """A hierarchical clustering of tasks.

    Attributes:
        view: which view of the matrix was clustered (one of :data:`VIEWS`).
        ids: the clustered task ids, in matrix order.
        distances: float64 (n, n) symmetric distances between ``ids``, zero diagonal.
        linkage: the scipy linkage matrix, shape (n - 1, 4).
        ordered_ids: ``ids`` in the dendrogram's leaf order (optimal ordering).
        labels: flat cluster of each of ``ids`` (1..n_clusters; ties in the tree may give fewer
            clusters), or ``None`` when no ``n_clusters`` was asked for.
    """

    view: str
    ids: tuple[str, ...]
    distances: np.ndarray
    linkage: np.ndarray
    ordered_ids: tuple[str, ...]
    labels: tuple[int, ...] | None

    @property
    def labels_by_task(self) -> dict[str, int]:
        """``{task id: flat cluster}``; empty when there are no labels."""
        return dict(zip(self.ids, self.labels, strict=False)) if self.labels is not None else {}


def affinity(matrix: TransferabilityMatrix, *, normalise: Normalisation = "rank") -> np.ndarray:
    """A symmetric task-by-task affinity from a square matrix.

    Each target column is oriented (larger = more transferable) and normalised on its own, because
    scores of different targets live on different scales (see the module docstring); then
    ``(A + A.T) / 2`` makes it symmetric, using the one direction that is known where the other is NaN.

    Args:
        matrix: a matrix whose sources and targets are the same tasks (any order; columns are aligned to
            ``matrix.sources``).
        normalise: ``"rank"`` (ranks within the column scaled to [0, 1]: best source 1, worst 0; ties
            share their mean rank), ``"zscore"`` (zero mean, unit standard deviation within the column)
            or ``None`` (oriented raw scores).

    Returns:
        float64 (n, n) in the order of ``matrix.sources``; NaN on the diagonal and for pairs unscored in
        both directions.

    Raises:
        ConfigError: a non-square matrix, fewer than 2 tasks, or an unknown ``normalise``.
    """
    ids = _square_ids(matrix)
    columns = [matrix.targets.index(task) for task in ids]
    normalised = _normalised_columns(matrix.scores[:, columns], matrix, ids, ids, normalise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of two NaN is NaN, as documented
        symmetric = np.nanmean(np.stack([normalised, normalised.T]), axis=0)
    np.fill_diagonal(symmetric, np.nan)
    return np.asarray(symmetric)


def cluster_tasks(
    matrix: TransferabilityMatrix,
    *,
    view: View = "sources",
    n_clusters: int | None = None,
    method: str = "average",
    normalise: Normalisation = "rank",
) -> TaskClustering:
    """Cluster the tasks of one view of ``matrix`` hierarchically.

    Args:
        matrix: the scores.
        view: ``"sources"`` (rows as profiles over targets), ``"targets"`` (columns as profiles over
            sources) or ``"affinity"`` (the largest affinity minus :func:`affinity`; square matrix only).
        n_clusters: cut the tree into at most this many flat clusters; ``None`` for the tree only.
        method: a linkage method of :data:`LINKAGE_METHODS`.
        normalise: the per-target normalisation (see :func:`affinity`).

    Returns:
        A :class:`TaskClustering`.

    Raises:
        ConfigError: an unknown view, method or normalisation; fewer than 2 tasks; ``n_clusters``
            below 1 or above the number of tasks; the affinity view of a non-square matrix.
    """
    _check_choice("view", view, VIEWS)
    _check_choice("method", method, LINKAGE_METHODS)
    if view == "affinity":
        ids = _square_ids(matrix)
    else:
        ids = matrix.sources if view == "sources" else matrix.targets
        _check_task_count(ids, view)
    if n_clusters is not None and not 1 <= n_clusters <= len(ids):
        raise ConfigError(
            f"n_clusters must be between 1 and the {len(ids)} tasks of the {view} view, got {n_clusters}"
        )
    if view == "affinity":
        similarity = affinity(matrix, normalise=normalise)
        distances = np.nanmax(similarity) - similarity if np.isfinite(similarity).any() else similarity
    else:
        normalised = _normalised_columns(matrix.scores, matrix, matrix.sources, matrix.targets, normalise)
        distances = _profile_distances(normalised if view == "sources" else normalised.T)
    distances = _filled_distances(distances)
    linkage = hierarchy.linkage(squareform(distances, checks=False), method=method, optimal_ordering=True)
    ordered_ids = tuple(ids[leaf] for leaf in hierarchy.leaves_list(linkage))
    labels = None
    if n_clusters is not None:
        labels = tuple(int(label) for label in hierarchy.fcluster(linkage, t=n_clusters, criterion="maxclust"))
    return TaskClustering(view, tuple(ids), distances, linkage, ordered_ids, labels)


def grouping_agreement(
    labels_by_task: Mapping[str, Hashable], known_groups_by_task: Mapping[str, Hashable]
) -> float:
    """Adjusted Rand index between found clusters and known groups: 1 identical, ~0 chance, <0 worse.

    Args:
        labels_by_task: ``{task id: cluster}``, e.g. :attr:`TaskClustering.labels_by_task`.
        known_groups_by_task: ``{task id: group}``, e.g. :meth:`TaskSpace.task_groups`; tasks not in
            ``labels_by_task`` are ignored.

    Raises:
        ConfigError: fewer than 2 tasks, or a clustered task without a known group.
    """
    tasks = list(labels_by_task)
    if len(tasks) < 2:
        raise ConfigError(f"grouping agreement needs at least 2 tasks, got {len(tasks)}; cluster more tasks")
    missing = [task for task in tasks if task not in known_groups_by_task]
    if missing:
        raise ConfigError(
            f"task(s) {', '.join(missing)} have no known group{did_you_mean(missing[0], known_groups_by_task)}; "
            "give a group for every clustered task"
        )
    known = [str(known_groups_by_task[task]) for task in tasks]
    found = [str(labels_by_task[task]) for task in tasks]
    return float(adjusted_rand_score(known, found))


def structure_summary(
    matrix: TransferabilityMatrix,
    groups: Mapping[str, str],
    *,
    method: str = "average",
    normalise: Normalisation = "rank",
) -> dict[str, float]:
    """How well each view of ``matrix`` recovers known task groups.

    Each view is cut into as many clusters as there are known groups among its tasks and compared with
    them by :func:`grouping_agreement`. The affinity view is left out when the matrix is not square.

    Args:
        matrix: the scores.
        groups: ``{task id: group}`` for every task of the matrix, e.g. :meth:`TaskSpace.task_groups`.
        method: the linkage method.
        normalise: the per-target normalisation.

    Returns:
        ``{view: adjusted Rand index}`` for ``sources``, ``targets`` and (square matrices) ``affinity``.
    """
    views: list[View] = ["sources", "targets"]
    if set(matrix.sources) == set(matrix.targets):
        views.append("affinity")
    summary: dict[str, float] = {}
    for view in views:
        ids = matrix.targets if view == "targets" else matrix.sources
        missing = [task for task in ids if task not in groups]
        if missing:
            raise ConfigError(
                f"task(s) {', '.join(missing)} have no known group{did_you_mean(missing[0], groups)}; "
                "give a group for every task of the matrix"
            )
        n_groups = len({groups[task] for task in ids})
        clustering = cluster_tasks(matrix, view=view, n_clusters=n_groups, method=method, normalise=normalise)
        summary[view] = grouping_agreement(clustering.labels_by_task, groups)
    return summary


def _check_choice(name: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(
            f"unknown {name} {value!r}{did_you_mean(str(value), options)} (use {', '.join(options)})"
        )


def _check_task_count(ids: tuple[str, ...], what: str) -> None:
    if len(ids) < 2:
        raise ConfigError(f"clustering needs at least 2 tasks, the {what} view has {len(ids)}; score more tasks")


def _square_ids(matrix: TransferabilityMatrix) -> tuple[str, ...]:
    if set(matrix.sources) != set(matrix.targets):
        raise ConfigError(
            f"the affinity needs a square matrix with the same tasks as sources and targets, got "
            f"{len(matrix.sources)} sources and {len(matrix.targets)} targets; use view='sources' or 'targets'"
        )
    _check_task_count(matrix.sources, "affinity")
    return matrix.sources


def _normalised_columns(
    scores: np.ndarray,
    matrix: TransferabilityMatrix,
    row_ids: tuple[str, ...],
    column_ids: tuple[str, ...],
    normalise: Normalisation,
) -> np.ndarray:
    """Scores oriented (larger = better), diagonal cells set to NaN, each column normalised on its own."""
    if normalise is not None:
        _check_choice("normalise", normalise, NORMALISATIONS)
    oriented = np.array(scores, dtype=np.float64) * (1.0 if matrix.greater_is_better else -1.0)
    for row, task in enumerate(row_ids):
        if task in column_ids:
            oriented[row, column_ids.index(task)] = np.nan
    if normalise is None:
        return oriented
    result = np.full_like(oriented, np.nan)
    for column in range(oriented.shape[1]):
        known = np.isfinite(oriented[:, column])
        values = oriented[known, column]
        if len(values) == 0:
            continue
        if normalise == "rank":
            ranks = stats.rankdata(values, method="average")
            result[known, column] = (ranks - 1.0) / (len(values) - 1.0) if len(values) > 1 else 0.5
        else:
            spread = values.std()
            result[known, column] = (values - values.mean()) / spread if spread > 0 else 0.0
    return result


def _profile_distances(profiles: np.ndarray) -> np.ndarray:
    """Root-mean-square difference between rows over the columns both have; NaN where none is shared."""
    known = np.isfinite(profiles)
    filled = np.where(known, profiles, 0.0)
    both = known[:, None, :] & known[None, :, :]
    squared = np.where(both, (filled[:, None, :] - filled[None, :, :]) ** 2, 0.0).sum(axis=2)
    shared = both.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sqrt(squared / shared))  # 0/0 -> NaN: no shared column


def _filled_distances(distances: np.ndarray) -> np.ndarray:
    """Symmetric, zero diagonal, unknown off-diagonal distances set to the mean of the known ones."""
    result = np.array(distances, dtype=np.float64)
    off_diagonal = ~np.eye(len(result), dtype=bool)
    known = np.isfinite(result) & off_diagonal
    fill = float(result[known].mean()) if known.any() else 0.0
    result[~np.isfinite(result)] = fill
    result = (result + result.T) / 2.0
    np.fill_diagonal(result, 0.0)
    return np.maximum(result, 0.0)
