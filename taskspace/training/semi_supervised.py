"""Labels for unlabeled images from a few labeled ones, by spherical k-means on frozen features.

The output module of a modular net is a linear layer on unit-norm features φ. With k labeled images
per class, :func:`propagate_labels` starts one prototype per class at the normalised mean of its
labeled features and alternates two steps: give every unlabeled feature the class of its most similar
prototype (cosine), then move each prototype to the normalised mean of its labeled and assigned
features. Labeled images keep their labels throughout. This is semi-supervised learning with
prototype refinement (Ren et al., "Meta-Learning for Semi-Supervised Few-Shot Classification",
ICLR 2018, without the meta-learning): it uses the unlabeled images of the training split, never
their labels, and never the validation or test data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

__all__ = ["PropagatedLabels", "propagate_labels"]


@dataclass(frozen=True)
class PropagatedLabels:
    """Labels given to the unlabeled features and how the refinement went.

    Attributes:
        labels: ``(m,)`` class index of every unlabeled feature.
        prototypes: ``(num_classes, d)`` unit-norm prototypes at the end.
        iterations: assignment rounds run (at most the limit; fewer when the labels stopped changing).
        changed_last: labels that changed in the last round (0 when it converged).
    """

    labels: torch.Tensor
    prototypes: torch.Tensor
    iterations: int
    changed_last: int


def _prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    return functional.normalize(sums, dim=1, eps=1e-12)


@torch.no_grad()
def propagate_labels(
    labeled_features: torch.Tensor,
    labeled_labels: torch.Tensor,
    unlabeled_features: torch.Tensor,
    *,
    num_classes: int,
    max_iterations: int = 20,
) -> PropagatedLabels:
    """Spherical k-means seeded by the labeled features (see the module docstring).

    Args:
        labeled_features: ``(n, d)`` features of the labeled images (normalised here).
        labeled_labels: ``(n,)`` their classes in ``0..num_classes - 1``; every class needs one.
        unlabeled_features: ``(m, d)`` features of the unlabeled images (normalised here).
        num_classes: number of classes.
        max_iterations: assignment rounds at most (>= 1).

    Returns:
        :class:`PropagatedLabels`. Deterministic: no randomness; ties go to the lower class index.

    Raises:
        ValueError: a class without a labeled feature, mismatched shapes or ``max_iterations < 1``.
    """
    if labeled_features.ndim != 2 or unlabeled_features.ndim != 2:
        raise ValueError("features must be 2-D (samples x dimensions)")
    if labeled_features.shape[1] != unlabeled_features.shape[1]:
        raise ValueError(
            f"labeled features have {labeled_features.shape[1]} dimensions, unlabeled {unlabeled_features.shape[1]}"
        )
    if labeled_labels.shape != (labeled_features.shape[0],):
        raise ValueError(
            f"{labeled_features.shape[0]} labeled features but labels of shape {tuple(labeled_labels.shape)}"
        )
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    missing = sorted(set(range(num_classes)) - set(int(label) for label in labeled_labels.unique()))
    if missing:
        raise ValueError(f"classes {missing} have no labeled example; every class needs at least one")
    labeled = functional.normalize(labeled_features.float(), dim=1, eps=1e-12)
    unlabeled = functional.normalize(unlabeled_features.float(), dim=1, eps=1e-12)
    labeled_labels = labeled_labels.long()
    prototypes = _prototypes(labeled, labeled_labels, num_classes)
    assigned = torch.full((unlabeled.shape[0],), -1, dtype=torch.long, device=unlabeled.device)
    changed = unlabeled.shape[0]
    iterations = 0
    features = torch.cat([labeled, unlabeled])
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is reported after the loop
        new = (unlabeled @ prototypes.T).argmax(dim=1)
        changed = int((new != assigned).sum())
        assigned = new
        prototypes = _prototypes(features, torch.cat([labeled_labels, assigned]), num_classes)
        if changed == 0:
            break
    return PropagatedLabels(labels=assigned, prototypes=prototypes, iterations=iterations, changed_last=changed)
