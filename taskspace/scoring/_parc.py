"""PARC: pairwise annotation representation comparison (Bolya, Mittapalli & Hoffman, NeurIPS 2021)."""

from __future__ import annotations

import numpy as np

from taskspace.scoring._common import NORM_EPS, pca_project, subsample
from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_features_labels, check_positive_int

__all__ = ["parc"]


def _row_correlations(values: np.ndarray) -> np.ndarray:
    """``(m, m)`` Pearson correlations between the rows of ``values`` (``np.corrcoef(values)``),
    with 0 for a constant row instead of NaN."""
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    unit = centred / np.maximum(norms, NORM_EPS)[:, None]
    return np.asarray(unit @ unit.T)


@register_estimator(
    "parc",
    citation="Bolya, Mittapalli & Hoffman, 'Scalable Diverse Model Selection for Accessible Transfer "
    "Learning', NeurIPS 2021",
)
def parc(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_components: int | None = 32,
    max_samples: int | None = 1000,
    seed: int | None = 0,
) -> float:
    """PARC: Spearman correlation of the pairwise dissimilarities of features and of labels.

    At most ``max_samples`` samples are kept (drawn without replacement with
    ``np.random.default_rng(seed)``; the cost is O(m^2) in the kept number ``m``); if ``d`` exceeds
    ``n_components`` the kept features are centred and projected on their top ``n_components``
    principal axes, otherwise they are used as given. The score is the Spearman
    correlation between the strict upper triangles of ``1 - corrcoef(f)`` and
    ``1 - corrcoef(onehot(y))``. For one-hot rows the latter is 0 for same-class pairs and
    ``C / (C - 1)`` otherwise, so it is computed without the one-hot matrix. A constant feature row
    has correlation 0 with every other row; a constant triangle (e.g. ``d = 1``) gives 0.

    Cited: Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer
    Learning", NeurIPS 2021 (they report 100 times this value).

    Shape:
        features: ``(n, d)`` target features.
        labels: ``(n,)`` integer target labels, at least 2 classes.

    Args:
        features: target features from the frozen source module.
        labels: target labels.
        n_components: PCA dimension (``None``: no PCA); 32 in the paper.
        max_samples: subsample cap (``None``: use all samples).
        seed: seed of the subsample.

    Returns:
        Higher is better, in ``[-1, 1]``. Time O(n d^2 + m^2 p), memory O(m^2).

    Raises:
        DataError: invalid features or labels.
        ConfigError: ``n_components < 1`` or ``max_samples < 2``.
    """
    if n_components is not None:
        n_components = check_positive_int(n_components, "n_components")
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples", minimum=2)
    features, target = check_features_labels(features, labels)
    codes = target.codes
    kept = subsample(features.shape[0], max_samples, seed)
    if kept is not None:
        features, codes = features[kept], codes[kept]
    if n_components is not None and features.shape[1] > n_components:
        features = pca_project(features, n_components)
    rows, cols = np.triu_indices(features.shape[0], k=1)
    feature_distance = 1.0 - _row_correlations(features)[rows, cols]
    different = codes[rows] != codes[cols]  # label distance: C / (C - 1) if True, else 0
    if np.ptp(feature_distance) == 0.0 or different.all() or not different.any():
        return 0.0
    from scipy.stats import rankdata

    # Spearman = Pearson of the ranks; the label distance takes two values, and the Pearson
    # correlation with a two-valued variable is that with its indicator (so it needs no ranking)
    feature_ranks = rankdata(feature_distance)
    return float(np.corrcoef(feature_ranks, different.astype(np.float64))[0, 1])
