"""Peer estimators: hand-computed values, dense references, and the cases where each formula breaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

from taskspace.errors import DataError
from taskspace.scoring import (
    gbc,
    hscore,
    knn,
    leep,
    linear_probe,
    logme,
    nce,
    nleep,
    parc,
    source_accuracy,
    transrate,
)
from taskspace.scoring._common import pca_project, subsample
from taskspace.scoring._logme import _evidence_from_svd, _logme_per_class
from taskspace.scoring._parc import _row_correlations
from taskspace.scoring._probes import _nearest, fitted_probe

LINE = np.array([[0.0], [2.0], [4.0], [6.0]])  # two classes {0, 2} and {4, 6}
LINE_LABELS = [0, 0, 1, 1]


def _clusters(
    n: int, d: int, n_classes: int, seed: int, spread: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    return spread * rng.normal(size=(n_classes, d))[labels] + rng.normal(size=(n, d)), labels


# --- LogME -------------------------------------------------------------------------------------------


def _dense_log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, f f^T / alpha + I / beta): the marginal likelihood of the Gaussian linear model."""
    covariance = features @ features.T / alpha + np.eye(len(target)) / beta
    return float(multivariate_normal(mean=np.zeros(len(target)), cov=covariance).logpdf(target))


def _evidence_tolerance(evidence: float, beta: float, target: np.ndarray) -> float:
    """How far two exact routes to the log evidence may differ in float64, whatever the BLAS kernel.

    The fast route forms the part of ``||y||^2`` outside the features' range as a difference,
    ``||y||^2 - ||U^T y||^2``, whose rounding (about ``n eps ||y||^2``, more where the eigenvectors
    come from an ill-conditioned product) enters the evidence multiplied by ``beta / 2``; when ``n <= d``
    the target is fitted almost exactly and ``beta`` runs towards its bound, so that term dominates and
    moves with the processor's LAPACK kernels (3e-8 relative on one machine, 1e-15 on another). Beside
    it, ``1e-9`` relative for the rest of the arithmetic. A wrong formula is still caught: dropping the
    ``(d - n)/2 log alpha`` term of the log-determinant moves these cases by 2 to 9 times the evidence.
    """
    eps = np.finfo(np.float64).eps
    return 1e-9 * abs(evidence) + 2.0 * beta * len(target) * eps * float(target @ target)


def test_logme_evidence_hand_case() -> None:
    # f = [[1], [1]], y = (1, 0), alpha = beta = 1 (no iteration): y ~ N(0, C) with C = [[2, 1], [1, 2]],
    # det C = 3, y^T C^-1 y = 2/3 -> log p = -log(2 pi) - log(3)/2 - 1/3 = -2.7205...
    # SVD: s = sqrt(2), U^T y = 1/sqrt(2).
    evidence, alpha, beta = _evidence_from_svd(
        np.array([math.sqrt(2.0)]), np.array([[1.0 / math.sqrt(2.0)]]), np.array([1.0]), 2, 1,
        max_iter=0, tol=1e-6,
    )
    assert alpha[0] == beta[0] == 1.0
    assert evidence[0] == pytest.approx(-math.log(2 * math.pi) - math.log(3) / 2 - 1 / 3, abs=1e-14)


@pytest.mark.parametrize(("n", "d"), [(40, 5), (8, 12)])
def test_logme_matches_dense_evidence_at_a_stationary_point(n: int, d: int) -> None:
    features, labels = _clusters(n, d, 3, seed=n)
    evidence, alpha, beta = _logme_per_class(features, labels, 3)
    for c in range(3):
        target = (labels == c).astype(float)
        dense = _dense_log_evidence(features, target, alpha[c], beta[c])
        tolerance = _evidence_tolerance(dense, beta[c], target)
        assert evidence[c] == pytest.approx(dense, abs=tolerance)
        # the fixed point maximises the evidence: no better value nearby in log alpha / log beta
        # (beyond what the fixed point's own evidence is known to: where beta runs towards its bound the
        # evidence is flat in beta to within that tolerance)
        for da, db in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
            nearby = _dense_log_evidence(features, target, alpha[c] * math.exp(da), beta[c] * math.exp(db))
            assert nearby <= evidence[c] + max(tolerance, 1e-9)
    assert logme(features, labels) == pytest.approx(np.mean(evidence) / n, rel=1e-12)


