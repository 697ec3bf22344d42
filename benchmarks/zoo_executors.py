"""Scoring a zoo run in this process against side by side (a process pool), on the open zoo's cached forward passes.

Makes two fresh zoo runs with the open zoo's sources, targets and options, each reading the open zoo's
cached forward passes (a link to its ``features`` folder, so the time measured is the estimators'),
scores one serially and one with ``--executor process``, checks that the matrices are equal number
for number, and writes the wall times and their ratio. Needs the open zoo (benchmarks/open_zoo.py).

    TASKSPACE_DATA=../shared/data python benchmarks/zoo_executors.py --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from _common import WORK, print_table, require_cifar, save

from taskspace.scoring import list_estimators
from taskspace.zoo.run import ZooRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--estimators", default=",".join(list_estimators()))
    arguments = parser.parse_args()
    data_root = require_cifar()
    source = WORK / "open-zoo" / "run"
    if not (source / "features").is_dir():
        raise SystemExit("the open zoo's forward passes are missing: run benchmarks/open_zoo.py first")
    opened = ZooRun.open(source, data_root=data_root)
    estimators = arguments.estimators.split(",")
    rows, matrices = [], {}
    for executor in ("serial", "process"):
        folder = WORK / "zoo-executors" / executor
        shutil.rmtree(folder, ignore_errors=True)
        run = ZooRun.create(folder, opened.zoo, opened.targets, opened.options, data_root=data_root)
        if (folder / "features").is_dir():
            (folder / "features").rmdir()  # made empty by create: the open zoo's cache takes its place
        (folder / "features").symlink_to(source / "features", target_is_directory=True)
        began = time.perf_counter()
        found = run.score(estimators, show_progress=False, executor=executor,
                          workers=arguments.workers if executor != "serial" else None)
        seconds = time.perf_counter() - began
        matrices[executor] = {name: matrix.scores for name, matrix in found.items()}
        rows.append({"executor": executor, "workers": arguments.workers if executor != "serial" else 1,
                     "seconds": seconds})
        print(f"{executor}: {seconds:.1f} s", flush=True)
    equal = all(np.array_equal(matrices["serial"][name], matrices["process"][name], equal_nan=True)
                for name in matrices["serial"])
    ratio = rows[1]["seconds"] / rows[0]["seconds"]
    path = save("zoo_executors", {"modules": len(opened.modules), "targets": len(opened.target_ids),
                                  "estimators": estimators, "score_samples": opened.options.score_samples,
                                  "rows": rows, "process_over_serial": ratio, "matrices_equal": equal})
    print_table(["executor", "workers", "seconds"], [[r["executor"], r["workers"], r["seconds"]] for r in rows])
    print(f"process / serial: {ratio:.2f}x; matrices equal: {equal}")
    print(f"written {path}")


if __name__ == "__main__":
    main()
