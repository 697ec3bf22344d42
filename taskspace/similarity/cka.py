"""Centered kernel alignment (CKA) between two representations of the same inputs.

CKA (Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019) compares representations ``x`` (n, d1) and ``y`` (n, d2) of the same n inputs through their
kernel matrices ``K`` and ``L``::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

It is invariant to orthogonal transforms and isotropic scaling of either representation, not to
arbitrary invertible linear maps, and needs no correspondence between the features of ``x`` and ``y``.

Two HSIC estimators are offered:

* biased (``debiased=False``): ``HSIC = tr(K H L H)`` with the centring matrix ``H``. Range [0, 1];
  two unrelated representations still score well above 0 when n is not much larger than d.
* debiased (``debiased=True``): the unbiased HSIC of Song, Smola, Gretton, Bedo & Borgwardt ("Feature
  Selection via Dependence Maximization", JMLR 13, 2012), as used by Kornblith et al. With
  ``K~`` and ``L~`` the kernels with zeroed diagonals::

      HSIC_1 = [tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))

  Near 0 for independent representations at any n; needs n >= 4 and may fall slightly below 0.

For the linear kernel ``K = X X'`` every term reduces to ``d x d`` products, row norms and sums
(:func:`linear_cka` never forms an n x n matrix; O(n d^2) time, O(n d + d^2) memory):

* ``tr(K~ L~) = ||X'Y||_F^2 - sum_i ||x_i||^2 ||y_i||^2``;
* ``1'K~1 = ||X'1||^2 - sum_i ||x_i||^2``;
* ``1'K~L~1 = (K~1) . (L~1)`` with ``K~1 = X (X'1) - (||x_i||^2)_i``;
* biased: ``tr(K H L H) = ||Xc' Yc||_F^2`` with column-centred ``Xc``, ``Yc``.

The RBF kernel has no such form, so :func:`rbf_cka` builds n x n matrices and refuses n above
:data:`RBF_MAX_SAMPLES`.

Undefined values: a representation with zero variance (every feature constant over the n inputs, for
example an all-zero "dead" module) has a zero centred kernel, so CKA is 0/0; it is returned as NaN
rather than raised (one dead module must not abort a whole similarity matrix) or reported as 0 (which
would claim "maximally dissimilar"). The debiased estimator is also NaN when a self-HSIC estimate is
not positive (possible only for tiny n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from taskspace.errors import ConfigError, DataError, did_you_mean

__all__ = ["KERNELS", "RBF_MAX_SAMPLES", "linear_cka", "rbf_cka", "cka_matrix"]

#: Kernels :func:`cka_matrix` accepts.
KERNELS: tuple[str, ...] = ("linear", "rbf")

#: Largest n :func:`rbf_cka` accepts: a pair holds about four n x n float64 arrays (3.2 GB at the limit).
RBF_MAX_SAMPLES = 10_000

#: A representation whose centred values have a norm below this fraction of its raw norm has zero
#: variance (centring a constant column leaves only rounding errors of order 1e-16 relative).
ZERO_VARIANCE_RTOL = 1e-12

#: Bytes of n x n kernels :func:`cka_matrix` keeps for the RBF kernel before recomputing them per pair.
_RBF_CACHE_BYTES = 2 << 30


# Validation -----------------------------------------------------------------------------------------


def _as_representation(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite float64 (n, d) array with d >= 1, or a one-line :class:`DataError`."""
    try:
        array = np.asarray(values)
    except Exception as error:  # e.g. ragged nested lists
        raise DataError(f"{name} cannot be read as an array ({error}); pass a numpy array (n, d)") from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name} must be a real numeric array, got dtype {array.dtype}; pass float features (n, d)")
    if array.ndim != 2:
        raise DataError(
            f"{name} must be 2-D (n inputs, d features), got shape {array.shape}; "
            f"reshape it, e.g. {name}.reshape(len({name}), -1)"
        )
    if array.shape[1] == 0:
        raise DataError(f"{name} has no features (shape {array.shape}); pass at least one feature column")
    array = array.astype(np.float64, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        value = float(array[row][~finite[row]][0])
        raise DataError(f"{name} has the non-finite value {value} in row {row}; remove or impute those inputs")
    return array


def _check_representations(
    arrays: Sequence[Any], names: Sequence[str], *, debiased: bool
) -> list[np.ndarray]:
    """Validate every representation and that all describe the same number of inputs."""
    checked = [_as_representation(values, name) for values, name in zip(arrays, names, strict=False)]
    first_n = checked[0].shape[0]
    for array, name in zip(checked[1:], names[1:], strict=False):
        if array.shape[0] != first_n:
            raise DataError(
                f"{names[0]} has {first_n} rows but {name} has {array.shape[0]}; CKA compares representations "
                "of the same inputs, so pass features of the same inputs in the same order"
            )
    minimum = 4 if debiased else 2
    if first_n < minimum:
        estimator = "debiased CKA (unbiased HSIC)" if debiased else "CKA"
        raise DataError(f"{estimator} needs at least {minimum} inputs, got n={first_n}; pass more inputs")
    return checked


def _check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise ConfigError(
            f"unknown CKA kernel '{kernel}'{did_you_mean(kernel, KERNELS)} (kernels: {', '.join(KERNELS)})"
        )
    return kernel


def _check_sigma_fraction(sigma_fraction: float) -> float:
    value = float(sigma_fraction)
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"sigma_fraction must be a positive number, got {sigma_fraction!r}; Kornblith et al. use 0.8")
    return value


