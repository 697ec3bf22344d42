"""Score one source on one target with several estimators: the one place a cell's scores are computed."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taskspace.errors import TaskspaceError
from taskspace.scoring._registry import get_estimator

__all__ = ["score_source"]


def score_source(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    estimators: Sequence[str],
    source_probs: np.ndarray | None,
    source_accuracy: float | None,
    known: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every estimator's score of a source on a target, the seconds each took and why any failed.

    Shape:
        - features: (n, d), the source's features of the target's images (cast to float64).
        - labels: (n,), the target's labels.
        - source_probs: (n, c_source), the source classifier's probabilities, or None.

    Args:
        estimators: registered estimator names.
        source_accuracy: the source network's own test accuracy.
        known: a record of earlier scores (``scores``, ``seconds``, ``errors``); estimators it already
            holds are kept, not computed again.

    Returns:
        ``{"scores": {name: float or None}, "seconds": {name: float}, "errors": {name: message}}``: an
        estimator that cannot score these inputs (a :class:`TaskspaceError`) scores None and says why.
    """
    record: dict[str, dict[str, Any]] = {
        part: dict((known or {}).get(part, {})) for part in ("scores", "seconds", "errors")
    }
    features = np.asarray(features, dtype=np.float64)
    for name in estimators:
        if name in record["scores"]:
            continue
        estimator = get_estimator(name)
        began = time.perf_counter()
        try:
            value = float(estimator(features, labels, source_probs=source_probs, source_accuracy=source_accuracy))
        except TaskspaceError as error:
            value = math.nan
            record["errors"][name] = str(error)
        record["seconds"][name] = time.perf_counter() - began
        record["scores"][name] = None if math.isnan(value) else value
    return record
