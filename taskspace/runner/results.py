"""The result files every kind of run holds, read and written by one set of functions.

A run hands these functions its paths: the matrix set (``matrix.{csv,json,npz}``), the ground truth
(``truth.csv`` in either column set, and ``truth_imported.csv``), the verdict (``evaluation.csv``), and
the policy that picks the estimator and the ground truth a run is shown by.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from taskspace.analysis import EVALUATION_COLUMNS
from taskspace.errors import TaskspaceError, did_you_mean
from taskspace.io import read_json, sha256_of_file, write_json, write_text
from taskspace.runner.folder import LAYOUT, holding_lock

__all__ = [
    "RunResults",
    "PREFERRED_ESTIMATOR",
    "MAIN_PROTOCOL",
    "TRUTH_COLUMNS",
    "LAYERED_TRUTH_COLUMNS",
    "MATRIX_COLUMNS",
    "VERDICT_COLUMNS",
    "csv_text",
    "choose_estimator",
    "choose_protocol",
    "parse_accuracy",
    "read_estimates",
    "write_estimates",
    "read_truth_csv",
    "truth_csv_text",
    "layered_truth_csv_text",
    "read_imported_truth",
    "read_verdict",
    "write_verdict",
]

#: The estimator a run is shown by when it has it: LogME, the choice of the rule written down in
#: docs/default-estimator.md before its measurement (benchmarks/results/default_estimator.json: tied with
#: the default space's leader and the cheapest of those tied; kernel_ridge_r2, the default before, was not
#: tied with the leader).
PREFERRED_ESTIMATOR = "logme"

#: The ground truth a run is shown against when it was measured.
MAIN_PROTOCOL = "frozen_all"

#: ``truth.csv`` of a run whose rows are its trained sources (one module each).
TRUTH_COLUMNS = ("source", "target", "protocol", "accuracy", "diagonal")
#: ``truth.csv`` of a run whose rows are (source, layer) modules; imported files may add ``layer`` or not.
LAYERED_TRUTH_COLUMNS = ("source", "layer", "target", "protocol", "accuracy")
#: ``matrix.csv`` of a run whose rows are (source, layer) modules: one long row per cell and estimator.
MATRIX_COLUMNS = ("source", "layer", "target", "estimator", "score")

#: The columns of ``evaluation.csv``: the rows of :func:`taskspace.analysis.evaluate`.
VERDICT_COLUMNS = EVALUATION_COLUMNS
_VERDICT_TEXT = ("estimator", "protocol")
_VERDICT_REQUIRED = ("estimator", "protocol", "kendall_tau", "kendall_tau_low", "kendall_tau_high")


class RunResults:
    """What every kind of run does with its folder: paths from :data:`LAYOUT`, the one writer, and the
    results every run holds (the matrix set, the verdict, the default estimator and protocol). A run
    class mixes it in and adds what its kind differs in: ``truths()`` and how estimates are written."""

    folder: Path

    def path(self, role: str, *parts: str) -> Path:
        """``folder / LAYOUT[role] / parts``: the path of one of the run's files or folders."""
        return self.folder.joinpath(LAYOUT[role], *parts)

    def recommendation_file(self, target: str, estimator: str) -> Path:
        return self.path("recommendations", f"{target}__{estimator}.json")

    @contextlib.contextmanager
    def writing(self) -> Iterator[Self]:
        """Hold the run's lock while writing into it (re-entrant within one process)."""
        with holding_lock(self.folder, self.path("lock")):
            yield self

    def has_estimates(self) -> bool:
        return self.path("matrix").with_suffix(".json").is_file()

    def estimates(self) -> dict[str, Any]:
        """Estimator name -> :class:`~taskspace.matrix.TransferabilityMatrix` (``matrix.json``)."""
        return read_estimates(self.path("matrix"), run=self.folder)

    def truths(self) -> dict[str, Any]:
        raise NotImplementedError

    def verdict(self) -> list[dict[str, Any]]:
        """The rows of ``evaluation.csv``, numbers as floats; empty when no verdict was written.

        Raises:
            TaskspaceError: the file lacks a column, or holds a value that is not a number.
        """
        return read_verdict(self.path("verdict"), run=self.folder)

    def write_verdict(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``evaluation.csv`` (columns :data:`VERDICT_COLUMNS`) with the csv module, and beside it
        the digest of the results it was computed from (``evaluation.json``)."""
        write_verdict(self.path("verdict"), rows)
        write_json(self.path("verdict_inputs"), {"results": self.results_digest()})

    def results_digest(self) -> str:
        """SHA-256 over the files a verdict is computed from: the matrix and every ground truth."""
        digest = hashlib.sha256()
        for role, suffix in (("matrix", ".json"), ("truth", ""), ("imported", "")):
            path = self.path(role).with_suffix(suffix) if suffix else self.path(role)
            digest.update(f"{role}:".encode())
            digest.update(sha256_of_file(path).encode() if path.is_file() else b"absent")
        return digest.hexdigest()

    def verdict_is_current(self) -> bool:
        """Whether ``evaluation.csv`` was computed from the results the run holds now (False when the run
        has no verdict, or one written before its digest was recorded)."""
        try:
            recorded = read_json(self.path("verdict_inputs"))
        except TaskspaceError:
            return False
        return (self.path("verdict").is_file() and isinstance(recorded, dict)
                and recorded.get("results") == self.results_digest())

    def default_protocol(self, requested: str | None = None) -> str | None:
        """See :func:`choose_protocol`."""
        return choose_protocol(self.truths(), requested)

    def default_estimator(self, requested: str | None = None, *, protocol: str | None = None) -> str:
        """See :func:`choose_estimator` (a verdict older than the run's results is not consulted)."""
        verdict = self.verdict()  # read first: a damaged file is named even when it is out of date
        verdict = verdict if self.verdict_is_current() else []
        return choose_estimator(self.estimates(), verdict, requested=requested, protocol=protocol, run=self.folder)


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A CSV document (header, then rows) as text, written by the csv module."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


# -- the matrix set -----------------------------------------------------------------------------------


def read_estimates(stem: Path, *, run: str | os.PathLike[str]) -> dict[str, Any]:
    """Estimator name -> :class:`~taskspace.matrix.TransferabilityMatrix` from ``<stem>.json``."""
    from taskspace.matrix import read_matrix_set

    path = stem.with_suffix(".json")
    if not path.is_file():
        raise TaskspaceError(f"no matrix in '{run}'; score it with `taskspace matrix {run}`")
    return read_matrix_set(path)


def write_estimates(stem: Path, matrices: Sequence[Any], *, layered: bool) -> None:
    """Merge ``matrices`` into the set at ``stem`` (new estimators added, same-named ones replaced) and
    write it; ``layered`` writes ``matrix.csv`` as long rows with a layer column."""
    from taskspace.matrix import merge_matrix_sets, write_matrix_set
    from taskspace.zoo.spec import split_module_id

    existing = read_estimates(stem, run=stem.parent) if stem.with_suffix(".json").is_file() else {}
    merged = merge_matrix_sets(existing, matrices)
    write_matrix_set(stem.parent, merged, stem=stem.name)
    if layered:
        rows = []
        for matrix in merged:
            for module, target, estimator, score in matrix.long_rows():
                source, layer = split_module_id(module)
                rows.append((source, layer, target, estimator, repr(score)))
        write_text(stem.with_suffix(".csv"), csv_text(MATRIX_COLUMNS, rows))


# -- the default-estimator policy ---------------------------------------------------------------------


def choose_protocol(truths: Mapping[str, Any], requested: str | None = None) -> str | None:
    """``requested`` (it must be measured), else :data:`MAIN_PROTOCOL` if measured, else the first; None
    when the run has no ground truth."""
    if requested is not None:
        if requested not in truths:
            available = ", ".join(truths) or "none: measure one with `taskspace truth RUN` first"
            raise TaskspaceError(f"the run has no ground truth '{requested}' (measured: {available})")
        return requested
    if not truths:
        return None
    return MAIN_PROTOCOL if MAIN_PROTOCOL in truths else next(iter(truths))


def choose_estimator(
    estimates: Mapping[str, Any],
    verdict: Sequence[Mapping[str, Any]],
    *,
    requested: str | None = None,
    protocol: str | None = None,
    run: str | os.PathLike[str] = "RUN",
) -> str:
    """The estimator a run is shown and ranked by.

    ``requested`` if given (it must be in the run). Otherwise :data:`PREFERRED_ESTIMATOR` when the run
    has it, unless the run's own verdict (rows of ``evaluation.csv``, against ``protocol``, by default
    ``frozen_all`` when measured) puts its mean Kendall τ below the lower end of the best estimator's
    95% interval: then that best estimator. Without a verdict, the preferred one, else the first.
    """
    if requested is not None:
        if requested not in estimates:
            from taskspace.scoring import list_estimators

            known = list_estimators()
            add = (f", or add it with `taskspace matrix {run} --estimators {requested}`" if requested in known
                   else did_you_mean(requested, [*estimates, *known]))
            raise TaskspaceError(
                f"the run's matrix has no estimator '{requested}' (it has {', '.join(sorted(estimates))}); "
                f"pass one of those{add}"
            )
        return requested
    rows = [row for row in verdict if row["estimator"] in estimates and _sortable(row["kendall_tau"]) > -math.inf]
    if rows:
        protocols = [row["protocol"] for row in rows]
        chosen = protocol if protocol in protocols else (MAIN_PROTOCOL if MAIN_PROTOCOL in protocols else protocols[0])
        rows = [row for row in rows if row["protocol"] == chosen]
    best = max(rows, key=lambda row: _sortable(row["kendall_tau"])) if rows else None
    if PREFERRED_ESTIMATOR in estimates:
        preferred = next((row for row in rows if row["estimator"] == PREFERRED_ESTIMATOR), None)
        if best is None or preferred is None or _sortable(preferred["kendall_tau"]) >= _sortable(
            best.get("kendall_tau_low", math.nan)
        ):
            return PREFERRED_ESTIMATOR
    return str(best["estimator"]) if best is not None else next(iter(estimates))


def _sortable(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else -math.inf


# -- the ground truth's files -------------------------------------------------------------------------


def parse_accuracy(text: str, *, where: str, fix: str) -> float:
    """An accuracy read from a file: a number in [0, 1], else one line naming ``where`` and the ``fix``."""
    try:
        accuracy = float(text)
    except (TypeError, ValueError):
        accuracy = math.nan
    if not 0.0 <= accuracy <= 1.0:
        raise TaskspaceError(f"{where}: accuracy '{text}' is not a number in [0, 1]; {fix}")
    return accuracy


def truth_csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``truth.csv`` (columns :data:`TRUTH_COLUMNS`) of a run whose rows are its trained sources."""
    return csv_text(TRUTH_COLUMNS, [(row["source"], row["target"], row["protocol"], repr(float(row["accuracy"])),
                                     "true" if row["diagonal"] else "false") for row in rows])


def layered_truth_csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``truth.csv`` (columns :data:`LAYERED_TRUTH_COLUMNS`) of a run whose rows are (source, layer) modules."""
    return csv_text(LAYERED_TRUTH_COLUMNS, [(row["source"], row["layer"], row["target"], row["protocol"],
                                             repr(float(row["accuracy"]))) for row in rows])


def read_truth_csv(path: str | os.PathLike[str], *, run: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``truth.csv`` (columns :data:`TRUTH_COLUMNS`) as one matrix of accuracies per protocol.

    Raises:
        TaskspaceError: the file is missing, has other columns, or a row whose accuracy is not a
            number in [0, 1] (one line naming the file, the line and the fix).
    """
    import numpy as np

    from taskspace.matrix import TransferabilityMatrix

    file = Path(path)
    folder = run if run is not None else file.parent
    fix = f"write it again from the measured cells with `taskspace truth {folder}`"
    if not file.is_file():
        raise TaskspaceError(f"no ground truth at '{file}'; measure it with `taskspace truth {folder}`")
    try:
        rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TaskspaceError(f"'{file}' cannot be read ({error}); {fix}") from None
    if not rows or tuple(rows[0].keys()) != TRUTH_COLUMNS:
        raise TaskspaceError(f"'{file}' is not a taskspace truth.csv (columns {','.join(TRUTH_COLUMNS)}); {fix}")
    for number, row in enumerate(rows, start=2):
        if any(value is None or value == "" for value in row.values()):
            raise TaskspaceError(f"'{file}' line {number} is incomplete; {fix}")
        parse_accuracy(row["accuracy"], where=f"'{file}' line {number}", fix=fix)
    sources = list(dict.fromkeys(row["source"] for row in rows))
    targets = list(dict.fromkeys(row["target"] for row in rows))
    matrices: dict[str, Any] = {}
    for protocol in dict.fromkeys(row["protocol"] for row in rows):
        scores = np.full((len(sources), len(targets)), np.nan)
        for row in rows:
            if row["protocol"] == protocol:
                scores[sources.index(row["source"]), targets.index(row["target"])] = float(row["accuracy"])
        matrices[protocol] = TransferabilityMatrix(scores, tuple(sources), tuple(targets), protocol)
    return matrices


def read_imported_truth(
    path: str | os.PathLike[str],
    *,
    layers: Mapping[str, Sequence[str]],
    targets: Sequence[str],
    fix: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of a results CSV (``source,target[,layer],protocol,accuracy``, any column order), checked
    against a run's sources (``layers``: source name -> its layers) and ``targets``: known sources, layers
    and targets, accuracies in [0, 1].

    A row without a layer names a source with one layer. Raises :class:`TaskspaceError` (one line: the
    file, the line, the fix) on anything else.
    """
    from taskspace.history import read_long_csv

    file = Path(path)
    fix = fix or "fix the file and import it again"
    seen: dict[tuple[str, str, str, str], tuple[float, int]] = {}
    parsed = []
    for number, row in read_long_csv(file, ("source", "target", "protocol", "accuracy")):
        where = f"'{file}' line {number}"
        name, target, protocol = row["source"], row["target"], row["protocol"]
        if name not in layers:
            raise TaskspaceError(f"{where}: unknown source '{name}'{did_you_mean(name, layers)} (the zoo's sources: "
                                 f"{', '.join(layers)}); {fix}")
        known = layers[name]
        layer = row.get("layer") or ""
        if not layer:
            if len(known) != 1:
                raise TaskspaceError(f"{where}: source '{name}' has layers {', '.join(known)}; name one in a layer "
                                     "column")
            layer = known[0]
        if layer not in known and tuple(known) == ("",):
            raise TaskspaceError(f"{where}: source '{name}' is a network of the run read at one layer; leave its "
                                 f"layer column empty; {fix}")
        if layer not in known:
            raise TaskspaceError(f"{where}: source '{name}' has no layer '{layer}'{did_you_mean(layer, known)} "
                                 f"(layers: {', '.join(known)}); {fix}")
        if target not in targets:
            raise TaskspaceError(f"{where}: unknown target '{target}'{did_you_mean(target, targets)}; {fix}")
        if not protocol or not protocol.replace("_", "").isalnum():
            raise TaskspaceError(f"{where}: protocol '{protocol}' must be a name of letters, digits and '_'; {fix}")
        accuracy = parse_accuracy(row["accuracy"], where=where, fix=fix)
        key = (name, layer, target, protocol)
        if key in seen:
            if seen[key][0] != accuracy:
                raise TaskspaceError(f"'{file}' lines {seen[key][1]} and {number} give {name}:{layer} on {target} "
                                     f"({protocol}) two accuracies; keep one")
            continue
        seen[key] = (accuracy, number)
        parsed.append({"source": name, "layer": layer, "target": target, "protocol": protocol,
                       "accuracy": accuracy})
    return parsed


def merge_imports(earlier: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> tuple[
        list[dict[str, Any]], dict[str, Any]]:
    """Imported truth rows merged: ``rows`` (this file's) over ``earlier`` ones, cell by cell (source, layer,
    target, protocol). Returns the merged rows and ``{"rows": this file's rows, "kept": earlier cells kept,
    "given_again": cells this file gives again, "changed": of those, the ones with a new accuracy}``."""
    merged = {_cell_key(row): dict(row) for row in earlier}
    again = [row for row in rows if _cell_key(row) in merged]
    changed = sum(1 for row in again if merged[_cell_key(row)]["accuracy"] != row["accuracy"])
    merged.update({_cell_key(row): dict(row) for row in rows})
    return list(merged.values()), {"rows": list(rows), "kept": len(merged) - len(rows), "given_again": len(again),
                                   "changed": changed}


def _cell_key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return row["source"], row["layer"], row["target"], row["protocol"]


# -- the verdict --------------------------------------------------------------------------------------


def read_verdict(path: Path, *, run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``evaluation.csv``, numbers as floats; empty when no verdict was written.

    Raises:
        TaskspaceError: the file lacks a column, or holds a value that is not a number.
    """
    if not path.is_file():
        return []
    fix = f"write it again with `taskspace evaluate {run}`"
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TaskspaceError(f"'{path}' cannot be read ({error}); {fix}") from None
    if rows:
        missing = [column for column in _VERDICT_REQUIRED if column not in rows[0]]
        if missing:
            raise TaskspaceError(f"'{path}' lacks column(s) {', '.join(missing)}; {fix}")
    parsed = []
    for number, row in enumerate(rows, start=2):
        values: dict[str, Any] = {}
        for column, text in row.items():
            if column is None:
                raise TaskspaceError(f"'{path}' line {number} has extra fields; {fix}")
            if column in _VERDICT_TEXT:
                values[column] = text
                continue
            try:
                values[column] = float(text)
            except (TypeError, ValueError):
                raise TaskspaceError(f"'{path}' line {number}: {column} '{text}' is not a number; {fix}") from None
        parsed.append(values)
    return parsed


def write_verdict(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``evaluation.csv`` (columns :data:`VERDICT_COLUMNS`) with the csv module."""
    if not rows:
        raise TaskspaceError("no evaluation rows to write; the run's estimates and truths share no cell")
    write_text(path, csv_text(VERDICT_COLUMNS, [
        [repr(row[column]) if isinstance(row[column], float) else row[column] for column in VERDICT_COLUMNS]
        for row in rows]))
