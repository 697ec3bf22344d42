"""LogME: the maximum evidence of a Bayesian linear model on the features (You et al., ICML 2021)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import class_sums
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import (
    check_features_labels,
    check_positive_float,
    check_positive_int,
)

__all__ = ["logme"]

#: alpha and beta are kept inside [1/BOUND, BOUND]: the fixed point can run off to 0 or infinity
#: (targets orthogonal to the features, or an exact fit when n <= d).
PRECISION_BOUND = 1e12


def _evidence_from_svd(
    singular_values: np.ndarray,
    projections: np.ndarray,
    target_norms: np.ndarray,
    n_samples: int,
    n_features: int,
    *,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise the evidence for every target column at once.

    Args:
        singular_values: ``(k,)`` singular values of the features, ``k = min(n, d)``.
        projections: ``(k, T)`` the targets projected on the left singular vectors, ``U^T y``.
        target_norms: ``(T,)`` squared norms ``||y||^2``.
        n_samples: ``n``.
        n_features: ``d``.
        max_iter: iteration cap.
        tol: stop when alpha and beta change by less than this, relatively, for every target.

    Returns:
        ``(log_evidence, alpha, beta)``, each ``(T,)``.
    """
    sigma = (singular_values**2)[:, None]  # eigenvalues of f^T f that can be non-zero, (k, 1)
    z2 = projections**2  # (k, T)
    outside = np.maximum(target_norms - z2.sum(axis=0), 0.0)  # ||y||^2 not reachable by f w
    n_targets = projections.shape[1]
    alpha = np.ones(n_targets)
    beta = np.ones(n_targets)

    def statistics(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        denominator = alpha + beta * sigma  # (k, T): eigenvalues of A = alpha I + beta f^T f
        gamma = (beta * sigma / denominator).sum(axis=0)
        # m = beta A^-1 f^T y = V diag(beta s / (alpha + beta s^2)) U^T y
        m_squared = (beta**2 * sigma * z2 / denominator**2).sum(axis=0)
        # y - f m has components alpha z / (alpha + beta s^2) in the range of f, plus `outside`
        residual = outside + (alpha**2 * z2 / denominator**2).sum(axis=0)
        return gamma, m_squared, residual

    for _ in range(max_iter):
        gamma, m_squared, residual = statistics(alpha, beta)
        new_alpha = gamma / np.maximum(m_squared, 1.0 / PRECISION_BOUND**2)
        new_beta = (n_samples - gamma) / np.maximum(residual, 1.0 / PRECISION_BOUND**2)
        new_alpha = np.clip(new_alpha, 1.0 / PRECISION_BOUND, PRECISION_BOUND)
        new_beta = np.clip(new_beta, 1.0 / PRECISION_BOUND, PRECISION_BOUND)
        converged = np.all(np.abs(new_alpha - alpha) <= tol * alpha) and np.all(
            np.abs(new_beta - beta) <= tol * beta
        )
        alpha, beta = new_alpha, new_beta
        if converged:
            break

    _, m_squared, residual = statistics(alpha, beta)
    log_det = np.log(alpha + beta * sigma).sum(axis=0) + (n_features - sigma.shape[0]) * np.log(alpha)
    log_evidence = (
        0.5 * n_samples * np.log(beta)
        + 0.5 * n_features * np.log(alpha)
        - 0.5 * n_samples * np.log(2.0 * np.pi)
        - 0.5 * beta * residual
        - 0.5 * alpha * m_squared
        - 0.5 * log_det
    )
    return log_evidence, alpha, beta


def _logme_per_class(
    features: np.ndarray, codes: np.ndarray, n_classes: int, *, max_iter: int = 100, tol: float = 1e-6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log_evidence, alpha, beta)`` per one-vs-rest class target, each ``(n_classes,)``."""
    n, d = features.shape
    onehot_counts = np.bincount(codes, minlength=n_classes).astype(np.float64)  # ||y_c||^2 = n_c
    if n > d:
        # The d x d product, as the authors' code does: F^T F = V S^2 V^T, and U^T Y = S^-1 V^T F^T Y,
        # one pass over the n x d features instead of their SVD. Directions whose eigenvalue is below
        # the float64 resolution of the largest one carry no reachable part of y and are dropped.
        eigenvalues, vectors = np.linalg.eigh(features.T @ features)
        keep = eigenvalues > eigenvalues.max(initial=0.0) * d * np.finfo(np.float64).eps
        singular_values = np.sqrt(eigenvalues[keep])
        class_feature_sums = class_sums(features, codes, n_classes)  # (C, d) = (F^T Y)^T
        projections = (vectors[:, keep].T @ class_feature_sums.T) / singular_values[:, None]
    else:
        # n <= d: the n x n product F F^T = U S^2 U^T gives U and S without the SVD of F.
        eigenvalues, left = np.linalg.eigh(features @ features.T)
        keep = eigenvalues > eigenvalues.max(initial=0.0) * n * np.finfo(np.float64).eps
        singular_values = np.sqrt(eigenvalues[keep])
        projections = class_sums(left[:, keep], codes, n_classes).T  # U^T Y without forming the one-hot Y
    return _evidence_from_svd(
        singular_values, projections, onehot_counts, n, d, max_iter=max_iter, tol=tol
    )


@register_estimator(
    "logme",
    citation="You, Liu, Wang & Long, 'LogME: Practical Assessment of Pre-trained Models for Transfer "
    "Learning', ICML 2021",
)
def logme(features: np.ndarray, labels: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> float:
    """LogME: mean over classes of the maximised log evidence of a Bayesian linear model, per sample.

    For every class ``c`` the one-vs-rest target ``y_c`` (1 for class ``c``, else 0) is modelled as
    ``y_c = f w + eps`` with ``w ~ N(0, alpha^-1 I)`` and ``eps ~ N(0, beta^-1 I)``. The evidence
    ``log p(y_c | f, alpha, beta) = n/2 log beta + d/2 log alpha - n/2 log 2 pi - beta/2 ||y - f m||^2
    - alpha/2 m^T m - 1/2 log det(alpha I + beta f^T f)`` is maximised over ``alpha, beta`` by the
    fixed-point iteration ``gamma = sum beta s / (alpha + beta s)``, ``alpha = gamma / m^T m``,
    ``beta = (n - gamma) / ||y - f m||^2`` (``s`` the eigenvalues of ``f^T f``,
    ``m = beta (alpha I + beta f^T f)^-1 f^T y``), from ``alpha = beta = 1``, using the eigendecomposition
    of the ``d x d`` product ``f^T f`` when ``n > d`` (as the authors' code) and of the ``n x n`` product
    ``f f^T`` otherwise.
    The features are used as given (no centring, no bias column). alpha and beta are clipped to
    ``[1e-12, 1e12]`` so that degenerate inputs (zero features, exact fits when n <= d) stay finite.

    Cited: You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        max_iter: cap on fixed-point iterations.
        tol: stop once alpha and beta move by less than ``tol`` relatively for every class.

    Returns:
        Higher is better. ``(1/C) sum_c log p(y_c | f) / n``: a log density per sample, unbounded
        (typically between about -2 and 2). Time O(n d min(n, d)), memory O(d^2 + n min(n, d)).

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``max_iter < 1`` or ``tol <= 0``.
    """
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive_float(tol, "tol")
    features, target = check_features_labels(features, labels)
    log_evidence, _, _ = _logme_per_class(
        features, target.codes, target.n_classes, max_iter=max_iter, tol=tol
    )
    return float(np.mean(log_evidence) / features.shape[0])
