"""The target-blind baselines and the verdict every kind of run shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace.baselines import zoo_prior
from taskspace.cli import main
from taskspace.matrix import TransferabilityMatrix


def test_the_prior_leaves_out_the_target_and_on_request_the_modules_own_task() -> None:
    ids = ("a", "b", "c")
    truth = TransferabilityMatrix(np.array([[0.9, 0.6, 0.7], [0.5, 0.95, 0.8], [0.2, 0.4, 0.99]]), ids, ids, "ft")
    plain, square = zoo_prior(truth), zoo_prior(truth, exclude_diagonal=True)
    assert plain.score("a", "b") == pytest.approx((0.9 + 0.7) / 2)  # its own task a counts
    assert square.score("a", "b") == pytest.approx(0.7)  # only c: b is the target, a its own task
    assert square.score("c", "a") == pytest.approx(0.4)
    assert math.isfinite(square.score("a", "a"))  # the diagonal cell is ranked by no one, but defined


def test_a_trained_run_is_judged_beside_the_baselines_and_the_history_ranker(digits_run, tmp_path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    assert main(["evaluate", str(run), "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    assert "zoo_prior (baseline)" in printed and "history" in printed and "weighted_tau - zoo_prior" in printed
    verdict = (run / "evaluation.csv").read_text().splitlines()
    names = {line.split(",")[0] for line in verdict[1:]}
    assert {"alignment", "kernel_ridge_r2", "logme", "zoo_prior", "history"} <= names
