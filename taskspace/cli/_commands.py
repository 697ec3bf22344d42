"""What each command does: parse nothing (the parsers did), call the library, print, write through the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taskspace.cli._arguments import run_folder, train_options
from taskspace.cli._filling import check_protocols, execution, open_for_filling, refuse_import_without_run
from taskspace.cli._output import print_import, print_verdict, save_recommendation, shown_path
from taskspace.cli._parsers import PLOT_KINDS
from taskspace.errors import TaskspaceError, did_you_mean

__all__ = ["COMMANDS"]


def _run_tasks(arguments: argparse.Namespace) -> int:
    from taskspace.tasks import TaskSpace

    space = TaskSpace.resolve(arguments.space, data_root=arguments.data_root)
    for task_id in space.ids:
        print(task_id)
    return 0


def _run_data(arguments: argparse.Namespace) -> int:
    from taskspace.data import (
        CIFAR10_OFFICIAL_MD5,
        download_cifar10,
        load_dataset,
        read_checksum_file,
        read_cifar10,
        resolve_data_root,
    )

    if arguments.dataset != "cifar10" and (arguments.download or arguments.checksums):
        raise TaskspaceError("--download and --checksums apply to --dataset cifar10 only")
    if arguments.download:
        download_cifar10(resolve_data_root(arguments.data_root))
    if arguments.dataset == "cifar10":
        checksums = None
        if arguments.checksums == "official":
            checksums = CIFAR10_OFFICIAL_MD5
        elif arguments.checksums:
            checksums = read_checksum_file(arguments.checksums)
        dataset = read_cifar10(arguments.data_root, checksums=checksums)
    else:
        dataset = load_dataset(arguments.dataset, data_root=arguments.data_root)
    height, width, channels = dataset.train.images.shape[1:]
    print(
        f"{dataset.name}: {len(dataset.train)} train / {len(dataset.test)} test images, "
        f"{height}x{width}x{channels}, {len(dataset.class_names)} classes: {', '.join(dataset.class_names)}"
    )
    return 0


def _run_train(arguments: argparse.Namespace) -> int:
    from taskspace.config import TrainConfig
    from taskspace.training import train_task
    from taskspace.training.run import METRICS_FILE

    config = TrainConfig.from_dict(train_options(arguments))
    metrics = train_task(
        config, out_dir=arguments.out, data_root=arguments.data_root, show_progress=not arguments.quiet
    )
    print(
        f"{metrics['task']} ({metrics['mode']}): test accuracy {metrics['test_accuracy']:.4f} "
        f"in {metrics['train_seconds']:.1f} s -> {shown_path(Path(arguments.out) / METRICS_FILE)}"
    )
    return 0



def _run_compose(arguments: argparse.Namespace) -> int:
    from taskspace.compose import ComposeRequest, compose

    train = {name: getattr(arguments, name) for name in ("epochs", "labels_per_class", "seed")
             if getattr(arguments, name) is not None}
    cut_points = tuple(_whole_number(value, "--cut-points") for value in arguments.cut_points or ())
    order = tuple(_whole_number(value, "--order") for value in arguments.order or ())
    request = ComposeRequest(arguments.operator, source=arguments.source, donor=arguments.donor, task=arguments.task,
                             keep=arguments.keep, module=arguments.module, cut_points=cut_points, order=order,
                             train=train)
    metrics = compose(request, out_dir=arguments.out, data_root=arguments.data_root,
                      show_progress=not arguments.quiet, overwrite=arguments.overwrite)
    made = metrics["composition"]
    origins = ", ".join(f"module {m['module']} " + ("trained here" if m.get("trained_here") else
                                                     f"from {shown_path(m['from'])}") for m in made["modules"])
    adapters = [f"before module {a['before_module']} (statistics differ by {a['mismatch']:.2f})"
                for a in made["adapters"] if a["adapter"]]
    print(f"{arguments.operator} -> {metrics['task']}: test accuracy {metrics['test_accuracy']:.4f}, trained in "
          f"{metrics['train_seconds']:.1f} s; {origins}; output module {made['output_module']}"
          + (f"; adapters {', '.join(adapters)}" if adapters else "")
          + f" -> {shown_path(Path(arguments.out) / 'model.pt')}")
    return 0


def _whole_number(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TaskspaceError(f"{flag} takes whole numbers, e.g. 1,2; got '{value}'") from None

def _run_demo(arguments: argparse.Namespace) -> int:
    from taskspace.demo import run_demo

    run_demo(out_dir=Path(arguments.out), epochs=arguments.epochs, show_progress=not arguments.quiet)
    return 0


def _run_matrix(arguments: argparse.Namespace) -> int:
    from taskspace.scoring import get_estimator, list_estimators

    if arguments.list_estimators:
        print("\n".join(list_estimators()))
        return 0
    names = arguments.estimators or list_estimators()
    for name in names:
        get_estimator(name)
    run = open_for_filling(arguments, "matrix")
    matrices = run.score(names, **execution(arguments, run))
    shape = (f"{len(run.modules)} modules ({len(run.zoo.sources)} sources) x {len(run.target_ids)} targets"
             if run.kind == "zoo" else f"{len(run.space.ids)}x{len(run.space.ids)} tasks")
    print(f"{len(matrices)} matrices of {shape} -> {shown_path(run.path('matrix'))}.{{csv,json,npz}}")
    return 0


def _run_truth(arguments: argparse.Namespace) -> int:
    if not arguments.protocols:
        raise TaskspaceError("no ground-truth protocol given; name one or more with --protocols, e.g. frozen_all")
    folder = run_folder(arguments, "truth")
    refuse_import_without_run(arguments, folder)
    check_protocols(arguments, folder)
    run = open_for_filling(arguments, "truth")
    if arguments.import_file is not None:
        print_import(run, run.import_truth(arguments.import_file))
        return 0
    rows = run.measure(arguments.protocols, targets=arguments.targets, **execution(arguments, run))
    print(f"{len(rows)} ground-truth accuracies -> {shown_path(run.path('truth'))}")
    return 0


def _run_import(arguments: argparse.Namespace) -> int:
    """``taskspace import RUN --truth F --scores F``: a run made from results measured elsewhere."""
    from taskspace.runner.imported import ImportedRun

    folder = run_folder(arguments, "import")
    if arguments.truth is None and arguments.scores is None:
        raise TaskspaceError("give --truth FILE, --scores FILE or both")
    run = ImportedRun.create(folder, truth=arguments.truth, scores=arguments.scores, percent=arguments.percent)
    truths, estimates = run.truths(), run.estimates()
    cells = sum(int((matrix.scores == matrix.scores).sum()) for matrix in truths.values())
    print(f"{len(run.modules)} sources x {len(run.target_ids)} targets: {cells} measured accuracies "
          f"({', '.join(truths) or 'no truth'}), {len(estimates)} estimators ({', '.join(estimates) or 'none'}) "
          f"-> {shown_path(run.folder)}")
    return 0


def _run_evaluate(arguments: argparse.Namespace) -> int:
    from taskspace.baselines import BASELINES, run_verdict
    from taskspace.runner.record import open_any_run

    run = open_any_run(run_folder(arguments, "evaluate"))
    if not run.truths():
        raise TaskspaceError(f"'{run.folder}' has no ground truth to evaluate against; measure it with `taskspace "
                             f"truth {run.folder}` or import it with `taskspace truth {run.folder} --import FILE`")
    # a trained run's own-task cells are no transfer: left out unless asked for
    rows = run_verdict(run, resamples=arguments.resamples,
                       exclude_diagonal=run.kind == "trained" and not arguments.include_diagonal)
    with run.writing():
        run.write_verdict(rows)
    print_verdict(rows, baselines=BASELINES)
    print(f"-> {shown_path(run.path('verdict'))}")
    return 0


def _run_recommend(arguments: argparse.Namespace) -> int:
    from taskspace.recommend import recommend
    from taskspace.runner.record import open_any_run

    run = open_any_run(run_folder(arguments, "recommend"), data_root=arguments.data_root)
    result = recommend(run, arguments.target, k=arguments.k, estimator=arguments.estimator,
                       protocol=arguments.protocol, measure=arguments.measure)
    return save_recommendation(run, result, every_source=arguments.all)


def _run_structure(arguments: argparse.Namespace) -> int:
    from taskspace.runner.record import open_any_run
    from taskspace.structure.of_run import run_structure, write_structure

    run = open_any_run(run_folder(arguments, "structure"), data_root=arguments.data_root)
    structure = run_structure(run, estimator=arguments.estimator, top_k=arguments.top_k,
                              threshold=arguments.threshold)
    with run.writing():
        written = write_structure(run, structure)
    record = structure.record
    print(f"task graph of {record['estimator']} (top {record['top_k']} sources per target, {record['edges']} edges) "
          f"-> {shown_path(written)}")
    print("communities: " + " | ".join(", ".join(members) for members in record["communities"]))
    if record["arborescence"] is not None:
        print("maximum spanning arborescence: " + ", ".join(f"{u}->{v}" for u, v, _ in record["arborescence"]))
    if not record["task_groups"]:
        print("the space names no class groups ([groups] in its TOML file), so group recovery is not measured")
        return 0
    print("known task groups recovered (adjusted Rand index; 1 = exactly, 0 = chance):")
    print(f"{'matrix':<22} {'kind':<13} {'sources':>8} {'targets':>8} {'affinity':>9}")
    for name, entry in record["recovery"].items():
        ari = entry["adjusted_rand_index"]
        print(f"{name:<22} {entry['kind']:<13} {ari['sources']:>8.3f} {ari['targets']:>8.3f} "
              f"{ari.get('affinity', float('nan')):>9.3f}")
    return 0


def _run_similarity(arguments: argparse.Namespace) -> int:
    from taskspace.runner import Run
    from taskspace.runner.record import open_any_run
    from taskspace.similarity import (
        module_similarity,
        similarity_vs_transfer,
        write_similarity,
    )
    from taskspace.structure import cluster_tasks, grouping_agreement

    run = open_any_run(run_folder(arguments, "similarity"), data_root=arguments.data_root)
    similarity = module_similarity(run, samples=arguments.samples, kernel=arguments.kernel,
                                   debiased=arguments.debiased, seed=arguments.seed,
                                   device=arguments.device or "cpu", batch_size=arguments.batch_size)
    with run.writing():
        folder = write_similarity(run, similarity)
    ids = similarity.sources
    print(f"{similarity.estimator} between the {len(ids)} modules of the run on {similarity.provenance['probe_size']} "
          f"probe images -> {shown_path(folder)}")
    if similarity.provenance.get("left_out"):
        print(f"left out (features sources hold no shared probe): {', '.join(similarity.provenance['left_out'])}")
    space = run.space if isinstance(run, Run) else None
    clustering = cluster_tasks(similarity, view="sources",
                               n_clusters=(len(space.group_names) or None) if space is not None else None)
    print("module clustering (leaf order): " + ", ".join(clustering.ordered_ids))
    if space is not None and space.groups and clustering.labels is not None:
        ari = grouping_agreement(clustering.labels_by_task, space.task_groups())
        print(f"module clusters vs known task groups: adjusted Rand index {ari:.3f}")
    if space is None:
        print("similarity vs transfer needs modules that are their targets' own networks (a trained run); "
              "this zoo's modules are not, so it is not measured")
    elif run.has_estimates():
        name = run.default_estimator()
        print("do modules that represent alike also transfer alike? (Spearman ρ, one-sided Mantel p)")
        for label, matrix in [(name, run.estimates()[name]), *run.truths().items()]:
            result = similarity_vs_transfer(similarity, matrix, permutations=10000, seed=arguments.seed)
            print(f"  vs {label:<20} ρ = {result['spearman']:.3f}   p = {result['p_value']:.4f}")
    return 0


def _plot_target(arguments: argparse.Namespace) -> tuple[str, str]:
    """(run folder, kind) from ``plot RUN KIND`` or the deprecated ``plot KIND --run RUN``."""
    if arguments.run_flag is not None:
        if arguments.kind is not None:
            raise TaskspaceError("give the run folder once: `taskspace plot RUN KIND`")
        folder, kind = arguments.run_flag, arguments.run
        print(f"taskspace: note: --run is deprecated; write `taskspace plot {folder} {kind} ...`",
              file=sys.stderr)
    else:
        folder, kind = arguments.run, arguments.kind
    if kind is None:
        raise TaskspaceError(f"name what to draw: `taskspace plot RUN KIND` with KIND one of {', '.join(PLOT_KINDS)}")
    if kind not in PLOT_KINDS:
        raise TaskspaceError(f"unknown plot kind '{kind}'{did_you_mean(kind, PLOT_KINDS)} "
                             f"(choose from: {', '.join(PLOT_KINDS)})")
    return folder, kind


def _run_plot(arguments: argparse.Namespace) -> int:
    from taskspace.plotting import (
        clustermap,
        estimate_vs_truth,
        heatmap,
        save_figure,
        task_graph_plot,
    )
    from taskspace.runner.record import open_any_run
    from taskspace.structure import task_graph

    folder, kind = _plot_target(arguments)
    run = open_any_run(folder, data_root=arguments.data_root)
    if kind == "depth-profile":
        return _depth_profile(arguments, run)
    estimate = run.estimates()[run.default_estimator(arguments.estimator)]
    truth = _truth_to_plot(run, arguments.protocol, kind) if kind in ("truth-heatmap", "estimate-vs-truth") else None
    if kind == "heatmap":
        figure = heatmap(estimate)
    elif kind == "truth-heatmap":
        assert truth is not None
        figure = heatmap(truth)
    elif kind == "clustermap":
        figure = clustermap(estimate)
    elif kind == "graph":
        space = getattr(run, "space", None)  # a trained run's task space; other kinds have no class groups
        groups = space.task_groups() if space is not None and space.groups else None
        figure = task_graph_plot(task_graph(estimate, top_k=2, groups=groups),
                                 title=f"task graph: top-2 sources per target by {estimate.estimator}")
    else:
        assert truth is not None
        figure = estimate_vs_truth(estimate, truth)
    paths = save_figure(figure, arguments.out, formats=tuple(arguments.formats))
    print(" ".join(str(path) for path in paths))
    return 0


def _depth_profile(arguments: argparse.Namespace, run: Any) -> int:
    """A depth profile: each network's score (and accuracy, where measured) at each of its layers. A trained
    run's networks are read at every module boundary first, in a zoo run kept inside it (``RUN/depth``)."""
    from taskspace.plotting import depth_profiles, save_figure

    truth = None
    if run.kind == "trained":
        from taskspace.zoo.depth import depth_run

        name = run.default_estimator(arguments.estimator)
        depths = depth_run(run, data_root=arguments.data_root)
        depths.score([name], show_progress=False)
        estimate = depths.estimates()[name]
        print(f"{len(depths.modules)} modules of {len(run.space.ids)} networks scored by {name} at every module "
              f"boundary -> {shown_path(depths.folder)}")
    else:
        estimate = run.estimates()[run.default_estimator(arguments.estimator)]
        protocol = run.default_protocol(arguments.protocol)
        truth = run.truths()[protocol] if protocol is not None else None
    figure = depth_profiles(estimate, truth, target=arguments.target)
    paths = save_figure(figure, arguments.out, formats=tuple(arguments.formats))
    print(" ".join(str(path) for path in paths))
    return 0


def _truth_to_plot(run: Any, protocol: str | None, kind: str) -> Any:
    truths = run.truths()
    if not truths:
        raise TaskspaceError(f"'{kind}' needs ground truth and '{run.folder}' has none; "
                             f"measure it with `taskspace truth {run.folder}` first")
    return truths[run.default_protocol(protocol)]


def _run_report(arguments: argparse.Namespace) -> int:
    from taskspace.report import write_report

    paths = write_report(run_folder(arguments, "report"), out_dir=arguments.out, estimator=arguments.estimator,
                         data_root=arguments.data_root)
    print(f"{paths.html}\n{paths.markdown}")
    return 0


COMMANDS = {"tasks": _run_tasks, "data": _run_data, "train": _run_train, "compose": _run_compose,
            "matrix": _run_matrix,
            "truth": _run_truth, "import": _run_import, "evaluate": _run_evaluate, "recommend": _run_recommend,
            "structure": _run_structure, "similarity": _run_similarity, "plot": _run_plot, "report": _run_report,
            "demo": _run_demo}
