"""What a zoo run's stages do that a trained run's do not: its forward passes for the score stage, and
its ground truth.

Per source, the forward passes over every image some target needs are done once, every layer at
once (:func:`taskspace.zoo.store.layer_features`); the score stage
(:func:`taskspace.runner.grid.compute_matrix`, the one of every kind of run) then scores each source in
one :class:`~taskspace.runner.cells.ScoreCell`, which reads its rows from the store. Each record is
written atomically as soon as it is computed, so an interrupted stage resumes where it stopped; a
rerun with more estimators computes only the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from taskspace.errors import ConfigError
from taskspace.io import write_json
from taskspace.runner.folder import read_cell
from taskspace.runner.handles import ZooRunHandle
from taskspace.training.progress import stage_progress
from taskspace.zoo.forward import source_features, zoo_fingerprint
from taskspace.zoo.spec import SourceSpec, module_id
from taskspace.zoo.targets import Target

__all__ = ["forward_passes", "measure_zoo", "frozen_record", "score_new_target", "ZOO_PROTOCOLS", "check_zoo_protocol"]

#: The ground truths a zoo run measures itself (``frozen_kK`` for any K >= 1).
ZOO_PROTOCOLS = ("frozen_all", "frozen_kK", "finetune")


def check_zoo_protocol(name: str) -> int | None:
    """The labels per class of a frozen protocol (None = all), or -1 for ``finetune``, read from the one
    protocol registry (:func:`taskspace.transfer.builtin_protocol`); else ConfigError."""
    from taskspace.transfer import builtin_protocol

    kind, labels_per_class = builtin_protocol(name)
    return -1 if kind == "finetune" else labels_per_class


def forward_passes(run: ZooRunHandle, cells: Sequence[Any], *, device: str = "cpu", batch_size: int = 256,
                   show_progress: bool = False) -> dict[str, float]:
    """The forward passes a zoo run's score stage needs: each source whose score cell (``cells``, one per
    source in the zoo's order) is pending, or whose modules' sizes are not recorded, is passed over its
    targets' score samples here (on ``device``, one source at a time) into the store; each module's width
    and size are written to ``sizes.json``. Returns the seconds of each source's passes made here."""
    targets = run.target_list()
    images = {target.id: run.images(target) for target in targets}
    positions = {target.id: images[target.id].scored for target in targets}
    fingerprint = zoo_fingerprint(run)
    sizes, seconds = run.module_sizes(), {}
    needed = [spec for spec, cell in zip(run.zoo.sources, cells, strict=True)
              if not cell.is_done(run) or not all(module in sizes for module in spec.modules)]
    with stage_progress("forward passes", total=len(needed), unit="source",
                        enabled=show_progress and bool(needed)) as advance:
        for spec in needed:
            features, _, seconds[spec.name] = source_features(run, spec, targets, images, split="train",
                                                              positions=positions, device=device,
                                                              batch_size=batch_size, fingerprint=fingerprint)
            sizes.update(_sizes(spec, features[targets[0].id]))
            advance()
    write_json(run.path("sizes"), sizes)
    return seconds


