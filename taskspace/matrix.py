"""The transferability matrix: scores of every source on every target, with provenance.

``scores[i, j]`` is how well source ``sources[i]`` is predicted to serve target ``targets[j]`` by one
estimator (or, for a ground truth, the measured accuracy). Missing cells are NaN. Files: long CSV
(``source,target,estimator,score``, several estimators in one file), JSON and NPZ (no pickle), each
carrying a schema version that is checked on load.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskspace.errors import DataError
from taskspace.io import read_json, read_npz, write_json, write_npz, write_text

__all__ = [
    "MATRIX_SCHEMA",
    "CSV_COLUMNS",
    "TransferabilityMatrix",
    "write_matrices_csv",
    "read_matrices_csv",
    "write_matrix_set",
    "read_matrix_set",
    "merge_matrix_sets",
]

MATRIX_SCHEMA = 1
CSV_COLUMNS = ("source", "target", "estimator", "score")


@dataclass(frozen=True, eq=False)
class TransferabilityMatrix:
    """Scores of ``sources`` × ``targets`` by one ``estimator``.

    Attributes:
        scores: float64 array (len(sources), len(targets)); NaN marks a cell not computed.
        sources: source task ids (rows).
        targets: target task ids (columns).
        estimator: the estimator's name (or a ground-truth protocol's).
        greater_is_better: direction of the scores.
        provenance: config, hashes, versions and seeds the scores came from (JSON values).
    """

    scores: np.ndarray
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    estimator: str
    greater_is_better: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "targets", tuple(self.targets))
        if scores.shape != (len(self.sources), len(self.targets)):
            raise ValueError(
                f"scores have shape {scores.shape} but there are {len(self.sources)} sources and "
                f"{len(self.targets)} targets"
            )
        for name, labels in (("sources", self.sources), ("targets", self.targets)):
            if len(set(labels)) != len(labels):
                raise ValueError(f"{name} repeat an id: {list(labels)}")

    def score(self, source: str, target: str) -> float:
        return float(self.scores[self.sources.index(source), self.targets.index(target)])

    def column(self, target: str) -> np.ndarray:
        """Scores of every source on ``target``."""
        return self.scores[:, self.targets.index(target)]

    def long_rows(self) -> list[tuple[str, str, str, float]]:
        """``(source, target, estimator, score)`` for every computed cell, row-major."""
        return [
            (source, target, self.estimator, float(self.scores[i, j]))
            for i, source in enumerate(self.sources)
            for j, target in enumerate(self.targets)
            if not math.isnan(self.scores[i, j])
        ]

    def equals(self, other: TransferabilityMatrix) -> bool:
        """Same ids, estimator, direction and bit-identical scores (NaN equal to NaN)."""
        return (
            self.sources == other.sources
            and self.targets == other.targets
            and self.estimator == other.estimator
            and self.greater_is_better == other.greater_is_better
            and np.array_equal(self.scores, other.scores, equal_nan=True)
        )

    # JSON ------------------------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        return {
            "schema": MATRIX_SCHEMA,
            "kind": "transferability_matrix",
            "estimator": self.estimator,
            "greater_is_better": self.greater_is_better,
            "sources": list(self.sources),
            "targets": list(self.targets),
            "scores": [[None if math.isnan(value) else float(value) for value in row] for row in self.scores],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json_dict(cls, document: Mapping[str, Any], *, source: str = "matrix") -> TransferabilityMatrix:
        _check_schema(document.get("schema") if isinstance(document, Mapping) else None, source)
        try:
            scores = np.array(
                [[np.nan if value is None else float(value) for value in row] for row in document["scores"]],
                dtype=np.float64,
            ).reshape(len(document["sources"]), len(document["targets"]))
            return cls(
                scores=scores,
                sources=tuple(document["sources"]),
                targets=tuple(document["targets"]),
                estimator=str(document["estimator"]),
                greater_is_better=bool(document["greater_is_better"]),
                provenance=dict(document.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{source} is not a valid transferability matrix ({error}); recompute it") from None

    def write_json(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_json_dict())

    @classmethod
    def read_json(cls, path: str | os.PathLike[str]) -> TransferabilityMatrix:
        return cls.from_json_dict(read_json(path), source=f"'{path}'")

    # NPZ -------------------------------------------------------------------------------------------
    def write_npz(self, path: str | os.PathLike[str]) -> None:
        write_npz(
            path,
            {
                "schema": np.array(MATRIX_SCHEMA),
                "scores": self.scores,
                "sources": np.array(self.sources, dtype=str),
                "targets": np.array(self.targets, dtype=str),
                "estimator": np.array(self.estimator),
                "greater_is_better": np.array(self.greater_is_better),
                "provenance_json": np.array(json.dumps(self.provenance, sort_keys=True)),
            },
        )

    @classmethod
    def read_npz(cls, path: str | os.PathLike[str]) -> TransferabilityMatrix:
        arrays = read_npz(path)
        _check_schema(int(arrays["schema"]) if "schema" in arrays else None, f"'{path}'")
        try:
            return cls(
                scores=arrays["scores"],
                sources=tuple(str(value) for value in arrays["sources"]),
                targets=tuple(str(value) for value in arrays["targets"]),
                estimator=str(arrays["estimator"]),
                greater_is_better=bool(arrays["greater_is_better"]),
                provenance=json.loads(str(arrays["provenance_json"])),
            )
        except (KeyError, ValueError) as error:
            raise DataError(f"'{path}' is not a valid transferability matrix ({error}); recompute it") from None


def _check_schema(schema: object, source: str) -> None:
    if schema != MATRIX_SCHEMA:
        raise DataError(
            f"{source} has matrix schema {schema!r}, this taskspace reads schema {MATRIX_SCHEMA}; "
            "recompute it with this version"
        )


def write_matrices_csv(path: str | os.PathLike[str], matrices: Iterable[TransferabilityMatrix]) -> None:
    """Write one long CSV ``source,target,estimator,score`` for several matrices, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for matrix in matrices:
        for source, target, estimator, score in matrix.long_rows():
            writer.writerow((source, target, estimator, repr(score)))
    write_text(path, buffer.getvalue())


def read_matrices_csv(
    path: str | os.PathLike[str],
    *,
    sources: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> dict[str, TransferabilityMatrix]:
    """Read a long CSV back into one matrix per estimator (ids in first-seen order unless given)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"matrix file not found: '{file}'; check the path") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        raise DataError(
            f"'{file}' does not start with the header {','.join(CSV_COLUMNS)}; it is not a taskspace matrix CSV"
        )
    cells: dict[str, dict[tuple[str, str], float]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(CSV_COLUMNS):
            raise DataError(f"'{file}' line {number} has {len(row)} fields, expected 4; the file is damaged")
        source, target, estimator, value = row
        try:
            cells.setdefault(estimator, {})[(source, target)] = float(value)
        except ValueError:
            raise DataError(f"'{file}' line {number}: score '{value}' is not a number; the file is damaged") from None
    all_sources = list(sources) if sources is not None else list(dict.fromkeys(s for c in cells.values() for s, _ in c))
    all_targets = list(targets) if targets is not None else list(dict.fromkeys(t for c in cells.values() for _, t in c))
    matrices = {}
    for estimator, values in cells.items():
        scores = np.full((len(all_sources), len(all_targets)), np.nan)
        for (source, target), score in values.items():
            scores[all_sources.index(source), all_targets.index(target)] = score
        matrices[estimator] = TransferabilityMatrix(scores, tuple(all_sources), tuple(all_targets), estimator)
    return matrices


def write_matrix_set(folder: str | os.PathLike[str], matrices: Sequence[TransferabilityMatrix], *, stem: str) -> None:
    """Write ``<stem>.csv`` (long), ``<stem>.json`` and ``<stem>.npz`` for matrices over the same ids."""
    directory = Path(folder)
    if not matrices:
        raise ValueError("no matrices to write")
    sources, targets = matrices[0].sources, matrices[0].targets
    if any(matrix.sources != sources or matrix.targets != targets for matrix in matrices):
        raise ValueError("matrices of one set must share sources and targets")
    write_matrices_csv(directory / f"{stem}.csv", matrices)
    write_json(directory / f"{stem}.json", {"schema": MATRIX_SCHEMA, "kind": "matrix_set",
                                            "matrices": [matrix.to_json_dict() for matrix in matrices]})
    write_npz(
        directory / f"{stem}.npz",
        {
            "schema": np.array(MATRIX_SCHEMA),
            "scores": np.stack([matrix.scores for matrix in matrices]),
            "estimators": np.array([matrix.estimator for matrix in matrices], dtype=str),
            "greater_is_better": np.array([matrix.greater_is_better for matrix in matrices]),
            "sources": np.array(sources, dtype=str),
            "targets": np.array(targets, dtype=str),
            "provenance_json": np.array(json.dumps(matrices[0].provenance, sort_keys=True)),
        },
    )


def merge_matrix_sets(earlier: Mapping[str, TransferabilityMatrix],
                      newer: Sequence[TransferabilityMatrix]) -> list[TransferabilityMatrix]:
    """``newer``, after the ``earlier`` estimators it does not replace that cover the same sources and targets.

    A run scored again with other estimators keeps the matrices it already has: ``matrix.csv`` holds
    every estimator scored so far, not only the last call's. Earlier matrices over other ids (a run
    whose space changed) are dropped.
    """
    if not newer:
        return []
    ids = (newer[0].sources, newer[0].targets)
    names = {matrix.estimator for matrix in newer}
    kept = [matrix for name, matrix in earlier.items()
            if name not in names and (matrix.sources, matrix.targets) == ids]
    return kept + list(newer)


def read_matrix_set(path: str | os.PathLike[str]) -> dict[str, TransferabilityMatrix]:
    """Read a ``<stem>.json`` or ``<stem>.npz`` written by :func:`write_matrix_set` (schema checked)."""
    file = Path(path)
    if file.suffix == ".npz":
        arrays = read_npz(file)
        _check_schema(int(arrays["schema"]) if "schema" in arrays else None, f"'{file}'")
        provenance = json.loads(str(arrays["provenance_json"]))
        return {
            str(name): TransferabilityMatrix(
                arrays["scores"][index], tuple(str(s) for s in arrays["sources"]),
                tuple(str(t) for t in arrays["targets"]), str(name), bool(arrays["greater_is_better"][index]),
                provenance,
            )
            for index, name in enumerate(arrays["estimators"])
        }
    document = read_json(file)
    _check_schema(document.get("schema") if isinstance(document, dict) else None, f"'{file}'")
    if document.get("kind") != "matrix_set":
        raise DataError(f"'{file}' is not a matrix set (kind {document.get('kind')!r}); pass the run's matrix.json")
    matrices = [TransferabilityMatrix.from_json_dict(item, source=f"'{file}'") for item in document["matrices"]]
    return {matrix.estimator: matrix for matrix in matrices}
