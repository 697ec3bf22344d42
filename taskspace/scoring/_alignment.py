"""Kernel-alignment reusability scores (Duan, Yu & Principe, TNNLS 2022) without an n x n matrix.

The kernel is the cosine kernel of the features, ``G = Phi Phi^T`` with ``Phi`` the row-normalised
features; the ideal kernel is ``G*_ij = k_max`` for same-class pairs and ``k_min`` otherwise. The sums
the alignment needs reduce to class sums and a ``d x d`` Gram matrix (docs/method.md, the exact alignment):

* ``sum_ij G_ij [y_i = y_j] = sum_c ||s_c||^2`` with ``s_c = sum_{i in c} phi_i``;
* ``sum_ij G_ij = ||sum_i phi_i||^2``;
* ``||G||_F^2 = ||Phi^T Phi||_F^2``;
* the diagonal holds ``G_ii = ||phi_i||^2`` (1, or exactly 0 for an all-zero row), so the strict upper
  triangle is ``(total - diagonal) / 2``.
"""

from __future__ import annotations

import numpy as np

from taskspace.errors import ConfigError
from taskspace.scoring._common import (
    NORM_EPS,
    class_sums,
    ledoit_wolf_spectrum,
    unit_rows,
)
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels, check_positive_int

__all__ = ["alignment", "alignment_minibatch", "alignment_centered", "alignment_whitened"]

#: Lower clamp of the norms in a cosine.
EPS = NORM_EPS

_CITATION = (
    "Duan, Yu & Principe, 'Modularizing Deep Learning via Pairwise Learning With Kernels', "
    "IEEE TNNLS 33(4):1441-1451, 2022"
)


def _check_ideal_values(k_min: float, k_max: float) -> None:
    if not (np.isfinite(k_min) and np.isfinite(k_max) and k_min < k_max):
        raise ConfigError(f"k_min must be < k_max (both finite), got k_min={k_min}, k_max={k_max}")


#: Rows normalised at a time: the extra memory of the exact score is O(chunk·d + d²), never O(n·d).
_CHUNK_ROWS = 4096


def _upper_triangle_alignment(
    features: np.ndarray, codes: np.ndarray, n_classes: int, k_min: float, k_max: float
) -> float:
    """Exact ``sum_{i<j} G_ij G*_ij / (||G_upper|| ||G*_upper||)`` in O(n d^2) time, O(chunk d + d^2) memory.

    ``features`` are normalised here, one block of rows at a time; any number of classes (one
    included) is accepted. Returns 0 where a norm is <= EPS (all-zero features; no same-class pair
    with ``k_min = 0``), as the ``upper_tri_alignment`` objective does.
    """
    n, dimension = features.shape
    sums = np.zeros((n_classes, dimension), dtype=np.float64)
    gram_dd = np.zeros((dimension, dimension), dtype=np.float64)
    diagonal = 0.0  # sum of G_ii
    diagonal_squares = 0.0  # sum of G_ii^2
    for start in range(0, n, _CHUNK_ROWS):
        unit = unit_rows(np.asarray(features[start : start + _CHUNK_ROWS], dtype=np.float64))
        squared_norms = np.einsum("ij,ij->i", unit, unit)
        sums += class_sums(unit, codes[start : start + _CHUNK_ROWS], n_classes)
        gram_dd += unit.T @ unit
        diagonal += float(squared_norms.sum())
        diagonal_squares += float(squared_norms @ squared_norms)
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    same_total = float(np.einsum("cd,cd->", sums, sums))  # same-class pairs, diagonal included
    grand_sum = sums.sum(axis=0)
    all_total = float(grand_sum @ grand_sum)
    same_upper = (same_total - diagonal) / 2.0
    different_upper = (all_total - same_total) / 2.0  # no diagonal entry is a different-class pair
    cross_upper = k_max * same_upper + k_min * different_upper
    gram_total = float(np.einsum("ij,ij->", gram_dd, gram_dd))  # ||G||_F^2 = ||Phi^T Phi||_F^2
    gram_upper = max((gram_total - diagonal_squares) / 2.0, 0.0)
    same_pairs = (float(counts @ counts) - n) / 2.0
    different_pairs = n * (n - 1) / 2.0 - same_pairs
    target_upper = k_max**2 * same_pairs + k_min**2 * different_pairs
    norm_gram, norm_target = np.sqrt(gram_upper), np.sqrt(target_upper)
    if norm_gram <= EPS or norm_target <= EPS:
        return 0.0
    return float(cross_upper / (norm_gram * norm_target))


