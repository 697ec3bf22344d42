"""The interval over targets every table prints: scipy's BCa bootstrap, with its degenerate cases named."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from taskspace.intervals import bootstrap_means, mean_interval


def test_the_interval_is_scipys_bca_on_the_same_draws() -> None:
    values = np.array([0.12, 0.55, 0.31, 0.72, 0.05, 0.48, 0.9, 0.33])
    expected = stats.bootstrap((values,), np.mean, n_resamples=2000, method="BCa",
                               rng=np.random.default_rng(3)).confidence_interval
    low, high = mean_interval(values, resamples=2000, rng=np.random.default_rng(3))
    assert (low, high) == (float(expected.low), float(expected.high))
    percentile = stats.bootstrap((values,), np.mean, n_resamples=2000, method="percentile",
                                 rng=np.random.default_rng(3)).confidence_interval
    assert (low, high) != (float(percentile.low), float(percentile.high))  # skewed values: BCa moves the ends


def test_degenerate_values_give_a_defined_interval_without_warnings(recwarn) -> None:
    assert all(math.isnan(v) for v in mean_interval(np.array([0.4]), resamples=100, rng=np.random.default_rng(0)))
    assert all(math.isnan(v) for v in mean_interval(np.array([0.4, 0.5]), resamples=0, rng=np.random.default_rng(0)))
    low, high, means = bootstrap_means(np.full(5, 0.25), resamples=50, rng=np.random.default_rng(0))
    assert (low, high) == (0.25, 0.25) and np.all(means == 0.25) and len(means) == 50
    rounded = np.array([1.0, 1.0, 0.9999999999999999, 1.0, 1.0])  # equal but for rounding: BCa would divide 0 by 0
    low, high = mean_interval(rounded, resamples=200, rng=np.random.default_rng(0))
    assert 0.9999999999999999 <= low <= high <= 1.0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
