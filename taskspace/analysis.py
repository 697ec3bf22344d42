"""How well an estimate predicts the measured truth: rank correlations per target, regret, bootstrap.

For each target the sources are ranked by the estimator and by the ground truth (the diagonal, a
target's own module, is left out by default: it is not a transfer). Per target: Kendall τ, weighted
τ (top ranks weigh more; scipy.stats.weightedtau), Spearman ρ and the top-1 regret (accuracy of the
best source minus that of the source the estimator ranks first). Over targets: the mean, with a
BCa bootstrap interval that resamples targets (:mod:`taskspace.intervals`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from taskspace.errors import TaskspaceError
from taskspace.intervals import bootstrap_means, mean_interval
from taskspace.matrix import TransferabilityMatrix

__all__ = [
    "TargetAgreement",
    "per_target_agreement",
    "evaluate",
    "compare_estimators",
    "paired_to_prior",
    "EVALUATION_COLUMNS",
]

EVALUATION_COLUMNS = (
    "estimator", "protocol", "kendall_tau", "kendall_tau_low", "kendall_tau_high", "weighted_tau",
    "weighted_tau_low", "weighted_tau_high", "spearman", "top1_regret", "top1_regret_low", "top1_regret_high",
    "targets", "top3_regret", "top3_regret_low", "top3_regret_high", "cells", "rank_dispersion",
    "weighted_tau_vs_prior", "weighted_tau_vs_prior_low", "weighted_tau_vs_prior_high",
)


@dataclass(frozen=True)
class TargetAgreement:
    """Agreement of an estimate with the truth on one target."""

    target: str
    kendall_tau: float
    weighted_tau: float
    spearman: float
    top1_regret: float
    top3_regret: float = math.nan
    cells: int = 0


def per_target_agreement(
    estimate: TransferabilityMatrix, truth: TransferabilityMatrix, *, exclude_diagonal: bool = True
) -> list[TargetAgreement]:
    """One :class:`TargetAgreement` per target the two matrices share."""
    sources = [s for s in estimate.sources if s in truth.sources]
    targets = [t for t in estimate.targets if t in truth.targets]
    if len(sources) < 2 or not targets:
        raise TaskspaceError("estimate and truth share fewer than two sources or no target; compare the same run")
    rows = []
    for target in targets:
        kept = [s for s in sources if not (exclude_diagonal and s == target)]
        predicted = np.array([estimate.score(s, target) for s in kept])
        measured = np.array([truth.score(s, target) for s in kept])
        if not estimate.greater_is_better:
            predicted = -predicted
        valid = np.isfinite(predicted) & np.isfinite(measured)
        predicted, measured = predicted[valid], measured[valid]
        if len(predicted) < 2:
            rows.append(TargetAgreement(target, math.nan, math.nan, math.nan, math.nan, math.nan, len(predicted)))
            continue
        # ties in the estimate are broken against it (the worst of the sources sharing the top score)
        order = np.lexsort((measured, -predicted))
        with warnings.catch_warnings():
            # A constant column has no ranking: the correlations are NaN, which is what we report.
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            rows.append(
                TargetAgreement(
                    target=target,
                    kendall_tau=_finite_or_nan(stats.kendalltau(predicted, measured).statistic),
                    weighted_tau=_finite_or_nan(stats.weightedtau(predicted, measured).statistic),
                    spearman=_finite_or_nan(stats.spearmanr(predicted, measured).statistic),
                    top1_regret=float(measured.max() - measured[int(np.argmax(predicted))]),
                    top3_regret=float(measured.max() - measured[order[:3]].max()),
                    cells=len(predicted),
                )
            )
    return rows


def _finite_or_nan(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _mean_with_interval(values: np.ndarray, *, rng: np.random.Generator, resamples: int) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if len(finite) == 1 or resamples == 0:
        return mean, math.nan, math.nan
    low, high = mean_interval(finite, resamples=resamples, rng=rng)
    return mean, low, high


def evaluate(
    estimates: Mapping[str, TransferabilityMatrix],
    truths: Mapping[str, TransferabilityMatrix],
    *,
    resamples: int = 2000,
    seed: int = 0,
    exclude_diagonal: bool = True,
) -> list[dict[str, Any]]:
    """One row per (estimator, protocol): mean per-target agreement with 95% bootstrap intervals.

    Beside the means: ``cells``, how many (source, target) cells the row used (an incomplete matrix
    uses fewer), and ``rank_dispersion``, the truth's mean Kendall τ between every two targets' orders
    (how much of any ranker's τ a static order earns). The ``weighted_tau_vs_prior`` columns are NaN
    here; :func:`paired_to_prior` fills them.
    """
    from taskspace.history import rank_dispersion

    dispersion = {protocol: rank_dispersion(_masked(truth, exclude_diagonal)) for protocol, truth in truths.items()}
    rows = []
    for estimator, estimate in estimates.items():
        for protocol, truth in truths.items():
            agreements = per_target_agreement(estimate, truth, exclude_diagonal=exclude_diagonal)
            # the targets the means are over: those where both rankings exist (a truth measured on some
            # targets only leaves the others out)
            measured = sum(1 for agreement in agreements if math.isfinite(agreement.kendall_tau))
            row: dict[str, Any] = {"estimator": estimator, "protocol": protocol, "targets": measured,
                                   "cells": sum(agreement.cells for agreement in agreements),
                                   "rank_dispersion": dispersion[protocol], "weighted_tau_vs_prior": math.nan,
                                   "weighted_tau_vs_prior_low": math.nan, "weighted_tau_vs_prior_high": math.nan}
            for metric in ("kendall_tau", "weighted_tau", "top1_regret", "top3_regret"):
                values = np.array([getattr(agreement, metric) for agreement in agreements])
                # The same resampled targets for every row, so intervals of two estimators are paired.
                rng = np.random.default_rng(seed)
                mean, low, high = _mean_with_interval(values, rng=rng, resamples=resamples)
                row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
            spearman = np.array([agreement.spearman for agreement in agreements])
            row["spearman"] = float(np.nanmean(spearman)) if np.isfinite(spearman).any() else math.nan
            rows.append(row)
    return rows


def _masked(truth: TransferabilityMatrix, exclude_diagonal: bool) -> np.ndarray:
    values = np.asarray(truth.scores, dtype=np.float64).copy()
    if exclude_diagonal:
        for i, source in enumerate(truth.sources):
            if source in truth.targets:
                values[i, truth.targets.index(source)] = math.nan
    return values


def paired_to_prior(
    rows: list[dict[str, Any]],
    estimates: Mapping[str, TransferabilityMatrix],
    priors: Mapping[str, TransferabilityMatrix],
    truths: Mapping[str, TransferabilityMatrix],
    *,
    exclude_diagonal: bool = True,
) -> list[dict[str, Any]]:
    """Fill each row's ``weighted_tau_vs_prior`` columns: its mean weighted τ minus the zoo prior's, paired
    by target, with a 95% t interval over the targets both rank (honest at a handful of targets, where a
    bootstrap interval is too narrow)."""
    for row in rows:
        estimate = estimates.get(row["estimator"])
        prior, truth = priors.get(row["protocol"]), truths.get(row["protocol"])
        if estimate is None or prior is None or truth is None or row["estimator"] == prior.estimator:
            continue
        mine, theirs = ({agreement.target: agreement.weighted_tau
                         for agreement in per_target_agreement(matrix, truth, exclude_diagonal=exclude_diagonal)}
                        for matrix in (estimate, prior))
        differences = np.array([mine[t] - theirs[t] for t in mine
                                if t in theirs and math.isfinite(mine[t]) and math.isfinite(theirs[t])])
        if len(differences) < 2:
            continue
        mean = float(differences.mean())
        half = float(stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1) / math.sqrt(len(differences)))
        row.update({"weighted_tau_vs_prior": mean, "weighted_tau_vs_prior_low": mean - half,
                    "weighted_tau_vs_prior_high": mean + half})
    return rows


def compare_estimators(
    first: TransferabilityMatrix,
    second: TransferabilityMatrix,
    truth: TransferabilityMatrix,
    *,
    resamples: int = 2000,
    seed: int = 0,
    exclude_diagonal: bool = True,
) -> dict[str, Any]:
    """Is ``first`` really better than ``second`` at ranking the sources? A paired bootstrap over targets.

    Per target the difference of the two Kendall τ; the mean difference over targets with a 95%
    bootstrap interval (:mod:`taskspace.intervals`) from ``resamples`` resamples of the targets (the same
    targets for both, so the comparison is paired), and the share of resamples in which ``first`` is
    ahead. An interval that holds 0 says the data cannot tell the two apart.

    Returns:
        ``{"first", "second", "protocol", "targets", "difference", "low", "high", "share_first_ahead"}``.

    Raises:
        TaskspaceError: fewer than two targets where both estimators have a τ.
    """
    tau_first = {row.target: row.kendall_tau
                 for row in per_target_agreement(first, truth, exclude_diagonal=exclude_diagonal)}
    tau_second = {row.target: row.kendall_tau
                  for row in per_target_agreement(second, truth, exclude_diagonal=exclude_diagonal)}
    shared = [t for t in tau_first if t in tau_second and math.isfinite(tau_first[t]) and math.isfinite(tau_second[t])]
    if len(shared) < 2:
        raise TaskspaceError(
            f"'{first.estimator}' and '{second.estimator}' share {len(shared)} targets with a rank correlation; "
            "a comparison needs at least 2"
        )
    differences = np.array([tau_first[t] - tau_second[t] for t in shared])
    low, high, means = bootstrap_means(differences, resamples=resamples, rng=np.random.default_rng(seed))
    return {
        "first": first.estimator, "second": second.estimator, "protocol": truth.estimator, "targets": len(shared),
        "difference": float(differences.mean()), "low": low, "high": high,
        "share_first_ahead": float((means > 0).mean()) if len(means) else math.nan,
    }


