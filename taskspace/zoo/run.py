"""A zoo run: any sources named in a zoo file, every one of their layers, scored on a run's targets.

:class:`ZooRun` owns the run folder of ``taskspace matrix RUN --zoo zoo.toml``. Its rows are modules,
one per (source, layer), with ids ``source:layer``; its columns are the targets (a task space's
tasks and/or a whole dataset). Identity by content: ``run.json`` records every source's spec with
the SHA-256 of its files, the targets' classes and the options, and the run's identity hashes them;
a moved zoo file or weights file reopens the run, a changed one is refused with what differs.

Stages, each resumable (one cell file per (module, target), written atomically):

- :meth:`ZooRun.score`: forward passes (once per source and image, every layer at once, kept by
  content in ``features/``), then every estimator on every (module, target);
- :meth:`ZooRun.measure`: the ground truth of the built-in protocols (``frozen_all``,
  ``frozen_kK``: a linear probe on the module's frozen features; ``finetune``: the network up to
  the layer trained on the target with a new linear head);
- :meth:`ZooRun.import_truth`: measured results from elsewhere (``source,target[,layer],protocol,accuracy``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from taskspace._version import __version__
from taskspace.errors import ConfigError, TaskspaceError
from taskspace.io import content_hash, ensure_writable_dir, read_json, sha256_of_file, write_json, write_text
from taskspace.runner.folder import LAYOUT, cached_dataset, pair_key, read_cell, record_kind
from taskspace.runner.results import (
    LAYERED_TRUTH_COLUMNS,
    MATRIX_COLUMNS,
    RunResults,
    layered_truth_csv_text,
    merge_imports,
    read_imported_truth,
    write_estimates,
)
from taskspace.zoo.spec import (
    InputSpec,
    SourceSpec,
    ZooSpec,
    module_id,
    split_module_id,
)
from taskspace.zoo.targets import Target, ZooTargets, target_images

__all__ = ["ZooOptions", "ZooRun", "ZOO_LAYOUT", "ZOO_TRUTH_COLUMNS", "MATRIX_COLUMNS", "is_zoo_run"]

ZOO_RUN_FORMAT = 1

#: A zoo run's folder has the one layout of every run (:data:`taskspace.runner.folder.LAYOUT`).
ZOO_LAYOUT = LAYOUT

#: ``truth.csv`` of a zoo run (one row per (source, layer), target and protocol).
ZOO_TRUTH_COLUMNS = LAYERED_TRUTH_COLUMNS

@dataclass(frozen=True)
class ZooOptions:
    """What decides a zoo run's numbers besides its sources and targets.

    Attributes:
        score_samples: training images per target the estimators see (None = all).
        probe_draws: seeded draws averaged per few-label probe (``frozen_kK``).
        probe_steps: L-BFGS iterations of a probe.
        probe_weight_decay: L2 penalty of a probe (on standardised features).
        finetune_epochs: epochs of the ``finetune`` ground truth.
        finetune_lr: its peak learning rate (SGD, momentum 0.9, one cycle).
        finetune_samples: training images per target it trains on (None = all).
        seed: the root seed; every cell derives its own.
    """

    score_samples: int | None = 1000
    probe_draws: int = 3
    probe_steps: int = 200
    probe_weight_decay: float = 1e-4
    finetune_epochs: int = 2
    finetune_lr: float = 0.01
    finetune_samples: int | None = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("score_samples", "finetune_samples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 10):
                raise ConfigError(f"{name} must be an integer >= 10 or none, got {value!r}")
        for name in ("probe_draws", "probe_steps", "finetune_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("probe_weight_decay", "finetune_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")


def is_zoo_run(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a zoo run (its ``run.json`` says ``kind = zoo``)."""
    return record_kind(folder) == "zoo"


