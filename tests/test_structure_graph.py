"""The task graph: edges, pruning, direction, arborescence, communities and export."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest

from taskspace.errors import ConfigError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.structure import communities, export_graph, maximum_spanning_arborescence, task_graph

NAN = math.nan
# Best feeder per target alone would be the cycle a -> b -> c -> a (0.9, 0.8, 0.3); the best
# arborescence breaks it: a -> b -> c, total 1.7.
CYCLE_SCORES = np.array([[NAN, 0.9, 0.4], [0.2, NAN, 0.8], [0.3, 0.5, NAN]])
IDS = ("a", "b", "c")


def _matrix(scores, ids=IDS, *, greater_is_better=True, targets=None):
    return TransferabilityMatrix(
        np.asarray(scores, dtype=float), ids, targets or ids, "toy", greater_is_better=greater_is_better
    )


def _two_blocks() -> TransferabilityMatrix:
    ids = ("p1", "p2", "p3", "q1", "q2", "q3")
    block = np.array([0, 0, 0, 1, 1, 1])
    scores = np.where(block[:, None] == block[None, :], 0.9, 0.1) + 0.01 * np.arange(36).reshape(6, 6) / 36
    return _matrix(scores, ids)


def test_edges_carry_raw_score_and_weight_and_skip_nan_and_diagonal():
    scores = np.array([[0.7, 0.9, NAN], [0.2, 0.6, 0.8], [0.3, 0.5, 0.1]])
    graph = task_graph(_matrix(scores))
    assert list(graph.nodes) == ["a", "b", "c"]
    assert set(graph.edges) == {("a", "b"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")}
    assert graph.edges["a", "b"] == {"weight": 0.9, "score": 0.9}
    assert graph.graph == {"estimator": "toy", "greater_is_better": True}
    with_loops = task_graph(_matrix(scores), include_diagonal=True)
    assert set(nx.selfloop_edges(with_loops)) == {("a", "a"), ("b", "b"), ("c", "c")}


def test_lower_is_better_reverses_weights_and_threshold_direction():
    graph = task_graph(_matrix(1.0 - CYCLE_SCORES, greater_is_better=False))
    assert graph.edges["a", "b"]["score"] == pytest.approx(0.1)
    assert graph.edges["a", "b"]["weight"] == pytest.approx(-0.1)
    assert graph.edges["a", "b"]["weight"] > graph.edges["c", "b"]["weight"]  # 0.1 beats 0.5 when lower is better
    kept = task_graph(_matrix(1.0 - CYCLE_SCORES, greater_is_better=False), threshold=0.25)
    assert set(kept.edges) == {("a", "b"), ("b", "c")}
    assert set(task_graph(_matrix(CYCLE_SCORES), threshold=0.75).edges) == {("a", "b"), ("b", "c")}


def test_top_k_keeps_exactly_k_best_in_edges_per_target():
    rng = np.random.default_rng(0)
    ids = tuple(f"t{i}" for i in range(8))
    matrix = _matrix(rng.random((8, 8)), ids)
    graph = task_graph(matrix, top_k=3)
    for column, target in enumerate(ids):
        assert graph.in_degree(target) == 3
        ranked = sorted((matrix.scores[row, column], source) for row, source in enumerate(ids) if source != target)
        assert {source for _, source in ranked[-3:]} == set(graph.predecessors(target))
    assert all(degree == 2 for _, degree in task_graph(matrix, top_k=2, threshold=0.0).in_degree())
    with pytest.raises(ConfigError, match="top_k must be at least 1, got 0"):
        task_graph(matrix, top_k=0)


def test_rectangular_matrix_and_group_attributes():
    matrix = _matrix([[0.5, 0.6, 0.7]], ("s",), targets=("x", "y", "z"))
    graph = task_graph(matrix, groups={"s": "g1", "x": "g1", "y": "g2", "z": "g2", "extra": "g3"})
    assert list(graph.nodes(data="group")) == [("s", "g1"), ("x", "g1"), ("y", "g2"), ("z", "g2")]
    assert graph.in_degree("z") == 1 and graph.out_degree("s") == 3
    with pytest.raises(ConfigError, match="task 'z' has no group") as caught:
        task_graph(matrix, groups={"s": "g", "x": "g", "y": "g"})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("greater_is_better", [True, False])
def test_arborescence_breaks_the_cycle_of_best_feeders(greater_is_better):
    scores = CYCLE_SCORES if greater_is_better else 1.0 - CYCLE_SCORES
    graph = task_graph(_matrix(scores, greater_is_better=greater_is_better), include_diagonal=True,
                       groups={"a": "x", "b": "x", "c": "y"})
    tree = maximum_spanning_arborescence(graph)
    assert set(tree.edges) == {("a", "b"), ("b", "c")}
    assert tree.nodes["c"]["group"] == "y"
    assert tree.edges["a", "b"]["score"] == pytest.approx(scores[0, 1])


def test_arborescence_of_a_disconnected_graph_says_to_prune_less():
    graph = task_graph(_matrix(CYCLE_SCORES), threshold=0.95)
    with pytest.raises(TaskspaceError, match="no spanning arborescence; prune less"):
        maximum_spanning_arborescence(graph)


@pytest.mark.parametrize("greater_is_better", [True, False])
def test_communities_find_the_two_blocks_deterministically(greater_is_better):
    matrix = _two_blocks()
    if not greater_is_better:
        matrix = _matrix(-matrix.scores, matrix.sources, greater_is_better=False)
    graph = task_graph(matrix)
    found = communities(graph, seed=0)
    assert found == [frozenset({"p1", "p2", "p3"}), frozenset({"q1", "q2", "q3"})]
    assert communities(graph, seed=0) == found


def _assert_same_graph(read: nx.Graph, graph: nx.DiGraph) -> None:
    assert read.is_directed()
    assert set(read.nodes) == set(graph.nodes)
    assert set(read.edges) == set(graph.edges)
    for u, v, attributes in graph.edges(data=True):
        assert float(read.edges[u, v]["weight"]) == pytest.approx(attributes["weight"])
        assert float(read.edges[u, v]["score"]) == pytest.approx(attributes["score"])
    assert dict(read.nodes(data="group")) == dict(graph.nodes(data="group"))


@pytest.mark.parametrize(
    ("suffix", "reader"),
    [
        (".graphml", nx.read_graphml),
        (".gexf", nx.read_gexf),
        (".json", lambda path: nx.node_link_graph(json.loads(path.read_text()), edges="edges")),
    ],
)
def test_export_round_trips_through_networkx_readers(tmp_path, suffix, reader):
    graph = task_graph(_matrix(1.0 - CYCLE_SCORES, greater_is_better=False), groups={"a": "x", "b": "x", "c": "y"})
    path = tmp_path / "sub" / f"graph{suffix}"
    export_graph(graph, path)
    _assert_same_graph(reader(path), graph)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_export_to_an_unknown_suffix_names_the_formats(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown suffix '\.graphm'; did you mean '\.graphml'\?.*\.gexf") as caught:
        export_graph(task_graph(_matrix(CYCLE_SCORES)), tmp_path / "graph.graphm")
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())