@register_estimator("alignment", citation=_CITATION)
def alignment(features: np.ndarray, labels: np.ndarray, *, k_min: float = 0.0, k_max: float = 1.0) -> float:
    """Kernel alignment of the cosine kernel with the ideal kernel, exact over all samples.

    The paper's reusability score (its hidden-module objective evaluated on the target data): the
    cosine between the strict upper triangles of the cosine kernel ``G`` of the features and the
    ideal kernel ``G*`` (``k_max`` for same-class pairs, ``k_min`` otherwise),
    ``A = sum_{i<j} G_ij G*_ij / (sqrt(sum_{i<j} G_ij^2) sqrt(sum_{i<j} G*_ij^2))``, computed exactly
    without forming any ``n x n`` matrix (docs/method.md, the exact alignment). Rows are L2-normalised
    here (norm clamped at 1e-12), so the features need not be unit-norm; an all-zero row has ``G_ii = 0``,
    handled exactly.

    Cited: Duan, Yu & Principe, TNNLS 2022 (Cristianini et al. 2001 for kernel-target alignment).

    Shape:
        features: ``(n, d)`` target features (phi-mapped, typically non-negative).
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        k_min: ideal value for different-class pairs (0 for relu/sigmoid cosine kernels, -1 for tanh).
        k_max: ideal value for same-class pairs.

    Returns:
        Higher is better. In ``[0, 1]`` for non-negative features with ``k_min >= 0`` (``[-1, 1]`` in
        general). 0 when every class has a single sample (no same-class pair, ``k_min = 0``) or every
        feature row is zero. Time O(n d^2); extra memory O(d^2) beyond a block of rows (rows are
        normalised 4,096 at a time), so never an n x n matrix; computed in float64.

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``k_min >= k_max``.
    """
    _check_ideal_values(k_min, k_max)
    features, target = check_features_labels(features, labels)
    return _upper_triangle_alignment(features, target.codes, target.n_classes, k_min, k_max)


@register_estimator("alignment_minibatch", citation=_CITATION, batch_size=128, seed=0)
def alignment_minibatch(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 128,
    seed: int | None = 0,
    shuffle: bool = True,
    k_min: float = 0.0,
    k_max: float = 1.0,
) -> float:
    """Mean over shuffled mini-batches of the upper-triangle alignment, as the paper's scripts use.

    The samples are shuffled with ``np.random.default_rng(seed)`` (unless ``shuffle=False``) and cut
    into consecutive batches of ``batch_size`` (the last one may be smaller, a last batch of a single
    sample has no pair and is skipped); the score is the unweighted mean over batches of the
    ``upper_tri_alignment`` objective of :mod:`taskspace.objectives` on each batch's cosine kernel.
    It approximates :func:`alignment` (the exact whole-set value) and depends on ``seed``.

    Cited: Duan, Yu & Principe, TNNLS 2022.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        batch_size: samples per batch (>= 2); 128 in the paper's scripts.
        seed: seed of the shuffle.
        shuffle: whether to shuffle before batching.
        k_min: ideal value for different-class pairs.
        k_max: ideal value for same-class pairs.

    Returns:
        Higher is better; same range as :func:`alignment`. A batch of one class is well defined (every
        ``G*_ij = k_max``); a batch without same-class pairs scores 0 when ``k_min = 0``.

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``batch_size < 2`` or ``k_min >= k_max``.
    """
    batch_size = check_positive_int(batch_size, "batch_size", minimum=2)
    _check_ideal_values(k_min, k_max)
    features, target = check_features_labels(features, labels)
    n = features.shape[0]
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    values = []
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        if batch.shape[0] < 2:
            continue
        values.append(
            _upper_triangle_alignment(features[batch], target.codes[batch], target.n_classes, k_min, k_max)
        )
    return float(np.mean(values))


@register_estimator("alignment_centered", citation=_CITATION + "; Kornblith et al., ICML 2019 (CKA)")
def alignment_centered(features: np.ndarray, labels: np.ndarray) -> float:
    """Centred kernel alignment: linear CKA between row-normalised features and one-hot labels.

    Both kernels are centred, ``Kc = H G H`` and ``Lc = H G* H`` with ``H = I - 11^T / n``, and the
    score is ``<Kc, Lc>_F / (||Kc||_F ||Lc||_F)`` (diagonal included). With ``Phi_c`` the centred
    row-normalised features and ``Y_c`` the centred one-hot labels this is
    ``||Phi_c^T Y_c||_F^2 / (||Phi_c^T Phi_c||_F ||Y_c^T Y_c||_F)``, computed without n x n matrices.
    Centring removes the constant part of ``G*``, so the value does not depend on ``k_min``/``k_max``.

    Cited: Cortes, Mohri & Rostamizadeh, JMLR 2012 (centred alignment); Kornblith et al., ICML 2019
    (CKA); applied to the kernels of Duan, Yu & Principe, TNNLS 2022.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.

    Returns:
        Higher is better, in ``[0, 1]``; 0 when the features are constant (all rows equal after
        normalisation). Time O(n d^2 + C^2), memory O(n d + d^2 + C^2), float64.

    Raises:
        DataError: invalid features or labels.
    """
    features, target = check_features_labels(features, labels)
    unit = unit_rows(features)
    return _centred_label_alignment(unit - unit.mean(axis=0), target.codes, target.counts, target.n_classes)


