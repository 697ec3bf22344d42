"""The grid of a task space as resumable cells, run by an executor (serial, process pool or Ray)."""

from taskspace.runner.cells import Cell, ScoreCell, TrainCell, TruthCell
from taskspace.runner.context import GridConfig, RunContext, parse_protocol
from taskspace.runner.executors import list_executors, run_cells
from taskspace.runner.grid import compute_matrix, compute_truth, open_run, read_truth_csv, train_zoo

__all__ = [
    "Cell",
    "GridConfig",
    "RunContext",
    "ScoreCell",
    "TrainCell",
    "TruthCell",
    "compute_matrix",
    "compute_truth",
    "list_executors",
    "open_run",
    "parse_protocol",
    "read_truth_csv",
    "run_cells",
    "train_zoo",
]
