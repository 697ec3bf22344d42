"""The scoring of one zoo source as a cell the grid's executors run: every pending (layer, target) of it.

The driver makes the source's forward passes first (on its device, cached under the run's
``features`` folder); the cell then reads them from that cache, scores each pending (layer, target)
with the estimators and writes each record atomically. Estimators run on one thread whatever the
executor (:func:`taskspace.scoring.single_threaded`), so serial, process-pool and Ray scoring give the
same scores. On Ray the driver reads the features (:meth:`prepare`) and alone writes the records
(:meth:`commit`); a worker only computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskspace.io import write_json
from taskspace.runner.cells import Cell, Share
from taskspace.runner.folder import read_cell
from taskspace.runner.handles import ZooRunHandle
from taskspace.zoo.spec import module_id

__all__ = ["SourceScoreCell", "pending_pairs"]


def pending_pairs(run: ZooRunHandle, source: str, estimators: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (layer, target) pairs of ``source`` whose record lacks one of ``estimators``."""
    spec = run.zoo.source(source)
    pairs = []
    for layer in spec.layers:
        for target in run.target_ids:
            record = read_cell(run.score_file(module_id(source, layer), target), module=module_id(source, layer),
                               target=target)
            if record is None or any(name not in record.get("scores", {}) for name in estimators):
                pairs.append((layer, target))
    return pairs


@dataclass(frozen=True)
class SourceScoreCell(Cell):
    """Every pending (layer, target) of one zoo source, scored from its cached forward passes."""

    source: str
    estimators: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"score {self.source}"

    def is_done(self, run: ZooRunHandle) -> bool:  # type: ignore[override]
        return not pending_pairs(run, self.source, self.estimators)

    def run(self, run: ZooRunHandle) -> None:  # type: ignore[override]
        self.commit(run, self.compute(self.prepare(run, lambda key, make: make())))

    def prepare(self, run: ZooRunHandle, share: Share) -> dict[str, Any]:  # type: ignore[override]
        from taskspace.zoo.forward import source_features, zoo_fingerprint

        spec = run.zoo.source(self.source)
        pairs = pending_pairs(run, self.source, self.estimators)
        chosen = {target for _, target in pairs}
        targets = [target for target in run.target_list() if target.id in chosen]
        images = {target.id: run.images(target) for target in targets}
        positions = {target.id: images[target.id].scored for target in targets}
        features, probs, _ = source_features(run, spec, targets, images, split="train", positions=positions,
                                             device="cpu", batch_size=256, fingerprint=zoo_fingerprint(run))
        cells = []
        for layer, target in pairs:
            module = module_id(self.source, layer)
            cells.append({"module": module, "layer": layer, "target": target,
                          "features": features[target][layer],
                          "labels": images[target].train_labels[positions[target]],
                          "probs": probs[target],
                          "known": read_cell(run.score_file(module, target), module=module, target=target)})
        return {"cells": cells, "accuracy": spec.accuracy}

    def compute(self, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        from taskspace.scoring import score_source

        records = []
        for cell in inputs["cells"]:
            scored = score_source(cell["features"], cell["labels"], estimators=self.estimators,
                                  source_probs=cell["probs"], source_accuracy=inputs["accuracy"],
                                  known=cell["known"])
            records.append({"module": cell["module"], "source": self.source, "layer": cell["layer"],
                            "target": cell["target"], "images": int(len(cell["labels"])),
                            "width": int(cell["features"].shape[1]), **scored})
        return records

    def commit(self, run: ZooRunHandle, result: list[dict[str, Any]]) -> None:  # type: ignore[override]
        for record in result:
            write_json(run.score_file(record["module"], record["target"]), record)
