"""The sections of a run's report, built in memory from :class:`~taskspace.report._inputs.RunInputs`.

Each builder returns one :class:`Section` of text, tables and rendered figures; nothing here writes a
file of the report, and none reads more than the run holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import networkx as nx
from matplotlib.figure import Figure

from taskspace._version import __version__
from taskspace.errors import ConfigError, DataError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.plotting import (
    clustermap,
    estimate_vs_truth_grid,
    heatmap,
    task_graph_plot,
)
from taskspace.recommend import INTERVAL_LEVEL, Recommendation, recommend
from taskspace.report._document import (
    Block,
    BulletList,
    Cell,
    Code,
    FigureBlock,
    Inline,
    Paragraph,
    Section,
    Table,
)
from taskspace.report._figures import figure_name, render_figure
from taskspace.report._inputs import RunInputs
from taskspace.report._verdict import verdict_blocks
from taskspace.structure import (
    communities,
    maximum_spanning_arborescence,
    structure_summary,
    task_graph,
)

__all__ = ["build_sections", "report_title", "GRAPH_TOP_K", "RECOMMENDED_SOURCES", "SIGNIFICANCE_LEVEL"]

#: In-edges kept per target in the task graph (as ``taskspace structure``).
GRAPH_TOP_K = 2
#: Sources recommended per target.
RECOMMENDED_SOURCES = 3
#: Mantel p-value below which the report calls the similarity-transfer link shown.
SIGNIFICANCE_LEVEL = 0.05
#: Permutations of the Mantel test.
MANTEL_PERMUTATIONS = 10_000
#: Seed of community detection and of the Mantel permutations.
SEED = 0

_MISSING = "n/a"


def report_title(inputs: RunInputs) -> str:
    """``taskspace report: <space> on <dataset>, <n> tasks``."""
    space = inputs.run.grid.space
    label = PurePath(space).stem if space.endswith(".toml") else space
    return f"taskspace report: {label} on {inputs.run.space.dataset}, {len(inputs.run.space.ids)} tasks"


def build_sections(inputs: RunInputs, *, written_at: str) -> list[Section]:
    """The six sections of the report, in order."""
    return [
        provenance_section(inputs, written_at=written_at),
        matrix_section(inputs),
        structure_section(inputs),
        similarity_section(inputs),
        verdict_section(inputs),
        recommendation_section(inputs),
    ]


# Formatting -------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return _MISSING
    return f"{value:.{digits}f}"


def _score(value: float | None) -> str:
    """An estimator's score, whose scale depends on the estimator: 4 significant digits."""
    if value is None or not math.isfinite(value):
        return _MISSING
    return f"{value:.4g}"


