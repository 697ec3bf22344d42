"""The README's five-minute tour on the real CIFAR-10, run for real: each command, its output and its time.

    TASKSPACE_DATA=../shared/data python benchmarks/tour.py

Runs the tour's commands (a 6-task space over automobile, truck, cat and dog with its two class groups,
3 epochs per source network) in a fresh folder under benchmarks/work/tour, through the installed
``taskspace`` command, and writes every command with its standard output and wall time to
results/tour.json (and the clustermap to figures/tour_clustermap.png), from which the README's tour is
copied and the docs' page is rendered.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

from _common import WORK, require_cifar, save

SPACE = """dataset = "cifar10"
classes = ["automobile", "truck", "cat", "dog"]

[groups]
vehicles = ["automobile", "truck"]
pets = ["cat", "dog"]
"""

COMMANDS = (
    "taskspace data",
    "taskspace tasks --space tour.toml",
    "taskspace matrix runs/tour --space tour.toml --epochs 3 --estimators kernel_ridge_r2,logme,source_accuracy"
    " --quiet",
    "taskspace truth runs/tour --protocols frozen_all --quiet",
    "taskspace evaluate runs/tour --resamples 1000",
    "taskspace recommend runs/tour --target cat_vs_dog --k 2",
    "taskspace recommend runs/tour --target airplane_vs_ship --k 3 --measure",
    "taskspace plot runs/tour clustermap --out runs/tour/clustermap",
)


def main() -> None:
    data_root = require_cifar()
    folder = WORK / "tour"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "tour.toml").write_text(SPACE)
    taskspace = [sys.executable, "-m", "taskspace"]
    records = []
    for command in COMMANDS:
        started = time.perf_counter()
        result = subprocess.run([*taskspace, *shlex.split(command)[1:]], cwd=folder, capture_output=True,
                                text=True, env={**os.environ, "TASKSPACE_DATA": data_root})
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"`{command}` failed: {result.stderr.strip().splitlines()[-1]}")
        records.append({"command": command, "seconds": round(seconds, 1), "output": result.stdout.rstrip()})
        print(f"$ {command}    # {seconds:.1f} s\n{result.stdout.rstrip()}\n")
    figure = WORK.parent.parent / "figures" / "tour_clustermap.png"
    shutil.copyfile(folder / "runs" / "tour" / "clustermap.png", figure)
    save("tour", {"space": SPACE, "commands": records, "figure": "figures/tour_clustermap.png",
                  "total_seconds": round(sum(record["seconds"] for record in records), 1)})


if __name__ == "__main__":
    main()
