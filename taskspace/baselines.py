"""Target-blind rankers shown beside every estimator in every run's verdict, and that verdict.

They ignore the target's images, so an estimator that does not beat them does not earn its forward
passes. Static rankers of this kind are strong on real model zoos (a source that transfers well to
the other targets tends to transfer well to this one), and a verdict that hides them misleads.

- ``zoo_prior``: a module's mean measured accuracy on the *other* targets, for the same protocol
  (leave-one-target-out: the target's own measurement is never used);
- ``source_size``: the parameters of the network up to the module's layer (bigger first);
- ``source_accuracy`` is an estimator of the registry (the source's own accuracy, from the zoo file).

Beside them the ``history`` ranker (:mod:`taskspace.history`), which learns from the other targets'
truth how to weigh that prior against the target's own estimator values; every row carries its mean
weighted τ minus the zoo prior's, paired by target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from taskspace.matrix import TransferabilityMatrix

__all__ = ["BASELINES", "zoo_prior", "source_size", "baseline_matrices", "run_verdict"]

#: The names of the target-blind rankers (``source_accuracy`` is among the estimators when scored).
BASELINES = ("zoo_prior", "source_size", "source_accuracy")


def zoo_prior(truth: TransferabilityMatrix, *, exclude_diagonal: bool = False) -> TransferabilityMatrix:
    """``prior[m, t]`` = mean of ``truth[m, t']`` over every other target ``t'`` with a measurement
    (``exclude_diagonal``: and not the module's own task, where its accuracy is no transfer)."""
    scores = np.array(truth.scores, dtype=np.float64)
    if exclude_diagonal:
        for row, source in enumerate(truth.sources):
            if source in truth.targets:
                scores[row, truth.targets.index(source)] = math.nan
    measured = np.isfinite(scores)
    totals = np.where(measured, scores, 0.0).sum(axis=1, keepdims=True)
    counts = measured.sum(axis=1, keepdims=True)
    others = counts - measured
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = (totals - np.where(measured, scores, 0.0)) / others
    prior[others == 0] = math.nan
    return TransferabilityMatrix(prior, truth.sources, truth.targets, "zoo_prior",
                                 provenance={"baseline": "mean measured accuracy on the other targets",
                                             "protocol": truth.estimator})


def source_size(sizes: Mapping[str, Mapping[str, Any]], sources: tuple[str, ...],
                targets: tuple[str, ...]) -> TransferabilityMatrix | None:
    """log10 of each module's parameters, the same on every target; None when no module's count is known."""
    values = np.array([math.log10(sizes[m]["parameters"]) if sizes.get(m, {}).get("parameters") else math.nan
                       for m in sources])
    if not np.isfinite(values).any():
        return None
    return TransferabilityMatrix(np.repeat(values[:, None], len(targets), axis=1), sources, targets, "source_size",
                                 provenance={"baseline": "log10 parameters up to the layer"})


def baseline_matrices(run: Any, truths: Mapping[str, TransferabilityMatrix], *,
                      exclude_diagonal: bool = False) -> tuple[dict[str, TransferabilityMatrix],
                                                               dict[str, TransferabilityMatrix]]:
    """The run's target-blind rankers: those the same for every protocol, and the zoo prior per protocol."""
    shared: dict[str, TransferabilityMatrix] = {}
    size = source_size(run.module_sizes(), run.modules, run.target_ids)
    if size is not None:
        shared["source_size"] = size
    return shared, {protocol: zoo_prior(truth, exclude_diagonal=exclude_diagonal) for protocol, truth in truths.items()}


def run_verdict(run: Any, *, resamples: int = 2000, seed: int = 0,
                exclude_diagonal: bool = False) -> list[dict[str, Any]]:
    """The verdict of every kind of run: every estimator, baseline and the history ranker against every
    ground truth, rows of :func:`taskspace.analysis.evaluate`, each with its paired difference to the zoo
    prior. ``exclude_diagonal``: a module's own task is neither ranked, learned from nor averaged into the
    prior (a trained run's diagonal)."""
    from taskspace.analysis import evaluate, paired_to_prior
    from taskspace.history import HISTORY, history_matrix

    estimates, truths = run.estimates(), run.truths()
    shared, priors = baseline_matrices(run, truths, exclude_diagonal=exclude_diagonal)
    rows = evaluate({**estimates, **shared}, truths, resamples=resamples, seed=seed,
                    exclude_diagonal=exclude_diagonal) if (estimates or shared) else []
    for protocol, prior in priors.items():
        truth = {protocol: truths[protocol]}
        history = history_matrix(truths[protocol], estimates, exclude_diagonal=exclude_diagonal)
        own = evaluate({"zoo_prior": prior, HISTORY: history}, truth, resamples=resamples, seed=seed,
                       exclude_diagonal=exclude_diagonal)
        rows += paired_to_prior(own, {HISTORY: history}, {protocol: prior}, truth, exclude_diagonal=exclude_diagonal)
    return paired_to_prior(rows, {**estimates, **shared}, priors, truths, exclude_diagonal=exclude_diagonal)
