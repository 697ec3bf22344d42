"""The 95% interval of a mean over targets that every table of taskspace prints.

BCa bootstrap (``scipy.stats.bootstrap(method="BCa")``), chosen by a rule declared before the measurement
(``benchmarks/interval_coverage.py``, results in ``benchmarks/results/interval_coverage.json``): on
per-target values of real runs, at 6 to 15 targets, it covered the mean more often than the percentile
interval, for widths a few percent larger. Every bootstrap interval over so few targets covers less than
95%; the paired t interval printed beside differences to the zoo prior covered more, at a larger width.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

__all__ = ["METHOD", "bootstrap_means", "mean_interval"]

#: The bootstrap interval's method (scipy's name).
METHOD = "BCa"


def bootstrap_means(values: np.ndarray, *, resamples: int,
                    rng: np.random.Generator) -> tuple[float, float, np.ndarray]:
    """A 95% bootstrap interval of ``values.mean()`` and the ``resamples`` resampled means, resampling the
    values (targets) with ``rng``. ``(nan, nan, [])`` for fewer than 2 values or no resamples; ``(v, v,
    [v, ...])`` when every value is v (BCa's acceleration is 0/0 there), and the percentile interval when
    they differ by rounding only."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or resamples == 0:
        return math.nan, math.nan, np.zeros(0)
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0]), np.full(resamples, float(values[0]))
    # values equal but for rounding (1 and 0.9999999999999999) leave BCa's acceleration 0/0: percentile there
    spread = np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((values,), np.mean, n_resamples=resamples, method=METHOD if spread else "percentile",
                                 rng=rng, vectorized=True)
    interval = result.confidence_interval
    return float(interval.low), float(interval.high), np.asarray(result.bootstrap_distribution)


def mean_interval(values: np.ndarray, *, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """The 95% bootstrap interval of :func:`bootstrap_means` alone."""
    low, high, _ = bootstrap_means(values, resamples=resamples, rng=rng)
    return low, high