def test_logme_degenerate_inputs_stay_finite() -> None:
    features, labels = _clusters(30, 4, 2, seed=1)
    collinear = np.hstack([features, features[:, :1], 2 * features[:, :1]])
    assert math.isfinite(logme(collinear, labels))
    assert math.isfinite(logme(features[:6] @ np.ones((4, 20)), labels[:6]))  # n < d and rank 1
    assert math.isfinite(logme(np.zeros((10, 3)), np.arange(10) % 2))


# --- LEEP and NCE ------------------------------------------------------------------------------------


def test_leep_hand_case() -> None:
    # theta rows (1, 0), (.5, .5), (0, 1); labels (0, 0, 1).
    # n P(y, z): y=0 -> (1.5, .5), y=1 -> (0, 1); P(z) = (.5, .5);
    # P(y | z): z=0 -> (1, 0), z=1 -> (1/3, 2/3).
    # EEP: i0: 1*1 = 1; i1: .5*1 + .5/3 = 2/3; i2: 1 * 2/3 = 2/3.
    # LEEP = (log 1 + 2 log(2/3)) / 3 = -0.2703100720721096
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert leep(probs, [0, 0, 1]) == pytest.approx(2 / 3 * math.log(2 / 3), abs=1e-15)
    # A source class that never receives mass (P(z) = 0) changes nothing and gives no NaN.
    with_unused_class = np.hstack([probs, np.zeros((3, 1))])
    assert leep(with_unused_class, [0, 0, 1]) == pytest.approx(2 / 3 * math.log(2 / 3), abs=1e-15)


def test_leep_keeps_the_log_and_is_bounded() -> None:
    # A perfectly predictive source gives exactly log 1 = 0; an uninformative one gives log of the prior.
    assert leep(np.eye(2)[[0, 0, 1, 1]], [0, 0, 1, 1]) == 0.0
    # uniform theta: P(y | z) = prior (.75, .25) -> LEEP = (3 log .75 + log .25) / 4 = -0.5623...
    expected = (3 * math.log(0.75) + math.log(0.25)) / 4
    assert leep(np.full((4, 3), 1 / 3), [0, 0, 0, 1]) == pytest.approx(expected, abs=1e-15)


def test_nce_hand_case() -> None:
    # labels (0, 0, 1, 1), source argmax (0, 0, 0, 1): P(y, z) = {(0,0): 1/2, (1,0): 1/4, (1,1): 1/4},
    # P(z) = (3/4, 1/4): NCE = 1/2 log(2/3) + 1/4 log(1/3) + 1/4 log 1 = -0.4773856262211096
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    expected = 0.5 * math.log(2 / 3) + 0.25 * math.log(1 / 3)
    assert nce(probs, [0, 0, 1, 1]) == pytest.approx(expected, abs=1e-15)
    # the source prediction determines the label -> 0; never above 0, never below -log C
    assert nce(probs, [0, 0, 0, 1]) == 0.0
    assert nce(np.full((4, 2), 0.5), [0, 1, 0, 1]) == pytest.approx(-math.log(2), abs=1e-15)


def test_leep_and_nce_length_mismatch_names_source_probs() -> None:
    with pytest.raises(DataError, match="source_probs have 3 rows but labels have 4"):
        leep(np.full((3, 2), 0.5), [0, 1, 0, 1])


def test_nleep_is_a_leep_value() -> None:
    features, labels = _clusters(90, 6, 3, seed=4, spread=5.0)
    value = nleep(features, labels)
    assert -math.log(3) < value <= 0.0
    assert value > nleep(features, np.random.default_rng(0).permutation(labels))


# --- H-score -----------------------------------------------------------------------------------------


def test_hscore_hand_case() -> None:
    # f = (0, 2, 4, 6): var f = (9 + 1 + 1 + 9) / 4 = 5; class means (1, 1, 5, 5): var g = 4 -> 4/5.
    # With d = 1 the Ledoit-Wolf shrinkage is 0, so both versions agree.
    assert hscore(LINE, LINE_LABELS) == pytest.approx(0.8, abs=1e-14)
    assert hscore(LINE, LINE_LABELS, shrinkage=False) == pytest.approx(0.8, abs=1e-14)


