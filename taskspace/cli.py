"""Command line: ``taskspace <command> ...``. The only place that parses strings.

``main(argv)`` returns an exit code; errors a person can fix print one line and return 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskspace import __version__
from taskspace.errors import TaskspaceError

__all__ = ["main", "console_entry", "build_parser"]


def _comma_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 2,3, got '{text}'") from None


def _key_number(text: str) -> tuple[str, float]:
    name, equals, value = text.partition("=")
    try:
        if not equals or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER like temperature=0.05, got '{text}'") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskspace", description="Transfer-learning task-space analysis with modular networks."
    )
    parser.add_argument("--version", action="version", version=f"taskspace {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = commands.add_parser("tasks", help="print the task ids of a task space, one a line")
    tasks.add_argument("--space", default="default", help="default, digits or a TOML file (default: default)")
    tasks.add_argument("--data-root", help="data folder (for image-folder datasets)")

    data = commands.add_parser("data", help="check and prepare a dataset (CIFAR-10 by default)")
    data.add_argument("--dataset", default="cifar10", help="cifar10, digits or an image folder")
    data.add_argument("--data-root", help="folder holding cifar-10-batches-py (default: $TASKSPACE_DATA)")
    data.add_argument("--download", action="store_true", help="download CIFAR-10 with torchvision first")
    data.add_argument(
        "--checksums", help="verify CIFAR-10 files: 'official' or a file of '<md5|sha256>  <name>' lines"
    )

    train = commands.add_parser("train", help="train one network on one task")
    train.add_argument("--config", help="TOML file with any of the options below (flags win)")
    train.add_argument("--task", help="task id, e.g. cat_vs_dog, or 'all' for every class")
    train.add_argument("--out", required=True, help="output folder: config.json, model.pt, metrics.json")
    train.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    flags = {
        "dataset": dict(help="cifar10 (default), digits or an image folder"),
        "mode": dict(choices=["modular", "e2e", "finetune"], help="default: modular"),
        "labels_per_class": dict(type=int, help="labels per class for the output module (default: all)"),
        "epochs": dict(type=int, help="epochs per hidden module / end to end (default: 10)"),
        "seed": dict(type=int, help="root seed (default: 0)"),
        "architecture": dict(help="small_cnn (default), resnet18 or digits_cnn"),
        "width": dict(type=int, help="channels of the first stage"),
        "cut_points": dict(type=_comma_ints, help="stage boundaries between hidden modules, e.g. 2"),
        "batch_size": dict(type=int, help="mini-batch size (default: 128; 32 for the digits)"),
        "lr": dict(type=float, help="peak learning rate (default: 0.5)"),
        "weight_decay": dict(type=float, help="SGD weight decay (default: 5e-4)"),
        "objective": dict(help="hidden objective (default: upper_tri_alignment)"),
        "kernel": dict(help="hidden kernel (default: cosine_relu)"),
        "validation_fraction": dict(type=float, help="held-out share of training data (default: 0.1)"),
        "init_from": dict(help="checkpoint to fine-tune from (with --mode finetune)"),
        "device": dict(help="cpu (default), cuda or auto"),
    }
    for name, options in flags.items():
        train.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **options)
    train.add_argument("--objective-param", dest="objective_params", action="append", type=_key_number,
                       metavar="NAME=VALUE", help="a parameter of the objective, e.g. temperature=0.05 (repeatable)")
    train.add_argument("--output-unlabeled", dest="output_unlabeled", action="store_const", const=True,
                       default=None, help="with --labels-per-class: label the rest of the training images "
                       "by k-means from the few labels (semi-supervised output module)")
    train.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                       help="no random crop / flip")

    matrix = commands.add_parser("matrix", help="train the zoo if needed and score every source on every target")
    _grid_arguments(matrix)
    matrix.add_argument("--estimators", default=None,
                        help="comma-separated estimator names (default: all; see --list-estimators)")
    matrix.add_argument("--list-estimators", action="store_true", help="print the estimator names and exit")

    truth = commands.add_parser("truth", help="measure the ground truth: accuracy after transferring")
    _grid_arguments(truth)
    truth.add_argument("--protocols", default="frozen_k10,frozen_all",
                       help="comma-separated: frozen_kK, frozen_all, finetune (default: frozen_k10,frozen_all)")

    evaluate = commands.add_parser("evaluate", help="how well each estimator predicts each ground truth")
    evaluate.add_argument("run", help="a run folder with matrix.json and truth.csv")
    evaluate.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    evaluate.add_argument("--include-diagonal", action="store_true", help="keep source = target in the ranking")

    recommend = commands.add_parser("recommend", help="rank the zoo's sources for a target task, with reasons")
    recommend.add_argument("--target", required=True, help="a task id, in the zoo or new (e.g. airplane_vs_ship)")
    recommend.add_argument("--run", required=True, help="a run folder made by `taskspace matrix`")
    recommend.add_argument("--k", type=int, default=3, help="sources to recommend (default: 3)")
    recommend.add_argument("--estimator", help="score to rank by (default: alignment_whitened unless the run's verdict says it fails there)")
    recommend.add_argument("--protocol", help="ground truth the accuracy prediction maps to (default: frozen_all)")
    recommend.add_argument("--measure", action="store_true",
                           help="new target: also measure each source's frozen-trunk accuracy on it")
    recommend.add_argument("--all", action="store_true", help="print every source, not only the top k")
    recommend.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")

    structure = commands.add_parser("structure", help="task graph, communities and group recovery of a run")
    structure.add_argument("--run", required=True, help="a run folder made by `taskspace matrix`")
    structure.add_argument("--estimator", help="matrix the graph is built from (default: alignment_whitened)")
    structure.add_argument("--top-k", type=int, default=2, help="best sources kept per target in the graph (default: 2)")
    structure.add_argument("--threshold", type=float, help="keep only edges at least this good")
    structure.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")

    similarity = commands.add_parser("similarity", help="CKA between every pair of the zoo's modules")
    similarity.add_argument("--run", required=True, help="a run folder with a trained zoo")
    similarity.add_argument("--samples", type=int, default=2000, help="probe test images (default: 2000)")
    similarity.add_argument("--kernel", default="linear", help="linear (default) or rbf")
    similarity.add_argument("--debiased", action="store_true", help="unbiased HSIC estimator")
    similarity.add_argument("--seed", type=int, default=0, help="seed of the probe draw (default: 0)")
    similarity.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")

    plot = commands.add_parser("plot", help="one figure of a run, as PNG and SVG")
    plot.add_argument("kind", choices=sorted(_PLOTS), help="what to draw")
    plot.add_argument("--run", required=True, help="a run folder made by `taskspace matrix`")
    plot.add_argument("--out", required=True, help="output path without suffix, e.g. figures/heatmap")
    plot.add_argument("--estimator", help="estimator to draw (default: alignment_whitened)")
    plot.add_argument("--protocol", help="ground truth for truth-heatmap / estimate-vs-truth (default: frozen_all)")
    plot.add_argument("--formats", default="png,svg", help="comma-separated: png, svg, pdf (default: png,svg)")
    plot.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")

    report = commands.add_parser("report", help="one self-contained HTML page (and Markdown) of a run")
    report.add_argument("run", help="a run folder made by `taskspace matrix`")
    report.add_argument("--out", help="report folder (default: RUN/report)")
    report.add_argument("--estimator", help="estimator shown first (default: alignment_whitened)")
    report.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")

    demo = commands.add_parser("demo", help="the main job on the embedded 8x8 digits (no download)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--epochs", type=int, default=15, help="epochs per run (default: 15)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (zoo, scores, truth, matrices)")
    parser.add_argument("--space", default=None, help="default (default), digits or a TOML file")
    parser.add_argument("--data-root", help="data folder (default: $TASKSPACE_DATA)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of each source network (default: 10)")
    parser.add_argument("--seed", type=int, default=None, help="root seed (default: 0)")
    parser.add_argument("--score-samples", type=int, default=None,
                        help="target training images the estimators see (default: all)")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning ground truth (default: 2)")
    parser.add_argument("--executor", default="serial", help="serial (default), process or ray")
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: CPU count)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per cell; equal values give bit-identical results across executors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return _COMMANDS[arguments.command](arguments)
    except TaskspaceError as error:
        print(f"taskspace: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taskspace: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def console_entry() -> None:
    sys.exit(main())


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


def _train_options(arguments: argparse.Namespace) -> dict[str, Any]:
    from taskspace.config import load_toml_options

    options: dict[str, Any] = load_toml_options(arguments.config) if arguments.config else {}
    for name in ("task", "dataset", "mode", "labels_per_class", "epochs", "seed", "architecture", "width",
                 "cut_points", "batch_size", "lr", "weight_decay", "objective", "kernel", "validation_fraction",
                 "init_from", "device", "augment", "output_unlabeled"):
        value = getattr(arguments, name, None)
        if value is not None:
            options[name] = value
    if getattr(arguments, "objective_params", None):
        options["objective_params"] = {**options.get("objective_params", {}), **dict(arguments.objective_params)}
    return options


def _run_train(arguments: argparse.Namespace) -> int:
    from taskspace.config import TrainConfig
    from taskspace.training import train_task

    config = TrainConfig.from_dict(_train_options(arguments))
    metrics = train_task(
        config, out_dir=arguments.out, data_root=arguments.data_root, show_progress=not arguments.quiet
    )
    print(
        f"{metrics['task']} ({metrics['mode']}): test accuracy {metrics['test_accuracy']:.4f} "
        f"in {metrics['train_seconds']:.1f} s -> {Path(arguments.out) / 'metrics.json'}"
    )
    return 0


def _run_demo(arguments: argparse.Namespace) -> int:
    from taskspace.demo import run_demo

    run_demo(out_dir=Path(arguments.out), epochs=arguments.epochs, show_progress=not arguments.quiet)
    return 0


def _open_grid(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.runner import GridConfig, open_run
    from taskspace.runner.executors import EXECUTORS

    EXECUTORS.get(arguments.executor)
    options: dict[str, Any] = {}
    if arguments.space is not None:
        options["space"] = arguments.space
    if arguments.seed is not None:
        options["seed"] = arguments.seed
    if arguments.score_samples is not None:
        options["score_samples"] = arguments.score_samples
    if arguments.finetune_epochs is not None:
        options["finetune_epochs"] = arguments.finetune_epochs
    train: dict[str, Any] = {}
    if arguments.epochs is not None:
        train["epochs"] = arguments.epochs
    if arguments.seed is not None:
        train["seed"] = arguments.seed
    run_file = Path(arguments.out) / "run.json"
    if run_file.is_file():
        # Reopen with the recorded config; an option that changes it makes open_run refuse to mix.
        recorded = open_run(arguments.out, None, data_root=arguments.data_root).grid
        grid = dataclasses.replace(recorded, **options, train={**recorded.train, **train})
    else:
        grid = GridConfig(train={"epochs": 10, "seed": 0, **train}, **options)
    return open_run(arguments.out, grid, data_root=arguments.data_root)


def _run_matrix(arguments: argparse.Namespace) -> int:
    from taskspace.runner import compute_matrix
    from taskspace.scoring import list_estimators

    if arguments.list_estimators:
        print("\n".join(list_estimators()))
        return 0
    names = arguments.estimators.split(",") if arguments.estimators else list_estimators()
    from taskspace.scoring import get_estimator

    for name in names:
        get_estimator(name)
    context = _open_grid(arguments)
    matrices = compute_matrix(context, estimators=names, executor=arguments.executor, workers=arguments.workers,
                              threads=arguments.threads, show_progress=not arguments.quiet)
    print(f"{len(matrices)} matrices of {len(context.space.ids)}x{len(context.space.ids)} tasks -> "
          f"{Path(arguments.out) / 'matrix.csv'} (+ .json, .npz)")
    return 0


def _run_truth(arguments: argparse.Namespace) -> int:
    from taskspace.runner import compute_truth
    from taskspace.runner.context import parse_protocol

    protocols = [name for name in arguments.protocols.split(",") if name]
    for protocol in protocols:
        parse_protocol(protocol)
    context = _open_grid(arguments)
    rows = compute_truth(context, protocols=protocols, executor=arguments.executor, workers=arguments.workers,
                         threads=arguments.threads, show_progress=not arguments.quiet)
    print(f"{len(rows)} ground-truth accuracies -> {Path(arguments.out) / 'truth.csv'}")
    return 0


def _run_evaluate(arguments: argparse.Namespace) -> int:
    from taskspace.analysis import evaluate, write_evaluation_csv
    from taskspace.matrix import read_matrix_set
    from taskspace.runner import read_truth_csv

    folder = Path(arguments.run)
    if not (folder / "matrix.json").is_file():
        raise TaskspaceError(f"no matrix.json in '{folder}'; run `taskspace matrix --out {folder}` first")
    estimates = read_matrix_set(folder / "matrix.json")
    truths = read_truth_csv(folder / "truth.csv")
    rows = evaluate(estimates, truths, resamples=arguments.resamples,
                    exclude_diagonal=not arguments.include_diagonal)
    write_evaluation_csv(folder / "evaluation.csv", rows)
    print(f"{'estimator':<22} {'protocol':<12} {'kendall_tau [95% CI]':<26} {'weighted_tau':>12} {'regret':>8}")
    for row in sorted(rows, key=lambda r: (r["protocol"], -_sortable(r["kendall_tau"]))):
        interval = f"{row['kendall_tau']:.3f} [{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]"
        print(f"{row['estimator']:<22} {row['protocol']:<12} {interval:<26} {row['weighted_tau']:>12.3f} "
              f"{row['top1_regret']:>8.4f}")
    print(f"-> {folder / 'evaluation.csv'}")
    return 0


def _run_recommend(arguments: argparse.Namespace) -> int:
    from taskspace.recommend import recommend
    from taskspace.runner import open_run

    if arguments.k < 1:
        raise TaskspaceError(f"--k must be at least 1, got {arguments.k}")
    context = open_run(arguments.run, None, data_root=arguments.data_root)
    result = recommend(context, arguments.target, k=arguments.k, estimator=arguments.estimator,
                       protocol=arguments.protocol, measure=arguments.measure)
    where = "in the zoo" if result.in_zoo else f"new task, {len(result.ranking)} modules scored by forward passes in {result.score_seconds:.1f} s"
    quality = f"; mean Kendall τ {result.estimator_kendall_tau:.3f} vs {result.protocol} on this run" if result.estimator_kendall_tau is not None else ""
    print(f"{result.target} ({where}): sources ranked by {result.estimator}{quality}")
    if result.fit is not None:
        fit = result.fit
        print(f"predicted {result.protocol} accuracy = {fit.intercept:.3f} + {fit.slope:.3f} x score "
              f"(R² {fit.r2:.2f} over {fit.cells} cells of other targets; {fit.level:.0%} interval)")
    if result.warning() is not None:
        print(result.warning())
    print(f"{'rank':>4}  {'source':<22} {'score':>9}  {'predicted [interval]':<22} {'measured':>8}  reason")
    rows = result.ranking if arguments.all else result.top
    for row in rows:
        predicted = (f"{row.predicted_accuracy:.3f} [{row.predicted_low:.3f}, {row.predicted_high:.3f}]"
                     if row.predicted_accuracy == row.predicted_accuracy else "n/a (no ground truth)")
        measured = f"{row.measured_accuracy:.4f}" if row.measured_accuracy is not None else "-"
        print(f"{row.rank:>4}  {row.source:<22} {row.score:>9.4f}  {predicted:<22} {measured:>8}  {row.reason}")
    best, worst = result.measured_best(), result.measured_worst()
    if best is not None and worst is not None:
        first = result.ranking[0]
        print(f"measured ({result.measured_protocol}): recommended {first.source} {first.measured_accuracy:.4f}; "
              f"best {best.source} {best.measured_accuracy:.4f} (rank {best.rank}); "
              f"worst {worst.source} {worst.measured_accuracy:.4f} (rank {worst.rank})")
    print(f"-> {Path(arguments.run) / 'recommendations' / f'{result.target}__{result.estimator}.json'}")
    return 0


def _run_structure(arguments: argparse.Namespace) -> int:
    from taskspace.runner import open_run
    from taskspace.structure.of_run import run_structure

    if arguments.top_k is not None and arguments.top_k < 1:
        raise TaskspaceError(f"--top-k must be at least 1, got {arguments.top_k}")
    context = open_run(arguments.run, None, data_root=arguments.data_root)
    record = run_structure(context, estimator=arguments.estimator, top_k=arguments.top_k,
                           threshold=arguments.threshold)
    folder = Path(arguments.run) / "structure"
    print(f"task graph of {record['estimator']} (top {record['top_k']} sources per target, {record['edges']} edges) "
          f"-> {folder}/graph.{{graphml,gexf,json}}")
    print("communities: " + " | ".join(", ".join(members) for members in record["communities"]))
    if record["arborescence"] is not None:
        print("maximum spanning arborescence: " + ", ".join(f"{u}->{v}" for u, v, _ in record["arborescence"]))
    if record["task_groups"]:
        print(f"known task groups recovered (adjusted Rand index; 1 = exactly, 0 = chance):")
        print(f"{'matrix':<22} {'kind':<13} {'sources':>8} {'targets':>8} {'affinity':>9}")
        for name, entry in record["recovery"].items():
            ari = entry["adjusted_rand_index"]
            print(f"{name:<22} {entry['kind']:<13} {ari['sources']:>8.3f} {ari['targets']:>8.3f} "
                  f"{ari.get('affinity', float('nan')):>9.3f}")
    else:
        print("the space names no class groups ([groups] in its TOML file), so group recovery is not measured")
    print(f"-> {folder / 'structure.json'}")
    return 0


def _run_similarity(arguments: argparse.Namespace) -> int:
    from taskspace.runner import open_run
    from taskspace.runner.results import choose_estimator, run_matrices
    from taskspace.similarity import module_similarity, similarity_vs_transfer
    from taskspace.structure import cluster_tasks, grouping_agreement

    context = open_run(arguments.run, None, data_root=arguments.data_root)
    similarity = module_similarity(context, samples=arguments.samples, kernel=arguments.kernel,
                                   debiased=arguments.debiased, seed=arguments.seed)
    ids = similarity.sources
    print(f"{similarity.estimator} between the {len(ids)} modules of the zoo on {arguments.samples} probe images "
          f"-> {Path(arguments.run) / 'similarity'}")
    clustering = cluster_tasks(similarity, view="sources", n_clusters=len(context.space.group_names) or None)
    print("module clustering (leaf order): " + ", ".join(clustering.ordered_ids))
    if context.space.groups and clustering.labels is not None:
        ari = grouping_agreement(clustering.labels_by_task, context.space.task_groups())
        print(f"module clusters vs known task groups: adjusted Rand index {ari:.3f}")
    if (Path(arguments.run) / "matrix.json").is_file():
        estimates, truths = run_matrices(arguments.run)
        name = choose_estimator(estimates, arguments.run)
        print("do modules that represent alike also transfer alike? (Spearman ρ, one-sided Mantel p)")
        for label, matrix in [(name, estimates[name]), *truths.items()]:
            result = similarity_vs_transfer(similarity, matrix, permutations=10000, seed=arguments.seed)
            print(f"  vs {label:<20} ρ = {result['spearman']:.3f}   p = {result['p_value']:.4f}")
    return 0


def _run_plot(arguments: argparse.Namespace) -> int:
    from taskspace.plotting import save_figure

    formats = tuple(part for part in arguments.formats.split(",") if part)
    figure = _PLOTS[arguments.kind](arguments)
    paths = save_figure(figure, arguments.out, formats=formats)
    print(" ".join(str(path) for path in paths))
    return 0


def _plot_inputs(arguments: argparse.Namespace, *, need_truth: bool):  # type: ignore[no-untyped-def]
    from taskspace.runner.results import choose_estimator, choose_protocol, run_matrices

    estimates, truths = run_matrices(arguments.run)
    name = choose_estimator(estimates, arguments.run, requested=arguments.estimator)
    truth = None
    if need_truth:
        if not truths:
            raise TaskspaceError(
                f"'{arguments.kind}' needs ground truth and '{arguments.run}' has none; "
                f"run `taskspace truth --out {arguments.run}` first"
            )
        truth = truths[choose_protocol(truths, arguments.protocol)]
    return estimates[name], truth


def _plot_heatmap(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.plotting import heatmap

    return heatmap(_plot_inputs(arguments, need_truth=False)[0])


def _plot_truth_heatmap(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.plotting import heatmap

    return heatmap(_plot_inputs(arguments, need_truth=True)[1])


def _plot_clustermap(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.plotting import clustermap

    return clustermap(_plot_inputs(arguments, need_truth=False)[0])


def _plot_graph(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.plotting import task_graph_plot
    from taskspace.runner import open_run
    from taskspace.structure import task_graph

    matrix = _plot_inputs(arguments, need_truth=False)[0]
    space = open_run(arguments.run, None, data_root=arguments.data_root).space
    return task_graph_plot(task_graph(matrix, top_k=2, groups=space.task_groups() if space.groups else None),
                           title=f"task graph: top-2 sources per target by {matrix.estimator}")


def _plot_estimate_vs_truth(arguments: argparse.Namespace):  # type: ignore[no-untyped-def]
    from taskspace.plotting import estimate_vs_truth

    estimate, truth = _plot_inputs(arguments, need_truth=True)
    return estimate_vs_truth(estimate, truth)


_PLOTS = {"heatmap": _plot_heatmap, "truth-heatmap": _plot_truth_heatmap, "clustermap": _plot_clustermap,
          "graph": _plot_graph, "estimate-vs-truth": _plot_estimate_vs_truth}


def _run_report(arguments: argparse.Namespace) -> int:
    from taskspace.report import write_report

    paths = write_report(arguments.run, out_dir=arguments.out, estimator=arguments.estimator,
                         data_root=arguments.data_root)
    print(f"{paths.html}\n{paths.markdown}")
    return 0


def _sortable(value: float) -> float:
    return value if value == value else -2.0


_COMMANDS = {"tasks": _run_tasks, "data": _run_data, "train": _run_train, "matrix": _run_matrix,
             "truth": _run_truth, "evaluate": _run_evaluate, "recommend": _run_recommend,
             "structure": _run_structure, "similarity": _run_similarity, "plot": _run_plot, "report": _run_report,
             "demo": _run_demo}
