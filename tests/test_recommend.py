"""Source recommendation: ranking, the score-to-accuracy map, reasons, new targets, bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from taskspace.cli import main
from taskspace.errors import ConfigError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.recommend import explain, fit_score_to_accuracy, recommend
from taskspace.runner import Run
from taskspace.tasks import BinaryTask


@pytest.fixture()
def run(digits_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    return copy


def test_fit_leaves_the_target_out_and_recovers_a_known_line() -> None:
    ids = ("a", "b", "c", "d")
    scores = np.arange(16, dtype=float).reshape(4, 4) / 16
    truth = TransferabilityMatrix(0.5 + 0.25 * scores, ids, ids, "frozen_all")
    # the target "d" is corrupted in the truth: leaving it out must give the exact line anyway
    corrupted = truth.scores.copy()
    corrupted[:, 3] = 0.0
    fit = fit_score_to_accuracy(TransferabilityMatrix(scores, ids, ids, "s"),
                                TransferabilityMatrix(corrupted, ids, ids, "frozen_all"), leave_out_target="d")
    assert fit.slope == pytest.approx(0.25) and fit.intercept == pytest.approx(0.5)
    assert fit.cells == 3 * 3 and fit.r2 == pytest.approx(1.0)
    assert fit.predict(0.4) == pytest.approx((0.6, 0.6, 0.6))
    assert fit.predict(100.0)[0] == 1.0  # clipped to an accuracy
    with pytest.raises(TaskspaceError, match="at least 3"):
        fit_score_to_accuracy(TransferabilityMatrix(scores[:2, :2], ids[:2], ids[:2], "s"),
                              TransferabilityMatrix(scores[:2, :2], ids[:2], ids[:2], "t"))


def test_a_chance_scaled_fit_predicts_a_target_of_another_class_count() -> None:
    """Accuracy = chance + (1 - chance)(0.2 + 0.6 score) on targets of 2, 4 and 10 classes: fitted on
    the others, the 10-class target's accuracies come out exact, where a plain line misses them."""
    ids = ("a", "b", "c", "d", "ten")
    counts = {"a": 2, "b": 2, "c": 4, "d": 2, "ten": 10}
    scores = np.random.default_rng(0).uniform(0, 1, size=(5, 5))
    chance = np.array([1 / counts[target] for target in ids])
    accuracies = chance + (1 - chance) * (0.2 + 0.6 * scores)
    estimate = TransferabilityMatrix(scores, ids, ids, "s")
    truth = TransferabilityMatrix(accuracies, ids, ids, "frozen_all")
    scaled = fit_score_to_accuracy(estimate, truth, leave_out_target="ten", classes=counts)
    assert scaled.chance_scaled and scaled.slope == pytest.approx(0.6) and scaled.intercept == pytest.approx(0.2)
    with pytest.raises(ValueError, match="for_classes"):
        scaled.predict(0.5)
    ten = scaled.for_classes(10)
    assert ten.classes == 10 and not ten.chance_scaled
    assert ten.predict(0.5)[0] == pytest.approx(0.1 + 0.9 * 0.5)
    plain = fit_score_to_accuracy(estimate, truth, leave_out_target="ten")
    assert abs(plain.predict(0.5)[0] - 0.55) > 0.05
    # binary targets only: the scaled fit, mapped to C = 2, is the plain fit
    binary = {target: 2 for target in ids}
    assert (fit_score_to_accuracy(estimate, truth, classes=binary).for_classes(2).predict(0.3)
            == pytest.approx(fit_score_to_accuracy(estimate, truth).predict(0.3)))


def test_explain_names_shared_classes_and_groups() -> None:
    groups = {"cat": "pets", "dog": "pets", "automobile": "vehicles", "truck": "vehicles"}
    target = BinaryTask("cat", "dog")
    assert explain(BinaryTask("cat", "truck"), target, groups=groups).startswith("shares 'cat'")
    reason = explain(BinaryTask("automobile", "truck"), target, groups=groups)
    assert "no class in common" in reason and "other groups" in reason
    assert "never had to separate" in explain(BinaryTask("dog", "truck"), target, groups=groups)


def test_with_truth_on_other_targets_the_history_ranker_ranks_and_never_reads_the_targets_truth(run) -> None:
    """One recommend for every kind of run: with truth on 3 other targets or more the history ranker ranks by
    default (a module's own task left out, as in every verdict of a task space), and each row says the
    prior's part and the evidence's; the target's own truth is never read."""
    context = Run.open(run)
    result = recommend(context, "1_vs_7", k=2)
    assert result.estimator == "history" and result.explanation.startswith("history: learned on 5 other targets")
    assert "1_vs_7" not in [row.source for row in result.ranking]
    assert all(row.reason.startswith("prior ") and ", evidence " in row.reason for row in result.ranking)
    # a history score orders one target's modules; the accuracy is read off the preferred estimator's line
    estimate = context.estimates()[context.default_estimator()]
    assert result.fit is not None and result.fit.predictor == estimate.estimator
    for row in result.ranking:
        assert row.predicted_accuracy == result.fit.predict(estimate.score(row.source, "1_vs_7"))[0]
    lines = (run / "truth.csv").read_text().splitlines()
    edited = [line if ",1_vs_7," not in line else ",".join([*line.split(",")[:3], "0.5", line.split(",")[4]])
              for line in lines]
    (run / "truth.csv").write_text("\n".join(edited) + "\n")
    again = recommend(Run.open(run), "1_vs_7", k=2)
    assert [(row.source, row.score) for row in again.ranking] == [(row.source, row.score) for row in result.ranking]
    assert [row.measured_accuracy for row in again.ranking] == [0.5] * 5  # read beside the ranking, not in it


