"""Input checks shared by every estimator.

Each check returns the input converted to the dtype the estimators compute in (float64 features and
probabilities, int64 class codes) or raises :class:`~taskspace.errors.DataError` with a one-line
message that names the problem and the fix.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from taskspace.errors import ConfigError, DataError

__all__ = [
    "Target",
    "check_features",
    "check_labels",
    "check_features_labels",
    "check_source_probs",
    "check_source_accuracy",
    "check_positive_int",
    "check_positive_float",
    "check_class_sizes",
]

#: How far a row of ``source_probs`` may sum from 1 (float32 softmax outputs pass easily).
PROBABILITY_SUM_TOLERANCE = 1e-3


class Target(NamedTuple):
    """Target labels encoded as class codes.

    Attributes:
        codes: ``(n,)`` int64 codes in ``0 .. n_classes - 1`` (sorted order of the original labels).
        counts: ``(n_classes,)`` int64 number of samples per class, all ``>= 1``.
    """

    codes: np.ndarray
    counts: np.ndarray

    @property
    def n_classes(self) -> int:
        """Number of distinct classes."""
        return int(self.counts.shape[0])


def _as_numeric_array(values: Any, argument: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except Exception as error:  # e.g. ragged lists
        raise DataError(f"{argument} cannot be read as an array ({error}); pass a numpy array") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise DataError(f"{argument} must be numeric, got dtype {array.dtype}; pass a numeric numpy array")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(f"{argument} must be real, got dtype {array.dtype}; pass a real-valued array")
    return array


def _first_non_finite(array: np.ndarray) -> tuple[int, float]:
    """Row index and value of the first non-finite entry of a 2-D float array (one must exist)."""
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    row = int(bad_rows[0])
    column = int(np.flatnonzero(~np.isfinite(array[row]))[0])
    return row, float(array[row, column])


def check_features(features: Any) -> np.ndarray:
    """Return ``features`` as a finite float64 ``(n, d)`` array with ``n, d >= 1``.

    Raises:
        DataError: not 2-D, empty, non-numeric, or containing NaN/inf (the first bad row is named).
    """
    array = _as_numeric_array(features, "features")
    if array.ndim != 2:
        raise DataError(
            f"features must be a 2-D array (n, d), got shape {array.shape}; "
            "reshape to (n_samples, n_features)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"features are empty (shape {array.shape}); pass at least one sample and one feature")
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        row, value = _first_non_finite(array)
        kind = "NaN" if np.isnan(value) else "inf"
        raise DataError(
            f"features contain {kind} at row {row}; drop or impute non-finite feature rows before scoring"
        )
    return array


def check_labels(labels: Any, n_samples: int | None = None, *, rows_of: str = "features") -> Target:
    """Encode integer-like ``labels`` of shape ``(n,)`` as class codes; at least 2 classes.

    Args:
        labels: ``(n,)`` integer class ids (integral floats and booleans are accepted).
        n_samples: expected length (the number of feature rows), or ``None`` to skip that check.
        rows_of: what ``n_samples`` counts the rows of, for the message ("features", "source_probs").

    Raises:
        DataError: wrong shape or length, non-integer values, or fewer than 2 classes.
    """
    array = _as_numeric_array(labels, "labels")
    if array.ndim != 1:
        raise DataError(
            f"labels must be a 1-D array (n,), got shape {array.shape}; pass one class id per sample"
        )
    if n_samples is not None and array.shape[0] != n_samples:
        raise DataError(
            f"{rows_of} have {n_samples} rows but labels have {array.shape[0]} entries; "
            f"pass exactly one label per {rows_of} row"
        )
    if array.shape[0] == 0:
        raise DataError("labels are empty; pass one class id per sample")
    if np.issubdtype(array.dtype, np.floating):
        integral = np.isfinite(array) & (array == np.round(array))
        if not integral.all():
            position = int(np.flatnonzero(~integral)[0])
            raise DataError(
                f"labels must be integer class ids, got {array[position]!r} at position {position}; "
                "encode classes as integers (e.g. np.unique(labels, return_inverse=True))"
            )
    classes, codes, counts = np.unique(array, return_inverse=True, return_counts=True)
    if classes.shape[0] < 2:
        raise DataError(
            f"labels contain a single class ({classes[0]!r}); a transferability score needs a target "
            "with at least 2 classes"
        )
    return Target(codes.astype(np.int64).reshape(-1), counts.astype(np.int64))


def check_features_labels(features: Any, labels: Any) -> tuple[np.ndarray, Target]:
    """:func:`check_features` and :func:`check_labels` with matching lengths."""
    array = check_features(features)
    return array, check_labels(labels, array.shape[0])


def check_source_probs(source_probs: Any, n_samples: int | None = None, *, estimator: str = "") -> np.ndarray:
    """Return ``source_probs`` as a float64 ``(n, c)`` array whose rows sum to 1.

    Rows must be non-negative and sum to 1 within :data:`PROBABILITY_SUM_TOLERANCE`; they are then
    renormalised exactly.

    Raises:
        DataError: missing, wrong shape or length, non-finite, negative or not summing to 1.
    """
    who = f"estimator '{estimator}' " if estimator else ""
    if source_probs is None:
        raise DataError(
            f"{who}needs source_probs (n, c): pass the source classifier's softmax outputs "
            "on the target samples"
        )
    array = _as_numeric_array(source_probs, "source_probs")
    if array.ndim != 2 or array.shape[1] == 0:
        raise DataError(
            f"source_probs must be a 2-D array (n, c) of source-class probabilities, got shape {array.shape}"
        )
    if n_samples is not None and array.shape[0] != n_samples:
        raise DataError(
            f"source_probs have {array.shape[0]} rows but there are {n_samples} samples; "
            "pass one row of source probabilities per target sample"
        )
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        row, value = _first_non_finite(array)
        kind = "NaN" if np.isnan(value) else "inf"
        raise DataError(f"source_probs contain {kind} at row {row}; pass finite softmax probabilities")
    if (array < 0).any():
        row = int(np.flatnonzero((array < 0).any(axis=1))[0])
        raise DataError(
            f"source_probs have a negative entry at row {row}; pass softmax probabilities, not logits"
        )
    sums = array.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            f"source_probs row {row} sums to {sums[row]:.6g}, not 1; pass softmax probabilities "
            "(apply softmax to logits)"
        )
    return np.asarray(array / sums[:, None])


def check_source_accuracy(source_accuracy: Any, *, estimator: str = "") -> float:
    """Return ``source_accuracy`` as a finite float.

    Raises:
        DataError: missing, not a real number, or not finite.
    """
    who = f"estimator '{estimator}' " if estimator else ""
    if source_accuracy is None:
        raise DataError(
            f"{who}needs source_accuracy: pass the source model's accuracy on its own task (a float)"
        )
    if isinstance(source_accuracy, bool) or not isinstance(source_accuracy, numbers.Real):
        raise DataError(
            f"source_accuracy must be a real number, got {type(source_accuracy).__name__}; pass a float"
        )
    value = float(source_accuracy)
    if not np.isfinite(value):
        raise DataError(f"source_accuracy is {value}; pass the finite accuracy of the source model")
    return value


def check_positive_int(value: Any, argument: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum``; else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(value: Any, argument: str) -> float:
    """Return ``value`` as a finite float ``> 0``; else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < float(value) < np.inf):
        raise ConfigError(f"{argument} must be a finite number > 0, got {value!r}")
    return float(value)


def check_class_sizes(target: Target, *, minimum: int, estimator: str, purpose: str) -> int:
    """The smallest class's size; :class:`DataError` when it is below ``minimum`` (``purpose`` says why)."""
    smallest = int(target.counts.min())
    if smallest < minimum:
        raise DataError(
            f"{estimator} needs at least {minimum} samples per class {purpose}, but a class has {smallest}; "
            f"add samples or use another estimator"
        )
    return smallest
