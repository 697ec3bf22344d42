"""Every shape of run.json on disk reopens through one opener, with the identity it was made with.

The records under ``tests/records/`` are frozen: written once by the version that made each shape and
never regenerated, so a changed byte in an identity function (which would refuse every existing folder
as "edited by hand") fails here. The zoo record names its weights file relative to this folder; a run
folder records where its files are beside its identity, so the test points it at the copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from taskspace.cli import main
from taskspace.errors import TaskspaceError
from taskspace.runner import Run
from taskspace.runner.imported import ImportedRun
from taskspace.runner.record import open_any_run, record_kind
from taskspace.zoo.run import ZooRun

RECORDS = Path(__file__).parent / "records"

#: The identities recorded in the frozen files (the format-1 record has none: it gains its format-2 one).
IDENTITIES = {"trained-format-1": "6c05ede22a0d90c7", "trained-format-2": "6c05ede22a0d90c7",
              "zoo": "e26fe7130ea86d88", "imported": "6b62bc0b7aaa5a03"}


def _folder(tmp_path: Path, shape: str) -> Path:
    folder = tmp_path / shape
    folder.mkdir()
    record = json.loads((RECORDS / f"{shape}.json").read_text())
    if shape == "zoo":
        shutil.copyfile(RECORDS / "zoo-mine.pt", tmp_path / "mine.pt")
        record["sources"][0]["weights"] = str(tmp_path / "mine.pt")
    (folder / "run.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(("shape", "kind", "cls"), [
    ("trained-format-1", "trained", Run), ("trained-format-2", "trained", Run),
    ("zoo", "zoo", ZooRun), ("imported", "imported", ImportedRun)])
def test_every_record_shape_reopens_with_its_recorded_identity(tmp_path: Path, shape: str, kind: str,
                                                               cls: type) -> None:
    folder = _folder(tmp_path, shape)
    assert record_kind(folder) == kind
    run = open_any_run(folder)
    assert type(run) is cls and run.kind == kind
    assert run.identity == IDENTITIES[shape]
    recorded = json.loads((folder / "run.json").read_text())
    assert recorded["identity"] == IDENTITIES[shape]  # a format-1 record is upgraded in place, same identity
    if shape == "trained-format-1":
        assert recorded["format"] == 2


def test_a_changed_weights_file_is_refused_and_an_unknown_kind_is_named(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "zoo")
    (tmp_path / "mine.pt").write_bytes((tmp_path / "mine.pt").read_bytes() + b"\0")
    with pytest.raises(TaskspaceError, match="files of source"):
        open_any_run(folder)
    other = tmp_path / "future"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"kind": "hologram", "format": 9}))
    assert record_kind(other) is None
    with pytest.raises(TaskspaceError, match="kind 'hologram'"):
        open_any_run(other)
    assert record_kind(tmp_path / "nothing") is None


def test_every_reading_command_opens_every_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """structure and report read an imported run as they read any other; similarity and a new target of
    recommend say why they cannot."""
    truth = tmp_path / "truth.csv"
    truth.write_text("source,target,protocol,accuracy\n" + "".join(
        f"{source},{target},ft,{0.5 + 0.1 * i - 0.05 * j}\n"
        for i, source in enumerate("abc") for j, target in enumerate("vwxyz")))
    assert main(["import", str(tmp_path / "run"), "--truth", str(truth)]) == 0
    assert main(["structure", str(tmp_path / "run")]) == 0
    assert main(["report", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["similarity", str(tmp_path / "run")]) == 2
    assert "imported run" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "run"), "--target", "q"]) == 2
    assert "holds no networks" in capsys.readouterr().err
