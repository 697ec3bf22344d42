"""The history ranker over a run's matrices: a ``history`` matrix beside the estimators' ones."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from taskspace.errors import TaskspaceError
from taskspace.history._ranker import HistoryRanking, rank_with_history
from taskspace.matrix import TransferabilityMatrix

__all__ = ["HISTORY", "NOT_EVIDENCE", "history_matrix", "history_ranking"]

#: The name the history ranker is shown by, in ``evaluation.csv`` and ``recommend``.
HISTORY = "history"

#: Rankers that are not forward-pass evidence about a target (they are never fed to the history ranker).
NOT_EVIDENCE = frozenset({HISTORY, "zoo_prior", "source_size"})


def _aligned(truth: TransferabilityMatrix, estimates: Mapping[str, TransferabilityMatrix], *,
             exclude_diagonal: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The truth and every estimate as arrays over the truth's sources and targets (higher is better)."""
    sources, targets = truth.sources, truth.targets
    values = np.asarray(truth.scores, dtype=np.float64).copy()
    evidence = {}
    for name, estimate in estimates.items():
        if name in NOT_EVIDENCE:
            continue
        rows = [estimate.sources.index(s) if s in estimate.sources else -1 for s in sources]
        columns = [estimate.targets.index(t) if t in estimate.targets else -1 for t in targets]
        matrix = np.full((len(sources), len(targets)), math.nan)
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                if row >= 0 and column >= 0:
                    matrix[i, j] = estimate.scores[row, column]
        evidence[name] = matrix if estimate.greater_is_better else -matrix
    if exclude_diagonal:  # a source's own task is not a transfer: neither learned from nor ranked
        for i, source in enumerate(sources):
            if source in targets:
                j = targets.index(source)
                values[i, j] = math.nan
                for matrix in evidence.values():
                    matrix[i, j] = math.nan
    return values, evidence


def history_ranking(truth: TransferabilityMatrix, estimates: Mapping[str, TransferabilityMatrix], target: str, *,
                    exclude_diagonal: bool = False) -> HistoryRanking:
    """The history ranker on ``target``, from ``truth`` of the other targets and every estimate on it.

    Raises:
        TaskspaceError: ``target`` is not a column of ``truth``, or no other target has a truth.
    """
    if target not in truth.targets:
        raise TaskspaceError(f"the ground truth '{truth.estimator}' has no target '{target}'")
    values, evidence = _aligned(truth, estimates, exclude_diagonal=exclude_diagonal)
    return rank_with_history(values, evidence, truth.targets.index(target), sources=truth.sources,
                             targets=truth.targets)


def history_matrix(truth: TransferabilityMatrix, estimates: Mapping[str, TransferabilityMatrix], *,
                   exclude_diagonal: bool = False, hide: str | None = None) -> TransferabilityMatrix:
    """The ``history`` matrix: each target's column ranked from the *other* targets' truth (leave one
    target out) and every estimate on it; NaN for a target with nothing to learn from.

    Args:
        truth: the ground truth (sources x targets).
        estimates: every estimator's matrix of the run (baselines are left out).
        exclude_diagonal: leave out the cells where a source's own task is the target.
        hide: a target whose truth no column may read (for a prediction on it: its truth enters neither
            its own column nor, through the others' priors, any other).
    """
    values, evidence = _aligned(truth, estimates, exclude_diagonal=exclude_diagonal)
    if hide is not None:
        values[:, truth.targets.index(hide)] = math.nan
    scores = np.full(values.shape, math.nan)
    for column in range(len(truth.targets)):
        try:
            ranking = rank_with_history(values, evidence, column, sources=truth.sources, targets=truth.targets)
        except TaskspaceError:
            continue
        scores[:, column] = ranking.scores
    if exclude_diagonal:
        for i, source in enumerate(truth.sources):
            if source in truth.targets:
                scores[i, truth.targets.index(source)] = math.nan
    return TransferabilityMatrix(scores, truth.sources, truth.targets, HISTORY, provenance={
        "ranker": "history (docs/history.md): the other targets' truth and every estimator, weights learned "
                  "leaving the target out", "protocol": truth.estimator, "evidence": sorted(evidence)})
