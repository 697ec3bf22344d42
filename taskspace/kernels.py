"""Differentiable torch kernels, looked up by name.

A kernel turns a batch of module outputs into a gram matrix ``G[i, j] = k(x_i, y_j)``. The cosine
kernels are the ones of Duan, Yu & Principe, "Modularizing Deep Learning via Pairwise Learning With
Kernels" (TNNLS 2022, section "Networks as modules"): ``k(u, v) = <phi(u), phi(v)>`` with a fixed
unit-norm feature map ``phi(u) = normalize(flatten(global_avg_pool(activation(u))))``, so ``k(u, u) = 1``.

Example:
    >>> kernel = get_kernel("cosine_relu")
    >>> gram = kernel(torch.randn(8, 16))          # (8, 8), diagonal 1, values in [0, 1]
    >>> kernel.k_min, kernel.k_max
    (0.0, 1.0)

Shapes accepted by every kernel (``n`` samples first):
    * ``(n, c, h, w)`` conv outputs: activation, global average pooling over ``h, w`` -> ``(n, c)``;
    * ``(n, d)`` vectors: activation only;
    * any other ``(n, ...)``: activation, then flattened to ``(n, prod(...))``.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import torch

from taskspace.errors import ConfigError, did_you_mean
from taskspace.registry import Registry

__all__ = ["Kernel", "CosineKernel", "GaussianKernel", "KERNELS", "get_kernel", "list_kernels"]

#: Lower clamp of feature norms: an all-zero feature vector normalises to zero instead of NaN.
NORM_EPS = 1e-12

#: Builders ``(**params) -> Kernel``, filled by ``@KERNELS.register(name)``.
KERNELS: Registry[Callable[..., Kernel]] = Registry("kernel")

# Activations by name (a name, not a function object, keeps kernels picklable and printable).
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def _pool_flatten(x: torch.Tensor) -> torch.Tensor:
    """``(n, c, h, w)`` -> global average pool -> ``(n, c)``; ``(n, d)`` unchanged; else flatten."""
    if x.ndim == 4:
        return x.mean(dim=(2, 3))
    if x.ndim == 2:
        return x
    if x.ndim == 1:
        return x.unsqueeze(1)
    return x.flatten(1)


def _check_input(x: Any, argument: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"kernel input '{argument}' must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"kernel input '{argument}' must have a sample dimension, got a 0-d tensor")
    if not x.is_floating_point():
        raise ValueError(f"kernel input '{argument}' must be floating point, got {x.dtype}")
    return x


class Kernel(ABC):
    """A differentiable kernel: ``kernel(x, y=None)`` returns the ``(n, m)`` gram matrix.

    Attributes:
        name: the registry name, e.g. ``"cosine_relu"``.
        k_min: the ideal kernel value for a pair of different classes.
        k_max: the ideal kernel value for a pair of the same class (``k(x, x)`` for these kernels).
    """

    def __init__(self, *, name: str, params: Mapping[str, float], k_min: float, k_max: float) -> None:
        self.name = name
        self._params = dict(params)
        self.k_min = float(k_min)
        self.k_max = float(k_max)

    @property
    def params(self) -> dict[str, float]:
        """The resolved parameters (defaults filled in), a fresh dict for provenance records."""
        return dict(self._params)

    @abstractmethod
    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch ``(n, ...)`` to the ``(n, d)`` vectors the gram is computed from."""

    @abstractmethod
    def _gram(self, fx: torch.Tensor, fy: torch.Tensor, *, symmetric: bool) -> torch.Tensor:
        """Gram ``(n, m)`` of two feature batches; ``symmetric`` means ``fy is fx``."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Gram matrix between two batches.

        Args:
            x: ``(n, ...)`` floating-point tensor.
            y: ``(m, ...)`` tensor with the same feature size after pooling, or ``None`` for ``y = x``.

        Returns:
            ``(n, m)`` tensor ``G[i, j] = k(x_i, y_j)``, differentiable w.r.t. ``x`` and ``y``;
            symmetric when ``y`` is ``None``.
        """
        fx = self.feature_map(_check_input(x, "x"))
        if y is None:
            return self._gram(fx, fx, symmetric=True)
        fy = self.feature_map(_check_input(y, "y"))
        if fx.shape[1] != fy.shape[1]:
            raise ValueError(
                f"kernel '{self.name}': x gives {fx.shape[1]} features per sample but y gives "
                f"{fy.shape[1]} (shapes {tuple(x.shape)} and {tuple(y.shape)})"
            )
        return self._gram(fx, fy, symmetric=False)

    def __repr__(self) -> str:
        args = "".join(f", {key}={value!r}" for key, value in sorted(self._params.items()))
        return f"{type(self).__name__}('{self.name}'{args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Kernel):
            return NotImplemented
        return (self.name, self._params) == (other.name, other._params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self._params.items()))))


