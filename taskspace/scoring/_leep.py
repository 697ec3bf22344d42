"""LEEP (Nguyen 2020), its Gaussian-mixture variant N-LEEP (Li 2021), and NCE (Tran 2019)."""

from __future__ import annotations

import numpy as np

from taskspace.errors import ConfigError
from taskspace.scoring._common import class_sums
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import (
    check_features_labels,
    check_labels,
    check_positive_float,
    check_positive_int,
    check_source_probs,
)

__all__ = ["leep", "nce", "nleep"]

_INPUTS = ("source_probs", "labels")


def _joint(weights: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, c)`` empirical joint ``P(y, z) = (1/n) sum_{i: y_i = y} weights[i, z]``."""
    return np.asarray(class_sums(weights, codes, n_classes) / weights.shape[0])


def _conditional(joint: np.ndarray) -> np.ndarray:
    """``P(y | z) = P(y, z) / sum_y P(y, z)``; columns of a source class with no mass are all 0."""
    marginal = joint.sum(axis=0)
    return np.asarray(np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0))


@register_estimator(
    "leep",
    inputs=_INPUTS,
    citation="Nguyen, Hassner, Seeger & Archambeau, 'LEEP: A New Measure to Evaluate Transferability "
    "of Learned Representations', ICML 2020",
)
def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP: log expected empirical prediction of the source classifier re-labelled for the target.

    With ``theta`` the source softmax: ``P(y, z) = (1/n) sum_{i: y_i = y} theta_z(x_i)``,
    ``P(y | z) = P(y, z) / sum_y P(y, z)`` and
    ``LEEP = (1/n) sum_i log sum_z P(y_i | z) theta_z(x_i)`` (with the log). A source class that never
    receives probability mass has an undefined ``P(. | z)``; it is set to 0, which changes nothing
    because that class's ``theta_z`` is 0 for every sample. Every log argument is positive.

    Cited: Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020.

    Shape:
        source_probs: ``(n, c)`` source-classifier probabilities on the target samples, rows sum to 1.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        source_probs: softmax outputs of the source model.
        labels: target labels.

    Returns:
        Higher is better, in ``(-inf, 0]``; 0 when the re-labelled source predicts every target label
        with certainty. Time O(n c).

    Raises:
        DataError: invalid probabilities or labels.
    """
    probs = check_source_probs(source_probs, estimator="leep")
    target = check_labels(labels, probs.shape[0], rows_of="source_probs")
    conditional = _conditional(_joint(probs, target.codes, target.n_classes))  # (C, c)
    expected = np.einsum("iz,iz->i", probs, conditional[target.codes])
    return float(np.mean(np.log(np.minimum(expected, 1.0))))  # <= 1 exactly; rounding can exceed it


@register_estimator(
    "nce",
    inputs=_INPUTS,
    citation="Tran, Nguyen & Hassner, 'Transferability and Hardness of Supervised Classification "
    "Tasks', ICCV 2019",
)
def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """NCE: negative conditional entropy ``-H(Y | Z)`` of the target label given the source prediction.

    ``z_i = argmax_z source_probs[i, z]`` (ties go to the lowest index); with the empirical joint
    ``P(y, z)`` of the pairs ``(y_i, z_i)``, ``NCE = sum_{y, z} P(y, z) log P(y | z)`` over the
    non-zero cells.

    Cited: Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019.

    Shape:
        source_probs: ``(n, c)`` source-classifier probabilities (only the argmax is used).
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        source_probs: softmax outputs of the source model.
        labels: target labels.

    Returns:
        Higher is better, in ``[-H(Y), 0]`` (so ``>= -log C``); 0 when the source prediction
        determines the target label. Time O(n + C c).

    Raises:
        DataError: invalid probabilities or labels.
    """
    probs = check_source_probs(source_probs, estimator="nce")
    target = check_labels(labels, probs.shape[0], rows_of="source_probs")
    predictions = np.argmax(probs, axis=1)
    onehot = np.zeros_like(probs)
    onehot[np.arange(probs.shape[0]), predictions] = 1.0
    joint = _joint(onehot, target.codes, target.n_classes)
    conditional = _conditional(joint)
    cells = joint > 0
    return float(np.sum(joint[cells] * np.log(conditional[cells])))


@register_estimator(
    "nleep",
    citation="Li, Jia, Cui, Zhang & Gong, 'Ranking Neural Checkpoints', CVPR 2021",
)
def nleep(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    components_per_class: int = 5,
    variance_kept: float = 0.8,
    max_iter: int = 100,
    seed: int | None = 0,
) -> float:
    """N-LEEP: LEEP with a Gaussian mixture on the features in place of the source classifier.

    The features are centred and projected on the fewest principal axes that keep ``variance_kept``
    of the variance; a diagonal-covariance Gaussian mixture with ``components_per_class * C``
    components (at most ``n``) is fitted by EM (``sklearn.mixture.GaussianMixture``, seeded), and its
    posteriors take the place of ``theta`` in :func:`leep`.

    Cited: Li, Jia, Cui, Zhang & Gong, "Ranking Neural Checkpoints", CVPR 2021.

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        components_per_class: mixture components per target class.
        variance_kept: fraction of the variance the PCA keeps, in ``(0, 1]``.
        max_iter: EM iteration cap.
        seed: seed of the mixture's initialisation.

    Returns:
        Higher is better, in ``(-inf, 0]``, as :func:`leep`. Time: one EM fit, O(iterations n K p).

    Raises:
        DataError: invalid features or labels.
        ConfigError: invalid options.
    """
    from sklearn.mixture import GaussianMixture

    components_per_class = check_positive_int(components_per_class, "components_per_class")
    variance_kept = check_positive_float(variance_kept, "variance_kept")
    if variance_kept > 1.0:
        raise ConfigError(f"variance_kept must be in (0, 1], got {variance_kept}")
    max_iter = check_positive_int(max_iter, "max_iter")
    features, target = check_features_labels(features, labels)
    centred = features - features.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    eigenvalues, eigenvectors = np.maximum(eigenvalues[::-1], 0.0), eigenvectors[:, ::-1]
    total = eigenvalues.sum()
    if total <= 0:
        kept = 1
    else:
        kept = int(np.searchsorted(np.cumsum(eigenvalues) / total, variance_kept - 1e-12) + 1)
    projected = centred @ eigenvectors[:, :kept]
    n_mixture = min(components_per_class * target.n_classes, features.shape[0])
    mixture = GaussianMixture(
        n_components=n_mixture, covariance_type="diag", max_iter=max_iter, random_state=seed, reg_covar=1e-6
    )
    posteriors = mixture.fit(projected).predict_proba(projected)
    return leep(posteriors / posteriors.sum(axis=1, keepdims=True), labels)
