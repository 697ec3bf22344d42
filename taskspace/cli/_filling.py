"""The run a ``matrix`` or ``truth`` command fills, planned from the flags and the folder.

A zoo plan where ``--zoo`` or ``--target-dataset`` is given or the folder holds a zoo run (any model, any
layer); else a trained run of a task space (``--space``). A reopened folder keeps its recorded plan, and
flags given on it must agree with it (the run's identity). Everything is checked before anything is
written. What the commands then do (score, measure, import) is the same for both kinds.
"""

from __future__ import annotations

import argparse
from typing import Any

from taskspace.cli._arguments import check_execution_flags, run_folder
from taskspace.errors import TaskspaceError

__all__ = ["plans_zoo", "open_for_filling", "execution", "check_protocols", "refuse_import_without_run"]


def plans_zoo(arguments: argparse.Namespace, folder: str) -> bool:
    """Whether the command fills a run of modules: ``--zoo`` or ``--target-dataset`` given, or the folder
    holds a zoo run or an imported one."""
    from taskspace.runner.folder import record_kind

    if getattr(arguments, "zoo", None) is not None or getattr(arguments, "target_dataset", None) is not None:
        return True
    return record_kind(folder) in ("zoo", "imported")


def open_for_filling(arguments: argparse.Namespace, command: str) -> Any:
    """The run a ``matrix`` or ``truth`` command fills: created from the flags, or reopened when the folder
    holds one (its recorded plan; options given must agree with it, a space compared by its content)."""
    folder = run_folder(arguments, command)
    check_execution_flags(arguments)
    if plans_zoo(arguments, folder):
        return _open_zoo(arguments, folder)
    return _open_trained(arguments, folder)


def execution(arguments: argparse.Namespace, run: Any) -> dict[str, Any]:
    """How the command's cells run: executor, workers, threads, progress; for a zoo run also where its
    forward passes run (``--device``, ``--batch-size``)."""
    chosen = {"executor": arguments.executor, "workers": arguments.workers, "threads": arguments.threads,
              "show_progress": not arguments.quiet, "ray_address": arguments.ray_address}
    if run.kind == "zoo":
        chosen.update(device=arguments.device or "cpu", batch_size=arguments.batch_size)
    return chosen


def check_protocols(arguments: argparse.Namespace, folder: str) -> None:
    """Every ``--protocols`` name known to the kind of run the command fills (before anything runs)."""
    if getattr(arguments, "import_file", None) is not None:
        return
    if plans_zoo(arguments, folder):
        from taskspace.zoo.stages import check_zoo_protocol

        for protocol in arguments.protocols:
            check_zoo_protocol(protocol)
    else:
        from taskspace.transfer import get_protocol

        for protocol in arguments.protocols:
            get_protocol(protocol)


def _open_trained(arguments: argparse.Namespace, folder: str) -> Any:
    """A trained run of a task space: created from ``--space`` and the options, or reopened."""
    from taskspace.config import GridConfig, load_toml_options
    from taskspace.runner import Run
    from taskspace.runner.run import replace_grid
    from taskspace.tasks import TaskSpace

    options = {name: getattr(arguments, name) for name in ("seed", "score_samples", "finetune_epochs", "finetune_lr")
               if getattr(arguments, name) is not None}
    train = load_toml_options(arguments.train_config) if arguments.train_config else {}
    train.update({name: getattr(arguments, name) for name in ("epochs", "seed", "device")
                  if getattr(arguments, name, None) is not None})
    if Run.exists(folder):
        existing = Run.open(folder, data_root=arguments.data_root)
        space = (TaskSpace.resolve(arguments.space, data_root=existing.data_root) if arguments.space is not None
                 else existing.space)
        grid = replace_grid(existing.grid, **options, train=train)
        _check_training(grid, space)
        return Run.create(folder, grid, space=space, data_root=arguments.data_root or existing.data_root)
    grid = GridConfig(space=arguments.space or "default", train={"epochs": 10, "seed": 0, **train}, **options)
    _check_training(grid, TaskSpace.resolve(grid.space, data_root=arguments.data_root))
    return Run.create(folder, grid, data_root=arguments.data_root)


def _check_training(grid: Any, space: Any) -> None:
    """The source networks' training options, checked (and the device found) before anything is written."""
    from taskspace.training.run import resolve_device

    config = grid.source_config(space.ids[0], space.dataset)
    resolve_device(config.device)


def refuse_import_without_run(arguments: argparse.Namespace, folder: str) -> None:
    """``--import`` adds to a run's truth: without a run there is nothing to check the file's names against."""
    from taskspace.runner import Run

    if getattr(arguments, "import_file", None) is not None and arguments.zoo is None and not Run.exists(folder):
        raise TaskspaceError(f"'{folder}' holds no run to import into; make a run of the results alone with "
                             f"`taskspace import {folder} --truth FILE`, or a run with `taskspace matrix {folder}` "
                             "first")


def _zoo_options(arguments: argparse.Namespace, recorded: Any = None) -> Any:
    import dataclasses

    from taskspace.zoo.run import ZooOptions

    base = recorded if recorded is not None else ZooOptions()
    changes = {name: getattr(arguments, name) for name in ("seed", "score_samples", "finetune_epochs", "finetune_lr")
               if getattr(arguments, name, None) is not None}
    return dataclasses.replace(base, **changes)


def _open_zoo(arguments: argparse.Namespace, folder: str) -> Any:
    """The zoo run in ``folder``: created from ``--zoo`` and the targets, or reopened (the same one)."""
    from taskspace.tasks import TaskSpace
    from taskspace.zoo import read_zoo_file
    from taskspace.zoo.run import ZooRun, is_zoo_run
    from taskspace.zoo.targets import ZooTargets

    if arguments.zoo is None:
        if not is_zoo_run(folder):
            raise TaskspaceError(f"'{folder}' holds no zoo run; create one with `taskspace matrix {folder} --zoo "
                                 "zoo.toml --space default`")
        existing = ZooRun.open(folder, data_root=arguments.data_root)
        if arguments.space is not None or arguments.target_dataset is not None:
            raise TaskspaceError("the targets of a zoo run are set when it is made; pass --zoo with them, or use "
                                 "another run folder")
        return ZooRun.create(folder, existing.zoo, existing.targets, _zoo_options(arguments, existing.options),
                             data_root=arguments.data_root or existing.data_root)
    zoo = read_zoo_file(arguments.zoo)
    # the recorded plan without its sources: the zoo file may name where they are now
    recorded_targets, recorded = ZooRun.recorded_plan(folder) if is_zoo_run(folder) else (None, None)
    if arguments.space is None and arguments.target_dataset is None:
        if recorded_targets is None:
            raise TaskspaceError("name the targets: --space (default, digits or a TOML file) and/or --target-dataset "
                                 "(a whole dataset, e.g. cifar10)")
        targets = recorded_targets
    else:
        space = TaskSpace.resolve(arguments.space, data_root=arguments.data_root) if arguments.space else None
        dataset = arguments.target_dataset or (space.dataset if space is not None else "cifar10")
        if arguments.target_dataset is not None and space is None:
            from taskspace.data import dataset_class_names

            dataset_class_names(dataset, data_root=arguments.data_root)
        targets = ZooTargets(dataset, space, whole_dataset=arguments.target_dataset is not None)
    return ZooRun.create(folder, zoo, targets, _zoo_options(arguments, recorded), data_root=arguments.data_root)
