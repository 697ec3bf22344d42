"""How well ``recommend`` predicts a source's accuracy on a target, across targets of different class counts.

For every target of a run, the score-to-accuracy line is fitted on the other targets' cells (as
``taskspace recommend`` does) and predicts every source's accuracy on the target; the error is the
prediction minus the measured accuracy. Two fits are compared on the same cells: a plain line from
score to accuracy, and the line fitted to each accuracy's share of the way from chance (1/C) to 1,
mapped back for the target's C (what ``recommend`` uses). Reported per class count: the mean error
(bias), the mean absolute error and the share of measured accuracies inside the 90% interval.

Runs: the open zoo (15 binary targets and 10-class CIFAR-10; benchmarks/open_zoo.py) and a digits
space whose tasks have 2, 3, 5 and 10 classes (created here the first time, about a minute on 2
cores). Where every target has the same class count the two fits are the same line (tested).

    TASKSPACE_DATA=../shared/data python benchmarks/accuracy_prediction.py
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
from _common import WORK, print_table, require_cifar, save

from taskspace.recommend import fit_score_to_accuracy
from taskspace.tasks import Task

MIXED_SPACE = """# Digits tasks of 2, 3, 5 and 10 classes (benchmarks/accuracy_prediction.py).
dataset = "digits"
pairs = [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"], ["1", "7"], ["3", "8"],
         ["0", "1", "2"], ["3", "4", "5"], ["6", "7", "8"], ["1", "7", "9"],
         ["0", "2", "4", "6", "8"], ["1", "3", "5", "7", "9"],
         ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]]
"""


def _mixed_digits_run(folder: Path) -> Any:
    from taskspace.runner import GridConfig, Run

    space = folder.parent / "mixed_digits.toml"
    space.parent.mkdir(parents=True, exist_ok=True)
    if not space.is_file():
        space.write_text(MIXED_SPACE)
    grid = GridConfig(space=str(space), train={"epochs": 5}, seed=0)
    run = Run.create(folder, grid)
    run.score(["kernel_ridge_r2", "logme"], show_progress=False)
    run.measure(["frozen_all"], show_progress=False)
    return run


def _cells(run: Any, estimator: str, protocol: str, classes: dict[str, int]) -> list[dict[str, Any]]:
    """Each (source, target) cell with a score and a measurement: both fits' predictions and intervals."""
    estimate, truth = run.estimates()[estimator], run.truths()[protocol]
    rows = []
    for target in estimate.targets:
        if target not in truth.targets:
            continue
        try:
            plain = fit_score_to_accuracy(estimate, truth, leave_out_target=target)
            scaled = fit_score_to_accuracy(estimate, truth, leave_out_target=target,
                                           classes=classes).for_classes(classes[target])
        except Exception:  # too few cells of other targets
            continue
        for source in estimate.sources:
            score, measured = estimate.score(source, target), truth.score(source, target)
            if source == target or not (math.isfinite(score) and math.isfinite(measured)):
                continue
            row = {"source": source, "target": target, "classes": classes[target], "measured": measured}
            for name, fit in (("plain", plain), ("chance_scaled", scaled)):
                centre, low, high = fit.predict(score)
                row[name] = {"predicted": centre, "error": centre - measured, "inside": low <= measured <= high}
            rows.append(row)
    return rows


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for count in sorted({row["classes"] for row in rows}):
        chosen = [row for row in rows if row["classes"] == count]
        entry: dict[str, Any] = {"classes": count, "cells": len(chosen),
                                 "targets": len({row["target"] for row in chosen})}
        for name in ("plain", "chance_scaled"):
            errors = np.array([row[name]["error"] for row in chosen])
            entry[name] = {"bias": float(errors.mean()), "mae": float(np.abs(errors).mean()),
                           "coverage": float(np.mean([row[name]["inside"] for row in chosen]))}
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", default="kernel_ridge_r2,logme")
    arguments = parser.parse_args()
    data_root = require_cifar()
    from taskspace.zoo.run import ZooRun

    runs: list[tuple[str, Any, dict[str, int]]] = []
    open_zoo = WORK / "open-zoo" / "run"
    if open_zoo.is_dir():
        zoo = ZooRun.open(open_zoo, data_root=data_root)
        runs.append(("open zoo", zoo, {target.id: target.task.num_classes for target in zoo.target_list()}))
    mixed = _mixed_digits_run(WORK / "accuracy-prediction" / "mixed-digits")
    runs.append(("digits, 2 to 10 classes", mixed,
                 {t: Task.parse(t, class_names=mixed.dataset().class_names).num_classes for t in mixed.space.ids}))

    results, table = [], []
    for label, run, classes in runs:
        for estimator in arguments.estimators.split(","):
            if estimator not in run.estimates() or "frozen_all" not in run.truths():
                continue
            for entry in _summary(_cells(run, estimator, "frozen_all", classes)):
                plain, scaled = entry["plain"], entry["chance_scaled"]
                results.append({"run": label, "estimator": estimator, "protocol": "frozen_all",
                                "classes": entry["classes"], "targets": entry["targets"], "cells": entry["cells"],
                                "bias_plain": plain["bias"], "bias_scaled": scaled["bias"],
                                "mae_plain": plain["mae"], "mae_scaled": scaled["mae"],
                                "coverage_plain": plain["coverage"], "coverage_scaled": scaled["coverage"]})
                table.append([label, estimator, entry["classes"], entry["targets"], entry["cells"], plain["bias"],
                              scaled["bias"], plain["mae"], scaled["mae"], plain["coverage"], scaled["coverage"]])
    path = save("accuracy_prediction", {"level": 0.9, "results": results})
    print_table(["run", "estimator", "classes", "targets", "cells", "bias plain", "bias scaled", "MAE plain",
                 "MAE scaled", "90% cover plain", "90% cover scaled"], table)
    print(f"written {path}")


if __name__ == "__main__":
    main()
