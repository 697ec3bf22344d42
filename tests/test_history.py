"""The history ranker and the model-selection protocol: the leave-one-target-out guarantee, the
signals, the field's weighted-τ convention, and the files a history is read from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from taskspace.errors import TaskspaceError
from taskspace.history import (
    HISTORY,
    PRIOR,
    ZOO_PRIOR,
    centred_ranks,
    history_prior,
    history_protocol,
    leave_one_source_out,
    rank_dispersion,
    rank_with_history,
    raw_prior,
    read_history,
    standardised_truth,
    summarise,
    target_result,
)

SOURCES = ("a", "b", "c", "d", "e")
TARGETS = ("t0", "t1", "t2", "t3")


def _fixture(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Five sources on four targets: a shared order (the prior's part) plus a target-specific part that
    one estimator sees and another does not."""
    rng = np.random.default_rng(seed)
    static = np.linspace(0.6, 0.8, 5)[:, None]
    specific = rng.normal(scale=0.05, size=(5, 4))
    truth = static + specific
    evidence = {"sees": specific + rng.normal(scale=0.005, size=(5, 4)), "blind": rng.normal(size=(5, 4))}
    return truth, evidence


# --- the leave-one-target-out guarantee ----------------------------------------------------------------


@pytest.mark.parametrize("target", range(4))
def test_the_ranked_targets_truth_changes_nothing(target: int) -> None:
    truth, evidence = _fixture()
    before = rank_with_history(truth, evidence, target, sources=SOURCES, targets=TARGETS)
    changed = truth.copy()
    changed[:, target] = np.random.default_rng(9).permutation(changed[:, target])[::-1] * 0.5
    changed[0, target] = math.nan
    after = rank_with_history(changed, evidence, target, sources=SOURCES, targets=TARGETS)
    np.testing.assert_array_equal(before.scores, after.scores)
    assert before.weights == after.weights
    # and the truth of another target does change it: the guarantee is not a ranker that reads nothing
    other = (target + 1) % 4
    moved = truth.copy()
    moved[:, other] = moved[::-1, other]
    assert not np.array_equal(rank_with_history(moved, evidence, target, sources=SOURCES, targets=TARGETS).scores,
                              before.scores)


def test_the_ranker_learns_to_trust_the_evidence_that_sees_the_target() -> None:
    truth, evidence = _fixture()
    truth = truth - np.linspace(0.6, 0.8, 5)[:, None]  # no shared order: the prior is useless
    ranking = rank_with_history(truth, evidence, 0, sources=SOURCES, targets=TARGETS)
    assert ranking.weights["sees"] > abs(ranking.weights["blind"])
    assert ranking.weights["sees"] > abs(ranking.weights[PRIOR])
    assert ranking.trust()["evidence"] > ranking.trust()["prior"]
    np.testing.assert_allclose(ranking.scores, ranking.prior_part + ranking.evidence_part)


def test_without_evidence_the_ranker_follows_the_prior() -> None:
    truth, _ = _fixture()
    ranking = rank_with_history(truth, {}, 2, sources=SOURCES, targets=TARGETS)
    assert list(ranking.weights) == [PRIOR] and ranking.weights[PRIOR] > 0
    assert np.argsort(ranking.scores).tolist() == np.argsort(history_prior(standardised_truth(truth), 2)).tolist()


def test_a_source_without_history_is_ranked_by_its_evidence() -> None:
    truth, evidence = _fixture()
    truth[4, 1:] = math.nan  # e was measured on t0 only: ranking t0, it has no history
    ranking = rank_with_history(truth, evidence, 0, sources=SOURCES, targets=TARGETS)
    assert not ranking.has_history[4] and ranking.has_history[:4].all()
    assert ranking.prior_part[4] == 0.0


def test_nothing_to_learn_from_is_one_clear_error() -> None:
    truth, evidence = _fixture()
    truth[:, 1:] = math.nan
    with pytest.raises(TaskspaceError, match="no target but 't0' has a measured truth"):
        rank_with_history(truth, evidence, 0, sources=SOURCES, targets=TARGETS)


# --- the signals ----------------------------------------------------------------------------------------


def test_centred_ranks() -> None:
    np.testing.assert_allclose(centred_ranks(np.array([3.0, 1.0, 2.0])), [1.0, -1.0, 0.0])
    np.testing.assert_allclose(centred_ranks(np.array([1.0, 1.0, 5.0, math.nan])), [-0.5, -0.5, 1.0, 0.0])
    np.testing.assert_array_equal(centred_ranks(np.array([7.0, math.nan])), [0.0, 0.0])


def test_priors_leave_the_target_out() -> None:
    truth = np.array([[0.9, 0.5, math.nan], [0.7, 0.6, 0.8], [0.8, math.nan, 0.6]])
    np.testing.assert_allclose(raw_prior(truth, 0), [0.5, 0.7, 0.6])
    np.testing.assert_array_equal(np.isnan(raw_prior(truth, 2)), [False, False, False])
    standardised = standardised_truth(truth)
    np.testing.assert_allclose(np.nanmean(standardised, axis=0), 0.0, atol=1e-14)  # a mean of 2-3 rounded terms
    prior = history_prior(standardised, 0, also_hidden=(1,))
    assert math.isnan(prior[0]) and prior[1] == pytest.approx(1.0) and prior[2] == pytest.approx(-1.0)


# --- the protocol ---------------------------------------------------------------------------------------


