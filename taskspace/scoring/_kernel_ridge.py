"""Leave-one-out accuracy of the kernel ridge classifier on the paper's cosine kernel (taskspace's)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import ledoit_wolf_spectrum, unit_rows
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels

__all__ = ["kernel_ridge_loo", "kernel_ridge_r2"]

#: ``1 - leverage`` is clamped here (a leverage of 1 needs a point the ridge fits exactly).
_LEVERAGE_FLOOR = 1e-12

#: Ridges tried by :func:`kernel_ridge_r2`, as multiples of the mean non-zero eigenvalue of ``Phi_c^T Phi_c``:
#: 10^-5 to 10^3 in steps of 10^0.25 (33 values), from almost no shrinkage to almost all.
RIDGE_GRID = 10.0 ** np.linspace(-5.0, 3.0, 33)

#: Directions whose shrunk variance is below this carry no samples' spread and get no weight.
_SPECTRUM_FLOOR = 1e-12


@register_estimator(
    "kernel_ridge_loo",
    citation="Duan, Yu & Principe, TNNLS 2022 (cosine kernel); Rifkin & Lippert, 'Notes on regularized "
    "least squares', MIT-CSAIL-TR-2007-025 (closed-form leave-one-out); Ledoit & Wolf, J. Multivariate "
    "Anal. 2004 (shrinkage)",
)
def kernel_ridge_loo(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of the ridge least-squares classifier on the cosine kernel's features.

    The classifier is the one whose in-sample fit :func:`alignment_whitened` measures: the one-hot labels
    regressed, with an unpenalised intercept, on the row-normalised features ``Phi`` (the cosine kernel's
    feature map), with the ridge ``lambda = n s mean(e) / (1 - s)`` that the Ledoit-Wolf shrinkage ``s``
    of their covariance (eigenvalues ``e``) implies. Each sample is predicted by the fit on the other
    ``n - 1`` in closed form, ``y_hat_(-i) = (y_hat_i - h_i y_i) / (1 - h_i)`` with ``h_i`` the leverage
    (the diagonal of the hat matrix ``1/n + Phi_c (Phi_c^T Phi_c + lambda I)^-1 Phi_c^T``), and classified
    by its largest entry; the score is the fraction classified right.

    Why: the frozen-trunk ground truth is the held-out accuracy of a linear output module trained on the
    target's labels; the whitened alignment scores the same linear fit by its explained variance, this
    score by the held-out accuracy it reaches, at the same cost (one d x d eigendecomposition).

    Where it breaks: with no information in the features (constant rows, or features independent of
    the labels) leave-one-out prediction favours the classes the left-out sample does not belong to, so
    the score falls below chance (0 for constant features on a balanced task) instead of sitting at it.
    Rankings of informative sources are unaffected.

    Cited: Duan, Yu & Principe, TNNLS 2022 (kernel); Rifkin & Lippert, MIT-CSAIL-TR-2007-025 2007
    (leave-one-out of regularised least squares); Ledoit & Wolf, J. Multivariate Anal. 2004 (shrinkage).

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.

    Returns:
        Higher is better: an accuracy in ``[0, 1]``. Invariant to rotations and scaling of the features.
        Time O(n d^2 + d^3 + n d C), memory O(n d + d^2), float64.

    Raises:
        DataError: invalid features or labels.
    """
    features, target = check_features_labels(features, labels)
    codes = target.codes
    unit = unit_rows(features)
    centred = unit - unit.mean(axis=0)
    n = centred.shape[0]
    onehot = np.zeros((n, target.n_classes))
    onehot[np.arange(n), codes] = 1.0
    frequencies = target.counts / n
    if np.any(centred):
        spectrum = ledoit_wolf_spectrum(centred)
        # (Phi_c^T Phi_c + lambda I)^-1 in the eigenbasis: n e + lambda = n shrunk / (1 - s), with
        # shrunk = (1 - s) e + s mean(e) the Ledoit-Wolf eigenvalues (s = 1: no fit, the class frequencies)
        shrunk = spectrum.shrunk
        inverse = np.divide(1.0 - spectrum.shrinkage, n * shrunk, out=np.zeros_like(shrunk),
                            where=shrunk > _SPECTRUM_FLOOR)
        rotated = centred @ spectrum.eigenvectors
        weighted = rotated * inverse
        fitted = frequencies + weighted @ (rotated.T @ (onehot - frequencies))
        leverage = 1.0 / n + np.einsum("ij,ij->i", weighted, rotated)
    else:
        fitted = np.broadcast_to(frequencies, onehot.shape)
        leverage = np.full(n, 1.0 / n)
    left_out = (fitted - leverage[:, None] * onehot) / np.maximum(1.0 - leverage, _LEVERAGE_FLOOR)[:, None]
    return float(np.mean(np.argmax(left_out, axis=1) == codes))



