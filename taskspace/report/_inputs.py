"""What a report is made of: the run, its matrices, ground truth, evaluation and the estimator to show."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskspace.analysis import EVALUATION_COLUMNS, evaluate
from taskspace.errors import TaskspaceError
from taskspace.io import read_json
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner import RunContext, open_run
from taskspace.runner.results import (
    PREFERRED_ESTIMATOR,
    choose_estimator,
    choose_protocol,
    evaluation_rows,
    run_matrices,
)

__all__ = ["RunInputs", "load_run_inputs"]

#: The ground truth a report leads with when the run measured it (as :func:`taskspace.recommend.recommend`).

_TEXT_COLUMNS = ("estimator", "protocol")
_REQUIRED_COLUMNS = ("estimator", "protocol", "kendall_tau", "kendall_tau_low", "kendall_tau_high", "weighted_tau",
                     "top1_regret")


@dataclass(frozen=True)
class RunInputs:
    """Everything a report reads from a run.

    Attributes:
        context: the reopened run.
        record: the run's ``run.json``.
        estimates: estimator name -> matrix (``matrix.json``), in the run's order.
        truths: protocol -> measured accuracies (``truth.csv``); empty when no ground truth was measured.
        estimator: the estimator the report is shown by.
        estimator_reason: why that one, as a phrase ("asked for", ...).
        main_protocol: the ground truth the report leads with; None without ground truth.
        evaluation: rows of :func:`taskspace.analysis.evaluate` (numbers as floats) for the run's estimators
            and protocols; empty without ground truth.
        evaluation_computed: True when ``evaluation.csv`` was missing and the rows were computed here.
        task_groups: task id -> known group label; None when the space has no groups.
    """

    context: RunContext
    record: dict[str, Any]
    estimates: dict[str, TransferabilityMatrix]
    truths: dict[str, TransferabilityMatrix]
    estimator: str
    estimator_reason: str
    main_protocol: str | None
    evaluation: tuple[dict[str, Any], ...]
    evaluation_computed: bool
    task_groups: dict[str, str] | None

    @property
    def run_dir(self) -> Path:
        return Path(self.context.run_dir)

    @property
    def matrix(self) -> TransferabilityMatrix:
        """The matrix of the chosen estimator."""
        return self.estimates[self.estimator]

    @property
    def main_truth(self) -> TransferabilityMatrix | None:
        return self.truths[self.main_protocol] if self.main_protocol is not None else None


def load_run_inputs(run_dir: str | Path, *, estimator: str | None, data_root: str | None) -> RunInputs:
    """Reopen the run in ``run_dir`` and read what a report shows.

    Raises:
        TaskspaceError: the folder is not a run, has no matrix, has no estimator ``estimator``, or a
            result file is damaged (each with its fix).
    """
    folder = Path(run_dir)
    context = _reopen(folder, data_root)
    estimates, truths = run_matrices(folder)
    name = choose_estimator(estimates, folder, requested=estimator)
    space = context.space
    evaluation, computed = _evaluation(folder, estimates, truths)
    return RunInputs(
        context=context,
        record=read_json(folder / "run.json"),
        estimates=estimates,
        truths=truths,
        estimator=name,
        estimator_reason=_estimator_reason(name, requested=estimator, folder=folder),
        main_protocol=choose_protocol(truths),
        evaluation=evaluation,
        evaluation_computed=computed,
        task_groups=space.task_groups() if space.groups else None,
    )


def _reopen(folder: Path, data_root: str | None) -> RunContext:
    if not folder.is_dir():
        raise TaskspaceError(f"'{folder}' is not a folder; pass a run folder made by `taskspace matrix`")
    return open_run(folder, None, data_root=data_root)


def _estimator_reason(name: str, *, requested: str | None, folder: Path) -> str:
    if requested is not None:
        return "as asked"
    if name == PREFERRED_ESTIMATOR:
        return "taskspace's kernel-family score"
    if any(row.get("estimator") == name for row in evaluation_rows(folder)):
        return "the best mean Kendall τ in evaluation.csv"
    return "the run's first estimator"


def _evaluation(
    folder: Path, estimates: dict[str, TransferabilityMatrix], truths: dict[str, TransferabilityMatrix]
) -> tuple[tuple[dict[str, Any], ...], bool]:
    """Rows of ``evaluation.csv`` for the run's estimators and protocols, or computed when it is missing."""
    if not truths:
        return (), False
    if not (folder / "evaluation.csv").is_file():
        return tuple(evaluate(estimates, truths)), True
    rows = evaluation_rows(folder)
    missing = [column for column in _REQUIRED_COLUMNS if rows and column not in rows[0]]
    if missing:
        raise TaskspaceError(
            f"'{folder / 'evaluation.csv'}' lacks column(s) {', '.join(missing)} (expected "
            f"{','.join(EVALUATION_COLUMNS)}); recompute it with `taskspace evaluate --run {folder}`"
        )
    parsed = [_parsed_row(row) for row in rows]
    return tuple(row for row in parsed if row["estimator"] in estimates and row["protocol"] in truths), False


def _parsed_row(row: dict[str, str]) -> dict[str, Any]:
    return {column: value if column in _TEXT_COLUMNS else _float(value) for column, value in row.items()}


def _float(text: str | None) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan
