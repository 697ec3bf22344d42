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

import contextlib
import csv
import dataclasses
import hashlib
import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskspace import __version__
from taskspace.errors import ConfigError, TaskspaceError, did_you_mean
from taskspace.io import canonical_json, ensure_writable_dir, read_json, read_record, write_json, write_text
from taskspace.runner.run import LAYOUT
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

#: Where everything of a zoo run lives, relative to its folder: the names it shares with a task-space
#: run (record, lock, cells, matrix, truth, verdict) are that run's :data:`~taskspace.runner.run.LAYOUT`.
ZOO_LAYOUT: dict[str, str] = {
    **{role: LAYOUT[role] for role in ("record", "lock", "features", "scores", "truth_cells", "matrix", "truth",
                                       "verdict", "recommendations", "report")},
    "sizes": "modules.json",              # each module's width, depth and parameters up to its layer
    "imported": "truth_imported.csv",     # the rows imported from elsewhere, as given
}

MATRIX_COLUMNS = ("source", "layer", "target", "estimator", "score")
ZOO_TRUTH_COLUMNS = ("source", "layer", "target", "protocol", "accuracy")


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
    record = Path(folder).expanduser() / ZOO_LAYOUT["record"]
    if not record.is_file():
        return False
    try:
        document = read_json(record)
    except TaskspaceError:
        return False
    return isinstance(document, dict) and document.get("kind") == "zoo"


