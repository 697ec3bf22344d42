"""Reading a finished run's results: its matrices, ground truth, evaluation, and which estimator to show."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from taskspace.errors import TaskspaceError
from taskspace.matrix import TransferabilityMatrix, read_matrix_set
from taskspace.runner.grid import read_truth_csv

__all__ = ["PREFERRED_ESTIMATOR", "MAIN_PROTOCOL", "run_matrices", "choose_estimator", "choose_protocol", "evaluation_rows"]

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


#: The ground truth a run is shown against when it was measured.
MAIN_PROTOCOL = "frozen_all"


def choose_protocol(truths: dict[str, TransferabilityMatrix], requested: str | None = None) -> str | None:
    """``requested`` (it must be measured), else :data:`MAIN_PROTOCOL` if measured, else the first; None
    when the run has no ground truth."""
    if requested is not None:
        if requested not in truths:
            available = ", ".join(truths) or "none: run `taskspace truth` first"
            raise TaskspaceError(f"the run has no ground truth '{requested}' (measured: {available})")
        return requested
    if not truths:
        return None
    return MAIN_PROTOCOL if MAIN_PROTOCOL in truths else next(iter(truths))


def choose_estimator(
    estimates: dict[str, TransferabilityMatrix], run_dir: str | Path, *, requested: str | None = None,
    protocol: str | None = None,
) -> str:
    """The estimator a run is shown and ranked by.

    ``requested`` if given (it must be in the run). Otherwise :data:`PREFERRED_ESTIMATOR` when the run
    has it, unless the run's own verdict (``evaluation.csv``, against ``protocol``, by default
    ``frozen_all`` when measured) puts its mean Kendall τ below the lower end of the best estimator's
    95% interval: then that best estimator. Without a verdict, the preferred one, else the first.
    """
    folder = Path(run_dir)
    if requested is not None:
        if requested not in estimates:
            raise TaskspaceError(
                f"the run's matrix has no estimator '{requested}' (it has {', '.join(sorted(estimates))}); "
                f"pass one of those, or add it with `taskspace matrix --out {folder} --estimators {requested}`"
            )
        return requested
    rows = [row for row in evaluation_rows(folder)
            if row["estimator"] in estimates and _float(row.get("kendall_tau", "nan")) > -math.inf]
    if rows:
        protocols = [row["protocol"] for row in rows]
        chosen = protocol if protocol in protocols else (MAIN_PROTOCOL if MAIN_PROTOCOL in protocols else protocols[0])
        rows = [row for row in rows if row["protocol"] == chosen]
    best = max(rows, key=lambda row: _float(row["kendall_tau"])) if rows else None
    if PREFERRED_ESTIMATOR in estimates:
        preferred = next((row for row in rows if row["estimator"] == PREFERRED_ESTIMATOR), None)
        if best is None or preferred is None or _float(preferred["kendall_tau"]) >= _float(best.get("kendall_tau_low", "nan")):
            return PREFERRED_ESTIMATOR
    return best["estimator"] if best is not None else next(iter(estimates))


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
