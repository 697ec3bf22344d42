"""Probe estimators: leave-one-out k-nearest-neighbour and cross-validated linear-probe accuracy."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from taskspace.scoring._common import subsample, unit_rows
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._threads import single_threaded
from taskspace.scoring._validation import (
    check_class_sizes,
    check_features_labels,
    check_positive_float,
    check_positive_int,
)

__all__ = ["knn", "linear_probe"]

#: Rows of the similarity matrix computed at once by :func:`knn` (bounds its memory to BLOCK x m).
BLOCK = 512


@register_estimator("knn", citation="Cover & Hart, 'Nearest neighbor pattern classification', IEEE T-IT 1967")
def knn(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 5,
    max_samples: int | None = 5000,
    seed: int | None = 0,
) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour classifier with cosine similarity.

    Each sample is classified by a majority vote of its ``k`` most cosine-similar other samples (rows
    normalised with norms clamped at 1e-12; the sample itself is excluded). A tied vote goes to the
    tied class with the most similar neighbour; ties in similarity are broken by sample order. With
    more than ``max_samples`` samples a subsample drawn with ``np.random.default_rng(seed)`` is used
    (the cost is O(m^2 d) for ``m`` kept samples; memory O(512 m)). ``k`` is capped at ``m - 1``.

    Cited: Cover & Hart, "Nearest neighbor pattern classification", IEEE Trans. Inf. Theory 1967.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        k: number of neighbours (default 5).
        max_samples: subsample cap (``None``: use all samples).
        seed: seed of the subsample.

    Returns:
        Higher is better: an accuracy in ``[0, 1]``.

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``k < 1`` or ``max_samples < 2``.
    """
    k = check_positive_int(k, "k")
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples", minimum=2)
    features, target = check_features_labels(features, labels)
    codes = target.codes
    kept = subsample(features.shape[0], max_samples, seed)
    if kept is not None:
        features, codes = features[kept], codes[kept]
    unit = unit_rows(features)
    m = unit.shape[0]
    k = min(k, m - 1)
    class_ids = np.arange(target.n_classes)
    correct = 0
    for start in range(0, m, BLOCK):
        rows = np.arange(start, min(start + BLOCK, m))
        similarity = unit[rows] @ unit.T
        similarity[np.arange(rows.shape[0]), rows] = -np.inf  # leave the sample itself out
        neighbours = _nearest(similarity, k)
        neighbour_codes = codes[neighbours]  # (b, k), nearest first
        votes = (neighbour_codes[:, :, None] == class_ids).sum(axis=1)  # (b, C)
        winners = votes == votes.max(axis=1, keepdims=True)
        # the first (nearest) neighbour whose class is among the tied winners decides
        first = np.argmax(np.take_along_axis(winners, neighbour_codes, axis=1), axis=1)
        predicted = neighbour_codes[np.arange(rows.shape[0]), first]
        correct += int(np.sum(predicted == codes[rows]))
    return float(correct / m)