def _with_interval(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    text = _number(value, digits)
    if text == _MISSING or low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def _no_truth_note(inputs: RunInputs, what: str) -> Paragraph:
    return Paragraph((f"No ground truth was measured for this run, so {what}; measure it with ",
                      Code(f"taskspace truth {inputs.run_dir}"), " and write the report again."), note=True)


def _figure(figure: Figure, name: str, caption: str) -> FigureBlock:
    return FigureBlock(render_figure(figure, name=name, caption=caption))


def describe_protocol(protocol: str) -> str:
    """A ground-truth protocol in words (its name when it is not one taskspace knows)."""
    from taskspace.transfer import get_protocol

    try:
        return get_protocol(protocol).description
    except ConfigError:
        return protocol


# 1. Provenance ----------------------------------------------------------------------------------------


def provenance_section(inputs: RunInputs, *, written_at: str) -> Section:
    run, record = inputs.run, inputs.record
    provenance = inputs.matrix.provenance
    space = run.space
    rows: list[tuple[str, Cell]] = [
        ("run folder", Code(str(inputs.run_dir.resolve()))),
        ("task space", Code(run.grid.space)),
        ("dataset", space.dataset),
        ("tasks", f"{len(space.ids)}: " + ", ".join(space.ids)),
    ]
    if inputs.task_groups is not None:
        rows.append(("task groups", _tasks_by_group(inputs.task_groups)))
    rows += [
        ("grid config", Code(json.dumps(run.grid.to_dict(), sort_keys=True))),
        ("grid hash", Code(str(record.get("grid_hash", run.grid.hash())))),
        ("estimators in the matrix", ", ".join(inputs.estimates)),
        ("ground truth", ", ".join(inputs.truths) if inputs.truths else "none measured"),
        ("taskspace version", f"{record.get('taskspace_version', _MISSING)} (run), {__version__} (report)"),
        ("torch version", str(provenance.get("torch_version", _MISSING))),
        ("numpy version", str(provenance.get("numpy_version", _MISSING))),
        ("checkpoints (sha256, first 12 digits)",
         _checkpoint_hashes(provenance.get("checkpoint_sha256", {}), space.ids)),
        ("written (UTC)", written_at),
    ]
    return Section("1. Run and provenance", "provenance", (Table(("field", "value"), tuple(rows)),))


def _tasks_by_group(task_groups: Mapping[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for task, group in task_groups.items():
        groups.setdefault(group, []).append(task)
    return "; ".join(f"{group}: {', '.join(tasks)}" for group, tasks in groups.items())


def _checkpoint_hashes(hashes: Mapping[str, str], ids: Sequence[str]) -> tuple[Inline, ...] | str:
    parts: list[Inline] = []
    for task in (task for task in ids if task in hashes):
        parts += [", " if parts else "", f"{task} ", Code(str(hashes[task])[:12])]
    return tuple(part for part in parts if part) or _MISSING


# 2. Matrices ------------------------------------------------------------------------------------------


def matrix_section(inputs: RunInputs) -> Section:
    matrix = inputs.matrix
    blocks: list[Block] = [
        Paragraph(("Predicted transferability of every source (row) to every target (column) by ",
                   Code(matrix.estimator), f", {inputs.estimator_reason}; "
                   f"{'higher' if matrix.greater_is_better else 'lower'} is better. Outlined cells are a task's own "
                   "module, not a transfer.")),
        _figure(heatmap(matrix, title=f"{matrix.estimator} (predicted)"), figure_name("matrix", matrix.estimator),
                f"Transferability matrix of {matrix.estimator}: rows are sources, columns targets."),
    ]
    if not inputs.truths:
        blocks.append(_no_truth_note(inputs, "there is no measured matrix to show"))
    for protocol, truth in inputs.truths.items():
        blocks.append(_figure(
            heatmap(truth, title=f"ground truth {protocol} (accuracy)"), figure_name("truth", protocol),
            f"Ground truth {protocol} ({describe_protocol(protocol)}): measured target accuracy of each source.",
        ))
    return Section("2. Transferability matrix and ground truth", "matrix", tuple(blocks))


# 3. Structure -----------------------------------------------------------------------------------------


def structure_section(inputs: RunInputs) -> Section:
    matrix = inputs.matrix
    blocks: list[Block] = [
        Paragraph(("Clustered heatmaps: sources and targets reordered by hierarchical clustering (average "
                   "linkage) of their profiles, so that tasks that transfer alike sit together.",)),
        _figure(clustermap(matrix), figure_name("clustermap", matrix.estimator),
                f"Clustered transferability matrix of {matrix.estimator}."),
    ]
    truth = inputs.main_truth
    if truth is None:
        blocks.append(_no_truth_note(inputs, "the measured matrix cannot be clustered"))
    else:
        blocks.append(_figure(clustermap(truth, title=f"ground truth {truth.estimator} (accuracy)"),
                              figure_name("clustermap", "truth", truth.estimator),
                              f"Clustered ground truth {truth.estimator}."))
    graph = task_graph(matrix, top_k=GRAPH_TOP_K, groups=inputs.task_groups)
    blocks += _graph_blocks(inputs, graph)
    blocks += _communities_blocks(graph)
    blocks += _arborescence_blocks(task_graph(matrix, groups=inputs.task_groups))
    blocks += _group_recovery_blocks(inputs)
    return Section("3. Structure of the task space", "structure", tuple(blocks))


def _graph_blocks(inputs: RunInputs, graph: nx.DiGraph) -> list[Block]:
    colour = ("node colour is the task's known group" if inputs.task_groups is not None
              else "the space defines no task groups, so all nodes share one colour")
    caption = (f"Task graph of {inputs.estimator}: an arrow source → target for each target's "
               f"{GRAPH_TOP_K} best sources; wider arrows transfer better; {colour}.")
    figure = task_graph_plot(graph, seed=SEED, title=f"task graph of {inputs.estimator} (top {GRAPH_TOP_K} in-edges)")
    return [_figure(figure, figure_name("task-graph", inputs.estimator), caption)]


def _communities_blocks(graph: nx.DiGraph) -> list[Block]:
    found = communities(graph, seed=SEED)
    items = tuple((f"community {number} ({len(members)} tasks): " + ", ".join(sorted(members)),)
                  for number, members in enumerate(found, start=1))
    return [Paragraph((f"Communities of the task graph (Louvain on the symmetrised graph, seed {SEED}):",)),
            BulletList(items)]


def _arborescence_blocks(graph: nx.DiGraph) -> list[Block]:
    intro = Paragraph(("Maximum spanning arborescence of the full (unpruned) task graph: every task but the root "
                       "gets one feeder, as the tree of largest total transferability.",))
    try:
        tree = maximum_spanning_arborescence(graph)
    except TaskspaceError as error:
        return [intro, Paragraph((str(error),), note=True)]
    root = next(node for node, degree in tree.in_degree() if degree == 0)
    rows = tuple((source, target, _score(float(data["score"])))
                 for source, target, data in sorted(tree.edges(data=True)))
    return [intro, Paragraph(("Root: ", Code(str(root)), ".")),
            Table(("source", "target", "score"), rows, numeric=(False, False, True))]


def _group_recovery_blocks(inputs: RunInputs) -> list[Block]:
    intro = Paragraph(("Recovery of the known task groups: each view of a matrix is clustered into as many clusters "
                       "as there are groups and compared with them by the adjusted Rand index (1 = the groups "
                       "exactly, about 0 = chance). Views: sources (rows), targets (columns), "
                       "affinity (symmetrised).",))
    if inputs.task_groups is None:
        return [intro, Paragraph(("The task space defines no class groups, so there is nothing to compare the "
                                  "clusters with; add a [groups] table to the space's TOML file.",), note=True)]
    rows = []
    for kind, matrices in (("estimator", inputs.estimates), ("ground truth", inputs.truths)):
        for name, candidate in matrices.items():
            summary = structure_summary(candidate, inputs.task_groups)
            rows.append((name, kind, *(_number(summary.get(view), 2) for view in ("sources", "targets", "affinity"))))
    blocks: list[Block] = [intro, Table(("matrix", "kind", "ARI sources", "ARI targets", "ARI affinity"),
                                        tuple(rows), numeric=(False, False, True, True, True))]
    if not inputs.truths:
        blocks.append(_no_truth_note(inputs, "only the estimators' matrices are compared with the groups"))
    return blocks


# 4. Module similarity ---------------------------------------------------------------------------------


def similarity_section(inputs: RunInputs) -> Section:
    from taskspace.similarity import similarity_vs_transfer, stored_similarity

    title = "4. Module similarity: do modules that represent alike transfer alike?"
    similarity = stored_similarity(inputs.run)
    if similarity is None:
        return Section(title, "similarity", (Paragraph((
            "The run holds no module similarity of its current modules; compute it with ",
            Code(f"taskspace similarity {inputs.run_dir}"), " and write the report again."), note=True),))
    probe = similarity.provenance.get("probe_size", "?")
    blocks: list[Block] = [
        Paragraph((f"Representation similarity of the modules: linear CKA between the features of every pair of "
                   f"trained modules on the same {probe} test images (1 = the same representation up to rotation "
                   "and scale). Below, it is compared with transferability: the Spearman correlation over task pairs "
                   "of the similarity and the symmetrised, per-target ranked transferability, with a one-sided "
                   f"Mantel permutation p-value ({MANTEL_PERMUTATIONS} permutations).",)),
        _figure(_module_axes(heatmap(similarity, vmin=0.0, vmax=1.0, title="module similarity (linear CKA)")),
                figure_name("similarity", similarity.estimator), "Linear CKA between every pair of modules."),
        _figure(_module_axes(clustermap(similarity, vmin=0.0, vmax=1.0,
                                        title="module similarity (linear CKA), clustered")),
                figure_name("similarity-clustermap", similarity.estimator), "Module similarity, clustered."),
    ]
    comparisons = {inputs.estimator: ("estimator", inputs.matrix)}
    comparisons.update({protocol: ("ground truth", truth) for protocol, truth in inputs.truths.items()})
    results: dict[str, dict[str, Any] | str] = {}
    for name, (_, transfer) in comparisons.items():
        try:
            results[name] = similarity_vs_transfer(similarity, transfer, permutations=MANTEL_PERMUTATIONS, seed=SEED)
        except DataError as error:
            results[name] = str(error)
    blocks.append(_similarity_table(comparisons, results))
    answered = list(inputs.truths) or [inputs.estimator]
    blocks.append(Paragraph(("Answer:",)))
    blocks.append(BulletList(tuple((_similarity_answer(name, results[name], measured=bool(inputs.truths)),)
                                   for name in answered)))
    if not inputs.truths:
        blocks.append(_no_truth_note(inputs, "similarity is compared with the predicted transferability only"))
    return Section(title, "similarity", tuple(blocks))


def _similarity_table(
    comparisons: Mapping[str, tuple[str, TransferabilityMatrix]], results: Mapping[str, dict[str, Any] | str]
) -> Table:
    """ρ, Mantel p and pairs per transferability matrix; a remark column only when one could not be compared."""
    rows = []
    for name, (kind, _) in comparisons.items():
        result = results[name]
        if isinstance(result, str):
            rows.append((name, kind, _MISSING, _MISSING, _MISSING, result))
        else:
            rows.append((name, kind, _number(result["spearman"]), _number(result["p_value"], 4),
                         str(result["pairs"]), ""))
    header = ("transferability", "kind", "Spearman ρ", "Mantel p", "task pairs", "remark")
    numeric = (False, False, True, True, True, False)
    if not any(row[-1] for row in rows):
        return Table(header[:-1], tuple(row[:-1] for row in rows), numeric=numeric[:-1])
    return Table(header, tuple(rows), numeric=numeric)


def _similarity_answer(reference: str, result: dict[str, Any] | str, *, measured: bool) -> str:
    label = f"Ground truth {reference}" if measured else f"Transferability predicted by {reference}"
    if isinstance(result, str):
        return f"{label}: unanswered, the similarity cannot be compared with it ({result})."
    rho, p_value = result["spearman"], result["p_value"]
    statistics = f"ρ = {_number(rho)}, Mantel p = {_number(p_value, 4)}, {result['pairs']} task pairs"
    if math.isfinite(rho) and math.isfinite(p_value) and rho > 0 and p_value < SIGNIFICANCE_LEVEL:
        return f"{label}: yes, modules that represent alike also transfer alike ({statistics})."
    return f"{label}: not shown, the link is not significant at the {SIGNIFICANCE_LEVEL} level ({statistics})."


def _module_axes(figure: Figure) -> Figure:
    """Relabel a similarity plot's axes: both are modules, not sources and targets."""
    matrix_axes = figure.axes[0]  # the heatmap's own axes; colour bar and dendrograms come after it
    matrix_axes.set_xlabel("module")
    matrix_axes.set_ylabel("module")
    return figure


# 5. Verdict -------------------------------------------------------------------------------------------


def verdict_section(inputs: RunInputs) -> Section:
    title, anchor = "5. Verdict: how well each estimator predicts the measured transfer", "verdict"
    if not inputs.truths:
        return Section(title, anchor, (_no_truth_note(inputs, "no estimator can be judged"),))
    stale = inputs.run.path("verdict").is_file()
    computed = (("the run's evaluation.csv is older than its results" if stale else "evaluation.csv was missing")
                + ", so the agreement was computed here with taskspace.baselines.run_verdict (2000 bootstrap "
                f"resamples of the targets, seed 0; `taskspace evaluate {inputs.run.folder}` writes it)")
    source = computed if inputs.evaluation_computed else "read from the run's evaluation.csv"
    blocks: list[Block] = [Paragraph((f"The verdict is {source}.",)),
                           *verdict_blocks(inputs.evaluation, estimator=inputs.estimator, square=True)]
    for protocol, truth in inputs.truths.items():
        grid = estimate_vs_truth_grid(inputs.estimates, truth, columns=min(4, len(inputs.estimates)))
        blocks.append(_figure(grid, figure_name("estimate-vs-truth", protocol),
                              f"Each estimator's score against the measured accuracy under {protocol}, one dot per "
                              "(source, target), both normalised per target."))
    return Section(title, anchor, tuple(blocks))


# 6. Recommendations -----------------------------------------------------------------------------------


def recommendation_section(inputs: RunInputs) -> Section:
    ids = inputs.run.space.ids
    k = min(RECOMMENDED_SOURCES, len(ids) - 1)
    title, anchor = "6. Recommended sources for every target", "recommendations"
    if k < 1:
        return Section(title, anchor, (Paragraph(("The zoo has a single task, so there is no source to recommend.",),
                                                 note=True),))
    recommendations = [recommend(inputs.run, target, k=k, estimator=inputs.requested) for target in ids]
    protocol = recommendations[0].protocol
    level = f"{round(100 * INTERVAL_LEVEL)}%"
    rankers = list(dict.fromkeys(recommendation.estimator for recommendation in recommendations))
    intro = (f"For every target of the zoo, the {k} sources ranked highest by ", Code(", ".join(rankers)),
             " (as `taskspace recommend` ranks them: the history ranker where the run has truth on three other "
             "targets or more; the target's own module left out). " + (
                 "The predicted accuracy maps an estimator's score (where the history ranker ranks, the preferred "
                 f"estimator's) to the measured {protocol} accuracy by a line fitted on the "
                 f"other targets' cells, with an interval covering {level} of that fit's residuals; the measured "
                 "accuracy of the recommended source stands next to the measured best and worst source."
                 if protocol is not None else ""))
    blocks: list[Block] = [Paragraph(intro)]
    rows = [row for recommendation in recommendations for row in _recommendation_rows(recommendation)]
    blocks.append(Table(("target", "rank", "source", "score", f"predicted accuracy [{level} interval]",
                         "measured accuracy", "measured best", "measured worst"), tuple(rows),
                        numeric=(False, True, False, True, True, True, False, False)))
    if protocol is None:
        blocks.append(_no_truth_note(inputs, "no accuracy can be predicted or compared"))
    return Section(title, anchor, tuple(blocks))


def _recommendation_rows(recommendation: Recommendation) -> list[tuple[str, ...]]:
    best, worst = recommendation.measured_best(), recommendation.measured_worst()
    rows: list[tuple[str, ...]] = []
    for row in recommendation.top:
        first = row.rank == 1
        rows.append((
            recommendation.target if first else "",
            str(row.rank),
            row.source,
            _score(row.score),
            _with_interval(row.predicted_accuracy, row.predicted_low, row.predicted_high),
            _number(row.measured_accuracy),
            f"{best.source} ({_number(best.measured_accuracy)})" if first and best is not None else "",
            f"{worst.source} ({_number(worst.measured_accuracy)})" if first and worst is not None else "",
        ))
    return rows