def test_hscore_without_shrinkage_saturates_when_n_below_d() -> None:
    features, labels = _clusters(10, 50, 2, seed=0, spread=0.5)
    random_labels = np.random.default_rng(1).permutation(labels)
    # n <= d: every labelling is linearly separable, the plain H-score is C - 1 = 1 for any labels
    assert hscore(features, labels, shrinkage=False) == pytest.approx(1.0, abs=1e-9)
    assert hscore(features, random_labels, shrinkage=False) == pytest.approx(1.0, abs=1e-9)
    # the shrinkage version still tells them apart and stays in [0, C - 1]
    assert 0.0 <= hscore(features, random_labels) < hscore(features, labels) < 1.0


def test_hscore_collinear_and_constant_features() -> None:
    collinear = np.hstack([LINE, LINE])
    assert hscore(collinear, LINE_LABELS, shrinkage=False) == pytest.approx(0.8, abs=1e-12)  # pseudo-inverse
    assert 0.0 < hscore(collinear, LINE_LABELS) <= 1.0
    assert hscore(np.ones((4, 3)), LINE_LABELS) == 0.0
    assert hscore(np.ones((4, 3)), LINE_LABELS, shrinkage=False) == 0.0


# --- GBC ---------------------------------------------------------------------------------------------


def test_gbc_hand_case() -> None:
    # class 0 = {0, 2}: mean 1, variance 1; class 1 = {2, 4}: mean 3, variance 1.
    # D_B = (3 - 1)^2 / (8 * 1) + 1/2 log(1 / sqrt(1 * 1)) = 0.5; GBC = -2 exp(-0.5) = -1.2130613194252668
    features = np.array([[0.0], [2.0], [2.0], [4.0]])
    assert gbc(features, LINE_LABELS) == pytest.approx(-2 * math.exp(-0.5), abs=1e-14)
    # identical classes: BC = 1 for both ordered pairs -> -C (C - 1) = -2
    assert gbc(np.array([[0.0], [2.0], [0.0], [2.0]]), LINE_LABELS) == pytest.approx(-2.0, abs=1e-14)


def test_gbc_single_sample_class_and_constant_dimension_stay_finite() -> None:
    features, labels = _clusters(31, 4, 3, seed=2)
    labels = labels.copy()
    labels[0] = 7  # a class with one sample: zero variance before the floor
    features[:, 3] = 1.0  # a constant dimension
    value = gbc(features, labels)
    assert math.isfinite(value) and -12.0 <= value <= 0.0


def test_pca_projection_matches_svd_scores() -> None:
    for n, d in [(30, 10), (10, 30)]:
        values = np.random.default_rng(n).normal(size=(n, d))
        centred = values - values.mean(axis=0)
        left, singular, _ = np.linalg.svd(centred, full_matrices=False)
        projected = pca_project(values, 4)
        # equal up to the sign of each axis
        assert np.allclose(np.abs(projected), np.abs(left[:, :4] * singular[:4]), atol=1e-10)
    assert pca_project(np.eye(3), 5).shape == (3, 3)  # no reduction asked: centred data
    assert pca_project(np.ones((2, 9)), 4).shape == (2, 4)  # fewer samples than components: zero-padded


def test_gbc_pca_keeps_high_dimensional_scores_informative() -> None:
    features, labels = _clusters(60, 100, 3, seed=3, spread=0.3)
    random_labels = np.random.default_rng(0).permutation(labels)
    assert gbc(features, labels) > gbc(features, random_labels)
    assert gbc(features, labels, n_components=None) != gbc(features, labels)


# --- TransRate ---------------------------------------------------------------------------------------


def _dense_rate(z: np.ndarray, eps: float) -> float:
    z = z - z.mean(axis=0)
    return 0.5 * np.linalg.slogdet(np.eye(z.shape[1]) + z.T @ z / (len(z) * eps))[1]


