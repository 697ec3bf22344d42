"""The parser of every command, each in its own function. Every command that works on a run takes the
run folder as its first positional argument: ``taskspace matrix RUN``, ``taskspace plot RUN KIND``."""

from __future__ import annotations

import argparse

from taskspace._version import __version__
from taskspace.cli._arguments import (
    Parser,
    add_data_root,
    add_grid_options,
    add_run_folder,
    add_train_options,
    comma_list,
    finite_float,
    nonnegative_int,
    positive_int,
    strict_comma_list,
)

__all__ = ["build_parser", "PLOT_KINDS"]

#: What ``taskspace plot`` draws.
PLOT_KINDS = ("heatmap", "truth-heatmap", "clustermap", "graph", "estimate-vs-truth", "depth-profile")

_RUN_HELP = "the run folder"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="taskspace", description="Transfer-learning task-space analysis with modular networks.")
    parser.add_argument("--version", action="version", version=f"taskspace {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_tasks, _data, _train, _compose, _matrix, _truth, _import, _evaluate, _recommend, _structure,
                _similarity, _plot, _report, _demo):
        add(commands)
    return parser


def _tasks(commands: argparse._SubParsersAction) -> None:
    tasks = commands.add_parser("tasks", help="print the task ids of a task space, one a line")
    tasks.add_argument("--space", default="default", help="default, digits or a TOML file (default: default)")
    add_data_root(tasks, of_run=False)


def _data(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="check and prepare a dataset (CIFAR-10 by default)")
    data.add_argument("--dataset", default="cifar10", help="cifar10, digits or an image folder")
    add_data_root(data, of_run=False)
    data.add_argument("--download", action="store_true", help="download CIFAR-10 with torchvision first")
    data.add_argument(
        "--checksums", help="verify CIFAR-10 files: 'official' or a file of '<md5|sha256>  <name>' lines"
    )


def _train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train one network on one task")
    train.add_argument("--config", help="TOML file with any of the options below (flags win)")
    train.add_argument("--task", help="task id, e.g. cat_vs_dog, or 'all' for every class")
    train.add_argument("--out", required=True, help="output folder: config.json, model.pt, metrics.json")
    add_data_root(train, of_run=False)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    add_train_options(train)



def _compose(commands: argparse._SubParsersAction) -> None:
    from taskspace.compose.run import OPERATORS

    compose = commands.add_parser(
        "compose", help="build a net from the modules of trained nets: split, port, stack, substitute, drop, invert",
        description="Operators: " + "; ".join(f"{name} ({what})" for name, what in OPERATORS.items()) + ".")
    compose.add_argument("operator", choices=list(OPERATORS), metavar="OPERATOR", help=", ".join(OPERATORS))
    compose.add_argument("--from", dest="source", required=True, help="the net's checkpoint (model.pt)")
    compose.add_argument("--with", dest="donor", default=None, help="substitute: the donor net's checkpoint")
    compose.add_argument("--task", default=None, help="port, stack: the target task, e.g. deer_vs_horse (the others "
                         "keep the source's own)")
    compose.add_argument("--keep", type=positive_int, default=None, help="port, stack, drop: hidden modules kept")
    compose.add_argument("--module", type=nonnegative_int, default=None, help="substitute: module replaced (from 0)")
    compose.add_argument("--cut-points", type=strict_comma_list, default=None, help="split: stage boundaries, e.g. 1,2")
    compose.add_argument("--order", type=strict_comma_list, default=None,
                         help="invert: the hidden modules in their new order, e.g. 0,2,1 (a module may repeat: 0,1,1)")
    compose.add_argument("--out", required=True, help="output folder: model.pt, metrics.json")
    compose.add_argument("--overwrite", action="store_true", help="replace a network already in --out")
    compose.add_argument("--epochs", type=positive_int, default=None, help="stack: epochs of each new hidden module")
    compose.add_argument("--labels-per-class", type=positive_int, default=None,
                         help="labels of the output module (default: all)")
    compose.add_argument("--seed", type=nonnegative_int, default=None, help="seed of what is trained (default: 0)")
    add_data_root(compose, of_run=False)
    compose.add_argument("--quiet", action="store_true", help="no progress output")

def _matrix(commands: argparse._SubParsersAction) -> None:
    matrix = commands.add_parser("matrix", help="train the zoo if needed and score every source on every target")
    add_run_folder(matrix, old_flag="--out", help_text="the run folder (created, or resumed)")
    add_grid_options(matrix)
    matrix.add_argument("--estimators", type=comma_list, default=None,
                        help="comma-separated estimator names (default: all; see --list-estimators)")
    matrix.add_argument("--list-estimators", action="store_true", help="print the estimator names and exit")
    _zoo_options(matrix)
    matrix.add_argument("--target-dataset", default=None,
                        help="with --zoo: a whole dataset as one more target (e.g. cifar10 = its 10-class task)")


def _truth(commands: argparse._SubParsersAction) -> None:
    truth = commands.add_parser("truth", help="measure the ground truth: accuracy after transferring")
    add_run_folder(truth, old_flag="--out", help_text="the run folder (created, or resumed)")
    add_grid_options(truth)
    truth.add_argument("--protocols", type=comma_list, default=["frozen_k10", "frozen_all"],
                       help="comma-separated: frozen_kK, frozen_all, finetune (default: frozen_k10,frozen_all)")
    _zoo_options(truth)
    truth.add_argument("--target-dataset", default=None, help=argparse.SUPPRESS)
    truth.add_argument("--import", dest="import_file", metavar="CSV", default=None,
                       help="add results measured elsewhere (columns source,target[,layer],protocol,accuracy)")
    truth.add_argument("--targets", type=comma_list, default=None,
                       help="measure only these targets (comma-separated; default: all)")


def _zoo_options(parser: argparse.ArgumentParser) -> None:
    """The options of a zoo run: its zoo file and where its forward passes run."""
    parser.add_argument("--zoo", default=None, help="a zoo file (TOML) naming any networks and layers to score; see "
                                                    "docs/zoo.md")
    parser.add_argument("--device", default=None,
                        help="where the zoo trains and the forward passes run: cpu (default), cuda or auto")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="zoo run: images per forward pass (default: 256)")


def _import(commands: argparse._SubParsersAction) -> None:
    imported = commands.add_parser(
        "import", help="a run made from results measured elsewhere: truth and estimator values, no networks")
    add_run_folder(imported, old_flag=None, help_text="a new run folder")
    imported.add_argument("--truth", help="CSV of source,target[,layer],protocol,accuracy")
    imported.add_argument("--scores", help="CSV of source,target[,layer],estimator,score (higher is better)")
    imported.add_argument("--percent", action="store_true", help="the truth's accuracies are percentages")


def _evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="how well each estimator predicts each ground truth")
    add_run_folder(evaluate, old_flag="--run", help_text="a run folder with a matrix and ground truth")
    evaluate.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples (default: 2000)")
    evaluate.add_argument("--include-diagonal", action="store_true", help="keep source = target in the ranking")


def _recommend(commands: argparse._SubParsersAction) -> None:
    recommend = commands.add_parser("recommend", help="rank the zoo's sources for a target task, with reasons")
    add_run_folder(recommend, old_flag="--run", help_text="a run folder made by `taskspace matrix`")
    recommend.add_argument("--target", required=True, help="a task id, in the zoo or new (e.g. airplane_vs_ship)")
    recommend.add_argument("--k", type=positive_int, default=None,
                           help="sources to recommend (default: 3, or all when there are fewer)")
    recommend.add_argument("--estimator", help="score to rank by (default: history on a zoo or imported run "
                                               "with truth on 3 other targets, else logme unless the run's "
                                               "verdict says it fails there)")
    recommend.add_argument("--protocol", help="ground truth the accuracy prediction maps to (default: frozen_all)")
    recommend.add_argument("--measure", action="store_true",
                           help="new target: also measure each source's frozen-trunk accuracy on it")
    recommend.add_argument("--all", action="store_true", help="print every source, not only the top k")
    add_data_root(recommend, of_run=True)


def _structure(commands: argparse._SubParsersAction) -> None:
    structure = commands.add_parser("structure", help="task graph, communities and group recovery of a run")
    add_run_folder(structure, old_flag="--run", help_text="a run folder made by `taskspace matrix`")
    structure.add_argument("--estimator", help="matrix the graph is built from (default: logme)")
    structure.add_argument("--top-k", type=positive_int, default=2,
                           help="best sources kept per target in the graph (default: 2)")
    structure.add_argument("--threshold", type=finite_float, help="keep only edges at least this good")
    add_data_root(structure, of_run=True)


def _similarity(commands: argparse._SubParsersAction) -> None:
    similarity = commands.add_parser("similarity", help="CKA between every pair of a run's modules")
    add_run_folder(similarity, old_flag="--run", help_text="a run folder: a trained zoo, or a zoo run")
    similarity.add_argument("--samples", type=positive_int, default=2000, help="probe test images (default: 2000)")
    similarity.add_argument("--kernel", default="linear", help="linear (default) or rbf")
    similarity.add_argument("--debiased", action="store_true", help="unbiased HSIC estimator")
    similarity.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the probe draw (default: 0)")
    similarity.add_argument("--device", default=None,
                            help="zoo run: where its forward passes run: cpu (default), cuda or auto")
    similarity.add_argument("--batch-size", type=positive_int, default=256,
                            help="zoo run: images per forward pass (default: 256)")
    add_data_root(similarity, of_run=True)


def _plot(commands: argparse._SubParsersAction) -> None:
    plot = commands.add_parser("plot", help="one figure of a run, as PNG and SVG")
    plot.add_argument("run", metavar="RUN", help="a run folder made by `taskspace matrix`")
    plot.add_argument("kind", nargs="?", metavar="KIND", help=f"what to draw: {', '.join(PLOT_KINDS)}")
    plot.add_argument("--run", dest="run_flag", metavar="RUN", help=argparse.SUPPRESS)
    plot.add_argument("--out", required=True, help="output path without suffix, e.g. figures/heatmap")
    plot.add_argument("--estimator", help="estimator to draw (default: logme)")
    plot.add_argument("--protocol", help="ground truth for truth-heatmap / estimate-vs-truth (default: frozen_all)")
    plot.add_argument("--target", help="depth-profile: the target whose profile is drawn (default: the mean over "
                                       "targets)")
    plot.add_argument("--formats", type=comma_list, default=["png", "svg"],
                      help="comma-separated: png, svg, pdf (default: png,svg)")
    add_data_root(plot, of_run=True)


def _report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="one self-contained HTML page (and Markdown) of a run")
    add_run_folder(report, old_flag=None, help_text="a run folder made by `taskspace matrix`")
    report.add_argument("--out", help="report folder (default: RUN/report)")
    report.add_argument("--estimator", help="estimator shown first (default: logme)")
    add_data_root(report, of_run=True)


def _demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the main job on the embedded 8x8 digits (no download)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--epochs", type=positive_int, default=15, help="epochs per run (default: 15)")
    demo.add_argument("--quiet", action="store_true", help="no progress output")