@dataclass(frozen=True)
class ZooRun(RunResults):
    """A zoo run folder with its sources, targets, options and data root.

    Build one with :meth:`create` (new, or the same one again) or :meth:`open`.
    """

    #: The record's kind (see :mod:`taskspace.runner.record`).
    kind: ClassVar[str] = "zoo"

    folder: Path
    zoo: ZooSpec
    targets: ZooTargets
    options: ZooOptions
    data_root: str | None = None
    #: SHA-256 of every ``features`` source's files, ``{source: {"target/layer/split": digest}}`` (None for
    #: a run recorded before they were part of its identity).
    features_files: Mapping[str, Mapping[str, str]] | None = None

    # -- identity ------------------------------------------------------------------------------------

    def identity_record(self) -> dict[str, Any]:
        record = {"zoo": self.zoo.to_record(), "targets": self.targets.to_record(),
                  "options": dataclasses.asdict(self.options)}
        if self.features_files is not None:
            record["features_files"] = {name: dict(files) for name, files in self.features_files.items()}
        return record

    def read_features_files(self, *, check: bool) -> dict[str, dict[str, str]]:
        """The SHA-256 of every file of the zoo's ``features`` sources for the run's targets: the train
        split's (each is read and checked first when ``check``: rows, labels, finite values) and the test
        split's where it exists.

        Raises:
            DataError: a train split's file is missing or does not fit its target (with ``check``).
        """
        from taskspace.zoo.store import external_features

        found: dict[str, dict[str, str]] = {}
        for spec in self.zoo.sources:
            if spec.has_weights:
                continue
            files: dict[str, str] = {}
            for target in self.target_list():
                images = self.images(target)
                for layer in spec.layers:
                    for split in ("train", "test"):
                        path = spec.features_file(target=target.id, layer=layer, split=split)
                        if split == "train" and check:
                            external_features(spec, target=target.id, layer=layer, split=split,
                                              labels=images.train_labels)
                        if path.is_file():
                            files[f"{target.id}/{layer}/{split}"] = sha256_of_file(path)
            found[spec.name] = files
        return found

    @property
    def identity(self) -> str:
        return content_hash(self.identity_record())

    @classmethod
    def create(cls, folder: str | os.PathLike[str], zoo: ZooSpec, targets: ZooTargets, options: ZooOptions, *,
               data_root: str | None = None) -> ZooRun:
        """Create a zoo run, or reopen the same one; a folder holding another run is refused with what differs.

        Every input is checked first (the sources' networks are built, their weights loaded and their
        layers found); nothing is written until then.
        """
        from taskspace.data import dataset_class_names
        from taskspace.zoo.networks import resolve_layers

        path = Path(folder).expanduser().absolute()
        if targets.space is not None:
            targets.space.validate(dataset_class_names(targets.dataset, data_root=data_root))
        else:
            dataset_class_names(targets.dataset, data_root=data_root)
        root = str(Path(data_root).expanduser().absolute()) if data_root else None
        run = cls(path, zoo, targets, options, root)
        run = dataclasses.replace(run, zoo=resolve_layers(zoo, run.dataset().train.image_shape))
        if any(not spec.has_weights for spec in zoo.sources):  # features are the source: part of its identity
            run = dataclasses.replace(run, features_files=run.read_features_files(check=True))
        if (path / ZOO_LAYOUT["record"]).is_file():
            run._follow_moved_sources()
            existing = cls.open(path, data_root=data_root)
            problems = existing.differences(run)
            if problems:
                raise TaskspaceError(f"'{folder}' holds another run ({'; '.join(problems)}); use the run's zoo, "
                                     "targets and options, or another folder")
            return existing
        if path.exists() and not path.is_dir():
            raise TaskspaceError(f"'{folder}' is a file, not a folder; choose a folder for the run")
        ensure_writable_dir(path, what="run folder")
        with run.writing():
            run._write_record()
        return run

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, data_root: str | None = None) -> ZooRun:
        """Reopen a zoo run as recorded; its sources are read from where they were, checked by content."""
        path = Path(folder).expanduser().absolute()
        record_file = path / ZOO_LAYOUT["record"]
        fix = "restore it, or start the run in another folder"
        try:
            record = read_json(record_file)
            sources = tuple(_source_from_record(entry) for entry in record["sources"])
            run = cls(path, ZooSpec(sources), ZooTargets.from_record(record["targets"]),
                      ZooOptions(**record["options"]), data_root if data_root is not None else record["data_root"],
                      record.get("features_files"))
        except (KeyError, TypeError, ValueError) as error:
            raise TaskspaceError(f"'{record_file}' is not a zoo run record ({type(error).__name__}: {error}); "
                                 f"{fix}") from None
        gone = [f"{source.name} ('{file}')" for source in sources for file in source.files() if not file.exists()]
        if gone:
            raise TaskspaceError(f"'{folder}': the files of source(s) {', '.join(gone)} are gone; restore them, or "
                                 f"name where they are now with `taskspace matrix {folder} --zoo ZOO_FILE`")
        if record.get("identity") != run.identity:
            changed = [source.name for source, entry in zip(sources, record["zoo"], strict=False)
                       if _safe_record(source) != entry]
            what = (f"the files of source(s) {', '.join(changed)} changed since the run was made" if changed
                    else "the record does not match its own identity hash")
            raise TaskspaceError(f"'{folder}': {what}; restore them, or score the new files in another run folder")
        if run.features_files is not None:
            now = run.read_features_files(check=False)
            changed = [name for name, files in run.features_files.items()
                       if any(now.get(name, {}).get(key) != digest for key, digest in files.items())]
            if changed:
                raise TaskspaceError(f"'{folder}': the features files of source(s) {', '.join(changed)} changed "
                                     "since the run was made; restore them, or score the new files in another run "
                                     "folder")
        return run

    def _follow_moved_sources(self) -> None:
        """Where the folder's record has this run's identity (its sources' contents) but names other places
        for their files (the weights were moved), the record is made to name where they are now, so the run
        reopens; a record of another run is left as it is."""
        record_file = self.path("record")
        record = read_json(record_file)
        sources = [_source_to_record(source) for source in self.zoo.sources]
        if isinstance(record, dict) and record.get("identity") == self.identity and record.get("sources") != sources:
            with self.writing():
                write_json(record_file, {**record, "sources": sources})

    @staticmethod
    def recorded_plan(folder: str | os.PathLike[str]) -> tuple[ZooTargets, ZooOptions]:
        """The targets and options a zoo run's record holds, read without opening its sources (whose files
        may have moved)."""
        record_file = Path(folder).expanduser().absolute() / ZOO_LAYOUT["record"]
        try:
            record = read_json(record_file)
            return ZooTargets.from_record(record["targets"]), ZooOptions(**record["options"])
        except (KeyError, TypeError, ValueError) as error:
            raise TaskspaceError(f"'{record_file}' is not a zoo run record ({type(error).__name__}: {error}); "
                                 "restore it, or start the run in another folder") from None

    def differences(self, other: ZooRun) -> list[str]:
        mine, theirs = self.identity_record(), other.identity_record()
        problems = []
        names = {entry["name"]: entry for entry in mine["zoo"]}
        other_names = {entry["name"]: entry for entry in theirs["zoo"]}
        for name in sorted(set(names) | set(other_names)):
            if names.get(name) != other_names.get(name):
                problems.append(f"source {name}: " + ("only in the run" if name not in other_names else
                                                      "only asked" if name not in names else "differs"))
        if mine["targets"] != theirs["targets"]:
            problems.append("targets differ")
        if self.features_files is not None and other.features_files is not None:
            for name, files in self.features_files.items():
                if dict(files) != dict(other.features_files.get(name, {})):
                    problems.append(f"source {name}: its features files differ")
        for option, value in mine["options"].items():
            if theirs["options"].get(option) != value:
                problems.append(f"{option}: run {value!r}, asked {theirs['options'].get(option)!r}")
        return problems

    def _write_record(self) -> None:
        write_json(self.path("record"), {
            "format": ZOO_RUN_FORMAT, "kind": "zoo", "identity": self.identity,
            "zoo": self.zoo.to_record(),
            **({"features_files": self.identity_record()["features_files"]} if self.features_files is not None else {}),
            "sources": [_source_to_record(source) for source in self.zoo.sources],
            "targets": self.targets.to_record(), "options": dataclasses.asdict(self.options),
            "data_root": self.data_root, "taskspace_version": __version__,
        })

    # -- layout --------------------------------------------------------------------------------------

    def score_file(self, module: str, target: str) -> Path:
        return self.path("scores", f"{pair_key(module, target)}.json")

    def truth_file(self, protocol: str, module: str, target: str) -> Path:
        return self.path("truth_cells", protocol, f"{pair_key(module, target)}.json")

    # -- data ----------------------------------------------------------------------------------------

    def dataset(self) -> Any:
        return cached_dataset(self.targets.dataset, self.data_root)

    def target_list(self) -> list[Target]:
        return self.targets.targets(self.dataset().class_names)

    @property
    def target_ids(self) -> tuple[str, ...]:
        from taskspace.data import dataset_class_names

        names = dataset_class_names(self.targets.dataset, data_root=self.data_root)
        return tuple(target.id for target in self.targets.targets(names))

    @property
    def modules(self) -> tuple[str, ...]:
        return self.zoo.modules

    def images(self, target: Target) -> Any:
        return target_images(self.dataset(), target.task, score_samples=self.options.score_samples,
                             seed=self.options.seed)

    # -- stages --------------------------------------------------------------------------------------

    def score(self, estimators: Sequence[str], *, device: str = "cpu", batch_size: int = 256,
              show_progress: bool = True, **execution: Any) -> dict[str, Any]:
        """Every estimator on every (module, target), by estimator name; see
        :func:`taskspace.runner.grid.compute_matrix`, the score stage of every kind of run (``execution``:
        its ``executor``, ``workers``, ``threads`` and ``ray_address``)."""
        from taskspace.runner.grid import compute_matrix

        return compute_matrix(self, estimators=estimators, device=device, batch_size=batch_size,
                              show_progress=show_progress, **execution)

    def measure(self, protocols: Sequence[str], *, targets: Sequence[str] | None = None, device: str = "cpu",
                batch_size: int = 256, show_progress: bool = True, **execution: Any) -> list[dict[str, Any]]:
        """The ground truth of built-in protocols; see :func:`taskspace.zoo.stages.measure_zoo`
        (``execution``: its ``executor``, ``workers``, ``threads`` and ``ray_address``)."""
        from taskspace.zoo.stages import measure_zoo

        return measure_zoo(self, protocols, targets=targets, device=device, batch_size=batch_size,
                           show_progress=show_progress, **execution)

    def import_truth(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Add measured results from a CSV (``source,target[,layer],protocol,accuracy``).

        Imports accumulate: a cell (source, layer, target, protocol) imported before keeps its value unless
        this file gives it again. Returns ``{"rows": the file's rows, "kept": earlier imported cells kept,
        "given_again": cells this file gives again, "changed": of those, the ones with a new accuracy}``.
        """
        rows = self._read_truth_rows(path, fix=None)
        earlier = self._read_truth_rows(self.path("imported")) if self.path("imported").is_file() else []
        merged, summary = merge_imports(earlier, rows)
        with self.writing():
            write_text(self.path("imported"), layered_truth_csv_text(merged))
            self.write_truth(self._measured_rows())
        return summary

    # -- results -------------------------------------------------------------------------------------

    def write_estimates(self, matrices: Sequence[Any]) -> None:
        write_estimates(self.path("matrix"), matrices, layered=True)

    def module_sizes(self) -> dict[str, dict[str, Any]]:
        path = self.path("sizes")
        return dict(read_json(path)) if path.is_file() else {}

    def truths(self) -> dict[str, Any]:
        """Protocol -> matrix of accuracies (modules x targets), measured here or imported."""
        from taskspace.matrix import TransferabilityMatrix

        path = self.path("truth")
        if not path.is_file():
            return {}
        rows = self._read_truth_rows(path)
        matrices = {}
        for protocol in dict.fromkeys(row["protocol"] for row in rows):
            scores = np.full((len(self.modules), len(self.target_ids)), np.nan)
            for row in rows:
                if row["protocol"] == protocol:
                    scores[self.modules.index(module_id(row["source"], row["layer"])),
                           self.target_ids.index(row["target"])] = row["accuracy"]
            matrices[protocol] = TransferabilityMatrix(scores, self.modules, self.target_ids, protocol)
        return matrices

    def write_truth(self, rows: Sequence[Mapping[str, Any]]) -> None:
        write_text(self.path("truth"), layered_truth_csv_text(rows))

    def _read_truth_rows(self, path: str | os.PathLike[str], *,
                         fix: str | None = "") -> list[dict[str, Any]]:
        """Rows of a truth file, checked against the run's sources, layers and targets (see
        :func:`~taskspace.runner.results.read_imported_truth`); ``fix=""``: the run's own truth.csv."""
        return read_imported_truth(
            path, layers={source.name: source.layers for source in self.zoo.sources}, targets=self.target_ids,
            fix=f"write it again with `taskspace truth {self.folder}`" if fix == "" else fix)

    def _measured_rows(self) -> list[dict[str, Any]]:
        """Every truth cell measured here, then every imported row (an imported cell replaces a measured one)."""
        rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        folder = self.path("truth_cells")
        protocols = sorted(path.name for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []
        for protocol in protocols:
            for module in self.modules:
                for target in self.target_ids:
                    record = read_cell(self.truth_file(protocol, module, target), module=module, target=target)
                    if record is not None:
                        source, layer = split_module_id(module)
                        rows[(source, layer, target, protocol)] = {
                            "source": source, "layer": layer, "target": target, "protocol": protocol,
                            "accuracy": float(record["accuracy"])}
        if self.path("imported").is_file():
            for row in self._read_truth_rows(self.path("imported")):
                rows[(row["source"], row["layer"], row["target"], row["protocol"])] = row
        return list(rows.values())



# -- the record's sources -----------------------------------------------------------------------------


def _source_to_record(source: SourceSpec) -> dict[str, Any]:
    return {"name": source.name, "origin": source.origin, "reference": source.reference,
            "weights": str(source.weights) if source.weights is not None else None,
            "options": dict(source.options), "layers": list(source.layers),
            "input": source.input.to_record() if source.input is not None else None,
            "tokens": source.tokens, "logits": source.logits, "accuracy": source.accuracy}


def _source_from_record(entry: dict[str, Any]) -> SourceSpec:
    given = entry.get("input")
    spec_input = (InputSpec(given["size"], tuple(given["mean"]), tuple(given["std"])) if given is not None else None)
    return SourceSpec(name=entry["name"], origin=entry["origin"], reference=entry["reference"],
                      weights=Path(entry["weights"]) if entry.get("weights") else None,
                      options=dict(entry.get("options", {})), layers=tuple(entry["layers"]), input=spec_input,
                      tokens=entry.get("tokens", "mean"), logits=bool(entry.get("logits", False)),
                      accuracy=entry.get("accuracy"))


def _safe_record(source: SourceSpec) -> dict[str, Any] | None:
    try:
        return source.to_record()
    except OSError:
        return None