def test_transrate_hand_case() -> None:
    # all: centred (-3, -1, 1, 3), Z^T Z = 20, n = 4 -> R = 1/2 log(1 + 5 / eps)
    # each class: centred (-1, 1), Z^T Z = 2, n_c = 2 -> R = 1/2 log(1 + 1 / eps), weight 1/2 each
    # eps = 1e-4: 1/2 log(50001 / 10001) = 0.8046...
    assert transrate(LINE, LINE_LABELS) == pytest.approx(0.5 * math.log(50001 / 10001), abs=1e-12)
    assert transrate(LINE, LINE_LABELS, eps=1.0) == pytest.approx(0.5 * math.log(6 / 2), abs=1e-14)


@pytest.mark.parametrize(("n", "d"), [(60, 5), (12, 30)])
def test_transrate_equals_dense_logdet(n: int, d: int) -> None:
    features, labels = _clusters(n, d, 3, seed=d)
    expected = _dense_rate(features, 1e-4) - sum(
        np.mean(labels == c) * _dense_rate(features[labels == c], 1e-4) for c in range(3)
    )
    assert transrate(features, labels) == pytest.approx(expected, rel=1e-9)


def test_transrate_single_sample_class_and_collinear_features() -> None:
    features, labels = _clusters(20, 3, 2, seed=5)
    labels = labels.copy()
    labels[4] = 9  # one sample: centred on itself it is zero and contributes R = 0
    expected = _dense_rate(features, 1e-4) - sum(
        np.mean(labels == c) * _dense_rate(features[labels == c], 1e-4) for c in (0, 1)
    )
    assert transrate(features, labels) == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(transrate(np.hstack([features, features]), labels))


# --- PARC --------------------------------------------------------------------------------------------


def test_parc_hand_case() -> None:
    # rows f0 = (1, 2, 3), f1 = (1, 2, 4), f2 = (3, 2, 1), labels (0, 0, 1).
    # corr(f0, f1) = 3 / (sqrt 2 * sqrt(42) / 3) = 0.98198, corr(f0, f2) = -1, corr(f1, f2) = -0.98198
    # feature distances (pairs 01, 02, 12) = (0.018, 2, 1.982) -> ranks (1, 3, 2)
    # label distances = (0, 2, 2) -> ranks (1, 2.5, 2.5)
    # Spearman = Pearson of the ranks = 1.5 / (sqrt 2 sqrt 1.5) = sqrt(3) / 2
    features = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 4.0], [3.0, 2.0, 1.0]])
    assert parc(features, [0, 0, 1]) == pytest.approx(math.sqrt(3) / 2, abs=1e-12)


def test_parc_subsample_and_degenerate_cases() -> None:
    features, labels = _clusters(1500, 40, 3, seed=6)
    kept = subsample(1500, 1000, 0)
    assert kept is not None and len(np.unique(kept)) == 1000
    on_subsample = parc(features[kept], labels[kept], max_samples=None)
    assert parc(features, labels) == pytest.approx(on_subsample, abs=1e-12)
    # one feature: every row is constant across its single dimension -> no information -> 0
    assert parc(LINE, LINE_LABELS) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_parc_is_the_spearman_correlation_of_the_two_distance_triangles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = 2 + seed % 3
    features = rng.integers(-2, 3, size=(30, 4)).astype(float)  # small integers: tied distances
    features = np.hstack([features, np.full((30, 1), 5.0), np.full((30, 1), -5.0)])  # no constant row
    labels = np.arange(30) % n_classes
    rows, cols = np.triu_indices(30, k=1)
    feature_distance = 1.0 - _row_correlations(features)[rows, cols]  # np.corrcoef, tied values alike
    # 1 - corrcoef(onehot): 0 within a class, C / (C - 1) across (exactly; corrcoef rounds it)
    label_distance = np.where(labels[rows] == labels[cols], 0.0, n_classes / (n_classes - 1))
    expected = spearmanr(feature_distance, label_distance).statistic
    assert parc(features, labels, n_components=None) == pytest.approx(expected, abs=1e-12)


# --- kNN and linear probe ----------------------------------------------------------------------------

CORNERS = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])


