"""A trained run's own networks read at every module boundary: the run's depth profiles.

A trained run scores each network at one layer (its trunk's end, φ). Its depth profile reads every
network at every hidden stage (cut points as layers, a ``checkpoint`` source's default) on every task of
the space: that is a zoo run of the run's checkpoints, kept inside the trained run (``RUN/depth/``),
resumable and identified by its content like any run, scored with the estimators asked for.
"""

from __future__ import annotations

from typing import Any

from taskspace.errors import TaskspaceError
from taskspace.zoo.run import ZooOptions, ZooRun
from taskspace.zoo.spec import parse_zoo
from taskspace.zoo.targets import ZooTargets

__all__ = ["depth_run"]


def depth_run(run: Any, *, data_root: str | None = None) -> ZooRun:
    """The zoo run of ``run``'s networks at every module boundary on the space's tasks (created, or
    reopened), in ``RUN/depth/``; it draws the images its estimators see as a zoo run does, with the trained
    run's ``score_samples`` (None: every image) and seed.

    Raises:
        TaskspaceError: a network of the run is not trained yet.
    """
    missing = [task for task in run.space.ids if not run.checkpoint(task).is_file()]
    if missing:
        raise TaskspaceError(f"the network of {missing[0]} in '{run.folder}' is not trained yet; train every "
                             f"network first (`taskspace matrix {run.folder}`)")
    zoo = parse_zoo({"source": [{"name": task, "checkpoint": str(run.checkpoint(task))} for task in run.space.ids]},
                    folder=run.folder, where=f"the networks of '{run.folder}'")
    options = ZooOptions(score_samples=run.grid.score_samples, seed=run.grid.seed)
    return ZooRun.create(run.path("depth"), zoo, ZooTargets(run.space.dataset, run.space), options,
                         data_root=data_root or run.data_root)
