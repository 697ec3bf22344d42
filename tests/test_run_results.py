"""Which estimator a run is shown by: the preferred one unless the run's own verdict says it fails there."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.errors import TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner.results import PREFERRED_ESTIMATOR, choose_estimator

IDS = ("a", "b", "c")
HEADER = "estimator,protocol,kendall_tau,kendall_tau_low,kendall_tau_high\n"


def _estimates(*names):
    return {name: TransferabilityMatrix(np.zeros((3, 3)), IDS, IDS, name) for name in names}


def test_preferred_without_a_verdict_and_requested_always(tmp_path) -> None:
    estimates = _estimates("logme", PREFERRED_ESTIMATOR)
    assert choose_estimator(estimates, tmp_path) == PREFERRED_ESTIMATOR
    assert choose_estimator(estimates, tmp_path, requested="logme") == "logme"
    with pytest.raises(TaskspaceError, match="no estimator 'knn'"):
        choose_estimator(estimates, tmp_path, requested="knn")
    assert choose_estimator(_estimates("logme", "leep"), tmp_path) == "logme"


@pytest.mark.parametrize(("preferred_tau", "expected"), [(0.70, PREFERRED_ESTIMATOR), (0.60, "logme")])
def test_preferred_unless_below_the_best_interval(tmp_path, preferred_tau, expected) -> None:
    (tmp_path / "evaluation.csv").write_text(
        HEADER
        + "logme,frozen_all,0.76,0.65,0.85\n"
        + f"{PREFERRED_ESTIMATOR},frozen_all,{preferred_tau},0.5,0.8\n"
        + f"{PREFERRED_ESTIMATOR},frozen_k10,0.99,0.9,1.0\n"
    )
    assert choose_estimator(_estimates("logme", PREFERRED_ESTIMATOR), tmp_path) == expected
    # against another protocol the verdict differs
    assert choose_estimator(_estimates("logme", PREFERRED_ESTIMATOR), tmp_path, protocol="frozen_k10") == PREFERRED_ESTIMATOR
