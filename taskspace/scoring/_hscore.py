"""H-score (Bao et al. 2019), by default with the shrinkage covariance of Ibrahim et al. (2022)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import class_sums
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels

__all__ = ["hscore"]

#: Eigenvalues of cov(f) below this fraction of the largest are treated as zero (pseudo-inverse).
RCOND = 1e-12


@register_estimator(
    "hscore",
    citation="Bao et al., 'An Information-Theoretic Approach to Transferability in Task Transfer "
    "Learning', ICIP 2019; Ibrahim, Ponomareva & Mazumder, 'Newer is not always better: Rethinking "
    "transferability metrics, their peculiarities, stability and performance', ECML-PKDD 2022",
)
def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: bool = True) -> float:
    """H-score ``tr(cov(f)^-1 cov(g))`` with ``g_i`` the mean feature of sample i's class.

    ``cov(g) = sum_c (n_c / n) (mu_c - mu)(mu_c - mu)^T`` is the between-class covariance.

    * ``shrinkage=True`` (default, Ibrahim et al. 2022): ``cov(f)`` is the Ledoit-Wolf estimate
      ``(1 - s) S + s (tr(S) / d) I`` of ``sklearn.covariance.LedoitWolf`` (``S`` the empirical
      covariance, ``s`` the fitted shrinkage) and, as in that paper, ``cov(g)`` is scaled by the same
      ``1 - s``: ``tr(cov_LW(f)^-1 (1 - s) cov(g))``. It stays well conditioned when ``n < d`` or the
      features are collinear, and stays within ``[0, C - 1]``.
    * ``shrinkage=False`` (Bao et al. 2019): the empirical covariance (1/n) with a pseudo-inverse
      (eigenvalues below 1e-12 of the largest dropped). It saturates at ``C - 1`` for ANY labels once
      ``n <= d`` (every labelling is linearly separable), so it cannot rank sources there.

    Constant features (zero covariance) score 0.

    Cited: Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer
    Learning", ICIP 2019; Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking
    transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        shrinkage: Ledoit-Wolf version (True) or the original with a pseudo-inverse (False).

    Returns:
        Higher is better, in ``[0, C - 1]`` (``C - 1`` when class means separate perfectly along
        directions of no within-class variance). Time O(n d^2 + d^3), memory O(n d + d^2).

    Raises:
        DataError: invalid features or labels.
    """
    from sklearn.covariance import LedoitWolf

    features, target = check_features_labels(features, labels)
    n = features.shape[0]
    mean = features.mean(axis=0)
    scale = 1.0
    if shrinkage:
        fitted = LedoitWolf(store_precision=False).fit(features)
        covariance, scale = fitted.covariance_, 1.0 - float(fitted.shrinkage_)
    else:
        centred = features - mean
        covariance = centred.T @ centred / n
    class_means = class_sums(features, target.codes, target.n_classes) / target.counts[:, None]
    # cov(g) = B^T B with rows B_c = sqrt(n_c / n) (mu_c - mu): tr(cov(f)^+ cov(g)) = tr(B cov(f)^+ B^T)
    between = np.sqrt(target.counts / n)[:, None] * (class_means - mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    largest = eigenvalues.max(initial=0.0)
    if largest <= 0.0:
        return 0.0
    keep = eigenvalues > RCOND * largest
    projected = between @ eigenvectors[:, keep]
    return float(scale * np.sum(projected**2 / eigenvalues[keep]))