def _has_zero_variance(raw: np.ndarray, centred: np.ndarray) -> bool:
    return bool(np.linalg.norm(centred) <= ZERO_VARIANCE_RTOL * np.linalg.norm(raw))


# HSIC from kernel statistics ----------------------------------------------------------------------------


def _unbiased_hsic(
    trace_kl: float, sum_k: float, sum_l: float, row_sums_k: np.ndarray, row_sums_l: np.ndarray, n: int
) -> float:
    """Song et al.'s unbiased HSIC_1 from ``tr(K~L~)``, ``1'K~1``, ``1'L~1``, ``K~1`` and ``L~1``."""
    cross = float(np.dot(row_sums_k, row_sums_l))
    return (trace_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross) / (n * (n - 3))


def _ratio(cross: float, self_x: float, self_y: float, *, biased: bool) -> float:
    """``cross / sqrt(self_x self_y)``; NaN where a self term is not positive (undefined CKA)."""
    if not (self_x > 0.0 and self_y > 0.0):
        return math.nan
    value = cross / math.sqrt(self_x * self_y)
    # Cauchy-Schwarz bounds the biased value to [0, 1]; clip the last-bit rounding only.
    return min(max(value, 0.0), 1.0) if biased else value


# Linear kernel in feature space -------------------------------------------------------------------------


@dataclass(frozen=True)
class _LinearTerms:
    """What one representation contributes to every linear-kernel HSIC it takes part in."""

    centred: np.ndarray  # (n, d) column-centred features
    zero_variance: bool
    self_hsic: float  # HSIC(K, K) of the chosen estimator (biased: ||Xc'Xc||_F^2)
    row_norms: np.ndarray | None = None  # (n,) ||x_i||^2 (debiased only)
    kernel_sum: float = 0.0  # 1'K~1 (debiased only)
    kernel_row_sums: np.ndarray | None = None  # (n,) K~1 (debiased only)


def _linear_terms(features: np.ndarray, *, debiased: bool) -> _LinearTerms:
    centred = features - features.mean(axis=0, keepdims=True)
    zero_variance = _has_zero_variance(features, centred)
    gram = centred.T @ centred
    squared_frobenius = float(np.vdot(gram, gram))
    if not debiased:
        return _LinearTerms(centred, zero_variance, squared_frobenius)
    # The unbiased HSIC is unchanged by centring the features; centring first only improves rounding.
    row_norms = np.einsum("ij,ij->i", centred, centred)
    column_sums = centred.sum(axis=0)
    kernel_row_sums = centred @ column_sums - row_norms
    kernel_sum = float(column_sums @ column_sums - row_norms.sum())
    n = centred.shape[0]
    self_hsic = _unbiased_hsic(
        squared_frobenius - float(row_norms @ row_norms), kernel_sum, kernel_sum, kernel_row_sums, kernel_row_sums, n
    )
    return _LinearTerms(centred, zero_variance, self_hsic, row_norms, kernel_sum, kernel_row_sums)