def test_knn_hand_cases() -> None:
    # nearest (cosine) neighbours: 0 <-> 1 and 2 <-> 3
    assert knn(CORNERS, [0, 0, 1, 1], k=1) == 1.0
    assert knn(CORNERS, [0, 1, 0, 1], k=1) == 0.0
    # k = 3 votes over all three others: one own-class neighbour against two others -> all wrong
    assert knn(CORNERS, [0, 0, 1, 1], k=3) == 0.0
    # k = 2 ties 1:1, and the tie goes to the nearer neighbour's class -> all right
    assert knn(CORNERS, [0, 0, 1, 1], k=2) == 1.0
    # k larger than n - 1 is capped at n - 1
    assert knn(CORNERS, [0, 0, 1, 1], k=50) == knn(CORNERS, [0, 0, 1, 1], k=3)


@pytest.mark.parametrize("seed", range(5))
def test_knn_neighbours_are_those_of_a_stable_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    similarity = rng.integers(0, 4, size=(40, 25)).astype(float)  # many ties, at the k-th value too
    similarity[rng.random(similarity.shape) < 0.2] = -np.inf
    for k in (1, 3, 7, 24, 25):
        expected = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(_nearest(similarity, k), expected)


def test_knn_subsample_cap() -> None:
    features, labels = _clusters(300, 5, 3, seed=7, spread=0.7)
    kept = subsample(300, 100, 3)
    on_subsample = knn(features[kept], labels[kept], max_samples=None)
    assert knn(features, labels, max_samples=100, seed=3) == on_subsample


def test_linear_probe_hand_case_and_small_classes() -> None:
    # 12 points on a line, threshold at 5.5: every stratified fold is separable -> accuracy 1
    line = np.arange(12.0)[:, None]
    assert linear_probe(line, (line[:, 0] > 5.5).astype(int)) == 1.0
    # smallest class of 2: two folds instead of three
    assert 0.0 <= linear_probe(line, [0, 0] + [1] * 10) <= 1.0
    with pytest.raises(DataError, match="at least 2 samples per class"):
        linear_probe(line, [0] + [1] * 11)


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_linear_probe_fit_reaches_the_minimum(C: float) -> None:
    features, labels = _clusters(300, 6, 2, seed=8, spread=0.6)
    model = fitted_probe(features, labels, C=C, max_iter=100)
    weights, intercept = model.coef_[0], model.intercept_[0]
    # at the minimum the gradient C X^T (p - y) + w (intercept: C sum(p - y)) vanishes
    probabilities = 1.0 / (1.0 + np.exp(-(features @ weights + intercept)))
    residual = probabilities - (labels == 1)
    scale = C * len(labels)  # the size of the loss term's gradient away from the minimum
    np.testing.assert_allclose(C * features.T @ residual + weights, 0.0, atol=1e-8 * scale)
    assert C * residual.sum() == pytest.approx(0.0, abs=1e-8 * scale)


def test_linear_probe_fit_stays_finite_on_separable_data() -> None:
    line = np.arange(12.0)[:, None]
    model = fitted_probe(line, (line[:, 0] > 5.5).astype(int), C=1e6, max_iter=200)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert np.all(model.predict(line) == (line[:, 0] > 5.5))


def test_linear_probe_matches_scikit_learns_cross_validated_pipeline() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for n_classes in (2, 3):
        features, labels = _clusters(240, 8, n_classes, seed=9, spread=0.5)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
        model = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", tol=1e-10))
        expected = float(np.mean(cross_val_score(model, features, labels, cv=folds)))
        assert linear_probe(features, labels) == pytest.approx(expected, abs=1e-12)


# --- target-blind baseline ---------------------------------------------------------------------------


def test_source_accuracy_is_the_given_accuracy() -> None:
    assert source_accuracy(0.9488) == 0.9488
    assert source_accuracy(1) == 1.0
    with pytest.raises(DataError, match="real number"):
        source_accuracy("0.9")  # type: ignore[arg-type]


def test_linear_probe_past_the_newton_limit_reaches_the_same_probe(monkeypatch) -> None:
    """Many classes and dimensions switch the multinomial fit to L-BFGS: the same minimum, the same accuracy."""
    from taskspace.scoring import _probes

    rng = np.random.default_rng(3)
    labels = np.arange(240) % 4
    features = rng.normal(size=(240, 12)) + np.eye(4, 12)[labels]
    newton = linear_probe(features, labels)
    monkeypatch.setattr(_probes, "NEWTON_LIMIT", 1)
    assert linear_probe(features, labels) == pytest.approx(newton, abs=1e-12)
