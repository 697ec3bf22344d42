"""Which estimator a run is shown by: the preferred one unless the run's own verdict says it fails there."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.config import GridConfig
from taskspace.errors import TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner.run import PREFERRED_ESTIMATOR, Run, choose_estimator
from taskspace.tasks import TaskSpace

IDS = ("a", "b", "c")
HEADER = "estimator,protocol,kendall_tau,kendall_tau_low,kendall_tau_high\n"


def _verdict(folder):
    """The rows of ``folder``'s evaluation.csv, as the run reads them."""
    return Run(folder, GridConfig(space="digits"), TaskSpace.digits()).verdict()


def _estimates(*names):
    return {name: TransferabilityMatrix(np.zeros((3, 3)), IDS, IDS, name) for name in names}


def test_preferred_without_a_verdict_and_requested_always(tmp_path) -> None:
    estimates = _estimates("logme", PREFERRED_ESTIMATOR)
    assert choose_estimator(estimates, _verdict(tmp_path)) == PREFERRED_ESTIMATOR
    assert choose_estimator(estimates, [], requested="logme") == "logme"
    with pytest.raises(TaskspaceError, match="no estimator 'knn'"):
        choose_estimator(estimates, [], requested="knn")
    assert choose_estimator(_estimates("logme", "leep"), []) == "logme"


def test_a_typo_is_answered_with_did_you_mean_not_echoed_as_the_fix() -> None:
    with pytest.raises(TaskspaceError) as error:
        choose_estimator(_estimates("logme", "alignment"), [], requested="alignmnet")
    assert "did you mean 'alignment'" in str(error.value) and "--estimators alignmnet" not in str(error.value)
    with pytest.raises(TaskspaceError, match="--estimators knn"):  # a real estimator the run lacks
        choose_estimator(_estimates("logme"), [], requested="knn", run="RUN")


@pytest.mark.parametrize(("preferred_tau", "expected"), [(0.70, PREFERRED_ESTIMATOR), (0.60, "logme")])
def test_preferred_unless_below_the_best_interval(tmp_path, preferred_tau, expected) -> None:
    (tmp_path / "evaluation.csv").write_text(
        HEADER
        + "logme,frozen_all,0.76,0.65,0.85\n"
        + f"{PREFERRED_ESTIMATOR},frozen_all,{preferred_tau},0.5,0.8\n"
        + f"{PREFERRED_ESTIMATOR},frozen_k10,0.99,0.9,1.0\n"
    )
    verdict = _verdict(tmp_path)
    assert choose_estimator(_estimates("logme", PREFERRED_ESTIMATOR), verdict) == expected
    # against another protocol the verdict differs
    assert choose_estimator(_estimates("logme", PREFERRED_ESTIMATOR), verdict, protocol="frozen_k10") == PREFERRED_ESTIMATOR
