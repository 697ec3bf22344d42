"""Reading a finished run's results: its matrices, ground truth, evaluation, and which estimator to show."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from taskspace.errors import TaskspaceError
from taskspace.matrix import TransferabilityMatrix, read_matrix_set
from taskspace.runner.grid import read_truth_csv

__all__ = ["PREFERRED_ESTIMATOR", "run_matrices", "choose_estimator", "evaluation_rows"]

#: The estimator a run is shown by when it has it: taskspace's kernel-family score.
PREFERRED_ESTIMATOR = "alignment_whitened"


def run_matrices(run_dir: str | Path) -> tuple[dict[str, TransferabilityMatrix], dict[str, TransferabilityMatrix]]:
    """The run's estimator matrices and its ground-truth matrices (empty when none was measured)."""
    folder = Path(run_dir)
    if not (folder / "matrix.json").is_file():
        raise TaskspaceError(f"no matrix.json in '{folder}'; run `taskspace matrix --out {folder}` first")
    estimates = read_matrix_set(folder / "matrix.json")
    truths = read_truth_csv(folder / "truth.csv") if (folder / "truth.csv").is_file() else {}
    return estimates, truths


def choose_estimator(
    estimates: dict[str, TransferabilityMatrix], run_dir: str | Path, *, requested: str | None = None,
    protocol: str | None = None,
) -> str:
    """``requested`` if given (it must be in the run), else :data:`PREFERRED_ESTIMATOR` if the run has it,
    else the estimator with the best mean Kendall τ in the run's ``evaluation.csv``, else the first."""
    folder = Path(run_dir)
    if requested is not None:
        if requested not in estimates:
            raise TaskspaceError(
                f"the run's matrix has no estimator '{requested}' (it has {', '.join(sorted(estimates))}); "
                f"pass one of those, or add it with `taskspace matrix --out {folder} --estimators {requested}`"
            )
        return requested
    if PREFERRED_ESTIMATOR in estimates:
        return PREFERRED_ESTIMATOR
    best_name, best_tau = None, -math.inf
    for row in evaluation_rows(folder):
        tau = _float(row.get("kendall_tau", "nan"))
        if row["estimator"] in estimates and (protocol is None or row["protocol"] == protocol) and tau > best_tau:
            best_name, best_tau = row["estimator"], tau
    return best_name or next(iter(estimates))


def evaluation_rows(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of the run's ``evaluation.csv`` as strings (empty when not written yet)."""
    file = Path(run_dir) / "evaluation.csv"
    if not file.is_file():
        return []
    with open(file, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else -math.inf
