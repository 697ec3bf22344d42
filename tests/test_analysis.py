"""The verdict: rank agreement per target, regret, diagonal handling, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.analysis import compare_estimators, evaluate, per_target_agreement
from taskspace.errors import TaskspaceError
from taskspace.matrix import TransferabilityMatrix

IDS = ("a", "b", "c", "d")


def _matrix(scores, name):
    return TransferabilityMatrix(np.array(scores, dtype=float), IDS, IDS, name)


def test_perfect_and_reversed_rankings_on_a_hand_case():
    truth = _matrix([[1.0, 0.9, 0.8, 0.7], [0.9, 1.0, 0.6, 0.5], [0.8, 0.7, 1.0, 0.9], [0.7, 0.8, 0.9, 1.0]], "t")
    # Target "a" (diagonal left out): truth over sources b, c, d = 0.9, 0.8, 0.7.
    same = per_target_agreement(truth, truth)
    assert all(row.kendall_tau == pytest.approx(1.0) for row in same)
    assert all(row.top1_regret == 0.0 for row in same)
    reversed_scores = _matrix(-truth.scores, "r")
    first = per_target_agreement(reversed_scores, truth)[0]
    assert first.kendall_tau == pytest.approx(-1.0)
    # The reversed estimate picks d (0.7) instead of b (0.9): regret 0.2.
    assert first.top1_regret == pytest.approx(0.2)


def test_diagonal_is_excluded_unless_asked():
    truth = _matrix(np.eye(4) + 0.01 * np.arange(16).reshape(4, 4), "t")
    estimate = _matrix(np.eye(4) * 10, "e")  # only knows the diagonal
    with_diagonal = per_target_agreement(estimate, truth, exclude_diagonal=False)
    without = per_target_agreement(estimate, truth)
    assert with_diagonal[0].top1_regret == 0.0
    assert np.isnan(without[0].kendall_tau)  # constant estimate over the off-diagonal sources


def test_evaluate_reports_means_and_paired_intervals():
    rng = np.random.default_rng(0)
    truth = _matrix(rng.random((4, 4)), "frozen_all")
    noisy = _matrix(truth.scores + 0.05 * rng.random((4, 4)), "noisy")
    rows = evaluate({"truth_itself": truth, "noisy": noisy}, {"frozen_all": truth}, resamples=200)
    by_name = {row["estimator"]: row for row in rows}
    assert by_name["truth_itself"]["kendall_tau"] == pytest.approx(1.0)
    noisy_row = by_name["noisy"]
    assert noisy_row["kendall_tau_low"] <= noisy_row["kendall_tau"] <= noisy_row["kendall_tau_high"]
    assert noisy_row["targets"] == 4
    partial = truth.scores.copy()
    partial[:, 2:] = np.nan  # measured on two targets only
    rows = evaluate({"noisy": noisy}, {"partial": _matrix(partial, "partial")}, resamples=50)
    assert rows[0]["targets"] == 2


def test_compare_estimators_is_a_paired_difference_of_tau():
    rng = np.random.default_rng(0)
    ids = tuple(f"t{i}" for i in range(8))
    truth = TransferabilityMatrix(rng.random((8, 8)), ids, ids, "frozen_all")
    perfect = TransferabilityMatrix(truth.scores.copy(), ids, ids, "perfect")
    reversed_ = TransferabilityMatrix(-truth.scores, ids, ids, "reversed")
    result = compare_estimators(perfect, reversed_, truth, resamples=500)
    # tau is +1 for one and -1 for the other on every target: the difference is exactly 2, no spread
    assert result["difference"] == pytest.approx(2.0) and result["low"] == pytest.approx(2.0)
    assert result["share_first_ahead"] == 1.0 and result["targets"] == 8
    same = compare_estimators(perfect, perfect, truth, resamples=500)
    assert same["difference"] == 0.0 and same["low"] == 0.0 == same["high"] and same["share_first_ahead"] == 0.0
    noisy = TransferabilityMatrix(truth.scores + rng.normal(scale=0.3, size=(8, 8)), ids, ids, "noisy")
    mixed = compare_estimators(perfect, noisy, truth, resamples=500)
    assert mixed["low"] <= mixed["difference"] <= mixed["high"] and mixed["difference"] > 0


def test_compare_estimators_needs_two_targets():
    one = TransferabilityMatrix(np.ones((3, 1)), ("a", "b", "c"), ("a",), "x")
    with pytest.raises(TaskspaceError, match="at least 2"):
        compare_estimators(one, one, one)
