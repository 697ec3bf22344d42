"""The history ranker: a target's sources ranked from the truth measured on the other targets and the
target's own estimator values, combined with weights learned on the other targets only.

The rule (``docs/history.md``, written before any benchmark was run): every signal is a within-target
centred rank; the prior is a source's mean standardised accuracy on the other targets; the weights are
those of a ridge regression (penalty 1, no intercept) of the standardised accuracy on the signals over
the other targets' rows, each row's prior computed without its own target *and* the ranked one. The
ranked target's truth is read by nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from taskspace.errors import TaskspaceError
from taskspace.history._signals import centred_ranks, history_prior, standardised_truth

__all__ = ["PRIOR", "HistoryRanking", "rank_with_history"]

#: The name of the prior's signal among the weights.
PRIOR = "prior"

#: The ridge penalty, fixed by the rule (the signals are in [-1, 1], the response standardised).
PENALTY = 1.0


@dataclass(frozen=True)
class HistoryRanking:
    """The history ranker's scores on one target, with what each signal contributed.

    Attributes:
        target: the ranked target's id.
        sources: the ranked sources, in the history's order.
        scores: ``(sources,)`` higher is better: ``prior_part + evidence_part``.
        prior_part: ``(sources,)`` the prior's weight times the source's prior rank.
        evidence_part: ``(sources,)`` the estimators' weighted ranks, summed.
        weights: signal -> learned weight (``prior`` and every estimator used as evidence).
        has_history: ``(sources,)`` whether the source was measured on some other target.
        training_targets: how many other targets the weights were learned on.
        training_rows: how many (source, target) rows.
    """

    target: str
    sources: tuple[str, ...]
    scores: np.ndarray
    prior_part: np.ndarray
    evidence_part: np.ndarray
    weights: dict[str, float]
    has_history: np.ndarray
    training_targets: int
    training_rows: int

    def trust(self) -> dict[str, float]:
        """How much this target's ranking rests on the prior and on the evidence: each side's share of
        the absolute weight (the two shares sum to 1)."""
        prior = abs(self.weights.get(PRIOR, 0.0))
        evidence = sum(abs(weight) for name, weight in self.weights.items() if name != PRIOR)
        total = prior + evidence
        return {"prior": prior / total if total else 0.0, "evidence": evidence / total if total else 0.0}


def rank_with_history(
    truth: np.ndarray,
    evidence: Mapping[str, np.ndarray],
    target: int,
    *,
    sources: Sequence[str],
    targets: Sequence[str],
    penalty: float = PENALTY,
) -> HistoryRanking:
    """Rank every source on ``targets[target]`` with the history ranker.

    Args:
        truth: ``(sources, targets)`` measured accuracies, NaN where unmeasured; column ``target`` is
            never read.
        evidence: estimator -> ``(sources, targets)`` values, higher is better, NaN where missing; the
            estimators with a value on the target are used.
        target: the column to rank.
        sources: the row ids.
        targets: the column ids.
        penalty: the ridge penalty (the rule fixes it at 1).

    Returns:
        The :class:`HistoryRanking` of the target.

    Raises:
        TaskspaceError: no other target has a truth over two sources or more (nothing to learn from).
    """
    truth = np.asarray(truth, dtype=np.float64)
    n_sources, n_targets = truth.shape
    hidden = truth.copy()
    hidden[:, target] = np.nan  # the ranked target's truth enters nothing below
    used = [name for name, values in evidence.items() if np.isfinite(np.asarray(values)[:, target]).any()]
    standardised = standardised_truth(hidden)

    rows_x, rows_y, trained_on = [], [], 0
    for other in range(n_targets):
        measured = np.isfinite(hidden[:, other])
        if other == target or measured.sum() < 2:
            continue
        prior = history_prior(standardised, other, also_hidden=(target,))[measured]
        signals = [centred_ranks(prior)] + [centred_ranks(np.asarray(evidence[name], dtype=np.float64)[measured, other])
                                            for name in used]
        rows_x.append(np.column_stack(signals))
        rows_y.append(standardised[measured, other])
        trained_on += 1
    if not trained_on:
        raise TaskspaceError(
            f"no target but '{targets[target]}' has a measured truth over two sources or more; the history "
            "ranker learns from other targets' truths (measure or import some)"
        )
    features, response = np.vstack(rows_x), np.concatenate(rows_y)
    weights = np.linalg.solve(features.T @ features + penalty * np.eye(features.shape[1]), features.T @ response)

    prior = history_prior(standardised, target)
    prior_ranks = centred_ranks(prior)
    evidence_ranks = [centred_ranks(np.asarray(evidence[name], dtype=np.float64)[:, target]) for name in used]
    prior_part = weights[0] * prior_ranks
    evidence_part = (np.column_stack(evidence_ranks) @ weights[1:]) if used else np.zeros(n_sources)
    return HistoryRanking(
        target=targets[target], sources=tuple(sources), scores=prior_part + evidence_part,
        prior_part=prior_part, evidence_part=evidence_part,
        weights={PRIOR: float(weights[0]), **{name: float(w) for name, w in zip(used, weights[1:], strict=True)}},
        has_history=np.isfinite(prior), training_targets=trained_on, training_rows=len(response),
    )
