"""GBC: Gaussian Bhattacharyya coefficient between classes (Pandy et al., CVPR 2022)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import class_sums, pca_project
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import (
    check_features_labels,
    check_positive_float,
    check_positive_int,
)

__all__ = ["gbc"]


@register_estimator(
    "gbc",
    citation="Pandy, Agostinelli, Uijlings, Ferrari & Mensink, 'Transferability Estimation using "
    "Bhattacharyya Class Separability', CVPR 2022",
)
def gbc(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_components: int | None = 64,
    variance_floor: float = 1e-6,
) -> float:
    """GBC: minus the summed Bhattacharyya coefficients between per-class diagonal Gaussians.

    The features are centred and, when ``d > n_components``, projected on their top ``n_components``
    principal axes (in high dimension the per-dimension distances add up until every coefficient is
    ~0 and the score stops discriminating). Each class ``c`` is a Gaussian with mean ``mu_c`` and
    diagonal variances ``v_c`` (population variances, ddof = 0); the Bhattacharyya distance is
    ``D_B(i, j) = sum_k [(mu_ik - mu_jk)^2 / (8 v_k) + 1/2 log(v_k / sqrt(v_ik v_jk))]`` with
    ``v = (v_i + v_j) / 2``, and ``GBC = -sum_{i != j} exp(-D_B(i, j))`` (ordered pairs). Variances are
    floored at ``variance_floor`` times the mean per-dimension variance of all features, so a class
    with one sample or a constant dimension stays finite.

    Cited: Pandy, Agostinelli, Uijlings, Ferrari & Mensink, "Transferability Estimation using
    Bhattacharyya Class Separability", CVPR 2022.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        n_components: PCA dimension (``None``: no PCA).
        variance_floor: relative lower bound of the per-class variances (> 0).

    Returns:
        Higher is better (the formula's sign already makes it so), in ``[-C (C - 1), 0]``; 0 when all
        classes are perfectly separated. Time O(n d^2 + C^2 p) with ``p`` the PCA dimension.

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``n_components < 1`` or ``variance_floor <= 0``.
    """
    if n_components is not None:
        n_components = check_positive_int(n_components, "n_components")
    variance_floor = check_positive_float(variance_floor, "variance_floor")
    features, target = check_features_labels(features, labels)
    projected = pca_project(features, n_components)
    counts = target.counts.astype(np.float64)[:, None]
    means = class_sums(projected, target.codes, target.n_classes) / counts
    deviations = projected - means[target.codes]
    variances = class_sums(deviations**2, target.codes, target.n_classes) / counts
    floor = variance_floor * float(np.mean(projected**2)) + np.finfo(np.float64).tiny
    variances = np.maximum(variances, floor)
    log_variances = np.log(variances)

    total = 0.0
    for i in range(target.n_classes - 1):
        mean_variance = (variances[i] + variances[i + 1 :]) / 2.0  # (C - i - 1, p)
        distance = np.sum(
            (means[i] - means[i + 1 :]) ** 2 / (8.0 * mean_variance)
            + 0.5 * (np.log(mean_variance) - 0.5 * (log_variances[i] + log_variances[i + 1 :])),
            axis=1,
        )
        total += 2.0 * float(np.exp(-distance).sum())  # BC is symmetric: count (i, j) and (j, i)
    return -total

