"""One store: the frozen truth reads the forward passes the scores made; its cost before and after, side by side.

The README tour's space (6 tasks over automobile, truck, cat and dog, 3 epochs per network) is trained
once; then, for each version of taskspace (``--before``, a git revision checked out in a scratch work
tree, and this checkout), a fresh copy of that run (its ``run.json`` and trained networks only) scores
the tour's estimators and measures the ``frozen_all`` truth, in a process of its own, alternately
``--repeats`` times. Written: each stage's wall time per version, their ratios (after / before), and
whether the matrices and the truths of the two versions are equal number for number.

The goal (issue: one run), written before the measurement: the frozen truth's time falls to at most
half (after / before <= 0.5, medians over the repeats), the matrix's does not grow (after / before <= 1.05,
the timing noise of two processes on one machine), and both versions give equal matrices and truths.

    TASKSPACE_DATA=../shared/data python benchmarks/one_store.py --before 45f1695
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import WORK, print_table, require_cifar, save

FOLDER = WORK / "one-store"
ROOT = Path(__file__).resolve().parent.parent
SPACE = """dataset = "cifar10"
classes = ["automobile", "truck", "cat", "dog"]

[groups]
vehicles = ["automobile", "truck"]
pets = ["cat", "dog"]
"""
ESTIMATORS = ("kernel_ridge_r2", "logme", "source_accuracy")

#: What one version runs in a process of its own: the stages on a copy of the trained run, timed.
STAGES = """
import json, sys, time
from taskspace.runner import GridConfig, compute_matrix, compute_truth, open_run, train_zoo
folder, space, data_root, estimators = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
run = open_run(folder, GridConfig(space=space, train={"epochs": 3, "seed": 0}), data_root=data_root)
began = time.perf_counter()
train_zoo(run)
trained = time.perf_counter()
matrices = compute_matrix(run, estimators=estimators)
scored = time.perf_counter()
rows = compute_truth(run, protocols=["frozen_all"])
measured = time.perf_counter()
print(json.dumps({"zoo_seconds": trained - began, "matrix_seconds": scored - trained,
                  "truth_seconds": measured - scored,
                  "matrices": {name: matrix.scores.tolist() for name, matrix in matrices.items()},
                  "truth": [[row["source"], row["target"], row["accuracy"]] for row in rows]}))
"""


def _checkout(revision: str) -> Path:
    """A work tree of ``revision`` (made once) whose ``taskspace`` the "before" stages import."""
    tree = FOLDER / f"tree-{revision}"
    if not (tree / "taskspace").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(tree), revision],
                       check=True, capture_output=True)
    return tree


def _stages(version: str, tree: Path | None, template: Path, space: Path, data_root: str, repeat: int) -> dict:
    folder = FOLDER / f"{version}-{repeat}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy2(template / "run.json", folder / "run.json")
    shutil.copytree(template / "zoo", folder / "zoo")
    environment = dict(os.environ)
    if tree is not None:
        environment["PYTHONPATH"] = str(tree)
    result = subprocess.run([sys.executable, "-c", STAGES, str(folder), str(space), data_root, ",".join(ESTIMATORS)],
                            check=True, capture_output=True, text=True, env=environment, cwd=tree or ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the git revision measured as 'before'")
    parser.add_argument("--repeats", type=int, default=1)
    arguments = parser.parse_args()
    data_root = require_cifar()
    FOLDER.mkdir(parents=True, exist_ok=True)
    space = FOLDER / "tour.toml"
    space.write_text(SPACE)
    template = FOLDER / "trained"
    began = time.perf_counter()
    from taskspace.runner import GridConfig, open_run, train_zoo

    train_zoo(open_run(template, GridConfig(space=str(space), train={"epochs": 3, "seed": 0}), data_root=data_root))
    tree = _checkout(arguments.before)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for repeat in range(arguments.repeats):
        for version in ("before", "after"):
            runs[version].append(_stages(version, tree if version == "before" else None, template, space,
                                         data_root, repeat))
            print(f"{version} {repeat}: matrix {runs[version][-1]['matrix_seconds']:.1f} s, "
                  f"truth {runs[version][-1]['truth_seconds']:.1f} s", flush=True)
    first_before, first_after = runs["before"][0], runs["after"][0]
    equal_matrices = all(np.array_equal(np.array(first_before["matrices"][name]), np.array(first_after["matrices"][name]))
                         for name in ESTIMATORS)
    equal_truth = first_before["truth"] == first_after["truth"]
    stages = {}
    for stage in ("matrix_seconds", "truth_seconds"):
        before = float(np.median([run[stage] for run in runs["before"]]))
        after = float(np.median([run[stage] for run in runs["after"]]))
        stages[stage.removesuffix("_seconds")] = {"before": before, "after": after, "ratio": after / before}
    payload = {"command": f"python benchmarks/one_store.py --before {arguments.before} --repeats {arguments.repeats}",
               "before": arguments.before, "estimators": list(ESTIMATORS), "repeats": arguments.repeats,
               "stages": stages, "matrices_equal": equal_matrices, "truth_equal": equal_truth,
               "truth_goal_met": stages["truth"]["ratio"] <= 0.5,
               "matrix_goal_met": stages["matrix"]["ratio"] <= 1.05,
               "per_run": {version: [{key: run[key] for key in ("matrix_seconds", "truth_seconds")}
                                     for run in runs[version]] for version in runs},
               "seconds": time.perf_counter() - began}
    save("one_store", payload)
    print_table(["stage", "before s", "after s", "after / before"],
                [(name, f"{row['before']:.1f}", f"{row['after']:.1f}", f"{row['ratio']:.2f}")
                 for name, row in stages.items()])
    print(f"matrices equal: {equal_matrices}; truths equal: {equal_truth}")


if __name__ == "__main__":
    main()
