"""Leave-one-out accuracy of the kernel ridge classifier on the paper's cosine kernel (taskspace's)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import ledoit_wolf_spectrum, unit_rows
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels

__all__ = ["kernel_ridge_loo"]

#: ``1 - leverage`` is clamped here (a leverage of 1 needs a point the ridge fits exactly).
_LEVERAGE_FLOOR = 1e-12

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