@register_estimator(
    "kernel_ridge_r2",
    citation="Duan, Yu & Principe, TNNLS 2022 (cosine kernel); Allen, Technometrics 1974 (PRESS); "
    "Rifkin & Lippert, MIT-CSAIL-TR-2007-025 (closed-form leave-one-out)",
)
def kernel_ridge_r2(features: np.ndarray, labels: np.ndarray) -> float:
    """Held-out explained variance of the ridge fit of the labels on the cosine kernel's features.

    The one-hot labels ``Y`` are regressed, with an unpenalised intercept, on the row-normalised
    features ``Phi`` (the paper's cosine kernel's feature map) by ridge least squares. Every sample is
    predicted by the fit on the other ``n - 1`` in closed form (``r_(-i) = r_i / (1 - h_i)``, with ``r_i``
    the residual and ``h_i`` the leverage of the hat matrix ``1/n + Phi_c (Phi_c^T Phi_c + lambda I)^-1
    Phi_c^T``), and the ridge ``lambda`` is the one of :data:`RIDGE_GRID` (relative to the mean
    eigenvalue of ``Phi_c^T Phi_c``) whose leave-one-out residual sum of squares (PRESS) is least. The
    score is ``1 - PRESS / ||Y_c||_F^2``: the fraction of the labels' variance the features predict for
    samples they were not fitted on.

    Why: the frozen-trunk ground truth is the held-out accuracy of a linear output module. The
    whitened alignment (:func:`alignment_whitened`) measures the same linear fit in sample, with a
    shrinkage set by the features alone and a normalisation by their effective dimension; with a few
    hundred images, or features of nearly as many dimensions as images, the in-sample fit is mostly
    noise and that score ranks worse than LogME (below chance on the 8x8 digits). Measured held out,
    with the ridge chosen on the labels, the fit stays an estimate of what a new output module would
    reach; when ``n <= d`` the spectrum comes from the ``n x n`` Gram matrix (the dual) and leave-one-out
    keeps the ridge away from the exact fit. Chosen on the default CIFAR-10 space at 200 to 9,000
    images and confirmed on the 8x8 digits and the open zoo (benchmarks/few_images.py).

    Where it breaks: like every leave-one-out estimate it is noisy with very few images per class,
    and it can fall slightly below 0 when the features carry no information about the labels.

    Cited: Duan, Yu & Principe, TNNLS 2022 (kernel); Allen, Technometrics 1974 (PRESS); Rifkin &
    Lippert, MIT-CSAIL-TR-2007-025 2007 (leave-one-out of regularised least squares).

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.

    Returns:
        Higher is better, at most 1: 1 when every held-out sample is predicted exactly, about 0 (or a
        little below) when the features say nothing about the labels, 0 for constant features.
        Invariant to rotations and scaling of the features. Time O(n d min(n, d) + 33 n min(n, d) C),
        memory O(n min(n, d) + d^2), float64.

    Raises:
        DataError: invalid features or labels.
    """
    features, target = check_features_labels(features, labels)
    unit = unit_rows(features)
    centred = unit - unit.mean(axis=0)
    n = centred.shape[0]
    onehot = np.zeros((n, target.n_classes))
    onehot[np.arange(n), target.codes] = 1.0
    labels_centred = onehot - target.counts / n
    total = float(np.einsum("ij,ij->", labels_centred, labels_centred))
    if not np.any(centred):
        return 0.0
    eigenvalues, left = _left_spectrum(centred)
    projections = left.T @ labels_centred  # (r, C)
    outside = labels_centred - left @ projections  # the part of Y_c no ridge fit reaches
    squared_left = left**2
    press = np.inf
    for ridge in RIDGE_GRID * eigenvalues.mean():
        kept = ridge / (eigenvalues + ridge)  # the share of each direction the ridge leaves in the residual
        residuals = outside + left @ (kept[:, None] * projections)
        leverage = 1.0 / n + squared_left @ (1.0 - kept)
        held_out = residuals / np.maximum(1.0 - leverage, _LEVERAGE_FLOOR)[:, None]
        press = min(press, float(np.einsum("ij,ij->", held_out, held_out)))
    return 1.0 - press / total


def _left_spectrum(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(e, U)``: the non-zero eigenvalues of ``X^T X`` and the left singular vectors of ``X``, ``(n, r)``.

    From the ``d x d`` product when ``n > d`` (``U = X V e^-1/2``) and from the ``n x n`` Gram matrix
    otherwise; directions whose eigenvalue is below the float64 resolution of the largest are dropped.
    """
    n, d = centred.shape
    if n > d:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
        keep = eigenvalues > eigenvalues.max(initial=0.0) * d * np.finfo(np.float64).eps
        left = (centred @ vectors[:, keep]) / np.sqrt(eigenvalues[keep])
    else:
        eigenvalues, left = np.linalg.eigh(centred @ centred.T)
        keep = eigenvalues > eigenvalues.max(initial=0.0) * n * np.finfo(np.float64).eps
        left = left[:, keep]
    return eigenvalues[keep], left
