"""The cells of a zoo run that the grid's executors run: the scoring of one source (every pending
(layer, target) of it, :class:`SourceScoreCell`) and the ``finetune`` truth of one module on one target
(:class:`FinetuneCell`).

The driver makes the source's forward passes first (on its device, cached under the run's
``features`` folder); the cell then reads them from that cache, scores each pending (layer, target)
with the estimators and writes each record atomically. Estimators run on one thread whatever the
executor (:func:`taskspace.scoring.single_threaded`), so serial, process-pool and Ray scoring give the
same scores. On Ray the driver reads the features (:meth:`prepare`) and alone writes the records
(:meth:`commit`); a worker only computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskspace.io import write_json
from taskspace.runner.cells import Cell, Share
from taskspace.runner.folder import read_cell
from taskspace.runner.handles import ZooRunHandle
from taskspace.zoo.spec import module_id

__all__ = ["SourceScoreCell", "FinetuneCell", "pending_pairs"]


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


@dataclass(frozen=True)
class FinetuneCell(Cell):
    """The ``finetune`` ground truth of one module (``source`` at ``layer``) on one target: the network cut
    at the layer and trained with a new head (:func:`taskspace.zoo.finetune.finetune_module`).

    Where the worker sees the source's files it reads them there (:meth:`run`); on a cluster the driver
    sends their bytes and the dataset (:meth:`prepare`), the worker writes the files to a folder of its
    own and trains (:meth:`compute`), and the driver writes the record (:meth:`commit`). Seeded by the
    module and the target, so every executor gives the same accuracy.
    """

    protocol: str
    source: str
    layer: str
    target: str
    device: str = "cpu"

    @property
    def module(self) -> str:
        return module_id(self.source, self.layer)

    @property
    def name(self) -> str:
        return f"truth {self.protocol} {self.module} -> {self.target}"

    def is_done(self, run: ZooRunHandle) -> bool:  # type: ignore[override]
        record = read_cell(run.truth_file(self.protocol, self.module, self.target), module=self.module,
                           target=self.target)
        return record is not None and isinstance(record.get("accuracy"), int | float)

    def run(self, run: ZooRunHandle) -> None:  # type: ignore[override]
        spec, target = run.zoo.source(self.source), self._target(run)
        self.commit(run, self._measure(spec, target, run.images(target), run.dataset(), run.options))

    def prepare(self, run: ZooRunHandle, share: Share) -> dict[str, Any]:  # type: ignore[override]
        spec, target = run.zoo.source(self.source), self._target(run)
        return {"spec": spec, "files": {str(path): path.read_bytes() for path in spec.files()}, "target": target,
                "images": run.images(target), "dataset": share("dataset", run.dataset), "options": run.options}

    def compute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import dataclasses
        import tempfile

        spec = inputs["spec"]
        with tempfile.TemporaryDirectory(prefix="taskspace-finetune-") as folder:
            local = {name: Path(folder) / f"{index}{Path(name).suffix}" for index, name in enumerate(inputs["files"])}
            for name, data in inputs["files"].items():
                local[name].write_bytes(data)
            moved = dataclasses.replace(
                spec, weights=local[str(spec.weights)] if spec.weights is not None else None,
                reference=str(local[spec.reference]) if spec.reference in local else spec.reference)
            return self._measure(moved, inputs["target"], inputs["images"], inputs["dataset"], inputs["options"])

    def commit(self, run: ZooRunHandle, result: dict[str, Any]) -> None:  # type: ignore[override]
        write_json(run.truth_file(self.protocol, self.module, self.target), result)

    def _target(self, run: ZooRunHandle) -> Any:
        return next(target for target in run.target_list() if target.id == self.target)

    def _measure(self, spec: Any, target: Any, images: Any, dataset: Any, options: Any) -> dict[str, Any]:
        from taskspace.zoo.finetune import finetune_module

        record = finetune_module(spec, self.layer, target.id, images, dataset=dataset, options=options,
                                 device=self.device)
        return {"module": self.module, "source": self.source, "layer": self.layer, "target": self.target,
                "protocol": self.protocol, **record}
