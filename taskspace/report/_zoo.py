"""The report of a zoo run (any model, any layer) or of a run imported from files: the zoo (or the
imported files), the verdict with its baselines and the history ranker, the depth profiles (where a
network has several layers), the module recommended for every target, for a zoo run the similarity of
its modules (CKA, where ``taskspace similarity`` computed it), and the structure ``taskspace structure``
finds (the clustered matrix, the graph of modules and targets, its communities; the task-by-task
analyses are said to be absent, since no module is a target's own network).

It reads only what the run holds; a part the run lacks (the ground truth, the verdict) is replaced by a
note naming the command that computes it, as in the task-space report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from taskspace.matrix import TransferabilityMatrix
from taskspace.report._document import Block, BulletList, Code, FigureBlock, Paragraph, Section, Table
from taskspace.report._figures import figure_name, render_figure
from taskspace.report._verdict import verdict_blocks
from taskspace.zoo.spec import split_module_id

__all__ = ["zoo_report_title", "zoo_sections"]

_MISSING = "n/a"


def zoo_report_title(run: Any) -> str:
    """``taskspace report: zoo of <n> modules (<m> networks) on <t> targets``."""
    if getattr(run, "kind", None) == "imported":
        return f"taskspace report: imported results of {len(run.modules)} sources on {len(run.target_ids)} targets"
    return (f"taskspace report: zoo of {len(run.modules)} modules ({len(run.zoo.sources)} networks) "
            f"on {len(run.target_ids)} targets")


def zoo_sections(run: Any, *, estimator: str | None, written_at: str) -> list[Section]:
    """The sections of a zoo run's report, in order.

    Raises:
        TaskspaceError: the run has no matrix, or no estimator ``estimator``.
    """
    estimates, truths, verdict = run.estimates(), run.truths(), run.verdict()
    name = run.default_estimator(estimator) if estimates or estimator is not None else None
    protocol = run.default_protocol()
    imported = getattr(run, "kind", None) == "imported"
    sections = [_imported_section(run, written_at=written_at) if imported else _zoo_section(run, written_at=written_at),
                _verdict_section(run, verdict, truths, name or "history")]
    if name is not None and any(split_module_id(module)[1] for module in run.modules):
        sections.append(_depth_section(estimates[name], truths.get(protocol) if protocol is not None else None))
    sections.append(_recommendation_section(run, estimator, protocol))
    if not imported:
        sections.append(_similarity_section(run))
    sections.append(_structure_section(run, estimator, number=6 if not imported else 5))
    return sections


def _imported_section(run: Any, *, written_at: str) -> Section:
    truths, estimates = run.truths(), run.estimates()
    rows = tuple((kind, name, str(int(np.isfinite(matrix.scores).sum())), str(matrix.scores.size))
                 for kind, matrices in (("ground truth", truths), ("estimator", estimates))
                 for name, matrix in matrices.items())
    facts = BulletList((
        ("Run folder: ", Code(str(run.folder)), f"; identity {run.identity}; written {written_at} UTC."),
        ("Imported from files (SHA-256): " + "; ".join(f"{role} {digest[:16]}" for role, digest in run.files.items())
         + ".",),
        (f"{len(run.modules)} sources: " + ", ".join(run.modules) + ".",),
        (f"{len(run.target_ids)} targets: " + ", ".join(run.target_ids) + ".",),
    ))
    return Section("1. The imported results: measured elsewhere, no networks here", "zoo", (
        facts,
        Table(("kind", "name", "cells given", "cells in all"), rows, numeric=(False, False, True, True)),
    ))


def _number(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _MISSING
    return f"{number:.{digits}f}" if math.isfinite(number) else _MISSING


def _no_truth(run: Any, what: str) -> Paragraph:
    return Paragraph((f"No ground truth was measured for this run, so {what}; measure it with ",
                      Code(f"taskspace truth {run.folder}"), " (or import it with ",
                      Code(f"taskspace truth {run.folder} --import FILE"), ") and write the report again."), note=True)


# 1. The zoo -------------------------------------------------------------------------------------------------


def _zoo_section(run: Any, *, written_at: str) -> Section:
    sizes = run.module_sizes()
    rows = []
    for source in run.zoo.sources:
        for module in source.modules:
            size = sizes.get(module, {})
            rows.append((source.name if module == source.modules[0] else "",
                         source.origin if module == source.modules[0] else "",
                         Code(split_module_id(module)[1]), str(size.get("width", _MISSING)),
                         f"{size['parameters'] / 1e6:.2f}M" if size.get("parameters") else _MISSING))
    facts = BulletList((
        ("Run folder: ", Code(str(run.folder)), f"; identity {run.identity}; written {written_at} UTC."),
        (f"{len(run.target_ids)} targets: " + ", ".join(run.target_ids) + ".",),
        (f"Estimators see {run.options.score_samples or 'all'} training images per target"
         f" (seed {run.options.seed}).",),
    ))
    return Section("1. The zoo: every (network, layer) is a module", "zoo", (
        facts,
        Table(("network", "origin", "layer", "features", "parameters up to it"), tuple(rows),
              numeric=(False, False, False, True, True)),
    ))


# 2. Verdict -------------------------------------------------------------------------------------------------


def _verdict_section(run: Any, verdict: list[dict[str, Any]], truths: dict[str, Any], estimator: str) -> Section:
    title, anchor = "2. Verdict: each estimator and the target-blind baselines against the truth", "verdict"
    if not truths:
        return Section(title, anchor, (_no_truth(run, "no estimator can be judged"),))
    if not verdict:
        return Section(title, anchor, (Paragraph(("The run has no verdict yet; write it with ",
                                                  Code(f"taskspace evaluate {run.folder}"),
                                                  " and write the report again."), note=True),))
    if not run.verdict_is_current():
        return Section(title, anchor, (Paragraph((
            "The run's verdict (evaluation.csv) was computed before its current scores or truth, so it is not shown; "
            "renew it with ", Code(f"taskspace evaluate {run.folder}"), " and write the report again."), note=True),))
    return Section(title, anchor, tuple(verdict_blocks(verdict, estimator=estimator, square=False)))


# 3. Depth profiles ------------------------------------------------------------------------------------------


def _depth_section(estimate: TransferabilityMatrix, truth: TransferabilityMatrix | None) -> Section:
    from taskspace.plotting import depth_profiles

    figure = depth_profiles(estimate, truth)
    caption = (f"{estimate.estimator} by relative depth of the layer, mean over targets"
               + (f", beside the measured {truth.estimator} accuracy." if truth is not None else "."))
    blocks: list[Block] = [
        Paragraph(("Which layer of each network to reuse: the layer with the highest mean score, and where the "
                   "truth was measured, the layer with the highest mean measured accuracy.",)),
        Table(("network", f"best layer by {estimate.estimator}", "best layer measured", "its mean accuracy"),
              tuple(_best_layers(estimate, truth)), numeric=(False, False, False, True)),
        FigureBlock(render_figure(figure, name=figure_name("depth-profile", estimate.estimator), caption=caption)),
    ]
    return Section("3. Depth profiles: reusability layer by layer", "depth", tuple(blocks))


def _best_layers(estimate: TransferabilityMatrix, truth: TransferabilityMatrix | None) -> list[tuple[Any, ...]]:
    rows = []
    networks = list(dict.fromkeys(split_module_id(module)[0] for module in estimate.sources))
    for network in networks:
        modules = [m for m in estimate.sources if split_module_id(m)[0] == network]
        scored = _mean_rows(estimate, modules)
        best_scored = modules[int(np.nanargmax(scored))] if np.isfinite(scored).any() else None
        measured_best, accuracy = None, math.nan
        if truth is not None:
            measured = _mean_rows(truth, [m for m in modules if m in truth.sources])
            if np.isfinite(measured).any():
                index = int(np.nanargmax(measured))
                measured_best, accuracy = [m for m in modules if m in truth.sources][index], float(measured[index])
        rows.append((network, Code(split_module_id(best_scored)[1]) if best_scored else _MISSING,
                     Code(split_module_id(measured_best)[1]) if measured_best else _MISSING, _number(accuracy, 4)))
    return rows


def _mean_rows(matrix: TransferabilityMatrix, modules: Sequence[str]) -> np.ndarray:
    """Each module's mean over the targets it has a finite value for (NaN where it has none)."""
    values = np.array([[matrix.score(m, t) for t in matrix.targets] for m in modules], dtype=np.float64)
    counts = np.isfinite(values).sum(axis=1)
    sums = np.where(np.isfinite(values), values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(modules), np.nan), where=counts > 0)