def pair_key(module: str, target: str) -> str:
    return hashlib.sha256(canonical_json([module, target]).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ZooRun:
    """A zoo run folder with its sources, targets, options and data root.

    Build one with :meth:`create` (new, or the same one again) or :meth:`open`.
    """

    folder: Path
    zoo: ZooSpec
    targets: ZooTargets
    options: ZooOptions
    data_root: str | None = None

    # -- identity ------------------------------------------------------------------------------------

    def identity_record(self) -> dict[str, Any]:
        return {"zoo": self.zoo.to_record(), "targets": self.targets.to_record(),
                "options": dataclasses.asdict(self.options)}

    @property
    def identity(self) -> str:
        return hashlib.sha256(canonical_json(self.identity_record()).encode()).hexdigest()[:16]

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
        if (path / ZOO_LAYOUT["record"]).is_file():
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
                      ZooOptions(**record["options"]), data_root if data_root is not None else record["data_root"])
        except (KeyError, TypeError, ValueError) as error:
            raise TaskspaceError(f"'{record_file}' is not a zoo run record ({type(error).__name__}: {error}); "
                                 f"{fix}") from None
        if record.get("identity") != run.identity:
            changed = [source.name for source, entry in zip(sources, record["zoo"], strict=False)
                       if _safe_record(source) != entry]
            what = (f"the files of source(s) {', '.join(changed)} changed since the run was made" if changed
                    else "the record does not match its own identity hash")
            raise TaskspaceError(f"'{folder}': {what}; restore them, or score the new files in another run folder")
        return run

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
        for option, value in mine["options"].items():
            if theirs["options"].get(option) != value:
                problems.append(f"{option}: run {value!r}, asked {theirs['options'].get(option)!r}")
        return problems

    def _write_record(self) -> None:
        write_json(self.path("record"), {
            "format": ZOO_RUN_FORMAT, "kind": "zoo", "identity": self.identity,
            "zoo": self.zoo.to_record(),
            "sources": [_source_to_record(source) for source in self.zoo.sources],
            "targets": self.targets.to_record(), "options": dataclasses.asdict(self.options),
            "data_root": self.data_root, "taskspace_version": __version__,
        })

    # -- layout --------------------------------------------------------------------------------------

    def path(self, role: str, *parts: str) -> Path:
        return self.folder.joinpath(ZOO_LAYOUT[role], *parts)

    def score_file(self, module: str, target: str) -> Path:
        return self.path("scores", f"{pair_key(module, target)}.json")

    def truth_file(self, protocol: str, module: str, target: str) -> Path:
        return self.path("truth_cells", protocol, f"{pair_key(module, target)}.json")

    def recommendation_file(self, target: str, estimator: str) -> Path:
        return self.path("recommendations", f"{target}__{estimator}.json")

    @contextlib.contextmanager
    def writing(self) -> Iterator[ZooRun]:
        """Hold the run's lock while writing (the lock of :meth:`taskspace.runner.Run.writing`)."""
        from taskspace.runner.run import holding_lock

        with holding_lock(self.folder, self.path("lock")):
            yield self

    # -- data ----------------------------------------------------------------------------------------

    def dataset(self) -> Any:
        from taskspace.runner.run import _dataset

        return _dataset(self.targets.dataset, self.data_root)

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
              show_progress: bool = True, **execution: Any) -> list[Any]:
        """Every estimator on every (module, target); see :func:`taskspace.zoo.stages.score_zoo`
        (``execution``: its ``executor``, ``workers``, ``threads`` and ``ray_address``)."""
        from taskspace.zoo.stages import score_zoo

        return score_zoo(self, estimators, device=device, batch_size=batch_size, show_progress=show_progress,
                         **execution)

    def measure(self, protocols: Sequence[str], *, targets: Sequence[str] | None = None, device: str = "cpu",
                batch_size: int = 256, show_progress: bool = True) -> list[dict[str, Any]]:
        """The ground truth of built-in protocols; see :func:`taskspace.zoo.stages.measure_zoo`."""
        from taskspace.zoo.stages import measure_zoo

        return measure_zoo(self, protocols, targets=targets, device=device, batch_size=batch_size,
                           show_progress=show_progress)

    def import_truth(self, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Add measured results from a CSV (``source,target[,layer],protocol,accuracy``); returns its rows."""
        rows = read_imported_truth(path, self)
        with self.writing():
            write_text(self.path("imported"), _truth_csv(rows))
            self.write_truth(self._measured_rows())
        return rows

    # -- results -------------------------------------------------------------------------------------

    def has_estimates(self) -> bool:
        return self.path("matrix").with_suffix(".json").is_file()

    def estimates(self) -> dict[str, Any]:
        from taskspace.matrix import read_matrix_set

        path = self.path("matrix").with_suffix(".json")
        if not path.is_file():
            raise TaskspaceError(f"no matrix in '{self.folder}'; score it with `taskspace matrix {self.folder}`")
        return read_matrix_set(path)

    def write_estimates(self, matrices: Sequence[Any]) -> None:
        from taskspace.matrix import merge_matrix_sets, write_matrix_set

        matrices = merge_matrix_sets(self.estimates() if self.has_estimates() else {}, matrices)
        write_matrix_set(self.folder, matrices, stem=ZOO_LAYOUT["matrix"])
        rows = []
        for matrix in matrices:
            for module, target, estimator, score in matrix.long_rows():
                source, layer = split_module_id(module)
                rows.append((source, layer, target, estimator, repr(score)))
        write_text(self.path("matrix").with_suffix(".csv"), _csv(MATRIX_COLUMNS, rows))

    def module_sizes(self) -> dict[str, dict[str, Any]]:
        path = self.path("sizes")
        return dict(read_json(path)) if path.is_file() else {}

    def truths(self) -> dict[str, Any]:
        """Protocol -> matrix of accuracies (modules x targets), measured here or imported."""
        from taskspace.matrix import TransferabilityMatrix

        path = self.path("truth")
        if not path.is_file():
            return {}
        rows = _read_truth_rows(path, self)
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
        write_text(self.path("truth"), _truth_csv(rows))

    def _measured_rows(self) -> list[dict[str, Any]]:
        """Every truth cell measured here, then every imported row (an imported cell replaces a measured one)."""
        rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        folder = self.path("truth_cells")
        protocols = sorted(path.name for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []
        for protocol in protocols:
            for module in self.modules:
                for target in self.target_ids:
                    record = _read_cell(self.truth_file(protocol, module, target), module, target)
                    if record is not None:
                        source, layer = split_module_id(module)
                        rows[(source, layer, target, protocol)] = {
                            "source": source, "layer": layer, "target": target, "protocol": protocol,
                            "accuracy": float(record["accuracy"])}
        if self.path("imported").is_file():
            for row in _read_truth_rows(self.path("imported"), self):
                rows[(row["source"], row["layer"], row["target"], row["protocol"])] = row
        return list(rows.values())

    def verdict(self) -> list[dict[str, Any]]:
        from taskspace.runner.run import Run

        return Run.verdict(self)  # type: ignore[arg-type]  # same file format, same reader

    def _verdict_fix(self) -> str:
        return f"write it again with `taskspace evaluate {self.folder}`"

    def write_verdict(self, rows: Sequence[Mapping[str, Any]]) -> None:
        from taskspace.runner.run import Run

        Run.write_verdict(self, rows)  # type: ignore[arg-type]

    def default_protocol(self, requested: str | None = None) -> str | None:
        from taskspace.runner.run import choose_protocol

        return choose_protocol(self.truths(), requested)

    def default_estimator(self, requested: str | None = None, *, protocol: str | None = None) -> str:
        from taskspace.runner.run import choose_estimator

        return choose_estimator(self.estimates(), self.verdict(), requested=requested, protocol=protocol,
                                run=self.folder)


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


# -- files ---------------------------------------------------------------------------------------------


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _truth_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    return _csv(ZOO_TRUTH_COLUMNS, [(row["source"], row["layer"], row["target"], row["protocol"],
                                     repr(float(row["accuracy"]))) for row in rows])


def _read_cell(path: Path, module: str, target: str) -> dict[str, Any] | None:
    return read_record(path, module=module, target=target)


def _read_truth_rows(path: Path, run: ZooRun) -> list[dict[str, Any]]:
    return read_imported_truth(path, run, fix=f"write it again with `taskspace truth {run.folder}`")


def read_imported_truth(path: str | os.PathLike[str], run: ZooRun, *, fix: str | None = None) -> list[dict[str, Any]]:
    """Rows of a results CSV (``source,target[,layer],protocol,accuracy``, any column order), checked
    against the run: known sources, layers and targets, accuracies in [0, 1].

    A row without a layer names a source with one layer. Raises :class:`TaskspaceError` (one line: the
    file, the line, the fix) on anything else.
    """
    from taskspace.runner.run import parse_accuracy

    file = Path(path)
    fix = fix or "fix the file and import it again"
    if not file.is_file():
        raise TaskspaceError(f"results file '{file}' does not exist; pass a CSV with columns "
                             "source,target[,layer],protocol,accuracy")
    try:
        rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TaskspaceError(f"'{file}' cannot be read ({error}); {fix}") from None
    required = ("source", "target", "protocol", "accuracy")
    header = tuple(rows[0].keys()) if rows else ()
    missing = [column for column in required if column not in header]
    if not rows or missing:
        raise TaskspaceError(f"'{file}' lacks column(s) {', '.join(missing or required)}; give columns "
                             f"source,target[,layer],protocol,accuracy; {fix}")
    extra = [column for column in header if column not in (*required, "layer")]
    if extra:
        raise TaskspaceError(f"'{file}' has an unknown column '{extra[0]}'; columns are "
                             f"source,target[,layer],protocol,accuracy")
    sources = {source.name: source for source in run.zoo.sources}
    targets = run.target_ids
    parsed = []
    for number, row in enumerate(rows, start=2):
        where = f"'{file}' line {number}"
        if None in row or any(value is None for value in row.values()):
            raise TaskspaceError(f"{where} has a wrong number of fields; {fix}")
        name, target, protocol = row["source"], row["target"], row["protocol"]
        if name not in sources:
            raise TaskspaceError(f"{where}: unknown source '{name}'{did_you_mean(name, sources)} (the zoo's sources: "
                                 f"{', '.join(sources)}); {fix}")
        layers = sources[name].layers
        layer = row.get("layer") or ""
        if not layer:
            if len(layers) != 1:
                raise TaskspaceError(f"{where}: source '{name}' has layers {', '.join(layers)}; name one in a layer "
                                     "column")
            layer = layers[0]
        if layer not in layers:
            raise TaskspaceError(f"{where}: source '{name}' has no layer '{layer}'{did_you_mean(layer, layers)} "
                                 f"(layers: {', '.join(layers)}); {fix}")
        if target not in targets:
            raise TaskspaceError(f"{where}: unknown target '{target}'{did_you_mean(target, targets)}; {fix}")
        if not protocol or not protocol.replace("_", "").isalnum():
            raise TaskspaceError(f"{where}: protocol '{protocol}' must be a name of letters, digits and '_'; {fix}")
        accuracy = parse_accuracy(row["accuracy"], where=where, fix=fix)
        parsed.append({"source": name, "layer": layer, "target": target, "protocol": protocol,
                       "accuracy": accuracy})
    return parsed