def _centred_label_alignment(centred: np.ndarray, codes: np.ndarray, class_counts: np.ndarray, n_classes: int) -> float:
    """Linear CKA of column-centred features with the one-hot labels, in O(n d^2 + C^2)."""
    counts = class_counts.astype(np.float64)
    n = float(centred.shape[0])
    cross = class_sums(centred, codes, n_classes)  # Phi_c^T Y = Phi_c^T Y_c, as (C, d)
    gram_dd = centred.T @ centred
    norm_features = np.sqrt(float(np.einsum("ij,ij->", gram_dd, gram_dd)))
    return _alignment_ratio(cross, norm_features, counts, n)


def _alignment_ratio(cross: np.ndarray, norm_features: float, counts: np.ndarray, n: float) -> float:
    """``||Phi_c^T Y||_F^2 / (||Phi_c^T Phi_c||_F ||Y_c^T Y_c||_F)`` from its parts; 0 when a norm vanishes."""
    label_gram = np.diag(counts) - np.outer(counts, counts) / n  # Y_c^T Y_c
    norm_labels = np.sqrt(float(np.einsum("ij,ij->", label_gram, label_gram)))
    if norm_features <= EPS or norm_labels <= EPS:
        return 0.0
    return float(np.einsum("cd,cd->", cross, cross) / (norm_features * norm_labels))


#: Eigenvalues of the shrunk covariance are clamped here before the inverse square root.
_WHITENING_FLOOR = 1e-12


@register_estimator(
    "alignment_whitened",
    citation=_CITATION + "; Kornblith et al., ICML 2019 (CKA); Ledoit & Wolf, J. Multivariate Anal. 2004",
)
def alignment_whitened(features: np.ndarray, labels: np.ndarray) -> float:
    """Centred alignment of the Ledoit-Wolf-whitened cosine features with the labels (taskspace's score).

    The paper's kernel is kept (rows are L2-normalised: the cosine kernel's feature map); then the
    features are centred and whitened, ``W = Phi_c V diag(lambda)^(-1/2)`` with ``V diag(lambda) V^T`` the
    Ledoit-Wolf estimate of their covariance, and the score is the centred alignment (linear CKA) of
    ``W W^T`` with the label kernel, ``||W^T Y_c||_F^2 / (||W^T W||_F ||Y_c^T Y_c||_F)``.

    Why: with non-negative features the uncentred :func:`alignment` cannot fall much below its floor
    (about 0.707 on a balanced binary task), so a source that merges the target's two classes still
    scores near the top; centring removes that floor, and whitening stops a few high-variance
    directions that carry no class information from diluting the score (the uncentred and the merely
    centred scores weigh every direction by its variance). The numerator is then the between-class
    scatter measured in units of the total covariance, the quantity H-score and LDA also use, but in
    the bounded, normalised form of a kernel alignment. Chosen on the default CIFAR-10 space and
    confirmed on a second one (benchmarks/kernel_score_study.py, benchmarks/transfer_grid.py).

    Cited: Duan, Yu & Principe, TNNLS 2022 (kernel); Cortes, Mohri & Rostamizadeh, JMLR 2012 and
    Kornblith et al., ICML 2019 (centred alignment); Ledoit & Wolf, J. Multivariate Anal. 2004
    (shrinkage).

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.

    Returns:
        Higher is better, in ``[0, 1]``: near 0 when no direction separates the classes, 1 when the
        whitened features are the centred labels. 0 for constant features. Invariant to rotations and
        scaling of the features. Time O(n d^2 + d^3) (one d x d eigendecomposition), memory O(n d + d^2),
        float64.

    Raises:
        DataError: invalid features or labels.
    """
    features, target = check_features_labels(features, labels)
    unit = unit_rows(features)
    centred = unit - unit.mean(axis=0)
    if not np.any(centred):
        return 0.0
    n = float(centred.shape[0])
    # one eigh of the scatter gives the whitening, and the whitened scatter W^T W is diagonal:
    # n * lambda / lambda_shrunk
    spectrum = ledoit_wolf_spectrum(centred)
    shrunk = np.maximum(spectrum.shrunk, _WHITENING_FLOOR)
    cross = (class_sums(centred, target.codes, target.n_classes) @ spectrum.eigenvectors) / np.sqrt(shrunk)
    norm_features = n * float(np.sqrt(np.sum((spectrum.eigenvalues / shrunk) ** 2)))
    return _alignment_ratio(cross, norm_features, target.counts.astype(np.float64), n)
