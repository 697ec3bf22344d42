"""Target-blind baselines: scores that never look at the target data."""

from __future__ import annotations

from taskspace.scoring._registry import register_estimator
from taskspace.scoring._validation import check_source_accuracy

__all__ = ["source_accuracy"]


@register_estimator(
    "source_accuracy",
    inputs=("source_accuracy",),
    citation="Chaves et al., 2024; Agostinelli et al., 'How stable are Transferability Metrics "
    "evaluations?', ECCV 2022 (target-blind baselines)",
)
def source_accuracy(accuracy: float) -> float:
    """The source model's accuracy on its own task: a baseline that never looks at the target.

    Ranking sources by their own accuracy beats many transferability estimators on public benchmarks,
    so it belongs in every comparison table. Called through the registry, the target features and
    labels are still validated (so a broken pipeline fails the same way for every estimator) but do
    not enter the score.

    Cited: Agostinelli et al., ECCV 2022; Chaves et al., 2024 (target-blind baselines).

    Shape:
        accuracy: a scalar.

    Args:
        accuracy: accuracy of the source model on its own task (any finite scale, e.g. in [0, 1]).

    Returns:
        ``accuracy`` as a float; higher is better, same range as the input.

    Raises:
        DataError: missing or non-finite accuracy.
    """
    return check_source_accuracy(accuracy, estimator="source_accuracy")