def _linear_pair(first: _LinearTerms, second: _LinearTerms, *, debiased: bool) -> float:
    if first.zero_variance or second.zero_variance:
        return math.nan
    product = first.centred.T @ second.centred
    squared_frobenius = float(np.vdot(product, product))
    if not debiased:
        return _ratio(squared_frobenius, first.self_hsic, second.self_hsic, biased=True)
    assert first.row_norms is not None and second.row_norms is not None
    assert first.kernel_row_sums is not None and second.kernel_row_sums is not None
    cross = _unbiased_hsic(
        squared_frobenius - float(first.row_norms @ second.row_norms),
        first.kernel_sum,
        second.kernel_sum,
        first.kernel_row_sums,
        second.kernel_row_sums,
        first.centred.shape[0],
    )
    return _ratio(cross, first.self_hsic, second.self_hsic, biased=False)


def linear_cka(x: Any, y: Any, *, debiased: bool = False) -> float:
    """Linear CKA of two representations of the same inputs, computed in feature space.

    Biased: ``||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)`` with column-centred ``Xc``, ``Yc``.
    Debiased: the same ratio of Song et al.'s unbiased HSIC estimates (see the module docstring for the
    feature-space form). No n x n matrix is formed.

    Shape:
        - x: ``(n, d1)`` float, one row per input.
        - y: ``(n, d2)`` float, the same inputs in the same order.
        - returns: float. Biased: in [0, 1]; debiased: near 0 for unrelated representations, may be
          slightly negative. 1 for representations equal up to rotation, isotropic scaling and a shift.
          NaN when either representation has zero variance (see the module docstring).

    Cost: O(n (d1 + d2)^2) time, O(n (d1 + d2) + (d1 + d2)^2) memory.

    Args:
        x: the first representation.
        y: the second representation.
        debiased: use the unbiased HSIC estimator (needs n >= 4).

    Raises:
        DataError: not 2-D numeric arrays, NaN/inf values, different n, or n < 2 (n < 4 debiased).

    Reference: Kornblith et al., ICML 2019; Song et al., JMLR 2012.
    """
    first, second = _check_representations((x, y), ("x", "y"), debiased=debiased)
    return _linear_pair(_linear_terms(first, debiased=debiased), _linear_terms(second, debiased=debiased),
                        debiased=debiased)


# RBF kernel (n x n) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RbfTerms:
    """One representation's RBF kernel, ready for HSIC: centred (biased) or zero-diagonal (debiased)."""

    kernel: np.ndarray | None  # (n, n); None when the representation has zero variance
    self_hsic: float
    kernel_sum: float = 0.0  # 1'K~1 (debiased only)
    kernel_row_sums: np.ndarray | None = None  # (n,) K~1 (debiased only)


def _check_rbf_size(n: int) -> None:
    if n > RBF_MAX_SAMPLES:
        raise DataError(
            f"RBF CKA builds n x n kernels and accepts at most {RBF_MAX_SAMPLES} inputs, got n={n}; "
            f"subsample to {RBF_MAX_SAMPLES} inputs or fewer, or use linear_cka (feature space, any n)"
        )


