"""kernel_prototypes: hand cases, a reference implementation, the shot cap and where it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.errors import DataError
from taskspace.scoring import kernel_prototypes


def _reference(features: np.ndarray, labels: np.ndarray, shots: int, draws: int, seed: int) -> float:
    centred = features - features.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(draws):
        chosen = [rng.choice(np.flatnonzero(labels == c), shots, replace=False) for c in classes]
        means = np.stack([unit[rows].mean(axis=0) for rows in chosen])
        rest = np.setdiff1d(np.arange(len(labels)), np.concatenate(chosen))
        accuracies.append(np.mean(classes[np.argmax(unit[rest] @ means.T, axis=1)] == labels[rest]))
    return float(np.mean(accuracies))


def test_hand_case_one_shot_on_separated_directions() -> None:
    # after centring, class 0 points along (1, -1) and class 1 along (-1, 1): any one shot per class
    # is a perfect prototype
    features = np.array([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 1.0], [0.0, 0.9]])
    assert kernel_prototypes(features, [0, 0, 0, 1, 1, 1], shots=1, draws=5) == 1.0


@pytest.mark.parametrize(("n_classes", "shots"), [(2, 3), (3, 1), (4, 5)])
def test_matches_a_direct_implementation(n_classes: int, shots: int) -> None:
    rng = np.random.default_rng(n_classes)
    labels = np.arange(80) % n_classes
    features = np.abs(rng.normal(size=(n_classes, 7))[labels] + 0.8 * rng.normal(size=(80, 7)))
    expected = _reference(features, labels, shots, 6, 3)
    assert kernel_prototypes(features, labels, shots=shots, draws=6, seed=3) == pytest.approx(expected, abs=1e-12)


def test_invariant_to_rotation_and_scale_and_seeded() -> None:
    rng = np.random.default_rng(5)
    labels = np.arange(60) % 2
    features = rng.normal(size=(60, 5)) + labels[:, None]
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    value = kernel_prototypes(features, labels)
    assert kernel_prototypes(3.0 * features @ rotation, labels) == pytest.approx(value, abs=1e-12)
    assert kernel_prototypes(features, labels, seed=1) != value  # another draw of the shots


def test_shots_capped_and_single_sample_classes_refused() -> None:
    features = np.random.default_rng(6).normal(size=(6, 3))
    # classes of 3: shots capped at 2, one sample of each class left to classify
    assert kernel_prototypes(features, [0, 0, 0, 1, 1, 1], shots=10) == kernel_prototypes(
        features, [0, 0, 0, 1, 1, 1], shots=2)
    with pytest.raises(DataError, match="at least 2 samples per class"):
        kernel_prototypes(features, [0, 1, 1, 1, 1, 1])
