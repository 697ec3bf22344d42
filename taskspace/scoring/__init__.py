"""Transferability estimators: pure functions of target features and labels, looked up by name.

Every estimator answers "how well will this source module transfer to this target?" with a float where
higher is better::

    estimator = get_estimator("alignment")
    score = estimator(features, labels)                     # features (n, d), labels (n,)
    leep = get_estimator("leep")(features, labels, source_probs=probs)
    knn10 = get_estimator("knn").with_params(k=10)

The functions are also importable directly (``alignment(features, labels)``, ``leep(probs, labels)``);
:class:`Estimator` adds the uniform call signature, validation, and metadata (``needs``, ``citation``,
``description``, ``greater_is_better``). Importing this package does no work beyond filling the
registry (scikit-learn and scipy.stats are imported when an estimator that uses them first runs).
"""

from __future__ import annotations

from taskspace.scoring._alignment import (
    alignment,
    alignment_centered,
    alignment_minibatch,
    alignment_whitened,
)
from taskspace.scoring._apply import score_source
from taskspace.scoring._baselines import source_accuracy
from taskspace.scoring._check import ESTIMATOR_CHECKS, check_estimator
from taskspace.scoring._gbc import gbc
from taskspace.scoring._hscore import hscore
from taskspace.scoring._kernel_ridge import kernel_ridge_loo, kernel_ridge_r2
from taskspace.scoring._leep import leep, nce, nleep
from taskspace.scoring._logme import logme
from taskspace.scoring._parc import parc
from taskspace.scoring._probes import knn, linear_probe
from taskspace.scoring._prototypes import kernel_prototypes
from taskspace.scoring._registry import (
    ESTIMATORS,
    Estimator,
    get_estimator,
    list_estimators,
    register_estimator,
)
from taskspace.scoring._threads import single_threaded
from taskspace.scoring._transrate import transrate

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_CHECKS",
    "Estimator",
    "alignment",
    "alignment_centered",
    "alignment_minibatch",
    "alignment_whitened",
    "check_estimator",
    "gbc",
    "get_estimator",
    "hscore",
    "kernel_prototypes",
    "kernel_ridge_loo",
    "kernel_ridge_r2",
    "knn",
    "leep",
    "linear_probe",
    "list_estimators",
    "logme",
    "nce",
    "nleep",
    "parc",
    "register_estimator",
    "score_source",
    "single_threaded",
    "source_accuracy",
    "transrate",
]