def _nearest(similarity: np.ndarray, k: int) -> np.ndarray:
    """``(b, k)`` column indices of each row's ``k`` largest values, largest first, ties by column order.

    The same as ``np.argsort(-similarity, axis=1, kind="stable")[:, :k]``, but O(m) per row: a
    partition finds the ``k`` largest, and only those are sorted. A row where the ``k``-th largest
    value is tied with values outside the chosen ``k`` is sorted in full, so that the lowest column
    indices win the tie as in the stable sort.
    """
    if k >= similarity.shape[1]:
        return np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    chosen = np.sort(np.argpartition(-similarity, k - 1, axis=1)[:, :k], axis=1)  # column order
    values = np.take_along_axis(similarity, chosen, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    neighbours = np.take_along_axis(chosen, order, axis=1)
    kth = values.min(axis=1)
    tied = np.flatnonzero(np.count_nonzero(similarity >= kth[:, None], axis=1) > k)
    if tied.size:
        neighbours[tied] = np.argsort(-similarity[tied], axis=1, kind="stable")[:, :k]
    return neighbours


#: Largest ``d (C - 1)`` fitted by Newton's method; larger problems use L-BFGS.
NEWTON_LIMIT = 4096

#: Gradient tolerance of the Newton fits (scikit-learn scales the objective by ``1 / (C n)``): at 1e-8 the
#: weights equal the exact minimum to ~1e-16 after 6-10 steps, where the default 1e-4 stops ~1e-3 short.
NEWTON_TOLERANCE = 1e-8

#: Gradient tolerance of the L-BFGS fits (scikit-learn's default: at n = 6,667, d = 2,048, 10 classes it stops
#: after 266 iterations instead of 727 at 1e-6, with the same held-out accuracy to 0.003).
LBFGS_TOLERANCE = 1e-4


@register_estimator(
    "linear_probe",
    citation="Kornblith, Shlens & Le, 'Do Better ImageNet Models Transfer Better?', CVPR 2019 "
    "(logistic-regression probe on frozen features)",
)
def linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_splits: int = 3,
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int | None = 0,
) -> float:
    """Cross-validated accuracy of a logistic-regression probe on the (standardised) features.

    ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` splits the samples; on each split
    the features are standardised with a ``StandardScaler`` fitted on the training folds, an
    L2-regularised logistic regression (scikit-learn's ``LogisticRegression(C=C)`` objective, intercept
    not penalised) is fitted to its minimum and scored on the held-out fold; the score is the mean
    held-out accuracy. The fit is scikit-learn's ``newton-cholesky`` solver for any number of classes
    (gradient tolerance :data:`NEWTON_TOLERANCE`: the minimum to machine precision in a few steps), or its
    ``lbfgs`` (gradient tolerance 1e-4) when ``d (C - 1)`` exceeds :data:`NEWTON_LIMIT`, where the Newton
    system would not fit in time or memory. The number of
    splits is lowered to the size of the smallest class if that is smaller (at least 2 needed).

    Cited: Kornblith, Shlens & Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes, each with at least 2 samples.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        n_splits: number of cross-validation folds (>= 2).
        C: inverse L2 regularisation strength of the logistic regression.
        max_iter: iteration cap of the solver (Newton steps).
        seed: seed of the fold shuffle.

    Returns:
        Higher is better: an accuracy in ``[0, 1]``. Time: ``n_splits`` fits of O(n d^2 + d^3) per
        Newton step (times the number of classes squared for more than two).

    Raises:
        DataError: invalid features or labels, or a class with fewer than 2 samples.
        ConfigError: ``n_splits < 2``, ``C <= 0`` or ``max_iter < 1``.
    """
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    n_splits = check_positive_int(n_splits, "n_splits", minimum=2)
    C = check_positive_float(C, "C")
    max_iter = check_positive_int(max_iter, "max_iter")
    features, target = check_features_labels(features, labels)
    smallest = check_class_sizes(target, minimum=2, estimator="linear_probe", purpose="for cross-validation")
    codes = target.codes
    folds = StratifiedKFold(n_splits=min(n_splits, smallest), shuffle=True, random_state=seed)
    accuracies = []
    with single_threaded():  # many small Newton steps: threads cost more than they gain
        for train, held_out in folds.split(features, codes):
            scaler = StandardScaler().fit(features[train])
            fitted, tested = scaler.transform(features[train]), scaler.transform(features[held_out])
            predicted = fitted_probe(fitted, codes[train], C=C, max_iter=max_iter).predict(tested)
            accuracies.append(float(np.mean(predicted == codes[held_out])))
    return float(np.mean(accuracies))


def fitted_probe(train: np.ndarray, train_codes: np.ndarray, *, C: float, max_iter: int) -> LogisticRegression:
    """The logistic regression of :func:`linear_probe`, fitted on ``train`` (every class present)."""
    n_classes = np.unique(train_codes).shape[0]
    # Newton's Hessian has (d (C - 1))^2 entries: past NEWTON_LIMIT its factorisation dominates (at d =
    # 2,048 and 10 classes, 2.7 GB and hours), and L-BFGS reaches the same minimum of the convex objective
    if train.shape[1] * (n_classes - 1) <= NEWTON_LIMIT:
        model = LogisticRegression(C=C, max_iter=max_iter, solver="newton-cholesky", tol=NEWTON_TOLERANCE)
    else:
        model = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs", tol=LBFGS_TOLERANCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: the iterate is still a probe
        return model.fit(train, train_codes)
