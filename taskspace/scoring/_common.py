"""Small numeric helpers shared by several estimators (float64 numpy in, numpy out)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["NORM_EPS", "unit_rows", "class_sums", "pca_project", "subsample", "ShrunkSpectrum",
           "ledoit_wolf_spectrum"]

#: Lower clamp of row norms: an all-zero row normalises to zero instead of NaN.
NORM_EPS = 1e-12


def unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows divided by ``max(||row||, NORM_EPS)``: the feature map of the cosine kernel."""
    norms = np.sqrt(np.einsum("ij,ij->i", values, values))
    return np.asarray(values / np.maximum(norms, NORM_EPS)[:, None])


def class_sums(values: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, d)`` sums of the rows of ``values`` per class code."""
    one_hot = np.zeros((n_classes, values.shape[0]), dtype=np.float64)
    one_hot[codes, np.arange(values.shape[0])] = 1.0
    return np.asarray(one_hot @ values)


def pca_project(values: np.ndarray, n_components: int | None) -> np.ndarray:
    """Centre ``values`` and project them on their top ``n_components`` principal axes.

    Deterministic: an eigendecomposition of the smaller of the ``d x d`` scatter matrix and the
    ``n x n`` Gram matrix (O(n d min(n, d))). Returns the centred data unchanged when ``n_components``
    is ``None`` or not smaller than ``d``. Axis signs are arbitrary; every caller is invariant to them.
    """
    centred = values - values.mean(axis=0)
    n, d = centred.shape
    if n_components is None or n_components >= d:
        return np.asarray(centred)
    if d <= n:
        _, axes = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        return np.asarray(centred @ axes[:, ::-1][:, :n_components])
    # scores Z V = U S from the Gram matrix Z Z^T = U S^2 U^T; components beyond rank n are zero
    eigenvalues, left = np.linalg.eigh(centred @ centred.T)
    order = np.argsort(eigenvalues)[::-1][: min(n_components, n)]
    scores = left[:, order] * np.sqrt(np.maximum(eigenvalues[order], 0.0))
    if scores.shape[1] < n_components:
        scores = np.hstack([scores, np.zeros((n, n_components - scores.shape[1]))])
    return np.asarray(scores)


def subsample(n: int, max_samples: int | None, seed: int | None) -> np.ndarray | None:
    """Sorted indices of ``max_samples`` of ``n`` samples drawn without replacement, or ``None`` if
    no subsampling is needed (``max_samples`` is ``None`` or ``>= n``)."""
    if max_samples is None or n <= max_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


class ShrunkSpectrum(NamedTuple):
    """The scatter ``S = X^T X / n`` of column-centred rows in its eigenbasis, with its Ledoit-Wolf shrinkage.

    Attributes:
        eigenvalues: ``(d,)`` eigenvalues ``e`` of ``S``, clamped at 0.
        shrunk: ``(d,)`` eigenvalues of the Ledoit-Wolf estimate, ``(1 - s) e + s mean(e)``.
        eigenvectors: ``(d, d)`` the shared eigenvectors, as columns.
        shrinkage: ``s`` in ``[0, 1]``.
    """

    eigenvalues: np.ndarray
    shrunk: np.ndarray
    eigenvectors: np.ndarray
    shrinkage: float


def ledoit_wolf_spectrum(centred: np.ndarray) -> ShrunkSpectrum:
    """One ``d x d`` eigendecomposition of the scatter of column-centred rows, and its Ledoit-Wolf shrinkage.

    The Ledoit-Wolf estimate ``(1 - s) S + s (tr S / d) I`` shares ``S``'s eigenvectors, so one
    eigendecomposition gives both.
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    n = float(centred.shape[0])
    shrinkage = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / n)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    shrunk = (1.0 - shrinkage) * eigenvalues + shrinkage * eigenvalues.mean()
    return ShrunkSpectrum(eigenvalues, shrunk, eigenvectors, shrinkage)
