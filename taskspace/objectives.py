"""Pairwise objectives for hidden modules, looked up by name.

Duan, Yu & Principe, "Modularizing Deep Learning via Pairwise Learning With Kernels" (TNNLS 2022)
train a hidden module from pairwise (weak) labels only: for a mini-batch with gram matrix
``G[i, j] = k(F(x_i), F(x_j))`` and labels ``y``, the ideal kernel is
``G*[i, j] = k_max if y_i == y_j else k_min`` and the module makes ``G`` look like ``G*``.

Every objective has the signature::

    objective(gram, labels, *, k_min=0.0, k_max=1.0) -> scalar tensor

with ``gram`` a floating ``(n, n)`` tensor, ``labels`` an integer ``(n,)`` tensor and ``n >= 2``.
Values are to be MAXIMISED (a trainer minimises the negative) and are differentiable w.r.t. ``gram``.
All objectives are vectorised over the ``n x n`` pairs (no Python loop over samples).

Example::

    kernel = get_kernel("cosine_relu")
    objective = get_objective("upper_tri_alignment")
    loss = -objective(kernel(module(x)), y, k_min=kernel.k_min, k_max=kernel.k_max)
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, Protocol

import torch

from taskspace.errors import ConfigError
from taskspace.registry import Registry

__all__ = ["Objective", "OBJECTIVES", "get_objective", "list_objectives", "ideal_kernel", "objective_parameters"]

#: Lower clamp of norms and other denominators.
EPS = 1e-12


class Objective(Protocol):
    """``(gram (n, n), labels (n,), *, k_min, k_max) -> scalar tensor`` to maximise."""

    def __call__(
        self, gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
    ) -> torch.Tensor: ...


#: Objectives by name, filled by ``@OBJECTIVES.register(name)``.
OBJECTIVES: Registry[Objective] = Registry("objective")


def ideal_kernel(
    labels: torch.Tensor, *, k_min: float, k_max: float, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The ideal kernel ``G*[i, j] = k_max if labels[i] == labels[j] else k_min``.

    Args:
        labels: ``(n,)`` integer class labels.
        k_min: value for different-class pairs (0 for relu/sigmoid cosine kernels, -1 for tanh).
        k_max: value for same-class pairs, the diagonal included.
        dtype: floating dtype of the result (default: torch's default dtype).

    Returns:
        ``(n, n)`` tensor on the device of ``labels``.
    """
    labels = _check_labels(labels)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    dtype = dtype or torch.get_default_dtype()
    high = torch.tensor(float(k_max), dtype=dtype, device=labels.device)
    low = torch.tensor(float(k_min), dtype=dtype, device=labels.device)
    return torch.where(same, high, low)


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (n,), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    return labels


def _check(gram: torch.Tensor, labels: torch.Tensor, k_min: float, k_max: float) -> torch.Tensor:
    """Validate the inputs; return the labels on the gram's device."""
    if not isinstance(gram, torch.Tensor):
        raise TypeError(f"gram must be a torch.Tensor, got {type(gram).__name__}")
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"gram must be a square (n, n) matrix, got shape {tuple(gram.shape)}")
    if not gram.is_floating_point():
        raise ValueError(f"gram must be floating point, got {gram.dtype}")
    labels = _check_labels(labels)
    if labels.shape[0] != gram.shape[0]:
        raise ValueError(f"gram is {gram.shape[0]}x{gram.shape[0]} but there are {labels.shape[0]} labels")
    if gram.shape[0] < 2:
        raise ValueError(f"an objective needs at least one pair of samples (n >= 2), got n={gram.shape[0]}")
    if not k_min < k_max:
        raise ValueError(f"k_min must be < k_max, got k_min={k_min}, k_max={k_max}")
    return labels.to(gram.device)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(off_diagonal, same_off_diagonal, different)`` boolean ``(n, n)`` masks."""
    n = labels.shape[0]
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=labels.device)
    return off_diagonal, same & off_diagonal, ~same


def _masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    # where() rather than multiplication: entries outside the mask never reach the result or the
    # gradient, even if they are inf (or -inf, as on a logits diagonal).
    kept = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    return kept.sum() if dim is None else kept.sum(dim=dim)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of two vectors; 0 with zero gradient when either norm is <= EPS."""
    norm_a = torch.linalg.vector_norm(a)
    norm_b = torch.linalg.vector_norm(b)
    ratio = (a * b).sum() / (norm_a.clamp_min(EPS) * norm_b.clamp_min(EPS))
    defined = (norm_a > EPS) & (norm_b > EPS)
    # The ratio's gradient is finite (clamped denominators) and where() multiplies it by 0.
    return torch.where(defined, ratio, torch.zeros_like(ratio))


