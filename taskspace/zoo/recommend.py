"""Which (source, layer) to fine-tune for a target of a zoo run: ranked, with a predicted accuracy.

Every module of the zoo is ranked by one estimator's score on the target. Where the run has ground
truth, a straight line from score to accuracy (in units of the way from chance to 1, so targets of
any class count share it) is fitted on the *other* targets' cells (the target's own measurements are
never used) and gives each module a predicted accuracy with an interval; the
measured accuracy is shown beside it where the run has it. The reason names the module's depth in
its network, its width and its size.
"""

from __future__ import annotations

import math
from typing import Any

from taskspace.errors import ConfigError, did_you_mean
from taskspace.recommend import Recommendation, SourceRecommendation, _kendall_tau, fit_score_to_accuracy
from taskspace.runner.results import choose_estimator, choose_protocol
from taskspace.zoo.spec import split_module_id

__all__ = ["recommend_module"]


def recommend_module(run: Any, target: str, *, k: int = 3, estimator: str | None = None,
                     protocol: str | None = None) -> Recommendation:
    """Rank every (source, layer) of the zoo run for ``target`` (one of the run's targets).

    Raises:
        ConfigError: an unknown target, or ``k`` out of range.
    """
    if target not in run.target_ids:
        raise ConfigError(f"'{target}' is not a target of this zoo run{did_you_mean(target, run.target_ids)} "
                          f"(targets: {', '.join(run.target_ids)}); score a new target in a run with it")
    modules = list(run.modules)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(modules):
        raise ConfigError(f"--k {k} is out of range: the zoo has {len(modules)} modules; use 1 to {len(modules)}")
    matrices, truths, verdict = run.estimates(), run.truths(), run.verdict()
    name = choose_estimator(matrices, verdict, requested=estimator, protocol=protocol, run=run.folder)
    matrix = matrices[name]
    chosen = choose_protocol(truths, protocol)
    fit = None
    if chosen is not None:
        classes = {target.id: target.task.num_classes for target in run.target_list()}
        try:
            fit = fit_score_to_accuracy(matrix, truths[chosen], leave_out_target=target,
                                        classes=classes).for_classes(classes[target])
        except Exception:  # too few cells of other targets to fit a line: no prediction
            fit = None
    scores = {module: matrix.score(module, target) for module in modules}
    measured = {module: truths[chosen].score(module, target) for module in modules} if chosen else {}
    sizes = run.module_sizes()
    ordered = sorted(modules, key=lambda m: (-_finite(scores[m]), modules.index(m)))
    ranking = []
    for rank, module in enumerate(ordered, start=1):
        predicted = fit.predict(scores[module]) if fit is not None else (math.nan, math.nan, math.nan)
        accuracy = measured.get(module)
        ranking.append(SourceRecommendation(
            rank=rank, source=module, score=float(scores[module]), predicted_accuracy=predicted[0],
            predicted_low=predicted[1], predicted_high=predicted[2],
            measured_accuracy=float(accuracy) if accuracy is not None and math.isfinite(accuracy) else None,
            reason=_reason(module, sizes.get(module, {})),
        ))
    return Recommendation(target=target, in_zoo=True, estimator=name, protocol=chosen, k=k, ranking=tuple(ranking),
                          score_seconds=0.0, fit=fit, estimator_kendall_tau=_kendall_tau(verdict, name, chosen),
                          measured_protocol=chosen)


def _reason(module: str, size: dict[str, Any]) -> str:
    source, layer = split_module_id(module)
    parts = [f"layer {layer} of {source}"]
    if size.get("depth") is not None:
        parts.append(f"depth {size['depth']}/{size['depths']}")
    if size.get("width") is not None:
        parts.append(f"{size['width']} features")
    if size.get("parameters"):
        parts.append(f"{size['parameters'] / 1e6:.2f}M parameters")
    return ", ".join(parts)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
