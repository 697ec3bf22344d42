"""The signals the history ranker reads, each turned into a within-target centred rank.

A *history* is a sources x targets matrix of measured accuracies (NaN where a source was never measured
on a target) beside any number of sources x targets matrices of estimator values (higher is better).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["centred_ranks", "standardised_truth", "history_prior", "raw_prior"]


def centred_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of the finite ``values`` centred and scaled to ``[-1, 1]`` (ties share their mean rank);
    NaN (a missing signal) becomes 0, the middle. A single finite value is 0.

    Shape:
        values: ``(n,)``; returns ``(n,)``.
    """
    values = np.asarray(values, dtype=np.float64)
    ranked = np.zeros(len(values))
    finite = np.isfinite(values)
    count = int(finite.sum())
    if count >= 2:
        ranks = stats.rankdata(values[finite])  # 1 .. count
        ranked[finite] = (ranks - (count + 1) / 2) / ((count - 1) / 2)
    return ranked


def standardised_truth(truth: np.ndarray) -> np.ndarray:
    """Each target's accuracies standardised over the sources measured on it (``(a - mean) / std``);
    NaN where unmeasured, 0 on a target whose measured accuracies are all equal or single.

    Shape:
        truth: ``(sources, targets)``; returns the same shape.
    """
    truth = np.asarray(truth, dtype=np.float64)
    result = np.full(truth.shape, math.nan)
    for column in range(truth.shape[1]):
        values = truth[:, column]
        finite = np.isfinite(values)
        if not finite.any():
            continue
        spread = values[finite].std()
        result[finite, column] = (values[finite] - values[finite].mean()) / spread if spread > 0 else 0.0
    return result


def history_prior(standardised: np.ndarray, target: int, *, also_hidden: tuple[int, ...] = ()) -> np.ndarray:
    """Per source: the mean of its standardised accuracy over the targets other than ``target`` (and
    ``also_hidden``) where it was measured; NaN for a source with no such target.

    Shape:
        standardised: ``(sources, targets)`` from :func:`standardised_truth`; returns ``(sources,)``.
    """
    keep = np.ones(standardised.shape[1], dtype=bool)
    keep[[target, *also_hidden]] = False
    return _row_means(standardised[:, keep])


def raw_prior(truth: np.ndarray, target: int) -> np.ndarray:
    """The target-blind zoo prior: each source's mean raw accuracy on the other targets (NaN if none)."""
    keep = np.ones(truth.shape[1], dtype=bool)
    keep[target] = False
    return _row_means(np.asarray(truth, dtype=np.float64)[:, keep])


def _row_means(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    totals = np.where(finite, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / counts
    means[counts == 0] = math.nan
    return means
