"""TransferabilityMatrix files round-trip exactly, and foreign or damaged files are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taskspace.errors import DataError
from taskspace.matrix import TransferabilityMatrix, read_matrices_csv, write_matrices_csv


def _matrix(estimator="alignment", seed=0):
    scores = np.random.default_rng(seed).random((3, 2))
    scores[1, 0] = np.nan
    return TransferabilityMatrix(scores, ("a_vs_b", "a_vs_c", "b_vs_c"), ("a_vs_b", "c_vs_d"), estimator,
                                 provenance={"seed": 3, "config_hash": "abc"})


def test_json_and_npz_round_trip_exactly(tmp_path):
    matrix = _matrix()
    matrix.write_json(tmp_path / "m.json")
    matrix.write_npz(tmp_path / "m.npz")
    for loaded in (TransferabilityMatrix.read_json(tmp_path / "m.json"),
                   TransferabilityMatrix.read_npz(tmp_path / "m.npz")):
        assert loaded.equals(matrix)
        assert loaded.provenance == matrix.provenance


def test_long_csv_round_trips_several_estimators(tmp_path):
    first, second = _matrix("alignment", 0), _matrix("logme", 1)
    write_matrices_csv(tmp_path / "matrix.csv", [first, second])
    header = (tmp_path / "matrix.csv").read_text().splitlines()[0]
    assert header == "source,target,estimator,score"
    loaded = read_matrices_csv(tmp_path / "matrix.csv", sources=first.sources, targets=first.targets)
    assert loaded["alignment"].equals(first) and loaded["logme"].equals(second)


def test_other_schema_is_refused(tmp_path):
    document = _matrix().to_json_dict()
    document["schema"] = 99
    (tmp_path / "m.json").write_text(json.dumps(document))
    with pytest.raises(DataError, match="schema 99"):
        TransferabilityMatrix.read_json(tmp_path / "m.json")


def test_foreign_csv_is_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="header"):
        read_matrices_csv(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("source,target,estimator,score\na,b,c,not-a-number\n")
    with pytest.raises(DataError, match="not a number"):
        read_matrices_csv(tmp_path / "y.csv")


def test_shape_must_match_ids():
    with pytest.raises(ValueError, match="shape"):
        TransferabilityMatrix(np.zeros((2, 2)), ("a",), ("b", "c"), "x")
