"""Transferability estimators: a contract over the whole registry, the Estimator object, input checks."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest

import taskspace.scoring as scoring
from taskspace.errors import ConfigError, DataError, TaskspaceError
from taskspace.scoring import ESTIMATORS, Estimator, get_estimator, list_estimators
from taskspace.scoring._check import _blobs  # the contract's own inputs: N samples, D dims, C classes

REQUIRED = {
    "alignment",
    "alignment_minibatch",
    "alignment_centered",
    "alignment_whitened",
    "logme",
    "leep",
    "nce",
    "hscore",
    "gbc",
    "transrate",
    "parc",
    "knn",
    "linear_probe",
    "source_accuracy",
}
ALL = list_estimators()
N, D, C, C_SOURCE = 150, 8, 3, 4


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _blobs()


def _call(name: str, features, labels, probs, **kwargs) -> float:
    return get_estimator(name)(features, labels, source_probs=probs, source_accuracy=0.8, **kwargs)


def test_registry_holds_the_required_estimators_and_exports_each_function() -> None:
    assert REQUIRED <= set(ALL)
    assert ALL == sorted(ALL)
    for name in ALL:
        assert name in scoring.__all__
        assert getattr(scoring, name) is get_estimator(name).function
    for name in ("get_estimator", "list_estimators", "ESTIMATORS", "Estimator"):
        assert name in scoring.__all__
    assert list(ESTIMATORS) == ALL


@pytest.mark.parametrize("name", ALL)
def test_estimator_metadata(name: str) -> None:
    estimator = get_estimator(name)
    assert isinstance(estimator, Estimator)
    assert estimator.name == name
    assert estimator.greater_is_better is True
    assert estimator.needs <= {"features", "source_probs", "source_accuracy"}
    assert estimator.needs
    assert estimator.citation and estimator.description
    assert "Shape:" in (estimator.function.__doc__ or "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        estimator.name = "other"  # type: ignore[misc]
    hash(estimator)
    copy = pickle.loads(pickle.dumps(estimator))  # process-pool executors ship estimators
    assert copy == estimator and copy.needs == estimator.needs


@pytest.mark.parametrize("name", ALL)
def test_returns_a_finite_float_and_is_deterministic(name: str, blobs) -> None:
    features, labels, probs = blobs
    first = _call(name, features, labels, probs)
    assert type(first) is float and math.isfinite(first)
    assert _call(name, features, labels, probs) == first


@pytest.mark.parametrize("name", [name for name in ALL if get_estimator(name).uses_target])
def test_separable_target_beats_random_labels(name: str, blobs) -> None:
    features, labels, probs = blobs
    shuffled = np.random.default_rng(1).permutation(labels)
    assert _call(name, features, labels, probs) > _call(name, features, shuffled, probs)


@pytest.mark.parametrize("name", ALL)
def test_rejects_nan_features(name: str, blobs) -> None:
    features, labels, probs = blobs
    bad = features.copy()
    bad[5, 2] = np.nan
    with pytest.raises(DataError, match=r"features contain NaN at row 5"):
        _call(name, bad, labels, probs)
    bad[5, 2] = np.inf
    with pytest.raises(DataError, match=r"inf at row 5"):
        _call(name, bad, labels, probs)


@pytest.mark.parametrize("name", ALL)
def test_rejects_one_class_labels(name: str, blobs) -> None:
    features, _, probs = blobs
    with pytest.raises(DataError, match="single class"):
        _call(name, features, np.full(N, 7), probs)


@pytest.mark.parametrize("name", ALL)
def test_rejects_mismatched_lengths(name: str, blobs) -> None:
    features, labels, probs = blobs
    with pytest.raises(DataError, match=f"features have {N} rows but labels have {N - 1}"):
        _call(name, features, labels[:-1], probs)


@pytest.mark.parametrize("name", [name for name in ALL if "source_probs" in get_estimator(name).needs])
def test_source_prob_estimators_need_valid_probabilities(name: str, blobs) -> None:
    features, labels, probs = blobs
    estimator = get_estimator(name)
    with pytest.raises(DataError, match=f"'{name}' needs source_probs"):
        estimator(features, labels)
    with pytest.raises(DataError, match="row 3 sums to"):
        estimator(features, labels, source_probs=np.where(np.arange(N)[:, None] == 3, 0.5, probs))
    with pytest.raises(DataError, match="negative entry"):
        estimator(features, labels, source_probs=probs - 0.1)
    with pytest.raises(DataError, match="source_probs have"):
        estimator(features, labels, source_probs=probs[:-1])


def test_source_accuracy_needs_the_accuracy(blobs) -> None:
    features, labels, _ = blobs
    estimator = get_estimator("source_accuracy")
    assert not estimator.uses_target
    assert estimator(features, labels, source_accuracy=0.91) == 0.91
    with pytest.raises(DataError, match="'source_accuracy' needs source_accuracy"):
        estimator(features, labels)
    with pytest.raises(DataError, match="finite"):
        estimator(features, labels, source_accuracy=float("nan"))


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown estimator 'lgome'; did you mean 'logme'\?"):
        get_estimator("lgome")


def test_params_defaults_overrides_and_unknown_options(blobs) -> None:
    features, labels, _ = blobs
    minibatch = get_estimator("alignment_minibatch")
    assert dict(minibatch.params) == {"batch_size": 128, "seed": 0}
    direct = scoring.alignment_minibatch(features, labels, batch_size=128, seed=0)
    assert minibatch(features, labels) == direct
    full_batch = minibatch.with_params(batch_size=N)
    assert full_batch.params["batch_size"] == N and minibatch.params["batch_size"] == 128
    assert full_batch(features, labels) == pytest.approx(scoring.alignment(features, labels), abs=1e-12)
    assert minibatch(features, labels, batch_size=N) == full_batch(features, labels)
    with pytest.raises(ConfigError, match=r"unknown option 'bach_size'.*did you mean 'batch_size'"):
        minibatch.with_params(bach_size=64)
    with pytest.raises(ConfigError, match="unknown option 'k'"):
        get_estimator("logme")(features, labels, k=3)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("alignment_minibatch", {"batch_size": 1}),
        ("alignment", {"k_min": 1.0}),
        ("knn", {"k": 0}),
        ("transrate", {"eps": 0.0}),
        ("gbc", {"variance_floor": -1.0}),
        ("parc", {"max_samples": 1}),
        ("logme", {"max_iter": 0}),
        ("linear_probe", {"n_splits": 1}),
    ],
)
def test_bad_options_raise_config_error(name: str, options: dict, blobs) -> None:
    features, labels, _ = blobs
    with pytest.raises(ConfigError):
        get_estimator(name)(features, labels, **options)


def test_no_global_random_state_is_touched(blobs) -> None:
    features, labels, probs = blobs
    before = np.random.get_state()[1].copy()
    for name in ALL:
        _call(name, features, labels, probs)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.ones(6), [0, 1] * 3, "2-D array"),
        (np.ones((0, 3)), [], "empty"),
        (np.array([["a", "b"]] * 4), [0, 1] * 2, "numeric"),
        (np.ones((4, 2)), [0, 1, 0.5, 1], r"integer class ids, got .*0\.5.* at position 2"),
        (np.ones((4, 2)), ["a", "b", "a", "b"], "numeric"),
        (np.ones((4, 2)), [[0], [1], [0], [1]], "1-D"),
    ],
)
def test_validation_messages(features, labels, message: str) -> None:
    with pytest.raises(DataError, match=message):
        scoring.alignment(features, labels)


def test_integer_like_labels_are_accepted_and_relabelled() -> None:
    features = np.random.default_rng(0).random((6, 3))
    reference = scoring.alignment(features, [0, 0, 1, 1, 2, 2])
    relabelled = scoring.alignment(features, [5.0, 5.0, -1.0, -1.0, 9.0, 9.0])
    assert relabelled == pytest.approx(reference, abs=1e-15)
    assert scoring.alignment(features[:4], [True, True, False, False]) == pytest.approx(
        scoring.alignment(features[:4], [1, 1, 0, 0]), abs=1e-15
    )


def test_errors_are_one_line_taskspace_errors(blobs) -> None:
    features, labels, _ = blobs
    with pytest.raises(TaskspaceError) as caught:
        get_estimator("hscore")(features[:, :0], labels)
    assert "\n" not in str(caught.value)


def test_estimators_run_on_one_thread_and_leave_the_pools_as_they_were(blobs) -> None:
    from threadpoolctl import threadpool_info

    from taskspace.scoring import single_threaded

    features, labels, probs = blobs
    seen: list[list[int]] = []
    original = get_estimator("logme").function

    def spy(*arguments, **options):
        seen.append([pool["num_threads"] for pool in threadpool_info()])
        return original(*arguments, **options)

    estimator = dataclasses.replace(get_estimator("logme"), function=spy)
    assert estimator(features, labels) == get_estimator("logme")(features, labels)  # pools now loaded
    before = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}
    seen.clear()
    estimator(features, labels)
    assert seen and all(count == 1 for count in seen[0])
    assert {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()} == before
    with single_threaded():
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())


@pytest.mark.parametrize("name", ALL)
def test_every_registered_estimator_passes_the_public_check(name: str) -> None:
    scoring.check_estimator(name)


def _nondeterministic(features, labels):
    """A score that ignores its inputs.

    Shape:
        - features: (n, d)
        - labels: (n,)
    """
    return float(np.random.random())


def _uncited(features, labels):
    return 0.0


def _plain(features, labels):
    return float(get_estimator("logme")(features, labels))


@pytest.mark.parametrize(("function", "check", "citation"), [(_uncited, "metadata", ""),
                                                             (_nondeterministic, "finite_and_deterministic", "-")])
def test_the_public_check_names_what_a_third_party_estimator_breaks(function, check: str, citation: str) -> None:
    estimator = Estimator("third_party", function, ("features", "labels"), citation=citation, description="-")
    with pytest.raises(AssertionError, match=f"estimator 'third_party' fails check '{check}'"):
        scoring.check_estimator(estimator)


def test_one_decorator_is_enough_for_a_third_party_estimator() -> None:
    """No docstring convention is part of the contract: a plain function with a citation passes."""
    scoring.check_estimator(Estimator("third_party", _plain, ("features", "labels"), citation="Me et al. 2026",
                                      description="a plain score"))
