"""Which (source, layer) to fine-tune for a target of a zoo run: ranked, with a predicted accuracy.

Where the run has a ground truth on at least :data:`MIN_HISTORY_TARGETS` other targets, every module
is ranked by the ``history`` ranker (:mod:`taskspace.history`: the other targets' truth and the target's
estimator values, weighed as learned on the other targets), and each row says the prior's part and the
evidence's part; otherwise by one estimator's score, and the recommendation says why. Where the run has
ground truth, a straight line from score to accuracy (in units of the way from chance to 1, so targets
of any class count share it) is fitted on the *other* targets' cells (the target's own measurements are
never used) and gives each module a predicted accuracy with an interval; the measured accuracy is shown
beside it where the run has it. The reason names the module's depth in its network, its width and its
size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from taskspace.errors import ConfigError, TaskspaceError, did_you_mean
from taskspace.history import HISTORY, history_matrix, history_ranking
from taskspace.recommend import (
    Recommendation,
    SourceRecommendation,
    checked_k,
    credential,
    fit_score_to_accuracy,
)
from taskspace.runner.results import choose_estimator, choose_protocol
from taskspace.zoo.spec import split_module_id

__all__ = ["recommend_module", "MIN_HISTORY_TARGETS"]

#: Other targets with a measured truth the history ranker needs before recommend ranks by it by default.
MIN_HISTORY_TARGETS = 3


def recommend_module(run: Any, target: str, *, k: int | None = None, estimator: str | None = None,
                     protocol: str | None = None) -> Recommendation:
    """Rank every (source, layer) of the zoo run for ``target`` (one of the run's targets).

    Raises:
        ConfigError: an unknown target, or ``k`` out of range.
    """
    if target not in run.target_ids:
        raise ConfigError(f"'{target}' is not a target of this zoo run{did_you_mean(target, run.target_ids)} "
                          f"(targets: {', '.join(run.target_ids)}); score a new target in a run with it")
    modules = list(run.modules)
    matrices, truths, verdict = run.estimates(), run.truths(), run.verdict()
    chosen = choose_protocol(truths, protocol)
    explanation, parts, matrix = None, {}, None
    if estimator in (None, HISTORY) and chosen is not None:
        truth = truths[chosen]
        others = [t for t in truth.targets if t != target and np.isfinite(truth.column(t)).sum() >= 2]
        if len(others) >= MIN_HISTORY_TARGETS or estimator == HISTORY:
            try:
                ranking = history_ranking(truth, matrices, target)
            except TaskspaceError as error:
                if estimator == HISTORY:
                    raise
                explanation = f"not ranked by history: {error}"
            else:
                matrix = history_matrix(truth, matrices, hide=target)
                parts = {module: (float(ranking.prior_part[i]), float(ranking.evidence_part[i]))
                         for i, module in enumerate(ranking.sources)}
                trust = ranking.trust()
                explanation = (f"history: learned on {ranking.training_targets} other targets' {chosen} "
                               f"({ranking.training_rows} cells); this target trusts the prior {trust['prior']:.0%}, "
                               f"the evidence {trust['evidence']:.0%} ("
                               + ", ".join(f"{name} {weight:+.2f}" for name, weight in ranking.weights.items()) + ")")
        else:
            explanation = (f"not ranked by history: the run has {chosen} on {len(others)} other targets; it needs "
                           f"{MIN_HISTORY_TARGETS} (measure or import more)")
    elif estimator in (None, HISTORY):
        if estimator == HISTORY:
            raise ConfigError("the history ranker needs a ground truth on other targets; measure or import one")
        explanation = "not ranked by history: the run has no ground truth"
    if matrix is None:
        if not matrices:
            raise TaskspaceError(f"'{run.folder}' has no estimator values and too little truth to rank by history; "
                                 "import scores or truth on more targets")
        name = choose_estimator(matrices, verdict, requested=estimator, protocol=protocol, run=run.folder)
        matrix = matrices[name]
    name = matrix.estimator
    k = checked_k(k, len(modules), target)
    fit = None
    classes_of = getattr(run, "target_list", None)  # an imported run knows no class counts: a plain line
    if chosen is not None:
        classes = {target.id: target.task.num_classes for target in classes_of()} if classes_of else None
        try:
            line = fit_score_to_accuracy(matrix, truths[chosen], leave_out_target=target, classes=classes)
            fit = line.for_classes(classes[target]) if classes is not None else line
        except Exception:  # too few cells of other targets to fit a line: no prediction
            fit = None
    scores = {module: matrix.score(module, target) for module in modules}
    measured = {module: truths[chosen].score(module, target) for module in modules} if chosen else {}
    sizes = run.module_sizes()
    ordered = sorted(modules, key=lambda m: (-_finite(scores[m]), modules.index(m)))
    ranking_rows = []
    for rank, module in enumerate(ordered, start=1):
        predicted = fit.predict(scores[module]) if fit is not None else (math.nan, math.nan, math.nan)
        accuracy = measured.get(module)
        reason = _reason(module, sizes.get(module, {}))
        if module in parts:
            reason = f"prior {parts[module][0]:+.2f}, evidence {parts[module][1]:+.2f}; {reason}"
        ranking_rows.append(SourceRecommendation(
            rank=rank, source=module, score=float(scores[module]), predicted_accuracy=predicted[0],
            predicted_low=predicted[1], predicted_high=predicted[2],
            measured_accuracy=float(accuracy) if accuracy is not None and math.isfinite(accuracy) else None,
            reason=reason,
        ))
    return Recommendation(target=target, in_zoo=True, estimator=name, protocol=chosen, k=k,
                          ranking=tuple(ranking_rows), score_seconds=0.0, fit=fit,
                          estimator_kendall_tau=credential(matrix, truths.get(chosen) if chosen else None, target,
                                                           exclude_diagonal=False), measured_protocol=chosen,
                          explanation=explanation)


def _reason(module: str, size: dict[str, Any]) -> str:
    source, layer = split_module_id(module)
    parts = [f"layer {layer} of {source}" if layer else source]
    if size.get("depth") is not None:
        parts.append(f"depth {size['depth']}/{size['depths']}")
    if size.get("width") is not None:
        parts.append(f"{size['width']} features")
    if size.get("parameters"):
        parts.append(f"{size['parameters'] / 1e6:.2f}M parameters")
    return ", ".join(parts)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