def _sizes(spec: SourceSpec, features: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Each module's width and, for a network taskspace runs, the parameters up to its layer."""
    counts: dict[str, int] = {}
    if spec.has_weights:
        from taskspace.zoo.networks import load_source

        counts = load_source(spec).parameters_up_to()
    return {module_id(spec.name, layer): {"width": int(features[layer].shape[1]), "parameters": counts.get(layer),
                                          "depth": index + 1, "depths": len(spec.layers)}
            for index, layer in enumerate(spec.layers)}


def measure_zoo(run: ZooRunHandle, protocols: Sequence[str], *, targets: Sequence[str] | None = None,
                device: str = "cpu", batch_size: int = 256, show_progress: bool = True, executor: str = "serial",
                workers: int | None = None, threads: int | None = None,
                ray_address: str | None = None) -> list[dict[str, Any]]:
    """Measure the ground truth of every (module, target) for ``protocols``; write the cells and ``truth.csv``.

    The frozen probes read each source's forward passes from the store and run in this process (a probe
    takes well under a second); the ``finetune`` cells, each a network trained, run on ``executor``
    (``serial``, ``process`` or ``ray``, see :func:`taskspace.runner.executors.run_cells`), seeded per
    module and target, so every executor gives the same accuracies at equal ``threads``.

    Args:
        targets: measure only these targets (default: all of the run's).

    Returns the rows of ``truth.csv`` (every cell measured so far, and the imported rows).
    """
    from taskspace.runner.cells import FinetuneCell
    from taskspace.runner.executors import check_execution, run_cells

    check_execution(executor, workers, threads)
    kinds = {protocol: check_zoo_protocol(protocol) for protocol in protocols}
    every = run.target_list()
    if targets is not None:
        unknown = [name for name in targets if name not in run.target_ids]
        if unknown:
            from taskspace.errors import did_you_mean

            raise ConfigError(f"unknown target '{unknown[0]}'{did_you_mean(unknown[0], run.target_ids)} "
                              f"(targets: {', '.join(run.target_ids)})")
    chosen = [target for target in every if targets is None or target.id in targets]
    for kind in kinds.values():
        if kind == -1:
            blind = [spec.name for spec in run.zoo.sources if not spec.has_weights]
            if blind:
                raise ConfigError(f"finetune trains the network, and source(s) {', '.join(blind)} have features only; "
                                  "import their fine-tuning results with `taskspace truth RUN --import results.csv`")
    images = {target.id: run.images(target) for target in chosen}
    fingerprint = zoo_fingerprint(run)
    total = len(protocols) * len(run.modules) * len(chosen)
    with run.writing(), stage_progress("truth", total=total, unit="cell", enabled=show_progress) as advance:
        trained: list[FinetuneCell] = []
        for spec in run.zoo.sources:
            todo = [(protocol, layer, target) for protocol in protocols for layer in spec.layers for target in chosen
                    if read_cell(run.truth_file(protocol, module_id(spec.name, layer), target.id),
                                 module=module_id(spec.name, layer), target=target.id) is None]
            advance(len(protocols) * len(spec.layers) * len(chosen) - len(todo))
            if not todo:
                continue
            frozen = [item for item in todo if kinds[item[0]] != -1]
            if frozen:
                _measure_frozen(run, spec, frozen, kinds, images, chosen, device=device, batch_size=batch_size,
                                fingerprint=fingerprint, advance=advance)
            trained += [FinetuneCell(protocol, spec.name, layer, target.id, device) for protocol, layer, target in todo
                        if kinds[protocol] == -1]
        if trained:
            run_cells(trained, run, executor=executor, workers=workers, threads=threads,
                      on_done=lambda cell: advance(), address=ray_address)
        rows = run._measured_rows()
        run.write_truth(rows)
    return rows


def _write_truth_cell(run: ZooRunHandle, protocol: str, spec: SourceSpec, layer: str, target: Target,
                      record: dict[str, Any]) -> None:
    module = module_id(spec.name, layer)
    write_json(run.truth_file(protocol, module, target.id),
               {"module": module, "source": spec.name, "layer": layer, "target": target.id, "protocol": protocol,
                **record})


def _measure_frozen(run: ZooRunHandle, spec: SourceSpec, todo: list[tuple[str, str, Target]], kinds: dict[str, Any],
                    images: dict[str, Any], chosen: list[Target], *, device: str, batch_size: int, fingerprint: str,
                    advance: Callable[..., None]) -> None:
    every_train = {target.id: np.arange(len(images[target.id].train)) for target in chosen}
    every_test = {target.id: np.arange(len(images[target.id].test)) for target in chosen}
    train, _, _ = source_features(run, spec, chosen, images, split="train", positions=every_train, device=device,
                                   batch_size=batch_size, fingerprint=fingerprint)
    test, _, _ = source_features(run, spec, chosen, images, split="test", positions=every_test, device=device,
                                  batch_size=batch_size, fingerprint=fingerprint)
    for protocol, layer, target in todo:
        _write_truth_cell(run, protocol, spec, layer, target,
                          frozen_record(run.options, module_id(spec.name, layer), target.id, images[target.id],
                                        train[target.id][layer], test[target.id][layer], kinds[protocol]))
        advance()


def frozen_record(options: Any, module: str, target: str, images: Any, train: np.ndarray, test: np.ndarray,
                  labels_per_class: int | None) -> dict[str, Any]:
    """A frozen-probe truth cell of ``module`` on ``target``: the probe's test accuracy, averaged over the
    seeded draws of ``labels_per_class`` training labels per class (one draw of all of them for None)."""
    from taskspace.transfer import probe_draws

    draws = probe_draws(options.seed, f"{module}->{target}", images.train_labels, labels_per_class,
                        options.probe_draws)
    accuracies = [probe_accuracy(train[positions], images.train_labels[positions], test, images.test_labels,
                                 steps=options.probe_steps, weight_decay=options.probe_weight_decay)
                  for positions in draws]
    recipe = {"trains": "a linear probe on the module's frozen features (standardised), L-BFGS",
              "steps": options.probe_steps, "weight_decay": options.probe_weight_decay,
              "labels_per_class": labels_per_class, "draws": len(accuracies)}
    return {"accuracy": float(np.mean(accuracies)), "draws": accuracies, "recipe": recipe}


def probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                   test_labels: np.ndarray, *, steps: int, weight_decay: float) -> float:
    """Test accuracy of a linear probe (L-BFGS, cross-entropy + L2) on features standardised by the
    training rows' mean and spread."""
    import torch

    from taskspace.training.trainers import fit_linear

    mean = train_features.mean(axis=0, dtype=np.float64)
    spread = train_features.std(axis=0, dtype=np.float64)
    spread[spread < 1e-8] = 1.0
    train_x = torch.from_numpy(((train_features - mean) / spread).astype(np.float32))
    test_x = torch.from_numpy(((test_features - mean) / spread).astype(np.float32))
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    linear = torch.nn.Linear(train_x.shape[1], classes)
    fit_linear(linear, features=train_x, labels=torch.from_numpy(train_labels.astype(np.int64)), steps=steps,
               weight_decay=weight_decay)
    with torch.no_grad():
        predictions = linear(test_x).argmax(dim=1).numpy()
    return float((predictions == test_labels).mean())