# 4. Recommendations -----------------------------------------------------------------------------------------


def _recommendation_section(run: Any, estimator: str | None, protocol: str | None) -> Section:
    from taskspace.recommend import recommend

    rows, rankers = [], []
    for target in run.target_ids:
        result = recommend(run, target, k=1, estimator=estimator)
        rankers.append(result.estimator)
        top = result.ranking[0]
        measured = [row for row in result.ranking if row.measured_accuracy is not None]
        best = max(measured, key=lambda row: float(row.measured_accuracy or 0.0)) if measured else None
        predicted = (f"{_number(top.predicted_accuracy)} [{_number(top.predicted_low)}, {_number(top.predicted_high)}]"
                     if math.isfinite(top.predicted_accuracy) else _MISSING)
        rows.append((target, Code(top.source), f"{top.score:.4g}", predicted, _number(top.measured_accuracy, 4),
                     (Code(best.source), f" {best.measured_accuracy:.4f}") if best is not None else _MISSING))
    blocks: list[Block] = [
        Paragraph(("For every target, the module ranked first by ", Code(", ".join(dict.fromkeys(rankers))),
                   " (the history ranker where the run has truth on enough other targets)",
                   ", its accuracy predicted from the score by a line fitted on the other targets' cells, and its "
                   "measured accuracy beside the measured best module's.",)),
        Table(("target", "recommended module", "score", "predicted accuracy [interval]", "measured",
               "measured best"), tuple(rows), numeric=(False, False, True, True, True, False)),
    ]
    if protocol is None:
        blocks.append(_no_truth(run, "no accuracy can be predicted or compared"))
    return Section("4. The module to reuse for every target", "recommendations", tuple(blocks))


