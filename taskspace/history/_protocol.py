"""The field's model-selection protocol over a history: every ranker against the truth, per target.

Per target: weighted Kendall τ (``scipy.stats.weightedtau(score, accuracy)``, the convention of the
published model-selection code), Kendall τ, top-1 and top-3 regret. Over targets: means with a 95%
bootstrap interval (:mod:`taskspace.intervals`); every ranker's difference to the zoo prior, paired by
target, with a t interval (honest at the 5 to 8 targets public benchmarks have) and the bootstrap
interval beside it; and the truth's rank dispersion (how much of any ranker's τ a static order already
earns).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from taskspace.history._matrix import HISTORY
from taskspace.history._ranker import rank_with_history
from taskspace.history._signals import raw_prior
from taskspace.intervals import mean_interval

__all__ = ["HISTORY", "ZOO_PRIOR", "TargetResult", "target_result", "rank_dispersion", "history_protocol",
           "summarise", "leave_one_source_out"]

#: The target-blind baseline's name (the history ranker's is :data:`HISTORY`).
ZOO_PRIOR = "zoo_prior"

METRICS = ("weighted_tau", "kendall_tau", "top1_regret", "top3_regret")


@dataclass(frozen=True)
class TargetResult:
    """One ranker on one target: how its order agrees with the truth."""

    ranker: str
    target: str
    sources: int
    weighted_tau: float
    kendall_tau: float
    top1_regret: float
    top3_regret: float
    detail: dict[str, Any] = field(default_factory=dict)


def target_result(ranker: str, target: str, scores: np.ndarray, accuracy: np.ndarray, **detail: Any) -> TargetResult:
    """Agreement of ``scores`` (higher is better) with ``accuracy`` over the sources where both are finite.

    Ties in the scores are broken against the ranker for the regrets (the worst source among those
    sharing the top score is the pick), so a constant ranker earns no credit from the order of the rows.
    """
    scores, accuracy = np.asarray(scores, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    valid = np.isfinite(scores) & np.isfinite(accuracy)
    scores, accuracy = scores[valid], accuracy[valid]
    if len(scores) < 2:
        return TargetResult(ranker, target, len(scores), math.nan, math.nan, math.nan, math.nan, dict(detail))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        weighted = float(stats.weightedtau(scores, accuracy).statistic)
        kendall = float(stats.kendalltau(scores, accuracy).statistic)
    order = np.lexsort((accuracy, -scores))  # by score, high first; ties: the worst accuracy first
    best = accuracy.max()
    return TargetResult(ranker, target, len(scores), _nan_if_not_finite(weighted), _nan_if_not_finite(kendall),
                        float(best - accuracy[order[0]]), float(best - accuracy[order[:3]].max()), dict(detail))


def _nan_if_not_finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def rank_dispersion(truth: np.ndarray) -> float:
    """Mean Kendall τ between every two targets' true orders, over the sources measured on both: near 1,
    the zoo has one order for every target (a static ranker earns that τ for free); near 0, none."""
    truth = np.asarray(truth, dtype=np.float64)
    values = []
    for first, second in combinations(range(truth.shape[1]), 2):
        both = np.isfinite(truth[:, first]) & np.isfinite(truth[:, second])
        if both.sum() >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", stats.ConstantInputWarning)
                tau = stats.kendalltau(truth[both, first], truth[both, second]).statistic
            if math.isfinite(tau):
                values.append(tau)
    return float(np.mean(values)) if values else math.nan


def history_protocol(
    truth: np.ndarray,
    evidence: Mapping[str, np.ndarray],
    *,
    sources: Sequence[str],
    targets: Sequence[str],
) -> list[TargetResult]:
    """Every ranker on every target with a truth: ``history``, ``zoo_prior`` and each estimator alone.

    The history ranker and the prior read the other targets' truths only (leave-one-target-out).
    """
    truth = np.asarray(truth, dtype=np.float64)
    results = []
    for column, target in enumerate(targets):
        accuracy = truth[:, column]
        if np.isfinite(accuracy).sum() < 2:
            continue
        ranking = rank_with_history(truth, evidence, column, sources=sources, targets=targets)
        results.append(target_result(HISTORY, target, ranking.scores, accuracy, weights=ranking.weights,
                                     trust=ranking.trust()))
        results.append(target_result(ZOO_PRIOR, target, raw_prior(truth, column), accuracy))
        for name, values in evidence.items():
            scores = np.asarray(values, dtype=np.float64)[:, column]
            if np.isfinite(scores).any():
                results.append(target_result(name, target, scores, accuracy))
    return results


def leave_one_source_out(
    truth: np.ndarray,
    evidence: Mapping[str, np.ndarray],
    *,
    sources: Sequence[str],
    targets: Sequence[str],
) -> list[TargetResult]:
    """Each source in turn enters the zoo with no history: its truth on every target is hidden from the
    rankers (not from the scoring), and every target is ranked again.

    Per (newcomer, target): the ranker's weighted τ over all sources, and, in ``detail``, the newcomer's
    rank error (``|predicted rank - true rank|``, 1 = first). The zoo prior gives a newcomer the mean of
    the others' priors (the middle of the field).
    """
    truth = np.asarray(truth, dtype=np.float64)
    results = []
    for row, newcomer in enumerate(sources):
        hidden = truth.copy()
        hidden[row, :] = np.nan
        for column, target in enumerate(targets):
            accuracy = truth[:, column]
            if not np.isfinite(accuracy[row]) or np.isfinite(accuracy).sum() < 3:
                continue
            ranking = rank_with_history(hidden, evidence, column, sources=sources, targets=targets)
            prior = raw_prior(hidden, column)
            prior[row] = np.nanmean(np.delete(prior, row))
            for name, scores in ((HISTORY, ranking.scores), (ZOO_PRIOR, prior)):
                results.append(target_result(name, target, scores, accuracy, newcomer=newcomer,
                                             rank_error=_rank_error(scores, accuracy, row)))
    return results


def _rank_error(scores: np.ndarray, accuracy: np.ndarray, row: int) -> float:
    valid = np.isfinite(scores) & np.isfinite(accuracy)
    predicted = stats.rankdata(-scores[valid])
    true = stats.rankdata(-accuracy[valid])
    position = int(np.flatnonzero(valid).tolist().index(row))
    return float(abs(predicted[position] - true[position]))


def summarise(results: Sequence[TargetResult], *, baseline: str = ZOO_PRIOR, resamples: int = 10_000,
              seed: int = 0) -> list[dict[str, Any]]:
    """One row per ranker: each metric's mean over targets with a 95% bootstrap interval, and its mean
    difference to ``baseline`` paired by target, with a t interval and a bootstrap interval.

    Results that carry a ``newcomer`` are averaged per target first (so each target counts once).
    """
    by_ranker: dict[str, dict[str, dict[str, list[float]]]] = {}
    for result in results:
        per_target = by_ranker.setdefault(result.ranker, {})
        for metric in METRICS:
            per_target.setdefault(result.target, {}).setdefault(metric, []).append(getattr(result, metric))
    rows = []
    for ranker, per_target in by_ranker.items():
        row: dict[str, Any] = {"ranker": ranker, "targets": len(per_target)}
        for metric in METRICS:
            values = {target: float(np.nanmean(m[metric])) for target, m in per_target.items()
                      if np.isfinite(m[metric]).any()}
            row.update(_mean_interval(metric, np.array(list(values.values())), resamples=resamples, seed=seed))
            base = by_ranker.get(baseline, {})
            shared = [t for t in values if t in base and np.isfinite(base[t][metric]).any()]
            if ranker != baseline and len(shared) >= 2:
                differences = np.array([values[t] - float(np.nanmean(base[t][metric])) for t in shared])
                row.update(_paired(metric, differences, resamples=resamples, seed=seed))
        rows.append(row)
    return rows


def _mean_interval(metric: str, values: np.ndarray, *, resamples: int, seed: int) -> dict[str, float]:
    if len(values) == 0:
        return {metric: math.nan, f"{metric}_low": math.nan, f"{metric}_high": math.nan}
    low, high = _bootstrap(values, resamples=resamples, seed=seed)
    return {metric: float(values.mean()), f"{metric}_low": low, f"{metric}_high": high}


def _paired(metric: str, differences: np.ndarray, *, resamples: int, seed: int) -> dict[str, float]:
    n = len(differences)
    mean = float(differences.mean())
    half = float(stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n))
    low, high = _bootstrap(differences, resamples=resamples, seed=seed)
    return {f"{metric}_vs_prior": mean, f"{metric}_vs_prior_t_low": mean - half,
            f"{metric}_vs_prior_t_high": mean + half, f"{metric}_vs_prior_boot_low": low,
            f"{metric}_vs_prior_boot_high": high}


def _bootstrap(values: np.ndarray, *, resamples: int, seed: int) -> tuple[float, float]:
    """A 95% bootstrap interval of the mean, resampling targets (the same draws for every ranker)."""
    if len(values) < 2:
        return math.nan, math.nan
    return mean_interval(values, resamples=resamples, rng=np.random.default_rng(seed))
