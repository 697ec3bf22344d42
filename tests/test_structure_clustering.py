"""Task clustering: per-target normalisation, affinity, the three views and agreement with known groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.cluster import hierarchy

from taskspace.errors import ConfigError
from taskspace.matrix import TransferabilityMatrix
from taskspace.structure import (
    VIEWS,
    TaskClustering,
    affinity,
    cluster_tasks,
    grouping_agreement,
    structure_summary,
)
from taskspace.tasks import TaskSpace

NAN = math.nan


def _matrix(scores, sources, targets=None, *, greater_is_better=True):
    return TransferabilityMatrix(
        np.asarray(scores, dtype=float), tuple(sources), tuple(targets or sources), "toy",
        greater_is_better=greater_is_better,
    )


def _default_space_block_matrix(*, greater_is_better: bool = True) -> tuple[TransferabilityMatrix, dict[str, str]]:
    """Scores of the 15 default tasks that follow their 6 groups.

    A source serves a target better the more class groups they share (+0.1 each) and best within the same
    task group (+0.3). Every task group has its own profile, so each view must recover the 6 groups.
    The diagonal is left out (NaN), as a run that skips a task's own module would.
    """
    space = TaskSpace.default()
    groups = space.task_groups()
    class_groups = {task.id: {space.class_group(name) for name in task.classes} for task in space.tasks}
    scores = np.array(
        [
            [0.5 + 0.1 * len(class_groups[s] & class_groups[t]) + 0.3 * (groups[s] == groups[t]) for t in space.ids]
            for s in space.ids
        ]
    )
    np.fill_diagonal(scores, NAN)
    if not greater_is_better:
        scores = 1.0 - scores
    return _matrix(scores, space.ids, greater_is_better=greater_is_better), groups


@pytest.mark.parametrize("normalise", ["rank", "zscore", None])
@pytest.mark.parametrize("greater_is_better", [True, False])
def test_block_matrix_recovers_the_6_default_groups_in_every_view(normalise, greater_is_better):
    matrix, groups = _default_space_block_matrix(greater_is_better=greater_is_better)
    assert structure_summary(matrix, groups, normalise=normalise) == {
        "sources": 1.0, "targets": 1.0, "affinity": 1.0
    }


def test_affinity_normalises_each_target_then_symmetrises():
    # Column ranks (diagonal left out): a: b > c; b: a > c; c: b > a, scaled to [0, 1].
    scores = [[NAN, 0.9, 0.1], [0.5, NAN, 0.7], [0.2, 0.3, NAN]]
    expected = np.array([[NAN, 1.0, 0.0], [1.0, NAN, 0.5], [0.0, 0.5, NAN]])
    np.testing.assert_allclose(affinity(_matrix(scores, "abc")), expected)
    # Scaling one target's column changes nothing after normalisation; the diagonal is ignored.
    rescaled = np.array([[5.0, 0.9, 100.0], [0.5, 7.0, 700.0], [0.2, 0.3, -1.0]])
    np.testing.assert_allclose(affinity(_matrix(rescaled, "abc")), expected)
    # Columns are aligned by id, whatever their order.
    reordered = _matrix(np.array(scores)[:, [2, 0, 1]], "abc", targets=("c", "a", "b"))
    np.testing.assert_allclose(affinity(reordered), expected)
    # Lower is better: the same order, reversed scores.
    lower = _matrix(-np.array(scores), "abc", greater_is_better=False)
    np.testing.assert_allclose(affinity(lower), expected)


def test_affinity_uses_the_known_direction_where_one_is_missing():
    scores = [[NAN, NAN, 0.1], [0.5, NAN, 0.7], [0.2, 0.3, NAN]]
    result = affinity(_matrix(scores, "abc"))
    assert result[0, 1] == result[1, 0] == 1.0  # only b -> a is known
    z = affinity(_matrix(scores, "abc"), normalise="zscore")
    np.testing.assert_allclose(z, z.T)
    assert np.isnan(np.diag(z)).all()


def test_clustering_fields_and_leaf_order():
    matrix, _ = _default_space_block_matrix()
    clustering = cluster_tasks(matrix, view="affinity", n_clusters=6)
    assert isinstance(clustering, TaskClustering)
    assert clustering.ids == matrix.sources
    assert sorted(clustering.ordered_ids) == sorted(matrix.sources)
    assert clustering.linkage.shape == (14, 4)
    assert [clustering.ids[leaf] for leaf in hierarchy.leaves_list(clustering.linkage)] == list(clustering.ordered_ids)
    np.testing.assert_allclose(clustering.distances, clustering.distances.T)
    assert np.all(np.diag(clustering.distances) == 0.0) and np.isfinite(clustering.distances).all()
    assert set(clustering.labels) == set(range(1, 7))
    assert clustering.labels_by_task["cat_vs_dog"] != clustering.labels_by_task["deer_vs_horse"]
    tree_only = cluster_tasks(matrix, view="sources")
    assert tree_only.labels is None and tree_only.labels_by_task == {}


def test_missing_cells_still_give_finite_distances():
    matrix, groups = _default_space_block_matrix()
    scores = matrix.scores.copy()
    scores[0, 3] = scores[5, 2] = scores[2, 9] = NAN
    patchy = _matrix(scores, matrix.sources)
    for view in VIEWS:
        clustering = cluster_tasks(patchy, view=view, n_clusters=6)
        assert np.isfinite(clustering.distances).all()
        assert grouping_agreement(clustering.labels_by_task, groups) == 1.0


def test_rectangular_matrix_clusters_rows_and_columns_but_has_no_affinity():
    scores = [[0.9, 0.8, 0.1, 0.2], [0.85, 0.75, 0.15, 0.1], [0.1, 0.2, 0.9, 0.8]]
    matrix = _matrix(scores, ("s1", "s2", "s3"), ("t1", "t2", "t3", "t4"))
    assert cluster_tasks(matrix, view="sources", n_clusters=2).labels_by_task == {"s1": 1, "s2": 1, "s3": 2}
    targets = cluster_tasks(matrix, view="targets", n_clusters=2).labels_by_task
    assert targets["t1"] == targets["t2"] != targets["t3"] == targets["t4"]
    assert set(structure_summary(matrix, {"s1": "x", "s2": "x", "s3": "y", "t1": "x", "t2": "x", "t3": "y",
                                          "t4": "y"})) == {"sources", "targets"}
    with pytest.raises(ConfigError, match="affinity needs a square matrix"):
        cluster_tasks(matrix, view="affinity")


def test_grouping_agreement_is_the_adjusted_rand_index():
    known = {"a": "x", "b": "x", "c": "y", "d": "y", "unused": "z"}
    assert grouping_agreement({"a": 2, "b": 2, "c": 1, "d": 1}, known) == 1.0
    assert grouping_agreement({"a": 1, "b": 2, "c": 1, "d": 2}, known) < 0.0
    with pytest.raises(ConfigError, match="task\\(s\\) e have no known group"):
        grouping_agreement({"a": 1, "e": 1}, known)
    with pytest.raises(ConfigError, match="at least 2 tasks"):
        grouping_agreement({"a": 1}, known)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: cluster_tasks(m, n_clusters=4), "n_clusters must be between 1 and the 3 tasks"),
        (lambda m: cluster_tasks(m, n_clusters=0), "n_clusters must be between 1"),
        (lambda m: cluster_tasks(m, view="source"), "unknown view 'source'; did you mean 'sources'"),
        (lambda m: cluster_tasks(m, method="ward"), "unknown method 'ward'"),
        (lambda m: affinity(m, normalise="ranks"), "unknown normalise 'ranks'; did you mean 'rank'"),
        (lambda m: cluster_tasks(_matrix([[0.5]], "a")), "at least 2 tasks"),
        (lambda m: affinity(_matrix([[0.5, 0.6]], "a", ("a", "b"))), "square matrix"),
    ],
)
def test_bad_arguments_give_one_clear_line(call, message):
    matrix = _matrix([[NAN, 0.9, 0.1], [0.5, NAN, 0.7], [0.2, 0.3, NAN]], "abc")
    with pytest.raises(ConfigError, match=message) as caught:
        call(matrix)
    assert "\n" not in str(caught.value)