# 5. Module similarity ---------------------------------------------------------------------------------------


def _similarity_section(run: Any) -> Section:
    from taskspace.plotting import clustermap
    from taskspace.similarity import stored_similarity

    title = "5. Module similarity: which modules represent alike"
    similarity = stored_similarity(run)
    if similarity is None:
        return Section(title, "similarity", (Paragraph((
            "The run holds no module similarity of its current modules; compute it with ",
            Code(f"taskspace similarity {run.folder}"), " and write the report again."), note=True),))
    left_out = similarity.provenance.get("left_out") or []
    blocks: list[Block] = [
        Paragraph((f"Linear CKA between the outputs of every pair of modules on the same "
                   f"{similarity.provenance.get('probe_size', '?')} test images of the targets' classes (1 = the "
                   "same representation up to rotation and scale), clustered. Whether modules that represent alike "
                   "also transfer alike is measured on a trained run only, where each module is a target's own "
                   "network.",)
                  + ((" Left out (features sources hold no shared probe): " + ", ".join(left_out) + ".",)
                     if left_out else ())),
        FigureBlock(render_figure(clustermap(similarity, vmin=0.0, vmax=1.0,
                                             title="module similarity (linear CKA), clustered"),
                                  name=figure_name("similarity-clustermap", similarity.estimator),
                                  caption="Module similarity, clustered.")),
    ]
    return Section(title, "similarity", tuple(blocks))


# 6. Structure -----------------------------------------------------------------------------------------------


def _structure_section(run: Any, estimator: str | None, *, number: int) -> Section:
    """What ``taskspace structure`` finds on the run, with the clustered matrix and the graph drawn."""
    from taskspace.plotting import clustermap, task_graph_plot
    from taskspace.structure.of_run import run_structure

    title = f"{number}. Structure: modules and targets that transfer alike"
    estimates, truths = run.estimates(), run.truths()
    if not estimates and not truths:
        return Section(title, "structure", (Paragraph(("The run holds no matrix to cluster.",), note=True),))
    structure = run_structure(run, estimator=estimator)
    record = structure.record
    name = record["estimator"]
    matrix = estimates[name] if name in estimates else truths[name]
    blocks: list[Block] = [
        Paragraph(("The matrix of ", Code(name), " with its modules (rows) and targets (columns) reordered by "
                   "hierarchical clustering (average linkage) of their profiles, and the graph of each target's "
                   f"{record['top_k']} best modules ({record['edges']} edges), as ", Code(f"taskspace structure "
                   f"{run.folder}"), " finds them.",)),
        FigureBlock(render_figure(clustermap(matrix), name=figure_name("clustermap", name),
                                  caption=f"Clustered matrix of {name}.")),
        FigureBlock(render_figure(task_graph_plot(structure.graph, title=f"top-{record['top_k']} modules per "
                                                  f"target by {name}"),
                                  name=figure_name("task-graph", name),
                                  caption=f"Graph of {name}: an arrow module → target for each target's "
                                          f"{record['top_k']} best modules; wider arrows score higher.")),
        Paragraph(("Communities of the graph (Louvain on the symmetrised graph, seed 0):",)),
        BulletList(tuple((f"community {index} ({len(members)} node{'s' if len(members) > 1 else ''}): "
                          + ", ".join(members),)
                         for index, members in enumerate(record["communities"], start=1))),
        Paragraph(("The task-by-task analyses (the maximum spanning arborescence, the affinity clustering, the "
                   "recovery of known task groups) need every source to be a target's own network, as in a "
                   "trained run; here the sources are modules of networks (or rows imported from files), not "
                   "the targets' own networks, so they are left out.",),
                  note=True),
    ]
    return Section(title, "structure", tuple(blocks))
