"""A history read from long CSV files measured elsewhere: truth and estimator values per (source, target).

``truth.csv``: ``source,target[,layer],protocol,accuracy``; ``scores.csv``: ``source,target[,layer],
estimator,score`` (any column order; a spreadsheet's byte-order mark and spaces around fields are
accepted). A source at a layer becomes the module ``source:layer``. Estimator names are kept as the file
spells them, and their values are read as higher-is-better. Missing cells are normal: a source never
measured on a target is NaN.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskspace.errors import TaskspaceError

__all__ = ["History", "read_history", "read_long_csv"]

TRUTH_FIELDS = ("source", "target", "protocol", "accuracy")
SCORE_FIELDS = ("source", "target", "estimator", "score")


@dataclass(frozen=True)
class History:
    """Measured results of sources on targets, with estimator values beside them.

    Attributes:
        sources: module ids (``source`` or ``source:layer``), in the files' order of appearance.
        targets: target ids, in the files' order of appearance.
        truths: protocol -> ``(sources, targets)`` accuracies in [0, 1], NaN where unmeasured.
        evidence: estimator -> ``(sources, targets)`` values, NaN where missing.
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    truths: dict[str, np.ndarray]
    evidence: dict[str, np.ndarray]

    def cells(self, protocol: str) -> int:
        """How many (source, target) cells have a measured accuracy under ``protocol``."""
        return int(np.isfinite(self.truths[protocol]).sum())


def read_history(
    truth: str | os.PathLike[str] | None = None,
    scores: str | os.PathLike[str] | None = None,
    *,
    percent: bool = False,
) -> History:
    """Read a truth file, a scores file, or both into one :class:`History`.

    Args:
        truth: ``source,target[,layer],protocol,accuracy`` rows.
        scores: ``source,target[,layer],estimator,score`` rows.
        percent: the truth's accuracies are percentages (in [0, 100]); they are divided by 100.

    Raises:
        TaskspaceError: a missing file, a missing column, a value that is not a number, an accuracy out of
            range, or two rows for one cell with different values (one line naming the file, both lines and
            the fix). Nothing is read half.
    """
    if truth is None and scores is None:
        raise TaskspaceError("give a truth file, a scores file, or both")
    truth_rows = _read_rows(truth, TRUTH_FIELDS, "protocol", "accuracy", percent=percent) if truth else []
    score_rows = _read_rows(scores, SCORE_FIELDS, "estimator", "score", percent=False) if scores else []
    sources = tuple(dict.fromkeys(row[0] for row in [*truth_rows, *score_rows]))
    targets = tuple(dict.fromkeys(row[1] for row in [*truth_rows, *score_rows]))
    return History(sources, targets, _matrices(truth_rows, sources, targets),
                   _matrices(score_rows, sources, targets))


Row = tuple[str, str, str, float, int]


def _matrices(rows: Sequence[Row], sources: tuple[str, ...], targets: tuple[str, ...]) -> dict[str, np.ndarray]:
    index_source = {name: i for i, name in enumerate(sources)}
    index_target = {name: i for i, name in enumerate(targets)}
    matrices: dict[str, np.ndarray] = {}
    for source, target, name, value, _ in rows:
        matrix = matrices.setdefault(name, np.full((len(sources), len(targets)), math.nan))
        matrix[index_source[source], index_target[target]] = value
    return matrices


def read_long_csv(path: str | os.PathLike[str], fields: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a long results CSV with columns ``fields`` and an optional ``layer``, any column order,
    as ``(line number, {column: stripped text})``; blank lines skipped. A spreadsheet's byte-order mark
    and spaces around fields are accepted.

    Raises:
        TaskspaceError: a missing or unreadable file, a missing or unknown column, a line with another
            number of fields than the header, or no row (one line naming the file and the fix).
    """
    file = Path(path)
    columns = ",".join((fields[0], fields[1], "[layer]", *fields[2:])).replace(",[layer]", "[,layer]")
    if not file.is_file():
        raise TaskspaceError(f"'{file}' does not exist; pass a CSV with columns {columns}")
    try:
        rows = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8-sig")), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TaskspaceError(f"'{file}' cannot be read as UTF-8 CSV ({error}); save it as CSV and try again") from None
    header = [cell.strip() for cell in rows[0]] if rows else []
    missing = [field for field in fields if field not in header]
    if missing:
        raise TaskspaceError(f"'{file}' lacks column(s) {', '.join(missing)} (it has {', '.join(header) or 'none'}); "
                             f"give columns {columns}")
    extra = [column for column in header if column not in (*fields, "layer")]
    if extra:
        raise TaskspaceError(f"'{file}' has an unknown column '{extra[0]}'; columns are {columns}")
    parsed = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise TaskspaceError(f"'{file}' line {number} has {len(cells)} fields where the header has "
                                 f"{len(header)}; fix the line")
        parsed.append((number, {column: cell.strip() for column, cell in zip(header, cells, strict=True)}))
    if not parsed:
        raise TaskspaceError(f"'{file}' holds no rows; give at least one line under the header {columns}")
    return parsed


def _read_rows(path: str | os.PathLike[str], fields: tuple[str, ...], name_field: str, value_field: str, *,
               percent: bool) -> list[Row]:
    file = Path(path)
    parsed: list[Row] = []
    seen: dict[tuple[str, str, str], tuple[float, int]] = {}
    for number, row in read_long_csv(file, fields):
        where = f"'{file}' line {number}"
        if not row["source"] or not row["target"] or not row[name_field]:
            raise TaskspaceError(f"{where} leaves source, target or {name_field} empty; fill it in or drop the line")
        source = f"{row['source']}:{row['layer']}" if row.get("layer") else row["source"]
        value = _number(row[value_field], where=where, field=value_field)
        if value_field == "accuracy":
            value = _accuracy(value, row[value_field], where=where, percent=percent)
        key = (source, row["target"], row[name_field])
        if key in seen and seen[key][0] != value:
            raise TaskspaceError(f"'{file}' lines {seen[key][1]} and {number} give {source} on {row['target']} "
                                 f"({row[name_field]}) two values; keep one")
        if key not in seen:
            seen[key] = (value, number)
            parsed.append((source, row["target"], row[name_field], value, number))
    return parsed


def _number(text: str, *, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TaskspaceError(f"{where}: {field} '{text}' is not a finite number; fix the value or drop the line")
    return value


def _accuracy(value: float, text: str, *, where: str, percent: bool) -> float:
    if percent:
        if not 0.0 <= value <= 100.0:
            raise TaskspaceError(f"{where}: accuracy '{text}' is not a percentage in [0, 100]; fix the value")
        return value / 100.0
    if not 0.0 <= value <= 1.0:
        hint = "; if the file gives percentages, pass --percent" if 1.0 < value <= 100.0 else ""
        raise TaskspaceError(f"{where}: accuracy '{text}' is not a number in [0, 1]{hint}")
    return value
