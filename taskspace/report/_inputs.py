"""What a report is made of: the run, its matrices, ground truth, evaluation and the estimator to show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskspace.baselines import run_verdict
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner.run import (
    PREFERRED_ESTIMATOR,
    Run,
    choose_estimator,
    choose_protocol,
)

__all__ = ["RunInputs", "load_run_inputs"]


@dataclass(frozen=True)
class RunInputs:
    """Everything a report reads from a run.

    Attributes:
        run: the reopened run.
        record: the run's record (``run.json``).
        estimates: estimator name -> matrix, in the run's order.
        truths: protocol -> measured accuracies; empty when no ground truth was measured.
        estimator: the estimator the report is shown by.
        estimator_reason: why that one, as a phrase ("asked for", ...).
        requested: the estimator the report was asked to rank by (None: the run's own choice, the history
            ranker where the run has truth on enough targets).
        main_protocol: the ground truth the report leads with; None without ground truth.
        evaluation: rows of :func:`taskspace.baselines.run_verdict` (numbers as floats) for the run's
            protocols; empty without ground truth.
        evaluation_computed: True when the run held no verdict and the rows were computed here.
        task_groups: task id -> known group label; None when the space has no groups.
    """

    run: Run
    record: dict[str, Any]
    estimates: dict[str, TransferabilityMatrix]
    truths: dict[str, TransferabilityMatrix]
    estimator: str
    estimator_reason: str
    main_protocol: str | None
    evaluation: tuple[dict[str, Any], ...]
    evaluation_computed: bool
    task_groups: dict[str, str] | None
    requested: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.run.folder

    @property
    def matrix(self) -> TransferabilityMatrix:
        """The matrix of the chosen estimator."""
        return self.estimates[self.estimator]

    @property
    def main_truth(self) -> TransferabilityMatrix | None:
        return self.truths[self.main_protocol] if self.main_protocol is not None else None


def load_run_inputs(run: Run, *, estimator: str | None) -> RunInputs:
    """What a report of a trained run shows, read from the run.

    Raises:
        TaskspaceError: the run has no matrix, has no estimator ``estimator``, or a result file is
            damaged (each with its fix).
    """
    estimates, truths = run.estimates(), run.truths()
    verdict = run.verdict()  # read first: a damaged file is named even when it is out of date
    verdict = verdict if run.verdict_is_current() else []  # one older than the results is not shown
    name = choose_estimator(estimates, verdict, requested=estimator, run=run.folder)
    space = run.space
    evaluation, computed = _evaluation(run, verdict, truths)
    return RunInputs(
        run=run,
        record=run.record(),
        estimates=estimates,
        truths=truths,
        estimator=name,
        estimator_reason=_estimator_reason(name, requested=estimator, verdict=verdict),
        main_protocol=choose_protocol(truths),
        evaluation=evaluation,
        evaluation_computed=computed,
        task_groups=space.task_groups() if space.groups else None,
        requested=estimator,
    )


def _estimator_reason(name: str, *, requested: str | None, verdict: list[dict[str, Any]]) -> str:
    if requested is not None:
        return "as asked"
    if name == PREFERRED_ESTIMATOR:
        return "taskspace's default estimator (docs/default-estimator.md)"
    if any(row.get("estimator") == name for row in verdict):
        return "the best mean Kendall τ in evaluation.csv"
    return "the run's first estimator"


def _evaluation(run: Run, verdict: list[dict[str, Any]], truths: dict[str, TransferabilityMatrix]) -> tuple[
        tuple[dict[str, Any], ...], bool]:
    """The run's verdict rows for its protocols (every estimator, baseline and the history ranker), or
    computed as ``taskspace evaluate`` computes them when it has none (nothing is written)."""
    if not truths:
        return (), False
    if not verdict:
        return tuple(run_verdict(run, exclude_diagonal=True)), True
    return tuple(row for row in verdict if row["protocol"] in truths), False

