"""The commands on a zoo run (``taskspace matrix RUN --zoo zoo.toml``): any model, any layer; and on a run
imported from files (``taskspace import RUN --truth F --scores F``), whose rows are modules too.

Such a run is told apart from a task-space run by its ``run.json``; ``matrix``, ``truth``,
``evaluate``, ``recommend`` and ``plot`` hand it here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from taskspace.cli._arguments import check_execution_flags
from taskspace.cli._output import print_import, shown_path
from taskspace.errors import TaskspaceError

__all__ = ["wants_zoo", "zoo_matrix", "zoo_truth", "zoo_depth_plot",
           "import_run"]


def wants_zoo(arguments: argparse.Namespace, folder: str) -> bool:
    """Whether the command works on a run of modules: ``--zoo`` given, or the folder holds a zoo run or an
    imported one."""
    from taskspace.runner.imported import is_imported_run
    from taskspace.zoo.run import is_zoo_run

    if getattr(arguments, "zoo", None) is not None or getattr(arguments, "target_dataset", None) is not None:
        return True
    return is_zoo_run(folder) or is_imported_run(folder)


def import_run(arguments: argparse.Namespace) -> int:
    """``taskspace import RUN --truth F --scores F``: a run made from results measured elsewhere."""
    from taskspace.cli._arguments import run_folder
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


def _options(arguments: argparse.Namespace, recorded: Any = None) -> Any:
    import dataclasses

    from taskspace.zoo.run import ZooOptions

    base = recorded if recorded is not None else ZooOptions()
    changes = {name: getattr(arguments, name) for name in ("seed", "score_samples", "finetune_epochs", "finetune_lr")
               if getattr(arguments, name, None) is not None}
    return dataclasses.replace(base, **changes)


def _open_or_create(arguments: argparse.Namespace, folder: str) -> Any:
    """The zoo run in ``folder``: created from ``--zoo`` and the targets, or reopened (the same one)."""
    from taskspace.tasks import TaskSpace
    from taskspace.zoo import read_zoo_file
    from taskspace.zoo.run import ZooRun, is_zoo_run
    from taskspace.zoo.targets import ZooTargets

    existing = ZooRun.open(folder, data_root=arguments.data_root) if is_zoo_run(folder) else None
    if arguments.zoo is None:
        if existing is None:
            raise TaskspaceError(f"'{folder}' holds no zoo run; create one with `taskspace matrix {folder} --zoo "
                                 "zoo.toml --space default`")
        if arguments.space is not None or arguments.target_dataset is not None:
            raise TaskspaceError("the targets of a zoo run are set when it is made; pass --zoo with them, or use "
                                 "another run folder")
        return ZooRun.create(folder, existing.zoo, existing.targets, _options(arguments, existing.options),
                             data_root=arguments.data_root or existing.data_root)
    zoo = read_zoo_file(arguments.zoo)
    if arguments.space is None and arguments.target_dataset is None:
        if existing is None:
            raise TaskspaceError("name the targets: --space (default, digits or a TOML file) and/or --target-dataset "
                                 "(a whole dataset, e.g. cifar10)")
        targets = existing.targets
    else:
        space = TaskSpace.resolve(arguments.space, data_root=arguments.data_root) if arguments.space else None
        dataset = arguments.target_dataset or (space.dataset if space is not None else "cifar10")
        if arguments.target_dataset is not None and space is None:
            from taskspace.data import dataset_class_names

            dataset_class_names(dataset, data_root=arguments.data_root)
        targets = ZooTargets(dataset, space, whole_dataset=arguments.target_dataset is not None)
    recorded = existing.options if existing is not None else None
    return ZooRun.create(folder, zoo, targets, _options(arguments, recorded), data_root=arguments.data_root)


def zoo_matrix(arguments: argparse.Namespace, folder: str, estimators: list[str]) -> int:
    check_execution_flags(arguments)
    run = _open_or_create(arguments, folder)
    matrices = run.score(estimators, device=arguments.device or "cpu", batch_size=arguments.batch_size,
                         show_progress=not arguments.quiet, executor=arguments.executor, workers=arguments.workers,
                         threads=arguments.threads, ray_address=arguments.ray_address)
    print(f"{len(matrices)} matrices of {len(run.modules)} modules ({len(run.zoo.sources)} sources) x "
          f"{len(run.target_ids)} targets -> {shown_path(run.path('matrix'))}.{{csv,json,npz}}")
    return 0


def zoo_truth(arguments: argparse.Namespace, folder: str) -> int:
    from taskspace.zoo.stages import check_zoo_protocol

    imported = getattr(arguments, "import_file", None)
    check_execution_flags(arguments)
    if imported is None:
        for protocol in arguments.protocols:
            check_zoo_protocol(protocol)
    run = _open_or_create(arguments, folder)
    if imported is not None:
        print_import(run, run.import_truth(imported))
        return 0
    rows = run.measure(arguments.protocols, device=arguments.device or "cpu", batch_size=arguments.batch_size,
                       show_progress=not arguments.quiet, targets=arguments.targets, executor=arguments.executor,
                       workers=arguments.workers, threads=arguments.threads, ray_address=arguments.ray_address)
    print(f"{len(rows)} ground-truth accuracies -> {shown_path(run.path('truth'))}")
    return 0


def zoo_depth_plot(arguments: argparse.Namespace, run: Any) -> int:
    """A depth profile: a run whose sources have two or more layers each (a zoo run's, or an imported one's)."""
    from taskspace.plotting import depth_profiles, save_figure

    if run.kind == "trained":
        raise TaskspaceError(f"a depth profile needs modules at several layers of one network, and the networks of "
                             f"'{run.folder}' are read at one layer each; score them at every module boundary in a "
                             f"zoo run (a zoo file with a [[source]] checkpoint = \"{run.folder}/zoo/TASK/model.pt\" "
                             "per network: docs/zoo.md), or plot heatmap, clustermap, graph or estimate-vs-truth here")
    estimate = run.estimates()[run.default_estimator(arguments.estimator)]
    truths = run.truths()
    protocol = run.default_protocol(arguments.protocol)
    truth = truths[protocol] if protocol is not None else None
    figure = depth_profiles(estimate, truth, target=arguments.target)
    paths = save_figure(figure, arguments.out, formats=tuple(arguments.formats))
    print(" ".join(str(path) for path in paths))
    return 0


def note(message: str) -> None:
    print(f"taskspace: note: {message}", file=sys.stderr)