def test_weighted_tau_follows_the_published_convention() -> None:
    rng = np.random.default_rng(3)
    scores, accuracy = rng.normal(size=12), rng.normal(size=12)
    result = target_result("x", "t", scores, accuracy)
    assert result.weighted_tau == stats.weightedtau(scores, accuracy).statistic
    # scipy's default averages the orders by (score, accuracy) and by (accuracy, score); a hand-ranked
    # call with the scores' own order alone is another number, which this convention is not
    own_order = stats.weightedtau(scores, accuracy, rank=np.argsort(np.argsort(-scores))).statistic
    assert result.weighted_tau != pytest.approx(own_order)


def test_regrets_break_ties_against_the_ranker() -> None:
    accuracy = np.array([0.9, 0.5, 0.7, 0.8])
    flat = target_result("flat", "t", np.zeros(4), accuracy)
    assert flat.top1_regret == pytest.approx(0.4) and flat.top3_regret == pytest.approx(0.1)
    right = target_result("right", "t", accuracy, accuracy)
    assert right.top1_regret == 0.0 and right.kendall_tau == pytest.approx(1.0)


def test_rank_dispersion_hand_case() -> None:
    same = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]])
    assert rank_dispersion(same) == pytest.approx(1.0)
    # target 2 reverses the order: taus (1, -1, -1) between the three pairs
    mixed = np.array([[1.0, 1.0, 3.0], [2.0, 2.0, 2.0], [3.0, 3.0, 1.0]])
    assert rank_dispersion(mixed) == pytest.approx(-1 / 3)


def test_the_protocol_pairs_every_ranker_with_the_prior() -> None:
    truth, evidence = _fixture()
    results = history_protocol(truth, evidence, sources=SOURCES, targets=TARGETS)
    assert {r.ranker for r in results} == {HISTORY, ZOO_PRIOR, "sees", "blind"}
    rows = {row["ranker"]: row for row in summarise(results, resamples=200)}
    assert "weighted_tau_vs_prior" not in rows[ZOO_PRIOR]
    history = [r.weighted_tau for r in results if r.ranker == HISTORY]
    prior = [r.weighted_tau for r in results if r.ranker == ZOO_PRIOR]
    difference = np.subtract(history, prior)
    assert rows[HISTORY]["weighted_tau_vs_prior"] == pytest.approx(difference.mean())
    half = stats.t.ppf(0.975, 3) * difference.std(ddof=1) / 2
    assert rows[HISTORY]["weighted_tau_vs_prior_t_low"] == pytest.approx(difference.mean() - half)


def test_leave_one_source_out_hides_the_newcomer_from_the_rankers() -> None:
    truth, evidence = _fixture()
    results = leave_one_source_out(truth, evidence, sources=SOURCES, targets=TARGETS)
    assert len(results) == 2 * 5 * 4
    assert {r.detail["newcomer"] for r in results} == set(SOURCES)
    assert all(0 <= r.detail["rank_error"] <= 4 for r in results)


# --- reading a history ----------------------------------------------------------------------------------


def test_a_history_from_files_with_gaps_layers_and_a_spreadsheets_habits(tmp_path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("\ufeffsource, target, layer, protocol, accuracy\nnet, cars, fc, finetune, 81.5\n"
                     "net, pets, fc, finetune, 90\nother, cars, , finetune, 70\nnet, cars, fc, finetune, 81.5\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("estimator,score,source,target\nLogME,1.5,other,pets\n")
    history = read_history(truth, scores, percent=True)
    assert history.sources == ("net:fc", "other") and history.targets == ("cars", "pets")
    np.testing.assert_allclose(history.truths["finetune"], [[0.815, 0.9], [0.7, math.nan]])
    np.testing.assert_array_equal(np.isnan(history.evidence["LogME"]), [[True, True], [True, False]])
    assert history.cells("finetune") == 3


@pytest.mark.parametrize(("text", "message"), [
    ("source,target,protocol,accuracy\nnet,cars,finetune,81.5\n", "not a number in \\[0, 1\\]; if the file gives "
                                                                 "percentages, pass --percent"),
    ("source,target,protocol,accuracy\nnet,cars,finetune,0.8\nnet,cars,finetune,0.7\n",
     "lines 2 and 3 give net on cars \\(finetune\\) two values"),
    ("source,target,accuracy\nnet,cars,0.8\n", "lacks column\\(s\\) protocol"),
    ("source,target,protocol,accuracy,seed\nnet,cars,finetune,0.8,1\n", "unknown column 'seed'"),
    ("source,target,protocol,accuracy\nnet,cars,finetune,abc\n", "accuracy 'abc' is not a finite number"),
    ("source,target,protocol,accuracy\n", "holds no rows"),
])
def test_a_bad_history_file_is_one_line_that_names_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(TaskspaceError, match=message):
        read_history(path)


def test_the_model_spider_matrix_reproduces_the_published_convention(model_spider_root) -> None:
    history = read_history(model_spider_root / "truth.csv", model_spider_root / "scores.csv", percent=True)
    assert history.truths["finetune"].shape == (10, 8) and len(history.evidence) == 9
    results = history_protocol(history.truths["finetune"], {"LogME": history.evidence["LogME"]},
                               sources=history.sources, targets=history.targets)
    logme = [r.weighted_tau for r in results if r.ranker == "LogME"]
    assert np.mean(logme) == pytest.approx(0.675, abs=5e-4)  # the Model Spider README prints 0.676
