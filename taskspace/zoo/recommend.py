"""Which (source, layer) to fine-tune for a target of a zoo run, or a new one: ranked, with a predicted accuracy.

Where the run has a ground truth on at least :data:`MIN_HISTORY_TARGETS` other targets, every module
is ranked by the ``history`` ranker (:mod:`taskspace.history`: the other targets' truth and the target's
estimator values, weighed as learned on the other targets), and each row says the prior's part and the
evidence's part; otherwise by one estimator's score, and the recommendation says why. Where the run has
ground truth, a straight line from score to accuracy (in units of the way from chance to 1, so targets
of any class count share it) is fitted on the *other* targets' cells (the target's own measurements are
never used) and gives each module a predicted accuracy with an interval; the measured accuracy is shown
beside it where the run has it. The reason names the module's depth in its network, its width and its
size. A target the run lacks (any task over the dataset's classes) is scored now, through the run's
store of forward passes, and can be measured too (``measure``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from taskspace.errors import ConfigError, TaskspaceError, did_you_mean
from taskspace.history import HISTORY
from taskspace.recommend import (
    MIN_HISTORY_TARGETS,
    Recommendation,
    SourceRecommendation,
    checked_k,
    choose_ranker,
    credential,
    new_target_evidence,
    predicted_accuracy_line,
    with_new_target,
)
from taskspace.runner.results import choose_estimator
from taskspace.zoo.spec import split_module_id

__all__ = ["recommend_module", "MIN_HISTORY_TARGETS"]


def recommend_module(run: Any, target: str, *, k: int | None = None, estimator: str | None = None,
                     protocol: str | None = None, measure: bool = False, device: str = "cpu",
                     batch_size: int = 256) -> Recommendation:
    """Rank every (source, layer) of the zoo run for ``target``: one of the run's targets, or a new task
    over the dataset's classes (``airplane_vs_ship``), whose modules are scored now by forward passes
    through the run's store (see :func:`_recommend_new_target`).

    Args:
        measure: a new target: also measure each module's frozen-probe accuracy on it (``frozen_all``).
        device, batch_size: where a new target's forward passes run.

    Raises:
        ConfigError: an unknown target of an imported run, a new target naming classes the dataset lacks,
            or ``k`` out of range.
    """
    if target not in run.target_ids:
        return _recommend_new_target(run, target, k=k, estimator=estimator, protocol=protocol, measure=measure,
                                     device=device, batch_size=batch_size)
    modules = list(run.modules)
    matrices, truths, verdict = run.estimates(), run.truths(), run.verdict()
    ranker = choose_ranker(matrices, truths, verdict, target, estimator=estimator, protocol=protocol,
                           exclude_diagonal=False, run=run)
    matrix, chosen = ranker.matrix, ranker.protocol
    name = matrix.estimator
    k = checked_k(k, len(modules), target)
    fit, no_fit = None, None
    reads = ranker.accuracy_scores
    classes_of = getattr(run, "target_list", None)  # an imported run knows no class counts: a plain line
    if chosen is not None and reads is not None:
        classes = {item.id: item.task.num_classes for item in classes_of()} if classes_of else None
        fit, no_fit = predicted_accuracy_line(reads, truths[chosen], target, classes=classes,
                                              target_classes=classes[target] if classes is not None else None)
    scores = {module: matrix.score(module, target) for module in modules}
    measured = {module: truths[chosen].score(module, target) for module in modules} if chosen else {}
    sizes = run.module_sizes()
    ordered = sorted(modules, key=lambda m: (-_finite(scores[m]), modules.index(m)))
    ranking_rows = []
    for rank, module in enumerate(ordered, start=1):
        predicted = ranker.predict(fit, module, target)
        accuracy = measured.get(module)
        reason = ranker.explained(module, _reason(module, sizes.get(module, {})))
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
                          explanation="; ".join(text for text in (ranker.explanation, no_fit) if text) or None)


def _recommend_new_target(run: Any, target: str, *, k: int | None, estimator: str | None, protocol: str | None,
                          measure: bool, device: str, batch_size: int) -> Recommendation:
    """A target the run does not have: every module that taskspace can run is scored on its training images
    (the run's ``score_samples``, drawn as for the run's own targets), the forward passes kept in the run's
    store, with every estimator the history ranker reads (or the one named); the values become a column of
    the run's matrices with no truth, so the history ranker ranks it from the run's targets as any target
    whose truth is hidden. ``features`` sources hold no images of a new target and are left out, said in
    the explanation."""
    import time

    from taskspace.scoring import score_source
    from taskspace.tasks import Task
    from taskspace.zoo.forward import source_features, zoo_fingerprint
    from taskspace.zoo.stages import frozen_record
    from taskspace.zoo.targets import Target, target_images

    if run.kind == "imported":
        raise ConfigError(f"'{target}' is not a target of this imported run{did_you_mean(target, run.target_ids)} "
                          f"(targets: {', '.join(run.target_ids)}); an imported run holds no networks to score a "
                          "new target with")
    task = Task.parse(target, class_names=run.dataset().class_names)
    if task.id in run.target_ids:
        return recommend_module(run, task.id, k=k, estimator=estimator, protocol=protocol)
    matrices, truths, verdict = run.estimates(), run.truths(), run.verdict()
    if not matrices:
        raise TaskspaceError(f"'{run.folder}' has no matrix to choose an estimator from; score it first with "
                             f"`taskspace matrix {run.folder}`")
    if estimator not in (None, HISTORY):
        choose_estimator(matrices, verdict, requested=estimator, protocol=protocol, run=run.folder)
    names = new_target_evidence(matrices, estimator) or [
        choose_estimator(matrices, verdict, protocol=protocol, run=run.folder)]
    sources = [spec for spec in run.zoo.sources if spec.has_weights]
    left_out = [spec.name for spec in run.zoo.sources if not spec.has_weights]
    modules = [module for spec in sources for module in spec.modules]
    if not modules:
        raise TaskspaceError(f"'{run.folder}' has only features sources, which hold no images of '{task.id}'; "
                             "add the target to their files and to a run")
    k = checked_k(k, len(modules), task.id)
    new = Target(task.id, task)
    images = target_images(run.dataset(), task, score_samples=run.options.score_samples, seed=run.options.seed)
    fingerprint = zoo_fingerprint(run)
    every = {"train": np.arange(len(images.train)), "test": np.arange(len(images.test))}
    values: dict[str, dict[str, float]] = {name: {} for name in names}
    measured: dict[str, float] = {}
    started = time.perf_counter()
    for spec in sources:
        features, probs, _ = source_features(run, spec, [new], {task.id: images}, split="train",
                                             positions={task.id: images.scored}, device=device,
                                             batch_size=batch_size, fingerprint=fingerprint)
        for layer in spec.layers:
            record = score_source(features[task.id][layer], images.train_labels[images.scored],
                                  estimators=tuple(names), source_probs=probs[task.id],
                                  source_accuracy=spec.accuracy)["scores"]
            for name in names:
                values[name][spec.module(layer)] = math.nan if record[name] is None else float(record[name])
    seconds = time.perf_counter() - started
    if measure:
        for spec in sources:
            train, test = (source_features(run, spec, [new], {task.id: images}, split=split,
                                           positions={task.id: every[split]}, device=device, batch_size=batch_size,
                                           fingerprint=fingerprint)[0][task.id] for split in ("train", "test"))
            for layer in spec.layers:
                measured[spec.module(layer)] = frozen_record(run.options, spec.module(layer), task.id, images,
                                                             train[layer], test[layer], None)["accuracy"]
    matrices, truths = with_new_target(matrices, truths, task.id, values)
    ranker = choose_ranker(matrices, truths, verdict, task.id, estimator=estimator, protocol=protocol,
                           exclude_diagonal=False, run=run)
    matrix, chosen, name = ranker.matrix, ranker.protocol, ranker.matrix.estimator
    scores = {module: matrix.score(module, task.id) for module in modules}
    fit, no_fit = None, None
    reads = ranker.accuracy_scores
    if chosen is not None and reads is not None:
        fit, no_fit = predicted_accuracy_line(
            reads, truths[chosen], task.id, target_classes=task.num_classes,
            classes={item.id: item.task.num_classes for item in run.target_list()} | {task.id: task.num_classes})
    sizes = run.module_sizes()
    ordered = sorted(modules, key=lambda m: (-_finite(scores[m]), modules.index(m)))
    ranking = []
    for rank, module in enumerate(ordered, start=1):
        predicted = ranker.predict(fit, module, task.id)
        reason = ranker.explained(module, _reason(module, sizes.get(module, {})))
        ranking.append(SourceRecommendation(
            rank=rank, source=module, score=scores[module], predicted_accuracy=predicted[0],
            predicted_low=predicted[1], predicted_high=predicted[2], measured_accuracy=measured.get(module),
            reason=reason))
    explanation = "; ".join(text for text in (
        f"'{task.id}' is not a target of the run: every module scored on it now by forward passes ({seconds:.1f} s)",
        ranker.explanation,
        f"left out: {', '.join(left_out)} (features sources hold no images of a new target)" if left_out else None,
        no_fit) if text)
    return Recommendation(target=task.id, in_zoo=False, estimator=name, protocol=chosen, k=k, ranking=tuple(ranking),
                          score_seconds=seconds, fit=fit,
                          estimator_kendall_tau=credential(matrix, truths.get(chosen) if chosen else None,
                                                           task.id, exclude_diagonal=False),
                          measured_protocol="frozen_all" if measure else None, explanation=explanation)


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
