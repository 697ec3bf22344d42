"""taskspace.plotting: every plot returns its Figure, draws into a given axes, handles NaN, and saves
valid PNG and SVG files atomically, without pyplot figures left behind."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from matplotlib.figure import Figure

from taskspace import plotting
from taskspace.errors import ConfigError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.plotting import (
    clustermap,
    estimate_vs_truth,
    estimate_vs_truth_grid,
    heatmap,
    label_efficiency_curve,
    matrix_linkage,
    save_figure,
    task_graph_plot,
)

IDS = ("a_vs_b", "c_vs_d", "e_vs_f", "g_vs_h", "i_vs_j")
LABEL_EFFICIENCY = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "label_efficiency.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _matrix(scores: np.ndarray, estimator: str = "logme", *, greater_is_better: bool = True,
            ids: tuple[str, ...] = IDS) -> TransferabilityMatrix:
    return TransferabilityMatrix(scores, ids, ids, estimator, greater_is_better)


@pytest.fixture
def truth() -> TransferabilityMatrix:
    return _matrix(np.random.default_rng(0).uniform(0.5, 0.9, (5, 5)), "frozen_trunk")


@pytest.fixture
def estimate(truth: TransferabilityMatrix) -> TransferabilityMatrix:
    scores = truth.scores + np.random.default_rng(1).normal(0, 0.05, (5, 5))
    scores[0, 1] = np.nan
    return _matrix(scores)


@pytest.fixture
def records() -> list[dict]:
    # The supervised-only records (the file also holds the semi-supervised ones, one curve each).
    records = json.loads(LABEL_EFFICIENCY.read_text(encoding="utf-8"))["records"]
    return [record for record in records if not record.get("unlabeled_images", False)]


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before == []


def _axes() -> tuple[Figure, object]:
    figure = Figure()
    return figure, figure.add_subplot()


def _labels(ticklabels) -> list[str]:
    return [label.get_text() for label in ticklabels]


def test_public_surface_is_explicit() -> None:
    assert sorted(plotting.__all__) == sorted(set(plotting.__all__))
    for name in plotting.__all__:
        assert hasattr(plotting, name)


# heatmap ------------------------------------------------------------------------------------------
def test_heatmap_draws_into_the_given_axes_with_labels_and_diagonal(estimate: TransferabilityMatrix) -> None:
    figure, ax = _axes()
    assert heatmap(estimate, ax=ax) is figure
    assert _labels(ax.get_xticklabels()) == list(IDS)
    assert _labels(ax.get_yticklabels()) == list(IDS)
    assert ax.get_title() == "logme"
    assert len(ax.patches) == 5  # one outline per diagonal cell
    texts = [text.get_text() for text in ax.texts]
    assert len(texts) == 24  # the NaN cell has no number
    assert format(estimate.scores[2, 3], ".2f") in texts
    assert len(figure.axes) == 2  # heatmap and colour bar


def test_heatmap_missing_cells_are_masked_and_ordered_by_id(estimate: TransferabilityMatrix) -> None:
    figure, ax = _axes()
    heatmap(estimate, ax=ax, order=["i_vs_j", "c_vs_d"], annotate=False, colorbar=False)
    order = ["i_vs_j", "c_vs_d", "a_vs_b", "e_vs_f", "g_vs_h"]
    assert _labels(ax.get_xticklabels()) == order
    assert _labels(ax.get_yticklabels()) == order
    assert len(ax.texts) == 0
    mesh = ax.collections[0]
    array = mesh.get_array()
    # row a_vs_b (position 2) x column c_vs_d (position 1) is the NaN cell
    assert np.ma.is_masked(array) and array.mask.reshape(5, 5)[2, 1]
    assert array.mask.sum() == 1
    # diagonal outlines follow ids, not positions
    corners = sorted((patch.get_x(), patch.get_y()) for patch in ax.patches)
    assert corners == [(float(i), float(i)) for i in range(5)]


def test_heatmap_makes_its_own_figure_and_handles_all_nan() -> None:
    figure = heatmap(_matrix(np.full((5, 5), np.nan)))
    assert isinstance(figure, Figure)


def test_heatmap_rejects_empty_matrix_and_unknown_order(estimate: TransferabilityMatrix) -> None:
    empty = TransferabilityMatrix(np.empty((0, 3)), (), ("x", "y", "z"), "logme")
    with pytest.raises(ConfigError, match="empty"):
        heatmap(empty)
    with pytest.raises(ConfigError, match="did you mean 'a_vs_b'"):
        heatmap(estimate, order=["a_vs_c"])


# clustermap ---------------------------------------------------------------------------------------
def _block_matrix() -> TransferabilityMatrix:
    # Tasks 0, 2, 4 form one block, 1, 3 another; interleaved so the clustering has to regroup them.
    block = np.array([0, 1, 0, 1, 0])
    scores = np.where(block[:, None] == block[None, :], 0.9, 0.1)
    scores = scores + np.random.default_rng(2).uniform(0, 0.02, scores.shape)
    return _matrix(scores)


def _is_grouped(labels: list[str], group: set[str]) -> bool:
    positions = sorted(labels.index(task) for task in group)
    return positions == list(range(positions[0], positions[0] + len(group)))


def test_clustermap_groups_a_block_matrix() -> None:
    figure, ax = _axes()
    assert clustermap(_block_matrix(), ax=ax) is figure
    rows, columns = _labels(ax.get_yticklabels()), _labels(ax.get_xticklabels())
    first_block = {"a_vs_b", "e_vs_f", "i_vs_j"}
    assert _is_grouped(rows, first_block) and _is_grouped(columns, first_block)
    assert sorted(rows) == sorted(IDS)
    # heatmap + left and top dendrograms + colour bar; each dendrogram is one line collection
    assert len(figure.axes) == 4
    dendrograms = [other for other in figure.axes if other is not ax and other.collections]
    assert sum(len(other.collections) for other in dendrograms) >= 2


def test_clustermap_accepts_precomputed_linkage_and_nan(estimate: TransferabilityMatrix) -> None:
    row_linkage, column_linkage = matrix_linkage(estimate)
    assert row_linkage.shape == (4, 4) and column_linkage.shape == (4, 4)
    figure = clustermap(estimate, linkage=(row_linkage, None), annotate=False)
    assert isinstance(figure, Figure)
    with pytest.raises(ConfigError, match="row linkage"):
        clustermap(estimate, linkage=(row_linkage[:2], None))


def test_clustermap_rejects_all_nan_matrix() -> None:
    with pytest.raises(ConfigError, match="no finite score"):
        clustermap(_matrix(np.full((5, 5), np.nan)))


# task graph ---------------------------------------------------------------------------------------
def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for index, task in enumerate(IDS):
        graph.add_node(task, group="animal" if index < 3 else "vehicle")
    for source, target, weight in [(0, 1, 0.9), (1, 0, 0.4), (2, 3, 0.7), (3, 4, 0.2), (4, 0, 0.5)]:
        graph.add_edge(IDS[source], IDS[target], weight=weight)
    return graph


def test_task_graph_plot_is_deterministic_and_coloured_by_group() -> None:
    figure, ax = _axes()
    assert task_graph_plot(_graph(), ax=ax, seed=3) is figure
    labels = {text.get_text() for text in ax.texts}
    assert labels == set(IDS)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["animal", "vehicle"]
    nodes = ax.collections[0]
    assert len(np.unique(nodes.get_facecolors(), axis=0)) == 2
    arrows = [patch for patch in ax.patches]
    assert len(arrows) == 5
    widths = sorted(arrow.get_linewidth() for arrow in arrows)
    assert widths[0] < widths[-1]
    _, again = _axes()
    task_graph_plot(_graph(), ax=again, seed=3)
    assert np.allclose(nodes.get_offsets(), again.collections[0].get_offsets())


def test_task_graph_plot_other_layouts_and_errors() -> None:
    assert isinstance(task_graph_plot(_graph(), layout="circular", node_groups={IDS[0]: "x"}), Figure)
    with pytest.raises(ConfigError, match="did you mean 'spring'"):
        task_graph_plot(_graph(), layout="sprng")
    with pytest.raises(ConfigError, match="no nodes"):
        task_graph_plot(nx.DiGraph())


# estimate vs truth --------------------------------------------------------------------------------
def test_estimate_vs_truth_one_collection_per_target(estimate, truth) -> None:
    figure, ax = _axes()
    assert estimate_vs_truth(estimate, truth, ax=ax) is figure
    assert len(ax.collections) == 5
    assert sum(len(collection.get_offsets()) for collection in ax.collections) == 19  # 20 off-diagonal - 1 NaN
    assert "mean τ" in ax.get_title()
    # z-scored per target
    first = ax.collections[0].get_offsets()
    assert abs(first[:, 0].mean()) < 1e-9 and abs(first[:, 1].mean()) < 1e-9


def test_estimate_vs_truth_raw_rank_and_lower_is_better(estimate, truth) -> None:
    _, ax = _axes()
    estimate_vs_truth(estimate, truth, ax=ax, normalise_per_target=False, exclude_diagonal=False, legend=False)
    assert sum(len(collection.get_offsets()) for collection in ax.collections) == 24
    flipped = _matrix(-estimate.scores, "hscore", greater_is_better=False)
    _, ranked = _axes()
    estimate_vs_truth(flipped, truth, ax=ranked, normalisation="rank")
    offsets = np.concatenate([collection.get_offsets() for collection in ranked.collections])
    assert offsets.min() >= 0 and offsets.max() <= 1
    assert ranked.get_title().startswith("hscore: mean τ = 0.")  # negated, so positive agreement


def test_estimate_vs_truth_errors(estimate, truth) -> None:
    other = TransferabilityMatrix(np.ones((2, 2)), ("x", "y"), ("x", "y"), "logme")
    with pytest.raises(ConfigError, match="share no"):
        estimate_vs_truth(other, truth)
    with pytest.raises(ConfigError, match="did you mean 'zscore'"):
        estimate_vs_truth(estimate, truth, normalisation="zscor")


def test_estimate_vs_truth_grid(estimate, truth) -> None:
    estimates = {"logme": estimate, "copy": estimate, "hscore": _matrix(-estimate.scores, "hscore",
                                                                        greater_is_better=False)}
    figure = estimate_vs_truth_grid(estimates, truth, columns=2)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 3
    assert [ax.get_title().split(":")[0] for ax in visible] == ["logme", "copy", "hscore"]
    assert len(figure.legends) == 1
    with pytest.raises(ConfigError, match="empty"):
        estimate_vs_truth_grid({}, truth)


# label efficiency ---------------------------------------------------------------------------------
def test_label_efficiency_curve_from_benchmark_records(records) -> None:
    figure, ax = _axes()
    assert label_efficiency_curve(records, ax=ax) is figure
    assert ax.get_xscale() == "log"
    assert _labels(ax.get_xticklabels()) == ["1", "10", "100"]
    mean_line = ax.lines[0]
    assert np.allclose(mean_line.get_xdata(), [1, 10, 100])
    all_line = [line for line in ax.lines if "all labels" in str(line.get_label())]
    assert len(all_line) == 1 and np.allclose(all_line[0].get_ydata(), 0.707)
    assert len(ax.collections) >= 3  # draws as dots per point (plus the error bars)


def test_label_efficiency_curve_computes_missing_mean_and_rejects_no_numbers() -> None:
    figure = label_efficiency_curve([{"labels_per_class": 5, "accuracies": [0.5, 0.7]}], all_labels_accuracy=0.8)
    ax = figure.axes[0]
    assert np.allclose(ax.lines[0].get_ydata(), [0.6])
    with pytest.raises(ConfigError, match="numeric labels_per_class"):
        label_efficiency_curve([{"labels_per_class": "all", "accuracies": [0.7]}])
    with pytest.raises(ConfigError, match="non-numeric accuracy"):
        label_efficiency_curve([{"labels_per_class": 1, "accuracies": ["x"]}])


# saving -------------------------------------------------------------------------------------------
def test_save_figure_writes_valid_png_and_svg(tmp_path: Path, estimate: TransferabilityMatrix) -> None:
    paths = save_figure(heatmap(estimate), tmp_path / "figures" / "heat.map", dpi=60)
    assert paths == [tmp_path / "figures" / "heat.map.png", tmp_path / "figures" / "heat.map.svg"]
    assert paths[0].read_bytes().startswith(PNG_MAGIC)
    root = ElementTree.fromstring(paths[1].read_bytes())
    assert root.tag.endswith("svg")
    assert sorted(path.name for path in paths[0].parent.iterdir()) == ["heat.map.png", "heat.map.svg"]  # no temp files


def test_the_same_figure_saves_to_the_same_bytes(tmp_path: Path, estimate: TransferabilityMatrix) -> None:
    # no date and a fixed id salt in the SVG: two saves of two drawings of one matrix are equal, byte for byte
    first = save_figure(heatmap(estimate), tmp_path / "first", formats=("svg", "png"), dpi=60)
    second = save_figure(heatmap(estimate), tmp_path / "second", formats=("svg", "png"), dpi=60)
    for one, other in zip(first, second, strict=True):
        assert one.read_bytes() == other.read_bytes(), one.suffix


def test_save_figure_rejects_unknown_format_before_writing(tmp_path: Path, estimate: TransferabilityMatrix) -> None:
    with pytest.raises(ConfigError, match="unknown figure format 'pgn'; did you mean 'png'"):
        save_figure(heatmap(estimate), tmp_path / "out" / "heat", formats=("svg", "pgn"))
    assert not (tmp_path / "out").exists()
    assert issubclass(ConfigError, TaskspaceError)


def test_every_plot_saves_as_svg(tmp_path: Path, estimate, truth, records) -> None:
    figures = {
        "clustermap": clustermap(estimate),
        "graph": task_graph_plot(_graph()),
        "scatter": estimate_vs_truth(estimate, truth),
        "curve": label_efficiency_curve(records),
    }
    for name, figure in figures.items():
        (path,) = save_figure(figure, tmp_path / name, formats=["svg"])
        ElementTree.fromstring(path.read_bytes())


def test_importing_plotting_does_not_import_pyplot() -> None:
    import subprocess
    import sys

    code = "import sys, taskspace.plotting; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
