"""kernel_ridge_loo and kernel_ridge_r2: closed forms against explicit leave-one-out refits; where they break."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from taskspace.scoring import kernel_ridge_loo, kernel_ridge_r2
from taskspace.scoring._kernel_ridge import RIDGE_GRID


def _explicit_leave_one_out(features: np.ndarray, labels: np.ndarray) -> float:
    """Refit the ridge least-squares classifier without each sample (intercept unpenalised; the ridge
    from the Ledoit-Wolf shrinkage of all the unit rows, as the estimator defines it)."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    n, d = unit.shape
    centred = unit - unit.mean(axis=0)
    shrinkage = LedoitWolf(assume_centered=True).fit(centred).shrinkage_
    ridge = n * shrinkage * np.trace(centred.T @ centred / n) / d / (1.0 - shrinkage)
    onehot = np.eye(labels.max() + 1)[labels]
    correct = sum(int(np.argmax(_predict_left_out(unit, onehot, i, ridge)) == labels[i]) for i in range(n))
    return correct / n


def _predict_left_out(unit: np.ndarray, onehot: np.ndarray, i: int, ridge: float) -> np.ndarray:
    """Sample ``i`` predicted by the ridge fitted on the others (one-hot targets, intercept unpenalised)."""
    n, d = unit.shape
    keep = np.arange(n) != i
    design = np.hstack([np.ones((n - 1, 1)), unit[keep]])
    penalty = np.diag([0.0] + [ridge] * d)
    coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ onehot[keep])
    return np.hstack([1.0, unit[i]]) @ coefficients


@pytest.mark.parametrize(("n_classes", "seed"), [(2, 0), (2, 1), (3, 2), (4, 3)])
def test_closed_form_equals_explicit_refits(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.arange(36) % n_classes
    centres = np.abs(rng.normal(size=(n_classes, 6)))
    features = np.abs(centres[labels] + 0.6 * rng.normal(size=(36, 6)))  # non-negative, overlapping
    assert kernel_ridge_loo(features, labels) == pytest.approx(_explicit_leave_one_out(features, labels), abs=1e-12)


def test_hand_case_separated_directions_are_all_right() -> None:
    # two classes on two orthogonal directions, a little spread: every left-out sample is classified right
    features = np.array([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 1.0], [0.0, 0.9]])
    assert kernel_ridge_loo(features, [0, 0, 0, 1, 1, 1]) == 1.0


def test_invariant_to_rotation_and_scale() -> None:
    rng = np.random.default_rng(4)
    labels = np.arange(60) % 2
    features = rng.normal(size=(60, 5)) + labels[:, None]
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    scaled = 7.0 * features @ rotation
    assert kernel_ridge_loo(scaled, labels) == pytest.approx(kernel_ridge_loo(features, labels), abs=1e-12)


def test_breaks_below_chance_without_information() -> None:
    # constant features: each left-out sample is predicted by the others' class frequencies, which
    # favour the other class on a balanced task -> 0, not 0.5 (documented)
    assert kernel_ridge_loo(np.ones((10, 3)), [0, 1] * 5) == 0.0


# kernel_ridge_r2 ------------------------------------------------------------------------------------------


def _explicit_held_out_r2(features: np.ndarray, labels: np.ndarray) -> float:
    """Refit the ridge without each sample for every ridge of the grid; 1 - least PRESS / total variance."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    singular = np.linalg.svd(unit - unit.mean(axis=0), compute_uv=False) ** 2
    mean_eigenvalue = singular[singular > singular.max() * 1e-10].mean()
    onehot = np.eye(labels.max() + 1)[labels]
    total = float(((onehot - onehot.mean(axis=0)) ** 2).sum())
    presses = [sum(float(((onehot[i] - _predict_left_out(unit, onehot, i, ridge)) ** 2).sum())
                   for i in range(len(unit))) for ridge in RIDGE_GRID * mean_eigenvalue]
    return 1.0 - min(presses) / total


@pytest.mark.parametrize(("n_classes", "n", "d", "seed"),
                         [(2, 30, 6, 0), (3, 30, 6, 1), (2, 12, 20, 2), (4, 16, 24, 3)])
def test_r2_closed_form_equals_explicit_refits_in_primal_and_dual(n_classes, n, d, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = np.abs(rng.normal(size=(n_classes, d)))
    features = np.abs(centres[labels] + 0.6 * rng.normal(size=(n, d)))
    assert kernel_ridge_r2(features, labels) == pytest.approx(_explicit_held_out_r2(features, labels), abs=1e-9)


def test_r2_ranks_informative_features_above_noise_and_noise_near_zero() -> None:
    rng = np.random.default_rng(4)
    labels = np.arange(200) % 2
    noise = rng.normal(size=(200, 150))  # d close to n: in-sample fits are mostly noise
    informative = noise.copy()
    informative[:, 0] += 1.5 * labels
    assert abs(kernel_ridge_r2(noise, labels)) < 0.05
    assert kernel_ridge_r2(informative, labels) > kernel_ridge_r2(noise, labels) + 0.1
    assert kernel_ridge_r2(np.ones((10, 4)), np.arange(10) % 2) == 0.0


def test_r2_is_invariant_to_rotation_and_scale() -> None:
    rng = np.random.default_rng(5)
    labels = np.arange(60) % 3
    features = rng.normal(size=(60, 8)) + labels[:, None]
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    expected = kernel_ridge_r2(features, labels)
    assert kernel_ridge_r2(3.0 * features @ rotation, labels) == pytest.approx(expected, abs=1e-10)