def test_zoo_target_ranks_by_score_with_truth_beside_it(run) -> None:
    context = Run.open(run)
    result = recommend(context, "1_vs_7", k=2, estimator=context.default_estimator())
    assert result.estimator == context.default_estimator()  # the run's own verdict decides
    assert result.in_zoo and result.protocol == "frozen_all"
    assert sorted(row.source for row in result.ranking) == sorted(s for s in context.space.ids if s != "1_vs_7")
    scores = [row.score for row in result.ranking]
    assert scores == sorted(scores, reverse=True) and len(result.top) == 2
    assert all(row.measured_accuracy is not None and 0.0 <= row.measured_accuracy <= 1.0 for row in result.ranking)
    assert all(row.predicted_low <= row.predicted_accuracy <= row.predicted_high for row in result.ranking)
    assert result.fit is not None and result.fit.cells == 5 * 5  # 5 other targets x their 5 other sources
    # the run's own verdict is consulted: an estimator with a mean tau <= 0 here is flagged
    if result.estimator_kendall_tau is not None and result.estimator_kendall_tau <= 0:
        assert "no better than chance" in result.warning()
    else:
        assert result.warning() is None or "slope" in result.warning()
    assert not (run / "recommendations").exists()  # computing writes nothing; the CLI writes the record


def test_new_target_is_scored_by_forward_passes_and_measured(run) -> None:
    context = Run.open(run)
    result = recommend(context, "0_vs_6", k=3, estimator="logme", measure=True)
    assert not result.in_zoo and len(result.ranking) == 6 and result.score_seconds > 0
    assert all(math.isfinite(row.score) for row in result.ranking)
    assert result.measured_protocol == "frozen_all"
    best, worst = result.measured_best(), result.measured_worst()
    assert best.measured_accuracy >= worst.measured_accuracy
    # deterministic: scoring again from the feature cache gives the same ranking and scores
    again = recommend(context, "0_vs_6", k=3, estimator="logme")
    assert [(r.source, r.score) for r in again.ranking] == [(r.source, r.score) for r in result.ranking]
    # by default the history ranker ranks a new target from the run's 6 targets, its values scored now
    history = recommend(context, "0_vs_6", k=3)
    assert history.estimator == "history" and "learned on 6 other targets" in history.explanation
    assert history.fit is not None and history.fit.predictor == context.default_estimator()


def test_bad_input(run) -> None:
    context = Run.open(run)
    with pytest.raises(ConfigError, match="did you mean '7'"):
        recommend(context, "1_vs_77", k=1)
    # in the caller's terms (k=, not --k), and type-checked
    with pytest.raises(ConfigError, match="k=9 is out of range: there are 5 sources for '1_vs_7'; ask for 1 to 5"):
        recommend(context, "1_vs_7", k=9)
    with pytest.raises(ConfigError, match="k must be an integer, got '2'"):
        recommend(context, "1_vs_7", k="2")  # type: ignore[arg-type]
    # everything else is checked before k: a misspelt estimator is named even with a bad k
    with pytest.raises(TaskspaceError, match="no estimator 'knn'"):
        recommend(context, "1_vs_7", estimator="knn", k=99)
    # without k: three sources, or all of them when fewer
    assert recommend(context, "1_vs_7").k == 3


def test_the_credential_leaves_the_target_out(run) -> None:
    from taskspace.analysis import per_target_agreement

    context = Run.open(run)
    result = recommend(context, "1_vs_7", estimator="logme")
    rows = per_target_agreement(context.estimates()["logme"], context.truths()[result.protocol])
    others = [row.kendall_tau for row in rows if row.target != "1_vs_7"]
    assert result.estimator_kendall_tau == pytest.approx(float(np.mean(others)))
    assert result.estimator_kendall_tau != pytest.approx(float(np.mean([row.kendall_tau for row in rows])))


def test_cli(run, capsys) -> None:
    assert main(["recommend", str(run), "--target", "3_vs_8", "--k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "3_vs_8 (in the zoo)" in printed and "measured (frozen_all): recommended" in printed
    assert "history: learned on 5 other targets" in printed  # truth on the other targets: the history ranker
    saved = json.loads((run / "recommendations" / "3_vs_8__history.json").read_text())
    assert saved["ranking"][0]["rank"] == 1 and saved["target"] == "3_vs_8"
    with pytest.raises(SystemExit) as exit_info:
        main(["recommend", str(run), "--target", "3_vs_8", "--k", "0"])
    assert exit_info.value.code == 2
    assert "--k must be at least 1" in capsys.readouterr().err
    (run / "truth.csv").unlink()
    assert main(["recommend", "--target", "3_vs_8", "--run", str(run)]) == 0  # the old flag still works
    captured = capsys.readouterr()
    assert "n/a (no ground truth)" in captured.out and "deprecated" in captured.err
