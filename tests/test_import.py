"""``taskspace import``: a run made from results measured elsewhere, and every analysis on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from taskspace.cli import main

SOURCES = ("alpha", "beta", "gamma", "delta", "epsilon")
TARGETS = ("cars", "pets", "birds", "food", "flowers")


def _write_history(folder: Path, *, percent: bool = False, missing: int = 0) -> tuple[Path, Path]:
    """A 5 x 5 history: a shared order plus a target-specific part that LogME sees; ``missing`` cells left out."""
    rng = np.random.default_rng(4)
    accuracy = np.linspace(0.6, 0.8, 5)[:, None] + rng.normal(scale=0.05, size=(5, 5))
    logme = accuracy + rng.normal(scale=0.02, size=(5, 5))
    truth, scores = folder / "truth.csv", folder / "scores.csv"
    holes = {(i, (i + 1) % 5) for i in range(missing)}
    with open(truth, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "target", "protocol", "accuracy"])
        for i, source in enumerate(SOURCES):
            for j, target in enumerate(TARGETS):
                if (i, j) not in holes:
                    writer.writerow([source, target, "finetune", round(accuracy[i, j] * (100 if percent else 1), 4)])
    with open(scores, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "target", "estimator", "score"])
        for i, source in enumerate(SOURCES):
            for j, target in enumerate(TARGETS):
                writer.writerow([source, target, "LogME", logme[i, j]])
                writer.writerow([source, target, "Noise", rng.normal()])
    return truth, scores


def test_an_imported_history_is_evaluated_recommended_drawn_and_reported(tmp_path, capsys) -> None:
    truth, scores = _write_history(tmp_path, missing=2)
    run = tmp_path / "run"
    assert main(["import", str(run), "--truth", str(truth), "--scores", str(scores)]) == 0
    assert "5 sources x 5 targets: 23 measured accuracies (finetune), 2 estimators" in capsys.readouterr().out
    record = json.loads((run / "run.json").read_text())
    assert record["kind"] == "imported" and set(record["files"]) == {"truth", "scores"}

    assert main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "23 cells over 5 targets" in printed and "rank dispersion of the truth" in printed
    rows = {row["estimator"]: row for row in csv.DictReader(open(run / "evaluation.csv"))}
    assert set(rows) == {"history", "zoo_prior", "LogME", "Noise"}
    assert rows["zoo_prior"]["weighted_tau_vs_prior"] == "nan"
    difference = float(rows["history"]["weighted_tau_vs_prior"])
    assert difference == pytest.approx(float(rows["history"]["weighted_tau"]) - float(rows["zoo_prior"]["weighted_tau"]))
    assert float(rows["history"]["weighted_tau_vs_prior_low"]) < difference < float(
        rows["history"]["weighted_tau_vs_prior_high"])

    assert main(["recommend", str(run), "--target", "pets", "--k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "sources ranked by history" in printed and "this target trusts the prior" in printed
    assert "prior " in printed and "evidence " in printed  # each row's two parts
    saved = json.loads((run / "recommendations" / "pets__history.json").read_text())
    assert saved["estimator"] == "history" and saved["explanation"].startswith("history: learned on 4 other")

    assert main(["recommend", str(run), "--target", "pets", "--estimator", "LogME"]) == 0
    assert "sources ranked by LogME" in capsys.readouterr().out

    assert main(["structure", str(run)]) == 0
    assert (run / "structure" / "structure.json").is_file()
    assert main(["report", str(run)]) == 0
    report = (run / "report" / "report.md").read_text()
    assert "imported results of 5 sources on 5 targets" in report and "`history`" in report
    assert "5. Structure: modules and targets that transfer alike" in report


def test_a_history_of_truth_alone_ranks_by_the_prior(tmp_path, capsys) -> None:
    truth, _ = _write_history(tmp_path)
    run = tmp_path / "run"
    assert main(["import", str(run), "--truth", str(truth)]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert main(["recommend", str(run), "--target", "birds"]) == 0
    printed = capsys.readouterr().out
    assert "this target trusts the prior 100%, the evidence 0% (prior +" in printed


@pytest.mark.parametrize(("arguments", "message"), [
    ([], "give --truth FILE, --scores FILE or both"),
    (["--truth", "{truth}"], "is not a number in [0, 1]; if the file gives percentages, pass --percent"),
    (["--truth", "{folder}/absent.csv"], "absent.csv' does not exist"),
])
def test_a_bad_import_is_one_line_and_writes_nothing(tmp_path, capsys, arguments, message) -> None:
    truth, _ = _write_history(tmp_path, percent=True)
    given = [value.format(truth=truth, folder=tmp_path) for value in arguments]
    assert main(["import", str(tmp_path / "run"), *given]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_an_import_reopens_itself_and_refuses_other_files(tmp_path, capsys) -> None:
    truth, scores = _write_history(tmp_path)
    run = tmp_path / "run"
    assert main(["import", str(run), "--truth", str(truth)]) == 0
    assert main(["import", str(run), "--truth", str(truth)]) == 0  # the same content: the same run
    assert main(["import", str(run), "--truth", str(truth), "--scores", str(scores)]) == 2
    assert "holds another import" in capsys.readouterr().err


def test_the_model_spider_import_reproduces_the_published_convention(tmp_path, model_spider_root) -> None:
    run = tmp_path / "spider"
    assert main(["import", str(run), "--truth", str(model_spider_root / "truth.csv"), "--scores",
                 str(model_spider_root / "scores.csv"), "--percent"]) == 0
    assert main(["evaluate", str(run)]) == 0
    rows = {row["estimator"]: row for row in csv.DictReader(open(run / "evaluation.csv"))}
    assert float(rows["LogME"]["weighted_tau"]) == pytest.approx(0.675, abs=5e-4)
    assert rows["LogME"]["cells"] == "80" and rows["LogME"]["targets"] == "8"


def test_truth_import_into_a_folder_without_a_run_names_the_commands_that_make_one(tmp_path, capsys) -> None:
    truth, _ = _write_history(tmp_path)
    assert main(["truth", str(tmp_path / "none"), "--import", str(truth)]) == 2
    error = capsys.readouterr().err
    assert "holds no run to import into" in error and "taskspace import" in error and error.count("\n") == 1
    assert not (tmp_path / "none").exists()