def score_new_target(run: Any, task: Any, estimators: Sequence[str], *, measure: bool, device: str = "cpu",
                     batch_size: int = 256) -> tuple[dict[str, dict[str, float]], float, dict[str, float], list[str]]:
    """Every module taskspace can run scored on ``task``, a target the zoo run lacks: its training images
    (the run's ``score_samples``, drawn as for the run's own targets) through the run's store of forward
    passes, with each of ``estimators``.

    Returns:
        ``{estimator: {module: score}}``, the seconds that took, each module's ``frozen_all`` accuracy on
        the task (``measure``; else empty) and the ``features`` sources left out (they hold no images of
        a new target).
    """
    import math
    import time

    from taskspace.scoring import score_source
    from taskspace.zoo.targets import target_images

    sources = [spec for spec in run.zoo.sources if spec.has_weights]
    left_out = [spec.name for spec in run.zoo.sources if not spec.has_weights]
    new = Target(task.id, task)
    images = target_images(run.dataset(), task, score_samples=run.options.score_samples, seed=run.options.seed)
    fingerprint = zoo_fingerprint(run)
    values: dict[str, dict[str, float]] = {name: {} for name in estimators}
    started = time.perf_counter()
    for spec in sources:
        features, probs, _ = source_features(run, spec, [new], {task.id: images}, split="train",
                                             positions={task.id: images.scored}, device=device,
                                             batch_size=batch_size, fingerprint=fingerprint)
        for layer in spec.layers:
            record = score_source(features[task.id][layer], images.train_labels[images.scored],
                                  estimators=tuple(estimators), source_probs=probs[task.id],
                                  source_accuracy=spec.accuracy)["scores"]
            for name in estimators:
                values[name][spec.module(layer)] = math.nan if record[name] is None else float(record[name])
    seconds = time.perf_counter() - started
    measured: dict[str, float] = {}
    if measure:
        every = {"train": np.arange(len(images.train)), "test": np.arange(len(images.test))}
        for spec in sources:
            train, test = (source_features(run, spec, [new], {task.id: images}, split=split,
                                           positions={task.id: every[split]}, device=device, batch_size=batch_size,
                                           fingerprint=fingerprint)[0][task.id] for split in ("train", "test"))
            for layer in spec.layers:
                measured[spec.module(layer)] = frozen_record(run.options, spec.module(layer), task.id, images,
                                                             train[layer], test[layer], None)["accuracy"]
    return values, seconds, measured, left_out
