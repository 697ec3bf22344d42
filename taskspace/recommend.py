"""Which source to transfer from: a ranked, explained recommendation for one target task.

For a target of the run's zoo the scores come from the run's matrix. For a new target (any task over
the dataset's classes) every zoo module is scored on the target's training images with forward passes
only, and the time that took is reported. Each source gets:

* its score under one estimator (``logme``, unless the run's own verdict says it fails there);
* a predicted target accuracy: a straight line from score to measured accuracy fitted on every other
  (source, target) cell of the run (the target's own column is left out, so the prediction never
  sees the answer), with an interval from the empirical quantiles of that fit's residuals. Where the
  targets' class counts are known, the line is fitted to each accuracy's share of the way from chance
  (1/C) to 1 and mapped back for the target's C, so a 10-class target is not read off a line of
  binary ones;
* the reason: the classes it shares with the target and, where the space defines class groups, how its
  classes relate to the target's;
* the measured accuracy, where the run's ground truth has it (or ``measure=True`` for a new target).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from taskspace.analysis import per_target_agreement
from taskspace.errors import ConfigError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner.run import (
    PREFERRED_ESTIMATOR,
    Run,
    choose_estimator,
    choose_protocol,
)
from taskspace.tasks import Task

__all__ = ["SourceRecommendation", "Recommendation", "ScoreToAccuracy", "fit_score_to_accuracy", "recommend",
           "DEFAULT_ESTIMATOR", "MIN_HISTORY_TARGETS", "Ranker", "choose_ranker", "predicted_accuracy_line"]

DEFAULT_ESTIMATOR = PREFERRED_ESTIMATOR
#: Central share of the fit's residuals the prediction interval covers.
INTERVAL_LEVEL = 0.9


@dataclass(frozen=True)
class ScoreToAccuracy:
    """``accuracy ≈ intercept + slope · score``, fitted on the cells of other targets.

    With ``chance_scaled`` the line predicts ``(accuracy - 1/C) / (1 - 1/C)``, the share of the way
    from chance to 1 of a target of C classes; :meth:`for_classes` turns it into an accuracy line for
    one C.

    Attributes:
        slope: accuracy per unit of score.
        intercept: accuracy at score 0.
        residual_low: the ``(1 - level) / 2`` quantile of the residuals (measured - fitted).
        residual_high: the ``(1 + level) / 2`` quantile of the residuals.
        r2: coefficient of determination of the fit.
        cells: number of (source, target) cells fitted.
        level: share of residuals inside ``[residual_low, residual_high]``.
        chance_scaled: the line is in units of the way from chance to 1.
        classes: the target class count an accuracy line was made for (:meth:`for_classes`).
        predictor: the estimator whose score the line reads (the ranking's own, or where the history
            ranker ranks, the estimator the run's verdict prefers: a history score orders the modules of
            one target and says nothing of how hard the target is).
    """

    slope: float
    intercept: float
    residual_low: float
    residual_high: float
    r2: float
    cells: int
    level: float = INTERVAL_LEVEL
    chance_scaled: bool = False
    classes: int | None = None
    predictor: str = "score"

    def for_classes(self, classes: int) -> ScoreToAccuracy:
        """The accuracy line of a chance-scaled fit for a target of ``classes`` classes (itself otherwise)."""
        if not self.chance_scaled:
            return self
        chance = 1.0 / classes
        gain = 1.0 - chance
        return ScoreToAccuracy(
            slope=gain * self.slope, intercept=chance + gain * self.intercept, residual_low=gain * self.residual_low,
            residual_high=gain * self.residual_high, r2=self.r2, cells=self.cells, level=self.level,
            chance_scaled=False, classes=classes, predictor=self.predictor,
        )

    def predict(self, score: float) -> tuple[float, float, float]:
        """Predicted accuracy and its interval, clipped to [0, 1]."""
        if self.chance_scaled:
            raise ValueError("a chance-scaled fit predicts accuracies through for_classes(C)")
        if not math.isfinite(score):
            return math.nan, math.nan, math.nan
        centre = self.intercept + self.slope * score
        return (_clip(centre), _clip(centre + self.residual_low), _clip(centre + self.residual_high))


def _clip(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def fit_score_to_accuracy(
    estimate: TransferabilityMatrix, truth: TransferabilityMatrix, *, leave_out_target: str | None = None,
    classes: Mapping[str, int] | None = None,
) -> ScoreToAccuracy:
    """Least-squares line from score to measured accuracy over the off-diagonal cells of other targets.

    With ``classes`` (target id -> class count) the line is fitted to each accuracy's share of the way
    from chance to 1 (``chance_scaled``; see :meth:`ScoreToAccuracy.for_classes`).

    Raises:
        TaskspaceError: fewer than 3 usable cells (the run is too small to predict accuracies).
    """
    scores, accuracies = [], []
    for target in estimate.targets:
        if target == leave_out_target or target not in truth.targets:
            continue
        for source in estimate.sources:
            if source == target or source not in truth.sources:
                continue
            score, accuracy = estimate.score(source, target), truth.score(source, target)
            if math.isfinite(score) and math.isfinite(accuracy):
                scores.append(score if estimate.greater_is_better else -score)
                if classes is not None:
                    chance = 1.0 / classes[target]
                    accuracy = (accuracy - chance) / (1.0 - chance)
                accuracies.append(accuracy)
    if len(scores) < 3:
        raise TaskspaceError(
            f"only {len(scores)} (source, target) cells have both a score and a measured accuracy; "
            "a prediction needs at least 3: measure the ground truth of more tasks (`taskspace truth`)"
        )
    x, y = np.asarray(scores), np.asarray(accuracies)
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, deg=1)
    else:
        slope, intercept = 0.0, float(y.mean())
    residuals = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residuals**2).sum()) / total if total > 0 else math.nan
    tail = (1.0 - INTERVAL_LEVEL) / 2.0
    return ScoreToAccuracy(
        slope=float(slope), intercept=float(intercept), residual_low=float(np.quantile(residuals, tail)),
        residual_high=float(np.quantile(residuals, 1.0 - tail)), r2=r2, cells=len(x),
        chance_scaled=classes is not None, predictor=estimate.estimator,
    )


@dataclass(frozen=True)
class SourceRecommendation:
    """One source, ranked for the target."""

    rank: int
    source: str
    score: float
    predicted_accuracy: float
    predicted_low: float
    predicted_high: float
    measured_accuracy: float | None
    reason: str


@dataclass(frozen=True)
class Recommendation:
    """Every source of the zoo ranked for ``target``; ``top`` are the ``k`` recommended ones.

    ``score_seconds`` is the time spent scoring a new target by forward passes (0 for a zoo target,
    whose scores are read from the run); ``measured_protocol`` names the ground truth of
    ``measured_accuracy`` (the run's for a zoo target, ``frozen_all`` when a new target was measured).
    """

    target: str
    in_zoo: bool
    estimator: str
    protocol: str | None
    k: int
    ranking: tuple[SourceRecommendation, ...]
    score_seconds: float
    fit: ScoreToAccuracy | None
    estimator_kendall_tau: float | None
    measured_protocol: str | None = None
    explanation: str | None = None

    def warning(self) -> str | None:
        """A line saying the estimator does not rank this run's sources (negative τ or slope), else None."""
        tau = self.estimator_kendall_tau
        if tau is not None and tau <= 0:
            return (f"warning: on this run '{self.estimator}' ranks sources no better than chance (mean Kendall τ "
                    f"{tau:.3f} vs {self.protocol}); choose another with --estimator (see `taskspace evaluate`)")
        if self.fit is not None and self.fit.slope <= 0:
            return (f"warning: on this run higher '{self.estimator}' scores went with lower accuracy (slope "
                    f"{self.fit.slope:.3f}); choose another with --estimator (see `taskspace evaluate`)")
        return None

    @property
    def top(self) -> tuple[SourceRecommendation, ...]:
        return self.ranking[: self.k]

    def measured_best(self) -> SourceRecommendation | None:
        measured = [row for row in self.ranking if row.measured_accuracy is not None]
        return max(measured, key=lambda row: row.measured_accuracy) if measured else None  # type: ignore[arg-type,return-value]

    def measured_worst(self) -> SourceRecommendation | None:
        measured = [row for row in self.ranking if row.measured_accuracy is not None]
        return min(measured, key=lambda row: row.measured_accuracy) if measured else None  # type: ignore[arg-type,return-value]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON values; a number that is not finite (no prediction without ground truth) becomes null."""
        best, worst = self.measured_best(), self.measured_worst()
        return _finite_or_null({
            "target": self.target, "in_zoo": self.in_zoo, "estimator": self.estimator, "protocol": self.protocol,
            "k": self.k, "score_seconds": self.score_seconds,
            "measured_protocol": self.measured_protocol,
            "estimator_kendall_tau": self.estimator_kendall_tau, "explanation": self.explanation,
            "fit": asdict(self.fit) if self.fit is not None else None,
            "ranking": [asdict(row) for row in self.ranking],
            "measured_best": asdict(best) if best else None,
            "measured_worst": asdict(worst) if worst else None,
        })


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def recommend(
    run: Any,
    target: str,
    *,
    k: int | None = None,
    estimator: str | None = None,
    protocol: str | None = None,
    measure: bool = False,
    include_self: bool = False,
    device: str = "cpu",
    batch_size: int = 256,
) -> Recommendation:
    """Rank a run's sources for ``target``: one of the run's targets, or a new task over the dataset's
    classes (``airplane_vs_ship``), scored now by forward passes. One function for every kind of run: a
    trained run's sources are its networks (named by their tasks), a zoo run's and an imported run's are
    modules (``source:layer``).

    Computes and returns; writes nothing into the run (the forward passes of a new target are kept in the
    run's store like any other). ``taskspace recommend`` writes the result with ``run.write_json``.

    Args:
        run: any run (trained, zoo or imported) with a matrix.
        target: a target's id, e.g. ``cat_vs_dog``, or a new task like ``airplane_vs_ship`` (not on an
            imported run, which holds no networks).
        k: how many sources to recommend (at most the run's; default 3, or all when there are fewer).
        estimator: the score to rank by (default: ``history`` where the run has truth on enough other
            targets, else the estimator the run's verdict prefers, ``logme`` unless it fails there).
        protocol: the ground truth the accuracy prediction maps to (default ``frozen_all`` when
            measured, else the run's first protocol); none when the run has no ground truth.
        measure: for a new target, also measure each source's frozen-probe accuracy on it (``frozen_all``:
            a probe on all its training images; costs a test-set forward pass and a fit per source).
        include_self: a trained run: keep the target's own network among the sources.
        device, batch_size: where a new target's forward passes run (a zoo run).

    Raises:
        ConfigError: unknown classes in ``target``, a new target of an imported run, or ``k`` out of range.
        TaskspaceError: the run has no matrix, or not the chosen estimator.
    """
    from taskspace.history import HISTORY

    target_id, task = _resolve_target(run, target)
    trained = run.kind == "trained"
    exclude_diagonal = trained and not include_self
    sources = list(run.modules)
    candidates = [s for s in sources if not exclude_diagonal or s != target_id]
    matrices, truths, verdict = run.estimates(), run.truths(), run.verdict()
    in_run, score_seconds = target_id in run.target_ids, 0.0
    measured_new: dict[str, float] = {}
    left_out: list[str] = []
    if not in_run:  # scored now with the estimators that rank it, then read as a column of the run's matrices
        assert task is not None  # only an imported run's targets have no task, and it has no new ones
        if not matrices:
            raise TaskspaceError(f"'{run.folder}' has no matrix to choose an estimator from; score it first with "
                                 f"`taskspace matrix {run.folder}`")
        if estimator not in (None, HISTORY):
            choose_estimator(matrices, verdict, requested=estimator, protocol=protocol, run=run.folder)
        names = new_target_evidence(matrices, estimator) or [
            choose_estimator(matrices, verdict, protocol=protocol, run=run.folder)]
        if trained:
            per_estimator, score_seconds, measured_new = _score_new_target(run, task, candidates, names,
                                                                           measure=measure)
        else:
            from taskspace.zoo.stages import score_new_target

            per_estimator, score_seconds, measured_new, left_out = score_new_target(
                run, task, names, measure=measure, device=device, batch_size=batch_size)
            candidates = [module for module in candidates if module in per_estimator[names[0]]]
            if not candidates:
                raise TaskspaceError(f"'{run.folder}' has only features sources, which hold no images of "
                                     f"'{target_id}'; add the target to their files and to a run")
        matrices, truths = with_new_target(matrices, truths, target_id, per_estimator)
    ranker = choose_ranker(matrices, truths, verdict, target_id, estimator=estimator, protocol=protocol,
                           exclude_diagonal=exclude_diagonal, run=run)
    matrix, chosen_protocol, name = ranker.matrix, ranker.protocol, ranker.matrix.estimator
    k = checked_k(k, len(candidates), target_id)
    scores = {s: matrix.score(s, target_id) for s in candidates}
    if in_run:
        measured = {s: truths[chosen_protocol].score(s, target_id) for s in candidates} if chosen_protocol else {}
        measured_protocol = chosen_protocol
    else:
        measured, measured_protocol = measured_new, NEW_TARGET_PROTOCOL if measure else None

    fit, no_fit = None, None
    reads = ranker.accuracy_scores
    if chosen_protocol is not None and reads is not None:
        classes = _class_counts(run, reads.targets, task)
        fit, no_fit = predicted_accuracy_line(reads, truths[chosen_protocol], target_id, classes=classes,
                                              target_classes=classes[target_id] if classes is not None else None)
    reason = _source_reason(run, task)
    ordered = sorted(candidates, key=lambda s: (-_finite(scores[s]), sources.index(s)))
    ranking = []
    for position, source in enumerate(ordered, start=1):
        predicted = ranker.predict(fit, source, target_id)
        accuracy = measured.get(source)
        ranking.append(SourceRecommendation(
            rank=position, source=source, score=float(scores[source]), predicted_accuracy=predicted[0],
            predicted_low=predicted[1], predicted_high=predicted[2],
            measured_accuracy=float(accuracy) if accuracy is not None and math.isfinite(accuracy) else None,
            reason=ranker.explained(source, reason(source)),
        ))
    notes = (ranker.explanation,
             f"left out: {', '.join(left_out)} (features sources hold no images of a new target)" if left_out else None,
             no_fit)
    return Recommendation(
        target=target_id, in_zoo=in_run, estimator=name, protocol=chosen_protocol, k=k, ranking=tuple(ranking),
        score_seconds=score_seconds, fit=fit,
        estimator_kendall_tau=credential(matrix, truths.get(chosen_protocol) if chosen_protocol else None, target_id,
                                         exclude_diagonal=exclude_diagonal),
        measured_protocol=measured_protocol,
        explanation="; ".join(text for text in notes if text) or None,
    )


def _resolve_target(run: Any, target: str) -> tuple[str, Task | None]:
    """The target's id and task (None: an imported run's target, whose classes are unknown)."""
    if run.kind == "imported":
        if target not in run.target_ids:
            from taskspace.errors import did_you_mean

            raise ConfigError(f"'{target}' is not a target of this imported run{did_you_mean(target, run.target_ids)}"
                              f" (targets: {', '.join(run.target_ids)}); an imported run holds no networks to score "
                              "a new target with")
        return target, None
    if run.kind == "zoo" and target in run.target_ids:  # a whole dataset's id is no class pair
        return target, next(item.task for item in run.target_list() if item.id == target)
    task = Task.parse(target, class_names=run.dataset().class_names)
    return task.id, task


def _class_counts(run: Any, targets: Sequence[str], task: Task | None) -> dict[str, int] | None:
    """Each target's class count (the accuracy line is fitted from chance to 1); None where unknown."""
    if run.kind == "imported" or task is None:
        return None
    if run.kind == "zoo":
        return {item.id: item.task.num_classes for item in run.target_list()} | {task.id: task.num_classes}
    names = run.dataset().class_names
    return {target: Task.parse(target, class_names=names).num_classes for target in targets}


def _source_reason(run: Any, task: Task | None) -> Callable[[str], str]:
    """Why a source may serve the target: a trained source's classes against the target's; a module's
    place in its network, its width and size."""
    if run.kind == "trained":
        space, groups = run.space, _groups(run.space)
        return lambda source: explain(space.task(source), task, groups=groups)  # type: ignore[arg-type]
    sizes = run.module_sizes()
    return lambda module: module_reason(module, sizes.get(module, {}))


def module_reason(module: str, size: Mapping[str, Any]) -> str:
    """A module named by its layer and network, with its depth, width and parameters where known."""
    from taskspace.zoo.spec import split_module_id

    source, layer = split_module_id(module)
    parts = [f"layer {layer} of {source}" if layer else source]
    if size.get("depth") is not None:
        parts.append(f"depth {size['depth']}/{size['depths']}")
    if size.get("width") is not None:
        parts.append(f"{size['width']} features")
    if size.get("parameters"):
        parts.append(f"{size['parameters'] / 1e6:.2f}M parameters")
    return ", ".join(parts)


#: Other targets with a measured truth the history ranker needs before recommend ranks by it by default.
MIN_HISTORY_TARGETS = 3


@dataclass(frozen=True)
class Ranker:
    """What ranks a run's modules for one of its targets: the matrix read (an estimator's, or the history
    ranker's with the target's own truth hidden), the truth the prediction maps to, each module's prior
    and evidence parts (history only), and why this ranker (None when the user named an estimator)."""

    matrix: TransferabilityMatrix
    protocol: str | None
    parts: dict[str, tuple[float, float]]
    explanation: str | None
    predictor: TransferabilityMatrix | None = None

    @property
    def accuracy_scores(self) -> TransferabilityMatrix | None:
        """The matrix a predicted accuracy is read from: the ranking's own, or the ``predictor`` the history
        ranker names (None: no estimator values to read one from)."""
        from taskspace.history import HISTORY

        return self.predictor if self.matrix.estimator == HISTORY else self.matrix

    def predict(self, fit: ScoreToAccuracy | None, module: str, target: str) -> tuple[float, float, float]:
        """``module``'s predicted accuracy on ``target`` and its interval, read off ``fit`` at the score of
        :attr:`accuracy_scores` (NaN without a line)."""
        reads = self.accuracy_scores
        if fit is None or reads is None:
            return math.nan, math.nan, math.nan
        return fit.predict(reads.score(module, target))

    def explained(self, module: str, reason: str) -> str:
        """``reason``, led by the module's prior and evidence parts where the history ranker ranks."""
        if module not in self.parts:
            return reason
        prior, evidence = self.parts[module]
        return f"prior {prior:+.2f}, evidence {evidence:+.2f}; {reason}"


def choose_ranker(matrices: Mapping[str, TransferabilityMatrix], truths: Mapping[str, TransferabilityMatrix],
                  verdict: list[dict[str, Any]], target: str, *, estimator: str | None, protocol: str | None,
                  exclude_diagonal: bool, run: Any) -> Ranker:
    """The ranker of every kind of run for one of its targets.

    The ``history`` ranker (:mod:`taskspace.history`) when asked, or by default where the run has a truth
    on at least :data:`MIN_HISTORY_TARGETS` other targets: it learns on those targets only how to weigh the
    modules' results there against the target's estimator values (the target's truth is never read);
    otherwise the estimator the run's verdict prefers (or ``estimator``), and the explanation says why.
    ``exclude_diagonal``: a module's own task is neither learned from nor ranked (a trained run).

    Raises:
        ConfigError: ``history`` asked of a run without truth.
        TaskspaceError: no estimator to rank by, or an unknown one.
    """
    from taskspace.history import HISTORY, history_matrix, history_ranking

    chosen = choose_protocol(truths, protocol)
    explanation, parts, matrix, predictor = None, {}, None, None
    if estimator in (None, HISTORY) and chosen is not None:
        truth = truths[chosen]
        others = [t for t in truth.targets if t != target and np.isfinite(truth.column(t)).sum() >= 2]
        if len(others) >= MIN_HISTORY_TARGETS or estimator == HISTORY:
            try:
                ranking = history_ranking(truth, matrices, target, exclude_diagonal=exclude_diagonal)
            except TaskspaceError as error:
                if estimator == HISTORY:
                    raise
                explanation = f"not ranked by history: {error}"
            else:
                matrix = history_matrix(truth, matrices, hide=target, exclude_diagonal=exclude_diagonal)
                predictor = (matrices[choose_estimator(matrices, verdict, protocol=protocol, run=run.folder)]
                             if matrices else None)
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
    return Ranker(matrix, chosen, parts, explanation, predictor)


def new_target_evidence(matrices: Mapping[str, TransferabilityMatrix], estimator: str | None) -> list[str]:
    """The estimators a new target is scored with: ``estimator`` when one is named, else every estimator of
    the run that the history ranker reads as evidence (its weights were learned on them)."""
    from taskspace.history import HISTORY, NOT_EVIDENCE

    if estimator not in (None, HISTORY):
        return [str(estimator)]
    return [name for name in matrices if name not in NOT_EVIDENCE]


def with_new_target(matrices: Mapping[str, TransferabilityMatrix], truths: Mapping[str, TransferabilityMatrix],
                    target: str, scores: Mapping[str, Mapping[str, float]]) -> tuple[
        dict[str, TransferabilityMatrix], dict[str, TransferabilityMatrix]]:
    """The run's matrices and truths with one more column, a new target's: its estimator values
    (``scores[estimator][module]``, NaN for a module not scored) and no truth (NaN), so the history ranker
    and the accuracy line read it as any target whose truth is hidden."""
    def extended(matrix: TransferabilityMatrix, column: Mapping[str, float]) -> TransferabilityMatrix:
        values = np.array([column.get(source, math.nan) for source in matrix.sources], dtype=np.float64)
        return TransferabilityMatrix(np.column_stack([matrix.scores, values]), matrix.sources,
                                     (*matrix.targets, target), matrix.estimator, matrix.greater_is_better,
                                     matrix.provenance)

    return ({name: extended(matrix, scores.get(name, {})) for name, matrix in matrices.items()},
            {name: extended(truth, {}) for name, truth in truths.items()})


def predicted_accuracy_line(matrix: TransferabilityMatrix, truth: TransferabilityMatrix, target: str, *,
                            classes: Mapping[str, int] | None, target_classes: int | None) -> tuple[
        ScoreToAccuracy | None, str | None]:
    """The line from score to accuracy fitted on the other targets' cells, for a target of
    ``target_classes`` classes (a plain line without class counts); or no line and the reason, where the
    run has too few cells to fit one."""
    try:
        line = fit_score_to_accuracy(matrix, truth, leave_out_target=target, classes=classes)
    except TaskspaceError as error:
        return None, f"no accuracy predicted: {error}"
    return (line.for_classes(target_classes) if classes is not None and target_classes is not None else line), None


#: How many sources ``recommend`` returns when not told (fewer when the zoo has fewer).
DEFAULT_K = 3


def checked_k(k: Any, available: int, target: str) -> int:
    """``k`` checked against the ``available`` sources; None gives :data:`DEFAULT_K`, or all if fewer.

    Raises:
        ConfigError: ``k`` is not an integer, or not between 1 and ``available`` (said in the caller's
            terms: ``k``, which is ``--k`` on the command line).
    """
    if k is None:
        return min(DEFAULT_K, available)
    if isinstance(k, bool) or not isinstance(k, int):
        raise ConfigError(f"k must be an integer, got {k!r} ({type(k).__name__}); pass e.g. k=3")
    if not 1 <= k <= available:
        raise ConfigError(f"k={k} is out of range: there are {available} sources for '{target}'; ask for 1 to "
                          f"{available} (--k on the command line)")
    return k


def credential(matrix: TransferabilityMatrix, truth: TransferabilityMatrix | None, target: str, *,
               exclude_diagonal: bool) -> float | None:
    """The ranker's mean Kendall τ with ``truth`` on the run's *other* targets (the target's own τ would
    credit the ranker with the very ranking it is shown beside); None without a truth or another target."""
    if truth is None:
        return None
    try:
        rows = per_target_agreement(matrix, truth, exclude_diagonal=exclude_diagonal)
    except TaskspaceError:
        return None
    values = [row.kendall_tau for row in rows if row.target != target and math.isfinite(row.kendall_tau)]
    return float(np.mean(values)) if values else None


def explain(source: Task, target: Task, *, groups: dict[str, str] | None = None) -> str:
    """Why a source may serve a target: the classes they share and how their class groups relate."""
    shared = [name for name in source.classes if name in target.classes]
    parts = []
    if source.id == target.id:
        parts.append("the target's own module")
    elif shared:
        parts.append("shares " + ", ".join(f"'{name}'" for name in shared))
    else:
        parts.append("no class in common")
    if groups:
        source_groups = sorted({groups[c] for c in source.classes if c in groups})
        target_groups = sorted({groups[c] for c in target.classes if c in groups})
        common = [g for g in source_groups if g in target_groups]
        if common and source.id != target.id:
            parts.append("same group" + ("s " if len(common) > 1 else " ") + "/".join(common))
        elif source_groups and target_groups and not common:
            parts.append(f"other groups ({'/'.join(source_groups)} vs {'/'.join(target_groups)})")
        if len(target_groups) == 1 and len(target.classes) > 1 and len(source_groups) > 1:
            parts.append(f"it never had to separate the target's classes within {target_groups[0]}")
    return "; ".join(parts)


def _groups(space: Any) -> dict[str, str] | None:
    """Class -> group name, from the space's ``(group, classes)`` pairs; None without groups."""
    return {name: group for group, members in space.groups for name in members} or None


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


#: The ground truth measured for a new target with ``measure=True``.
NEW_TARGET_PROTOCOL = "frozen_all"


def _score_new_target(
    run: Run, task: Task, sources: list[str], estimators: Sequence[str], *, measure: bool
) -> tuple[dict[str, dict[str, float]], float, dict[str, float]]:
    """Every source scored on a new target's training images by forward passes, with each of
    ``estimators``; returns ``{estimator: {source: score}}``, the seconds that took, and (``measure``) each
    source's frozen-trunk test accuracy on the target."""
    from taskspace.runner.cells import score_one, transfer_job
    from taskspace.transfer import get_protocol

    started = time.perf_counter()
    scores: dict[str, dict[str, float]] = {name: {} for name in estimators}
    for source in sources:
        record = score_one(run, source, task.id, tuple(estimators))["scores"]
        for name in estimators:
            scores[name][source] = math.nan if record[name] is None else float(record[name])
    seconds = time.perf_counter() - started
    measured = {}
    if measure:
        protocol = get_protocol(NEW_TARGET_PROTOCOL)
        for source in sources:
            job = transfer_job(run, NEW_TARGET_PROTOCOL, source, task.id)
            measured[source] = float(protocol.measure(job)["accuracy"])
    return scores, seconds, measured
