"""TransRate: coding-rate gain of the features given the labels (Huang et al., ICML 2022)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels, check_positive_float

__all__ = ["transrate"]


def _coding_rate(values: np.ndarray, eps: float) -> float:
    """``R(Z) = 1/2 logdet(I + Z^T Z / (m eps))`` for ``Z`` = ``values`` centred, ``m`` its rows.

    Evaluated from the eigenvalues of the smaller of ``Z^T Z`` and ``Z Z^T`` (they share their
    non-zero eigenvalues), so the cost is O(m d min(m, d)).
    """
    rows = values.shape[0]
    centred = values - values.mean(axis=0)
    gram = centred.T @ centred if rows >= centred.shape[1] else centred @ centred.T
    eigenvalues = np.maximum(np.linalg.eigvalsh(gram), 0.0)
    return 0.5 * float(np.sum(np.log1p(eigenvalues / (rows * eps))))


@register_estimator(
    "transrate",
    citation="Huang, Huang, Yan, Wang & Wang, 'Frustratingly Easy Transferability Estimation', ICML 2022",
)
def transrate(features: np.ndarray, labels: np.ndarray, *, eps: float = 1e-4) -> float:
    """TransRate: the coding rate of the features minus the class-weighted coding rates of the classes.

    ``TransRate = R(f) - sum_c (n_c / n) R(f_c)`` with ``R(Z) = 1/2 logdet(I + Z^T Z / (m eps))``.

    ``Z`` is centred on its own mean and ``m`` is its number of rows: ``R(f)`` uses all ``n`` samples
    and ``R(f_c)`` the ``n_c`` samples of class ``c``, each centred on the class mean, so the
    subtracted term measures within-class spread only and a class with a single sample contributes 0.
    ``eps`` is a distortion scale in the units of the squared features: the score grows roughly like
    ``1/2 log(1/eps)`` per informative dimension and rankings can change with it, so report it. The
    default 1e-4 suits features of norm about 1 (the phi-mapped, unit-norm features of taskspace).

    Cited: Huang, Huang, Yan, Wang & Wang, "Frustratingly Easy Transferability Estimation", ICML 2022.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        eps: the distortion ``eps`` of the coding rate (> 0); default 1e-4.

    Returns:
        Higher is better; in nats, usually ``>= 0`` and unbounded above (it grows as ``eps`` shrinks).
        Time O(n d^2 + C d^3).

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``eps <= 0``.
    """
    eps = check_positive_float(eps, "eps")
    features, target = check_features_labels(features, labels)
    n = features.shape[0]
    within = sum(
        (count / n) * _coding_rate(features[target.codes == code], eps)
        for code, count in enumerate(target.counts)
    )
    return float(_coding_rate(features, eps) - within)
