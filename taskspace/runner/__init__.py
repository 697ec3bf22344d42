"""Runs: a task space's grid as resumable cells, run by an executor (serial, process pool or Ray).

:class:`Run` owns a run folder (its layout, identity, lock, readers and writers); the stages
(:func:`train_zoo`, :func:`compute_matrix`, :func:`compute_truth`) fill it cell by cell.
"""

from taskspace.config import GridConfig
from taskspace.runner.cells import Cell, ScoreCell, TrainCell, TruthCell
from taskspace.runner.executors import list_executors, run_cells
from taskspace.runner.folder import LAYOUT
from taskspace.runner.grid import compute_matrix, compute_truth, train_zoo
from taskspace.runner.results import read_truth_csv
from taskspace.runner.run import Run, open_run

__all__ = [
    "LAYOUT",
    "Cell",
    "GridConfig",
    "Run",
    "ScoreCell",
    "TrainCell",
    "TruthCell",
    "compute_matrix",
    "compute_truth",
    "list_executors",
    "open_run",
    "read_truth_csv",
    "run_cells",
    "train_zoo",
]