def _rbf_terms(features: np.ndarray, *, sigma_fraction: float, debiased: bool, name: str) -> _RbfTerms:
    n = features.shape[0]
    centred = features - features.mean(axis=0, keepdims=True)
    if _has_zero_variance(features, centred):
        return _RbfTerms(None, math.nan)
    squared_norms = np.einsum("ij,ij->i", centred, centred)
    kernel = centred @ centred.T  # turned into squared distances, then the kernel, in place
    kernel *= -2.0
    kernel += squared_norms[:, None]
    kernel += squared_norms[None, :]
    np.maximum(kernel, 0.0, out=kernel)
    np.fill_diagonal(kernel, 0.0)
    # The off-diagonal entries hold every distinct pair twice, which leaves the median unchanged.
    off_diagonal = kernel.reshape(-1)[:-1].reshape(n - 1, n + 1)[:, 1:]
    median_distance = float(np.median(np.sqrt(off_diagonal), overwrite_input=True))
    if median_distance == 0.0:
        raise DataError(
            f"{name}: at least half of the pairs of inputs have identical features, so the median distance "
            "and the RBF bandwidth are 0; remove duplicate inputs or use linear_cka"
        )
    bandwidth = sigma_fraction * median_distance
    kernel *= -1.0 / (2.0 * bandwidth * bandwidth)
    np.exp(kernel, out=kernel)
    if not debiased:
        row_means = kernel.mean(axis=1)
        kernel -= row_means[:, None]
        kernel -= row_means[None, :]  # the kernel is symmetric: column means are the row means
        kernel += row_means.mean()
        return _RbfTerms(kernel, float(np.vdot(kernel, kernel)))
    np.fill_diagonal(kernel, 0.0)
    row_sums = kernel.sum(axis=1)
    kernel_sum = float(row_sums.sum())
    self_hsic = _unbiased_hsic(float(np.vdot(kernel, kernel)), kernel_sum, kernel_sum, row_sums, row_sums, n)
    return _RbfTerms(kernel, self_hsic, kernel_sum, row_sums)


def _rbf_pair(first: _RbfTerms, second: _RbfTerms, *, debiased: bool) -> float:
    if first.kernel is None or second.kernel is None:
        return math.nan
    trace = float(np.vdot(first.kernel, second.kernel))
    if not debiased:
        return _ratio(trace, first.self_hsic, second.self_hsic, biased=True)
    assert first.kernel_row_sums is not None and second.kernel_row_sums is not None
    cross = _unbiased_hsic(trace, first.kernel_sum, second.kernel_sum, first.kernel_row_sums,
                           second.kernel_row_sums, first.kernel.shape[0])
    return _ratio(cross, first.self_hsic, second.self_hsic, biased=False)


def rbf_cka(x: Any, y: Any, *, sigma_fraction: float = 0.8, debiased: bool = False) -> float:
    """CKA with Gaussian (RBF) kernels, bandwidth a fraction of the median pairwise distance.

    ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` with ``sigma = sigma_fraction * median_{i<j}
    ||x_i - x_j||`` (Kornblith et al. use 0.8; their code takes the median over all n^2 entries,
    self-distances included, which differs negligibly for n in the hundreds), likewise for ``y``.

    Shape:
        - x: ``(n, d1)`` float, one row per input.
        - y: ``(n, d2)`` float, the same inputs in the same order.
        - returns: float; biased in [0, 1], debiased near 0 for unrelated representations. NaN when
          either representation has zero variance.

    Cost: O(n^2 (d1 + d2)) time and about four n x n float64 arrays of memory, hence the limit
    n <= :data:`RBF_MAX_SAMPLES` (3.2 GB there).

    Args:
        x: the first representation.
        y: the second representation.
        sigma_fraction: bandwidth as a fraction of the median pairwise distance (> 0).
        debiased: use the unbiased HSIC estimator (needs n >= 4).

    Raises:
        DataError: invalid arrays (as :func:`linear_cka`), n above :data:`RBF_MAX_SAMPLES`, or a zero
            median distance (more than half of the pairs identical) in one representation.
        ConfigError: ``sigma_fraction`` not a positive number.

    Reference: Kornblith et al., ICML 2019.
    """
    fraction = _check_sigma_fraction(sigma_fraction)
    first, second = _check_representations((x, y), ("x", "y"), debiased=debiased)
    _check_rbf_size(first.shape[0])
    return _rbf_pair(
        _rbf_terms(first, sigma_fraction=fraction, debiased=debiased, name="x"),
        _rbf_terms(second, sigma_fraction=fraction, debiased=debiased, name="y"),
        debiased=debiased,
    )


