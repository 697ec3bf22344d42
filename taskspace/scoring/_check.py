"""The contract every estimator meets, as one function a third party can run on its own estimator.

::

    from taskspace.scoring import Estimator, check_estimator, register_estimator

    @register_estimator("mine", citation="Me et al. 2026")
    def mine(features, labels):
        \"\"\"My score.\"\"\"
        ...

    check_estimator("mine")          # raises AssertionError naming the first check it fails

The checks are those taskspace's own estimators pass (``tests/test_scoring_contract.py`` runs them over
the whole registry), in the manner of scikit-learn's ``check_estimator``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from scipy.special import softmax

from taskspace.errors import DataError, TaskspaceError
from taskspace.scoring._registry import Estimator, get_estimator

__all__ = ["check_estimator", "ESTIMATOR_CHECKS"]

_N, _D, _C, _C_SOURCE = 150, 8, 3, 4

Blobs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _blobs(seed: int = 0) -> Blobs:
    """Non-negative features in ``_C`` well-separated clusters, and a source softmax that tracks them."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(_C), _N // _C)
    centres = 3.0 * rng.normal(size=(_C, _D))
    features = np.maximum(centres[labels] + rng.normal(size=(_N, _D)), 0.0)
    logits = 4.0 * np.eye(_C_SOURCE)[labels] + 0.5 * rng.normal(size=(_N, _C_SOURCE))
    return features, labels, softmax(logits, axis=1)


def _call(estimator: Estimator, features: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> float:
    return estimator(features, labels, source_probs=probs, source_accuracy=0.8)


def _metadata(estimator: Estimator, blobs: Blobs) -> None:
    assert estimator.greater_is_better is True, "greater_is_better must be True (negate lower-is-better scores)"
    assert estimator.needs <= {"features", "source_probs", "source_accuracy"}, f"unknown needs {estimator.needs}"
    assert estimator.citation and estimator.description, "a citation and a one-line description are required"


def _finite_and_deterministic(estimator: Estimator, blobs: Blobs) -> None:
    first = _call(estimator, *blobs)
    assert type(first) is float and math.isfinite(first), f"returned {first!r}, not a finite float"
    assert _call(estimator, *blobs) == first, "two calls on the same inputs gave different scores"


def _separable_beats_random(estimator: Estimator, blobs: Blobs) -> None:
    if not estimator.uses_target:
        return
    features, labels, probs = blobs
    shuffled = np.random.default_rng(1).permutation(labels)
    separable, random = _call(estimator, features, labels, probs), _call(estimator, features, shuffled, probs)
    assert separable > random, f"separable target scored {separable}, random labels {random}"


def _refuses(estimator: Estimator, features: np.ndarray, labels: np.ndarray, probs: np.ndarray, what: str) -> None:
    try:
        _call(estimator, features, labels, probs)
    except DataError as error:
        assert "\n" not in str(error), "error messages must be one line"
        return
    raise AssertionError(f"accepted {what} instead of raising DataError")


def _rejects_bad_input(estimator: Estimator, blobs: Blobs) -> None:
    features, labels, probs = blobs
    bad = features.copy()
    bad[5, 2] = np.nan
    _refuses(estimator, bad, labels, probs, "NaN features")
    _refuses(estimator, features, np.full(_N, 7), probs, "one-class labels")
    _refuses(estimator, features, labels[:-1], probs, "labels of another length")


def _leaves_global_random_state(estimator: Estimator, blobs: Blobs) -> None:
    before = _global_state()
    _call(estimator, *blobs)
    assert np.array_equal(_global_state(), before), "numpy's global random state was used"


def _global_state() -> np.ndarray:
    """The key of numpy's legacy global generator (what ``np.random.seed`` and ``np.random.random`` use)."""
    state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return np.array(state[1], copy=True)


def _errors_are_taskspace_errors(estimator: Estimator, blobs: Blobs) -> None:
    features, labels, probs = blobs
    try:
        with warnings.catch_warnings():  # a degenerate input may make a library warn; only errors count here
            warnings.simplefilter("ignore")
            _call(estimator, features[:, :1] * 0.0, labels, probs)  # constant features: may score or refuse
    except TaskspaceError as error:
        assert "\n" not in str(error), "error messages must be one line"
    except Exception as error:  # noqa: BLE001 - any other type is the failure being checked
        raise AssertionError(f"constant features raised {type(error).__name__}, not a TaskspaceError") from None


#: The checks, in order: name -> function(estimator, blobs) raising AssertionError.
ESTIMATOR_CHECKS: dict[str, Callable[[Estimator, Blobs], None]] = {
    "metadata": _metadata,
    "finite_and_deterministic": _finite_and_deterministic,
    "separable_beats_random": _separable_beats_random,
    "rejects_bad_input": _rejects_bad_input,
    "leaves_global_random_state": _leaves_global_random_state,
    "errors_are_taskspace_errors": _errors_are_taskspace_errors,
}


def check_estimator(estimator: Estimator | str) -> None:
    """Run every check of :data:`ESTIMATOR_CHECKS` on ``estimator`` (an :class:`Estimator` or a registered name).

    Raises:
        AssertionError: ``estimator '<name>' fails check '<check>': <what went wrong>``.
        ConfigError: an unknown name.
    """
    resolved = get_estimator(estimator) if isinstance(estimator, str) else estimator
    blobs = _blobs()
    for check, function in ESTIMATOR_CHECKS.items():
        try:
            function(resolved, blobs)
        except AssertionError as error:
            raise AssertionError(f"estimator '{resolved.name}' fails check '{check}': {error}") from None
