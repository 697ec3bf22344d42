"""The estimator registry: :class:`Estimator`, the ``@register_estimator`` decorator and lookups."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from taskspace.errors import ConfigError, did_you_mean
from taskspace.registry import Registry
from taskspace.scoring._threads import single_threaded
from taskspace.scoring._validation import (
    check_features_labels,
    check_source_accuracy,
    check_source_probs,
)

__all__ = ["Estimator", "ESTIMATORS", "register_estimator", "get_estimator", "list_estimators"]

#: The arguments an estimator function may take positionally, in the order it declares them.
INPUTS = ("features", "labels", "source_probs", "source_accuracy")


@dataclass(frozen=True)
class Estimator:
    """A transferability estimator: a named, documented, callable score (higher is better).

    Call it as ``estimator(features, labels, *, source_probs=None, source_accuracy=None)``. Every call
    validates ``features`` and ``labels`` (even for estimators that ignore them, so a broken pipeline
    fails loudly) and whatever else the estimator ``needs``, then returns a Python float.

    Attributes:
        name: registry name.
        function: the public estimator function; it takes the arguments named in ``inputs``
            positionally, then keyword options.
        inputs: names of the positional arguments of ``function``, in order, taken from
            ``("features", "labels", "source_probs", "source_accuracy")``.
        citation: the paper the formula comes from.
        description: one line: what the score measures.
        params: keyword options passed to ``function`` (e.g. ``{"batch_size": 128}``).
        greater_is_better: always ``True``: scores whose formula is "lower is better" are negated.
        needs: what the call needs besides the labels: a subset of ``{"features", "source_probs",
            "source_accuracy"}`` (derived from ``inputs``).
    """

    name: str
    function: Callable[..., float]
    inputs: tuple[str, ...]
    citation: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    greater_is_better: bool = True
    needs: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        unknown = [name for name in self.inputs if name not in INPUTS]
        if unknown:
            raise ValueError(f"estimator '{self.name}': unknown inputs {unknown}; choose from {INPUTS}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "needs", frozenset(self.inputs) - {"labels"})
        self._check_params(self.params)
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # the read-only params view cannot be pickled; rebuild from a plain dict (for process pools)
        return (
            Estimator,
            (self.name, self.function, self.inputs, self.citation, self.description, dict(self.params),
             self.greater_is_better),
        )

    @property
    def uses_target(self) -> bool:
        """Whether the score depends on the target labels (``source_accuracy`` does not)."""
        return "labels" in self.inputs

    @property
    def param_names(self) -> list[str]:
        """Names of the keyword options ``function`` accepts."""
        signature = inspect.signature(self.function)
        return [
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    def _check_params(self, params: Mapping[str, Any]) -> None:
        allowed = self.param_names
        for key in params:
            if key not in allowed:
                options = ", ".join(allowed) if allowed else "none"
                raise ConfigError(
                    f"unknown option '{key}' for estimator '{self.name}'{did_you_mean(key, allowed)} "
                    f"(options: {options})"
                )

    def with_params(self, **params: Any) -> Estimator:
        """A copy with ``params`` updated, e.g. ``get_estimator("knn").with_params(k=10)``.

        Raises:
            ConfigError: an option the estimator does not take (with a close-match suggestion).
        """
        self._check_params(params)
        return replace(self, params={**self.params, **params})

    def __call__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        *,
        source_probs: np.ndarray | None = None,
        source_accuracy: float | None = None,
        **params: Any,
    ) -> float:
        """Score one (source, target) pair; higher means better transfer.

        Args:
            features: ``(n, d)`` target features from the source module.
            labels: ``(n,)`` integer target labels, at least 2 classes.
            source_probs: ``(n, c)`` source-classifier softmax on the target samples (if needed).
            source_accuracy: the source model's accuracy on its own task (if needed).
            **params: keyword options overriding :attr:`params` for this call.

        Returns:
            The score as a Python float, computed on one BLAS / OpenMP thread (:func:`single_threaded`).

        Raises:
            DataError: invalid or missing inputs.
            ConfigError: an unknown option.
        """
        self._check_params(params)
        features, target = check_features_labels(features, labels)
        available: dict[str, Any] = {"features": features, "labels": labels}
        if "source_probs" in self.needs:
            available["source_probs"] = check_source_probs(
                source_probs, features.shape[0], estimator=self.name
            )
        if "source_accuracy" in self.needs:
            available["source_accuracy"] = check_source_accuracy(source_accuracy, estimator=self.name)
        arguments = [available[name] for name in self.inputs]
        with single_threaded():
            return float(self.function(*arguments, **{**self.params, **params}))


#: Estimators by name, filled by :func:`register_estimator`.
ESTIMATORS: Registry[Estimator] = Registry("estimator")


def register_estimator(
    name: str,
    *,
    inputs: tuple[str, ...] = ("features", "labels"),
    citation: str,
    description: str | None = None,
    **params: Any,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator: register ``function`` as the estimator ``name`` and return it unchanged.

    Args:
        name: registry name.
        inputs: the positional arguments of the function (see :attr:`Estimator.inputs`).
        citation: the paper the formula comes from.
        description: one line; defaults to the first line of the function's docstring.
        **params: default keyword options stored on the :class:`Estimator`.
    """

    def decorator(function: Callable[..., float]) -> Callable[..., float]:
        summary = description or (inspect.getdoc(function) or name).splitlines()[0]
        estimator = Estimator(
            name=name,
            function=function,
            inputs=inputs,
            citation=citation,
            description=summary,
            params=params,
        )
        ESTIMATORS.register(name)(estimator)
        return function

    return decorator


def get_estimator(name: str) -> Estimator:
    """The estimator registered as ``name``.

    Raises:
        ConfigError: unknown name, with a close-match suggestion and the valid names.
    """
    return ESTIMATORS.get(name)


def list_estimators() -> list[str]:
    """Names of all registered estimators, sorted."""
    return ESTIMATORS.names()
