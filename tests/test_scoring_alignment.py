"""Kernel-alignment reusability scores: hand values, dense n x n references, memory, the torch objective."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch

from taskspace.kernels import get_kernel
from taskspace.objectives import get_objective
from taskspace.scoring import alignment, alignment_centered, alignment_minibatch, alignment_whitened


def _dense_upper_alignment(
    features: np.ndarray, labels: np.ndarray, k_min: float = 0.0, k_max: float = 1.0
) -> float:
    """The definition, with explicit n x n matrices."""
    norms = np.maximum(np.linalg.norm(features, axis=1), 1e-12)
    unit = features / norms[:, None]
    gram = unit @ unit.T
    ideal = np.where(labels[:, None] == labels[None, :], k_max, k_min)
    rows, cols = np.triu_indices(len(labels), k=1)
    g, t = gram[rows, cols], ideal[rows, cols]
    return float(g @ t / (np.linalg.norm(g) * np.linalg.norm(t)))


def _dense_cka(features: np.ndarray, labels: np.ndarray) -> float:
    """Linear CKA with explicit centring matrices H K H and H L H."""
    n = len(labels)
    unit = features / np.maximum(np.linalg.norm(features, axis=1), 1e-12)[:, None]
    centring = np.eye(n) - np.ones((n, n)) / n
    kc = centring @ (unit @ unit.T) @ centring
    lc = centring @ (labels[:, None] == labels[None, :]).astype(float) @ centring
    return float(np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


def _random_case(
    n: int, d: int, n_classes: int, seed: int, zero_rows: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = np.maximum(rng.normal(size=(n, d)), 0.0) * rng.uniform(0.1, 10.0, size=(n, 1))
    features[rng.choice(n, size=zero_rows, replace=False)] = 0.0
    return features, rng.integers(0, n_classes, size=n)


# --- alignment ---------------------------------------------------------------------------------------


def test_alignment_hand_case() -> None:
    # Rows normalise to (1, 0), (.6, .8), (0, 1); labels (0, 0, 1).
    # Upper triangle of G: (G12, G13, G23) = (.6, 0, .8); of G*: (1, 0, 0).
    # A = .6 / (sqrt(.36 + .64) * 1) = 0.6
    features = np.array([[2.0, 0.0], [3.0, 4.0], [0.0, 5.0]])
    assert alignment(features, [0, 0, 1]) == pytest.approx(0.6, abs=1e-15)
    # A zero row with label 1 adds G = 0 entries and one same-class pair (3, 4) to G*:
    # A = .6 / (1 * sqrt(2)) = 0.42426406871192845
    with_zero = np.vstack([features, np.zeros((1, 2))])
    assert alignment(with_zero, [0, 0, 1, 1]) == pytest.approx(0.6 / math.sqrt(2), abs=1e-15)
    # k_min = -1: G* upper triangle (1, -1, -1): A = (.6 - 0 - .8) / (1 * sqrt(3)) = -0.11547005383792514
    assert alignment(features, [0, 0, 1], k_min=-1.0) == pytest.approx(-0.2 / math.sqrt(3), abs=1e-15)


@pytest.mark.parametrize(
    ("n", "d", "n_classes", "zero_rows"), [(50, 7, 3, 0), (60, 5, 4, 6), (40, 30, 2, 3), (9, 3, 9, 0)]
)
def test_alignment_equals_dense_computation(n: int, d: int, n_classes: int, zero_rows: int) -> None:
    features, labels = _random_case(n, d, n_classes, seed=n + d, zero_rows=zero_rows)
    for k_min in (0.0, -1.0):
        assert alignment(features, labels, k_min=k_min) == pytest.approx(
            _dense_upper_alignment(features, labels, k_min=k_min), rel=1e-12, abs=1e-14
        )


def test_alignment_handles_tiny_rows_and_float32_input_exactly() -> None:
    features, labels = _random_case(30, 4, 3, seed=3)
    features[2] *= 1e-14  # normalised to norm < 1: its diagonal is not 1
    assert alignment(features, labels) == pytest.approx(_dense_upper_alignment(features, labels), rel=1e-12)
    as_float32 = features.astype(np.float32)
    assert alignment(as_float32, labels) == pytest.approx(
        _dense_upper_alignment(as_float32.astype(np.float64), labels), rel=1e-12
    )


def test_alignment_edge_cases() -> None:
    features, _ = _random_case(4, 3, 2, seed=0)
    # every class a singleton: no same-class pair, the target triangle is zero -> 0 (as the objective)
    assert alignment(features, [0, 1, 2, 3]) == 0.0
    # all-zero features -> 0, no NaN
    assert alignment(np.zeros((4, 3)), [0, 0, 1, 1]) == 0.0
    # features equal to the ideal kernel's feature map -> 1
    assert alignment(np.eye(3)[[0, 0, 1, 2, 2]], [0, 0, 1, 2, 2]) == pytest.approx(1.0, abs=1e-15)


def _chunked_upper_alignment(features: np.ndarray, labels: np.ndarray, chunk: int = 500) -> float:
    """The definition over row blocks of G (never more than chunk x n at once)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1), 1e-12)[:, None]
    n = len(labels)
    cross = gram_sq = target_sq = 0.0
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        block = unit[rows] @ unit.T
        upper = np.arange(n)[None, :] > rows[:, None]
        same = labels[rows][:, None] == labels[None, :]
        cross += block[upper & same].sum()
        gram_sq += (block[upper] ** 2).sum()
        target_sq += (upper & same).sum()
    return float(cross / math.sqrt(gram_sq * target_sq))


