"""Few-shot accuracy of the nearest kernel-mean (prototype) classifier on the cosine kernel (taskspace's)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import unit_rows
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import (
    check_class_sizes,
    check_features_labels,
    check_positive_int,
)

__all__ = ["kernel_prototypes"]


@register_estimator(
    "kernel_prototypes",
    citation="Duan, Yu & Principe, TNNLS 2022 (cosine kernel); Snell, Swersky & Zemel, 'Prototypical "
    "Networks for Few-shot Learning', NeurIPS 2017 (nearest class mean)",
)
def kernel_prototypes(
    features: np.ndarray, labels: np.ndarray, *, shots: int = 10, draws: int = 20, seed: int | None = 0
) -> float:
    """Mean accuracy of the nearest-prototype classifier built from ``shots`` labeled samples per class.

    The features are centred over the target sample and their rows normalised (the cosine kernel of the
    centred features). For each of ``draws`` draws (``np.random.default_rng(seed)``), ``shots`` samples
    per class are drawn without replacement; each class's prototype is the mean of its drawn rows (its
    kernel mean embedding), every other sample is assigned to the prototype with the largest inner
    product, and the draw's score is the fraction assigned to its own class. The score is the mean over
    the draws. ``shots`` is capped at the smallest class size minus one (every class keeps a sample to
    classify).

    Why: the frozen-trunk ground truth with K labels per class (``frozen_kK``) is the held-out accuracy of
    a linear output module fitted on K labels per class; with so few labels what matters is how tightly
    each class gathers around its mean, which this score measures directly, where the whitened scores
    (and LogME) measure the separability that all labels can reach.

    Where it breaks: with one or two shots the prototypes are single samples and the score is as noisy
    as the draws (raise ``draws``); constant features give chance-level ties, broken towards the first
    class.

    Cited: Duan, Yu & Principe, TNNLS 2022 (kernel); Snell, Swersky & Zemel, NeurIPS 2017 (prototypes).

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes, each with at least 2 samples.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        shots: labeled samples per class the prototypes are built from.
        draws: number of draws averaged.
        seed: seed of the draws.

    Returns:
        Higher is better: an accuracy in ``[0, 1]``. Invariant to rotations and scaling of the features.
        Time O(draws n d C), memory O(n d).

    Raises:
        DataError: invalid features or labels, or a class with fewer than 2 samples.
        ConfigError: ``shots < 1`` or ``draws < 1``.
    """
    shots = check_positive_int(shots, "shots")
    draws = check_positive_int(draws, "draws")
    features, target = check_features_labels(features, labels)
    smallest = check_class_sizes(target, minimum=2, estimator="kernel_prototypes",
                                 purpose="(shots and one to classify)")
    shots = min(shots, smallest - 1)
    codes = target.codes
    unit = unit_rows(features - features.mean(axis=0))
    members = [np.flatnonzero(codes == c) for c in range(target.n_classes)]
    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(draws):
        chosen = [rng.choice(rows, size=shots, replace=False) for rows in members]
        prototypes = np.stack([unit[rows].mean(axis=0) for rows in chosen])  # (C, d)
        held_out = np.ones(len(codes), dtype=bool)
        held_out[np.concatenate(chosen)] = False
        predicted = np.argmax(unit[held_out] @ prototypes.T, axis=1)
        accuracies.append(float(np.mean(predicted == codes[held_out])))
    return float(np.mean(accuracies))