@OBJECTIVES.register("alignment")
def alignment(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """Full kernel-target alignment ``<G, G*>_F / (||G||_F ||G*||_F)`` (Cristianini et al.).

    The diagonal is included, so a single-class batch and a batch without same-class pairs are both
    well defined (the diagonal of ``G*`` is ``k_max``).

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``.
        labels: ``(n,)`` integer labels.
        k_min: ideal value for different-class pairs.
        k_max: ideal value for same-class pairs.

    Returns:
        Scalar in ``[-1, 1]`` (``[0, 1]`` for non-negative kernels and ``k_min >= 0``); maximise.
        1 exactly when ``G`` is a positive multiple of ``G*``. An all-zero gram gives 0 with zero
        gradient (no NaN).

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    target = ideal_kernel(labels, k_min=k_min, k_max=k_max, dtype=gram.dtype)
    return _cosine(gram.flatten(), target.flatten())


@OBJECTIVES.register("upper_tri_alignment")
def upper_tri_alignment(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """Alignment over the strict upper triangles (``i < j``) only, as in the paper's scripts.

    ``A = sum_{i<j} G_ij G*_ij / (sqrt(sum_{i<j} G_ij^2) sqrt(sum_{i<j} G*_ij^2))``.

    Edge cases: a single-class batch is well defined (every ``G*_ij = k_max``). With no same-class
    pair and ``k_min = 0`` the target triangle is all zero, so ``A`` is 0/0: the result is 0 with
    zero gradient. An all-zero gram likewise gives 0 with zero gradient (no NaN).

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``; entries below the diagonal are ignored.
        labels: ``(n,)`` integer labels.
        k_min: ideal value for different-class pairs.
        k_max: ideal value for same-class pairs.

    Returns:
        Scalar in ``[-1, 1]`` (``[0, 1]`` for non-negative kernels and ``k_min >= 0``); maximise.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    target = ideal_kernel(labels, k_min=k_min, k_max=k_max, dtype=gram.dtype)
    rows, cols = torch.triu_indices(gram.shape[0], gram.shape[0], offset=1, device=gram.device)
    return _cosine(gram[rows, cols], target[rows, cols])


@OBJECTIVES.register("raw")
def raw(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """``(sum_{i!=j, same} G_ij - sum_{i!=j, different} G_ij) / (n (n - 1))``.

    ``k_min`` and ``k_max`` are accepted for a uniform signature and not used. A single-class batch
    gives the mean off-diagonal entry of ``G``.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``.
        labels: ``(n,)`` integer labels.
        k_min: unused.
        k_max: unused.

    Returns:
        Scalar in ``[-1, 1]`` for kernels with values in ``[-1, 1]``; maximise.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    _, same_off, different = _masks(labels)
    n = gram.shape[0]
    return (_masked_sum(gram, same_off) - _masked_sum(gram, different)) / (n * (n - 1))


@OBJECTIVES.register("nmse")
def nmse(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """Negative mean squared error ``-mean_{all i, j} (G_ij - G*_ij)^2`` (diagonal included).

    Defined for every batch with ``n >= 2`` (one class, no same-class pair, zero gram).

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``.
        labels: ``(n,)`` integer labels.
        k_min: ideal value for different-class pairs.
        k_max: ideal value for same-class pairs.

    Returns:
        Scalar ``<= 0``, 0 exactly when ``G = G*``; maximise. For kernels with values in
        ``[k_min, k_max]`` it lies in ``[-(k_max - k_min)^2, 0]``.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    target = ideal_kernel(labels, k_min=k_min, k_max=k_max, dtype=gram.dtype)
    return -(gram - target).pow(2).mean()


@OBJECTIVES.register("contrastive")
def contrastive(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """``sum_{i!=j, same} exp(G_ij) / sum_{i!=j} exp(G_ij)``: the share of same-class pairs.

    Computed with the off-diagonal maximum subtracted, so large entries do not overflow. A
    single-class batch gives exactly 1; a batch without same-class pairs gives 0 (zero gradient).
    ``k_min`` and ``k_max`` are accepted for a uniform signature and not used.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``; the diagonal is ignored.
        labels: ``(n,)`` integer labels.
        k_min: unused.
        k_max: unused.

    Returns:
        Scalar in ``[0, 1]``; maximise.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    off_diagonal, same_off, _ = _masks(labels)
    logits = gram.masked_fill(~off_diagonal, float("-inf"))
    weights = torch.exp(logits - logits.detach().max())  # diagonal: exp(-inf) = 0
    return _masked_sum(weights, same_off) / weights.sum()


@OBJECTIVES.register("log_contrastive")
def log_contrastive(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """``logsumexp_{i!=j, same} G_ij - logsumexp_{i!=j} G_ij``: the log of :func:`contrastive`.

    A single-class batch gives exactly 0. A batch without same-class pairs has no finite value
    (log 0) and raises. ``k_min`` and ``k_max`` are accepted for a uniform signature and not used.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``; the diagonal is ignored.
        labels: ``(n,)`` integer labels.
        k_min: unused.
        k_max: unused.

    Returns:
        Scalar ``<= 0``; maximise.

    Raises:
        ValueError: no same-class pair in the batch, ``n < 2``, mismatched shapes, non-integer labels
            or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    off_diagonal, same_off, _ = _masks(labels)
    if not bool(same_off.any()):
        raise ValueError(
            "log_contrastive needs at least one same-class pair in the batch (log of 0 otherwise); "
            "use larger batches or a class-balanced sampler"
        )
    same_logits = gram.masked_fill(~same_off, float("-inf")).flatten()
    all_logits = gram.masked_fill(~off_diagonal, float("-inf")).flatten()
    return torch.logsumexp(same_logits, dim=0) - torch.logsumexp(all_logits, dim=0)


@OBJECTIVES.register("supervised_contrastive")
def supervised_contrastive(
    gram: torch.Tensor,
    labels: torch.Tensor,
    *,
    k_min: float = 0.0,
    k_max: float = 1.0,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Per-anchor contrastive objective on the gram (Khosla et al., 2020), to maximise.

    For each anchor ``i`` with at least one same-class partner, the mean over its partners ``p`` of
    ``G_ip / t - logsumexp_{a != i} G_ia / t``; the result is the mean over those anchors. Unlike
    :func:`log_contrastive`, whose batch-wide log-sum-exp is dominated by the few largest entries,
    every anchor weighs its own hardest different-class pairs, and ``temperature`` ``t`` sets how
    sharply. Only "same class or not" enters, so it is a pairwise (weak-label) objective like the rest.

    A batch with no same-class pair gives 0 with zero gradient. In a single-class batch every pair is
    a partner, and the value is at most ``-log(n - 1)``, reached when each anchor's entries are equal.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``; the diagonal is ignored.
        labels: ``(n,)`` integer labels.
        k_min: unused.
        k_max: unused.
        temperature: ``t > 0``; smaller concentrates on the hardest pairs.

    Returns:
        Scalar ``<= 0``; maximise.

    Raises:
        ValueError: ``temperature <= 0``, ``n < 2``, mismatched shapes, non-integer labels or
            ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    off_diagonal, same_off, _ = _masks(labels)
    logits = (gram / temperature).masked_fill(~off_diagonal, float("-inf"))
    log_normaliser = torch.logsumexp(logits, dim=1, keepdim=True)
    log_probabilities = logits - log_normaliser
    partners = same_off.sum(dim=1)
    anchors = partners > 0
    if not bool(anchors.any()):
        return gram.sum() * 0.0
    per_anchor = _masked_sum(log_probabilities, same_off, dim=1) / partners.clamp_min(1)
    return per_anchor[anchors].mean()


def _mean_over(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask``; 0 with zero gradient for an empty mask."""
    count = mask.sum().clamp_min(1)
    return _masked_sum(values, mask) / count


@OBJECTIVES.register("negative_raw")
def negative_raw(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """``-mean_{different class} G_ij``: uses only the different-class pairs.

    A single-class batch (no different-class pair) gives 0 with zero gradient. ``k_min`` and
    ``k_max`` are accepted for a uniform signature and not used.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``.
        labels: ``(n,)`` integer labels.
        k_min: unused.
        k_max: unused.

    Returns:
        Scalar in ``[-1, 0]`` for non-negative kernels with values ``<= 1`` (``[-1, 1]`` for tanh);
        maximise.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    _, _, different = _masks(labels)
    return -_mean_over(gram, different)


@OBJECTIVES.register("negative_nmse")
def negative_nmse(
    gram: torch.Tensor, labels: torch.Tensor, *, k_min: float = 0.0, k_max: float = 1.0
) -> torch.Tensor:
    """``-mean_{different class} (G_ij - k_min)^2``: uses only the different-class pairs.

    A single-class batch (no different-class pair) gives 0 with zero gradient.

    Args:
        gram: ``(n, n)`` gram matrix, ``n >= 2``.
        labels: ``(n,)`` integer labels.
        k_min: ideal value for different-class pairs.
        k_max: unused (checked to exceed ``k_min``).

    Returns:
        Scalar ``<= 0``, 0 exactly when every different-class entry equals ``k_min``; maximise.

    Raises:
        ValueError: ``n < 2``, mismatched shapes, non-integer labels or ``k_min >= k_max``.
    """
    labels = _check(gram, labels, k_min, k_max)
    _, _, different = _masks(labels)
    return -_mean_over((gram - k_min).pow(2), different)


def objective_parameters(name: str) -> dict[str, float]:
    """The tunable parameters of objective ``name`` and their defaults (``k_min``/``k_max`` excluded)."""
    signature = inspect.signature(OBJECTIVES.get(name))
    return {
        parameter.name: parameter.default
        for parameter in signature.parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in ("k_min", "k_max")
    }


def get_objective(name: str, **params: Any) -> Objective:
    """The objective registered as ``name``, with ``params`` bound (see the module docstring).

    Args:
        name: one of :func:`list_objectives`.
        **params: the objective's own parameters (``supervised_contrastive``: ``temperature`` > 0);
            most objectives take none.

    Raises:
        ConfigError: unknown name (with a close-match suggestion), unknown parameter or a value that
            is not a finite number > 0.
    """
    objective = OBJECTIVES.get(name)
    if not params:
        return objective
    accepted = objective_parameters(name)
    for key, value in params.items():
        if key not in accepted:
            takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes none"
            raise ConfigError(f"objective '{name}' has no parameter '{key}' ({takes})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"objective parameter {key} must be a finite number > 0, got {value!r}")
    bound: Callable[..., Any] = objective  # the keywords bind the objective's parameters, after its tensors
    return functools.partial(bound, **{key: float(value) for key, value in params.items()})


def list_objectives() -> list[str]:
    """Names of all registered objectives, sorted."""
    return OBJECTIVES.names()