def test_alignment_matches_chunked_computation_on_a_larger_set() -> None:
    features, labels = _random_case(4000, 16, 5, seed=11, zero_rows=10)
    assert alignment(features, labels) == pytest.approx(_chunked_upper_alignment(features, labels), rel=1e-10)


def test_alignment_memory_is_linear_in_n() -> None:
    n, d = 20_000, 16
    features, labels = _random_case(n, d, 10, seed=5)
    tracemalloc.start()
    try:
        value = alignment(features, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0.0 < value < 1.0
    # an n x n float64 matrix would be 3.2 GB; the features themselves are 2.56 MB
    assert peak < 10 * n * d * 8
    assert peak < n * n * 8 / 100


# --- alignment_minibatch -----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch_size"), [(100, 16), (97, 16), (40, 128)])
def test_minibatch_agrees_with_the_torch_objective(n: int, batch_size: int) -> None:
    features, labels = _random_case(n, 6, 3, seed=n)
    kernel = get_kernel("cosine_relu")  # the training kernel; a no-op relu on these non-negative features
    objective = get_objective("upper_tri_alignment")
    order = np.random.default_rng(7).permutation(n)
    values = []
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < 2:  # a single-sample remainder has no pair; alignment_minibatch skips it too
            continue
        gram = kernel(torch.from_numpy(features[batch]))
        batch_labels = torch.from_numpy(labels[batch])
        values.append(float(objective(gram, batch_labels, k_min=kernel.k_min, k_max=kernel.k_max)))
    expected = float(np.mean(values))
    value = alignment_minibatch(features, labels, batch_size=batch_size, seed=7)
    assert value == pytest.approx(expected, rel=1e-10)


def test_minibatch_hand_case_and_relation_to_exact() -> None:
    # Two batches of the hand case (no shuffle): batch 1 -> 0.6, batch 2 (rows (0, 1), (1, 0), labels (0, 1))
    # has no same-class pair -> 0; mean = 0.3
    features = np.array([[2.0, 0.0], [3.0, 4.0], [0.0, 5.0], [0.0, 1.0], [1.0, 0.0]])
    labels = [0, 0, 1, 0, 1]
    assert alignment_minibatch(features[:5], labels, batch_size=3, shuffle=False) == pytest.approx(
        (0.6 + 0.0) / 2, abs=1e-15
    )
    random_features, random_labels = _random_case(50, 4, 3, seed=2)
    # one batch holding everything is the exact score, whatever the shuffle
    assert alignment_minibatch(random_features, random_labels, batch_size=50, seed=3) == pytest.approx(
        alignment(random_features, random_labels), rel=1e-12
    )
    assert alignment_minibatch(random_features, random_labels, batch_size=8, seed=3) != alignment_minibatch(
        random_features, random_labels, batch_size=8, seed=4
    )


# --- alignment_centered ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d", "n_classes", "zero_rows"), [(40, 6, 3, 0), (30, 50, 4, 2), (12, 2, 2, 0)])
def test_centered_equals_dense_cka(n: int, d: int, n_classes: int, zero_rows: int) -> None:
    features, labels = _random_case(n, d, n_classes, seed=d, zero_rows=zero_rows)
    assert alignment_centered(features, labels) == pytest.approx(_dense_cka(features, labels), rel=1e-11)


def test_centered_hand_cases() -> None:
    # Features e1, e1, e2, e2: the cosine kernel IS the ideal kernel of labels (0, 0, 1, 1) -> CKA 1.
    features = np.eye(2)[[0, 0, 1, 1]]
    assert alignment_centered(features, [0, 0, 1, 1]) == pytest.approx(1.0, abs=1e-15)
    # Against the crossed partition (0, 1, 0, 1): Kc = +-.5 (same/different in partition 1), Lc likewise for
    # partition 2; per row the sign products are (+1, -1, -1, +1) -> <Kc, Lc> = 0 -> CKA 0.
    assert alignment_centered(features, [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-15)
    # constant features carry nothing after centring -> 0, no NaN
    assert alignment_centered(np.ones((4, 3)), [0, 0, 1, 1]) == 0.0


# --- alignment_whitened ------------------------------------------------------------------------------


def _dense_whitened_cka(features: np.ndarray, labels: np.ndarray) -> float:
    """The definition: Ledoit-Wolf whitening by explicit inverse square root, then n x n centred CKA."""
    from scipy.linalg import sqrtm
    from sklearn.covariance import ledoit_wolf

    unit = features / np.maximum(np.linalg.norm(features, axis=1), 1e-12)[:, None]
    centred = unit - unit.mean(axis=0)
    covariance, _ = ledoit_wolf(centred, assume_centered=True)
    whitened = centred @ np.linalg.inv(np.real(sqrtm(covariance)))
    n = len(labels)
    centring = np.eye(n) - np.ones((n, n)) / n
    kc = centring @ (whitened @ whitened.T) @ centring
    lc = centring @ (labels[:, None] == labels[None, :]).astype(float) @ centring
    return float(np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


@pytest.mark.parametrize(("n", "d", "n_classes"), [(60, 5, 2), (40, 12, 3), (20, 30, 2)])
def test_whitened_equals_dense_definition(n: int, d: int, n_classes: int) -> None:
    features, labels = _random_case(n, d, n_classes, seed=n + d)
    assert alignment_whitened(features, labels) == pytest.approx(_dense_whitened_cka(features, labels), rel=1e-9)


def test_whitened_is_invariant_to_rotation_and_row_scaling() -> None:
    features, labels = _random_case(80, 6, 2, seed=5)
    rotation, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(6, 6)))
    scales = np.random.default_rng(7).uniform(0.5, 4.0, size=(80, 1))
    assert alignment_whitened(features @ rotation * scales, labels) == pytest.approx(
        alignment_whitened(features, labels), rel=1e-9
    )


def test_whitened_has_no_floor_where_the_paper_score_has_one() -> None:
    # A source that merged the target's two classes: both classes come from ONE non-negative
    # distribution. The paper's uncentred score stays near its floor of about 0.707 (it cannot tell this
    # source from a useful one); the whitened score falls to about 0, and a separating source scores high.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    merged = np.abs(rng.normal(size=(1000, 16)))
    assert alignment(merged, labels) > 0.69
    assert alignment_whitened(merged, labels) < 0.02
    separating = merged.copy()
    separating[:, 0] += 3.0 * labels
    # one separating direction of 16: whitening gives every direction unit variance, so the score is
    # bounded by about 1/sqrt(16) here; what matters is the contrast with the merged source
    assert alignment_whitened(separating, labels) > 0.15
    assert alignment_whitened(separating, labels) > 10 * alignment_whitened(merged, labels)


def test_whitened_degenerate_inputs() -> None:
    assert alignment_whitened(np.ones((6, 3)), [0, 1, 0, 1, 0, 1]) == 0.0
    assert alignment_whitened(np.zeros((6, 3)), [0, 1, 0, 1, 0, 1]) == 0.0
    # fewer samples than dimensions stays finite and bounded (shrinkage keeps the covariance invertible)
    features, labels = _random_case(10, 40, 2, seed=3)
    assert 0.0 <= alignment_whitened(features, labels) <= 1.0