class CosineKernel(Kernel):
    """``k(u, v) = <phi(u), phi(v)>`` with ``phi(u) = normalize(pool_flatten(activation(u)))``.

    For non-zero features ``k(u, u) = 1``. Values lie in ``[k_min, k_max]``: ``[0, 1]`` for relu and
    sigmoid (non-negative features), ``[-1, 1]`` for tanh. An all-zero feature vector (e.g. every
    pre-activation negative under relu) maps to the zero vector, so its row of the gram is 0.

    Args:
        name: registry name.
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        k_min: ideal value for different-class pairs.
    """

    def __init__(self, name: str, *, activation: str, k_min: float) -> None:
        super().__init__(name=name, params={}, k_min=k_min, k_max=1.0)
        self.activation = activation
        self._activation = _ACTIVATIONS[activation]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The explicit unit-norm feature map.

        Args:
            x: ``(n, c, h, w)``, ``(n, d)`` or ``(n, ...)`` tensor.

        Returns:
            ``(n, d)`` tensor whose rows have L2 norm 1 (or 0 for all-zero rows after the activation).
        """
        features = _pool_flatten(self._activation(_check_input(x, "x")))
        norms = torch.linalg.vector_norm(features, dim=1, keepdim=True)
        return features / norms.clamp_min(NORM_EPS)

    def _gram(self, fx: torch.Tensor, fy: torch.Tensor, *, symmetric: bool) -> torch.Tensor:
        gram = fx @ fy.T
        if symmetric:
            # A matmul need not be bit-for-bit symmetric; averaging makes it exact for free.
            gram = 0.5 * (gram + gram.T)
        return gram


class GaussianKernel(Kernel):
    """``k(u, v) = exp(-||a - b||^2 / (2 sigma^2))`` with ``a, b`` the pooled, flattened inputs.

    No activation and no normalisation are applied. The Gaussian kernel has no finite explicit
    feature map: :meth:`feature_map` returns the pooled inputs the distances are computed between,
    not vectors whose inner products give the kernel. Values lie in ``(0, 1]``, ``k(u, u) = 1``.

    Args:
        sigma: bandwidth, > 0.
    """

    def __init__(self, *, sigma: float) -> None:
        super().__init__(name="gaussian", params={"sigma": sigma}, k_min=0.0, k_max=1.0)
        self.sigma = sigma

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled, flattened inputs ``(n, d)`` (not a feature map of the kernel: see the class)."""
        return _pool_flatten(_check_input(x, "x"))

    def _gram(self, fx: torch.Tensor, fy: torch.Tensor, *, symmetric: bool) -> torch.Tensor:
        if fx.shape[0] > 0:
            # Distances do not change under a common shift; centring reduces the cancellation in
            # |a|^2 + |b|^2 - 2<a, b> when the points are far from the origin.
            shift = fx.detach().mean(dim=0, keepdim=True)
            fx, fy = fx - shift, fy - shift
        squared = (
            fx.pow(2).sum(dim=1, keepdim=True) + fy.pow(2).sum(dim=1).unsqueeze(0) - 2.0 * (fx @ fy.T)
        ).clamp_min(0.0)
        if symmetric:
            eye = torch.eye(squared.shape[0], dtype=torch.bool, device=squared.device)
            squared = squared.masked_fill(eye, 0.0)
            squared = 0.5 * (squared + squared.T)
        return torch.exp(-squared / (2.0 * self.sigma**2))


def _check_params(name: str, params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in params:
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise ConfigError(
                f"kernel '{name}' got unknown parameter '{key}'{did_you_mean(key, allowed)} "
                f"(valid parameters: {valid})"
            )


def _positive_number(kernel: str, parameter: str, value: Any) -> float:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"kernel '{kernel}': parameter '{parameter}' must be a finite number > 0, got {value!r}"
        )
    return float(value)


@KERNELS.register("cosine_relu")
def _cosine_relu(**params: Any) -> Kernel:
    _check_params("cosine_relu", params, ())
    return CosineKernel("cosine_relu", activation="relu", k_min=0.0)


@KERNELS.register("cosine_tanh")
def _cosine_tanh(**params: Any) -> Kernel:
    _check_params("cosine_tanh", params, ())
    return CosineKernel("cosine_tanh", activation="tanh", k_min=-1.0)


@KERNELS.register("cosine_sigmoid")
def _cosine_sigmoid(**params: Any) -> Kernel:
    _check_params("cosine_sigmoid", params, ())
    return CosineKernel("cosine_sigmoid", activation="sigmoid", k_min=0.0)


@KERNELS.register("gaussian")
def _gaussian(**params: Any) -> Kernel:
    _check_params("gaussian", params, ("sigma",))
    return GaussianKernel(sigma=_positive_number("gaussian", "sigma", params.get("sigma", 1.0)))


def get_kernel(name: str, **params: Any) -> Kernel:
    """Build the kernel registered as ``name``.

    Args:
        name: one of :func:`list_kernels`.
        **params: kernel parameters (``gaussian``: ``sigma`` > 0, default 1.0; the cosine kernels
            take none).

    Returns:
        A :class:`Kernel`.

    Raises:
        ConfigError: unknown name (with a close-match suggestion), unknown parameter or bad value.
    """
    return KERNELS.get(name)(**params)


def list_kernels() -> list[str]:
    """Names of all registered kernels, sorted."""
    return KERNELS.names()
