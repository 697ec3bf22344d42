"""A zoo source's forward passes onto the images of a run's targets, read through the one store, and what
its score cell computes from them."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from taskspace.runner.folder import read_cell
from taskspace.runner.handles import ZooRunHandle
from taskspace.zoo.spec import SourceSpec, module_id
from taskspace.zoo.store import dataset_fingerprint, external_features, layer_features
from taskspace.zoo.targets import Target

__all__ = ["source_features", "zoo_fingerprint", "pending_pairs", "score_inputs"]


def source_features(run: ZooRunHandle, spec: SourceSpec, targets: list[Target], images: dict[str, Any], *,
                     split: str, positions: dict[str, np.ndarray], device: str, batch_size: int,
                     fingerprint: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray | None], float]:
    """Per target: ``{layer: rows}`` and the source's probabilities (or None) on the target's images
    of ``split`` at ``positions[target]``; and the seconds of forward passes."""
    per_target: dict[str, dict[str, np.ndarray]] = {}
    probs: dict[str, np.ndarray | None] = {}
    if not spec.has_weights:
        for target in targets:
            labels = getattr(images[target.id], f"{split}_labels")
            per_target[target.id] = {}
            probs[target.id] = None
            for layer in spec.layers:
                rows, given = external_features(spec, target=target.id, layer=layer, split=split, labels=labels)
                per_target[target.id][layer] = rows[positions[target.id]]
                if given is not None:
                    probs[target.id] = given[positions[target.id]]
        return per_target, probs, 0.0
    wanted = {target.id: getattr(images[target.id], split)[positions[target.id]] for target in targets}
    union = np.unique(np.concatenate(list(wanted.values()))) if wanted else np.zeros(0, np.int64)
    layers, logits, seconds = layer_features(
        spec, source_record=spec.to_record(), dataset=run.dataset(), fingerprint=fingerprint, split=split,
        indices=union, folder=run.path("features"), device=device, batch_size=batch_size)
    for target in targets:
        rows = np.searchsorted(union, wanted[target.id])
        per_target[target.id] = {layer: values[rows] for layer, values in layers.items()}
        probs[target.id] = softmax(logits[rows].astype(np.float64), axis=1) if logits is not None else None
    return per_target, probs, seconds


def zoo_fingerprint(run: ZooRunHandle) -> str:
    """The fingerprint of the run's dataset that keys its cached forward passes."""
    return dataset_fingerprint(run.dataset(), run.targets.dataset, run.data_root)


def pending_pairs(run: ZooRunHandle, source: str, estimators: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (layer, target) pairs of ``source`` whose score record lacks one of ``estimators``."""
    pairs = []
    for layer in run.zoo.source(source).layers:
        module = module_id(source, layer)
        for target in run.target_ids:
            record = read_cell(run.score_file(module, target), module=module, target=target)
            if record is None or any(name not in record.get("scores", {}) for name in estimators):
                pairs.append((layer, target))
    return pairs


def score_inputs(run: ZooRunHandle, source: str, estimators: tuple[str, ...]) -> dict[str, Any]:
    """What the score cell of ``source`` computes from (:class:`taskspace.runner.cells.ScoreCell`): per pending
    (layer, target), the record's names, the module's rows on the target's score sample, the labels, the
    source's probabilities and the scores already measured; and the source's own accuracy. The forward
    passes are read from the store, where the stage's driver made them."""
    spec = run.zoo.source(source)
    pairs = pending_pairs(run, source, estimators)
    chosen = {target for _, target in pairs}
    targets = [target for target in run.target_list() if target.id in chosen]
    images = {target.id: run.images(target) for target in targets}
    positions = {target.id: images[target.id].scored for target in targets}
    features, probs, _ = source_features(run, spec, targets, images, split="train", positions=positions,
                                         device="cpu", batch_size=256, fingerprint=zoo_fingerprint(run))
    cells = []
    for layer, target in pairs:
        module = module_id(source, layer)
        rows, labels = features[target][layer], images[target].train_labels[positions[target]]
        cells.append({"record": {"module": module, "source": source, "layer": layer, "target": target,
                                 "images": int(len(labels)), "width": int(rows.shape[1])},
                      "features": rows, "labels": labels, "probs": probs[target],
                      "known": read_cell(run.score_file(module, target), module=module, target=target)})
    return {"cells": cells, "accuracy": spec.accuracy}