# Every pair of many representations ---------------------------------------------------------------------


def _is_defined(terms: _LinearTerms | _RbfTerms) -> bool:
    """Whether CKA with this representation is defined (non-zero variance, positive self-HSIC)."""
    if isinstance(terms, _LinearTerms) and terms.zero_variance:
        return False
    return terms.self_hsic > 0.0  # NaN (RBF, zero variance) compares False


def cka_matrix(
    representations: Sequence[Any],
    *,
    kernel: str = "linear",
    debiased: bool = False,
    sigma_fraction: float = 0.8,
) -> np.ndarray:
    """CKA of every pair of representations of the same inputs, each representation prepared once.

    Entry ``[i, j]`` with ``i < j`` equals ``linear_cka(representations[i], representations[j])`` (or
    :func:`rbf_cka`) bit for bit, and ``[j, i]`` is the same number; the diagonal is exactly 1, or NaN
    for a representation whose CKA is undefined (zero variance, or a non-positive unbiased self-HSIC).

    Shape:
        - representations: m arrays ``(n, d_k)``, all with the same n (the d_k may differ).
        - returns: float64 ``(m, m)``, symmetric.

    Cost: linear, m(m-1)/2 products ``(d_i, n) @ (n, d_j)``; RBF, the m n x n kernels are kept when
    they fit in 2 GiB and recomputed per pair otherwise.

    Args:
        representations: the representations to compare.
        kernel: ``"linear"`` (feature space, any n) or ``"rbf"`` (n <= :data:`RBF_MAX_SAMPLES`).
        debiased: use the unbiased HSIC estimator (needs n >= 4).
        sigma_fraction: RBF bandwidth as a fraction of the median pairwise distance.

    Raises:
        DataError: as :func:`linear_cka` / :func:`rbf_cka`, naming ``representations[k]``.
        ConfigError: an unknown kernel, a bad ``sigma_fraction``, or no representation at all.
    """
    _check_kernel(kernel)
    fraction = _check_sigma_fraction(sigma_fraction)
    if len(representations) == 0:
        raise ConfigError("cka_matrix needs at least one representation; pass a list of (n, d) arrays")
    names = [f"representations[{index}]" for index in range(len(representations))]
    arrays = _check_representations(representations, names, debiased=debiased)
    count, n = len(arrays), arrays[0].shape[0]
    if kernel == "rbf":
        _check_rbf_size(n)
    # Linear terms are O(n d) each and always kept; RBF kernels are kept while they fit the budget.
    keep_all = kernel == "linear" or count * n * n * 8 <= _RBF_CACHE_BYTES
    kept: dict[int, _LinearTerms | _RbfTerms] = {}

    def terms(index: int) -> _LinearTerms | _RbfTerms:
        if index in kept:
            return kept[index]
        if kernel == "linear":
            prepared: _LinearTerms | _RbfTerms = _linear_terms(arrays[index], debiased=debiased)
        else:
            prepared = _rbf_terms(arrays[index], sigma_fraction=fraction, debiased=debiased, name=names[index])
        if keep_all:
            kept[index] = prepared
        return prepared

    def pair(first: _LinearTerms | _RbfTerms, second: _LinearTerms | _RbfTerms) -> float:
        if isinstance(first, _LinearTerms) and isinstance(second, _LinearTerms):
            return _linear_pair(first, second, debiased=debiased)
        assert isinstance(first, _RbfTerms) and isinstance(second, _RbfTerms)
        return _rbf_pair(first, second, debiased=debiased)

    similarity = np.empty((count, count), dtype=np.float64)
    for i in range(count):
        first = terms(i)
        similarity[i, i] = 1.0 if _is_defined(first) else math.nan
        for j in range(i + 1, count):
            similarity[i, j] = similarity[j, i] = pair(first, terms(j))
    return similarity
