"""Do the estimators run faster on one BLAS / OpenMP thread? Default thread pools vs single_threaded().

On a finished grid run, from its cached forward passes (no new forward pass), every estimator's
function scores the same (source, target) cells twice: with the process's default thread pools and
inside taskspace.scoring.single_threaded() (what every Estimator call uses). The order of
the two alternates from cell to cell. Reported per estimator and sample size: milliseconds per cell
in each mode, and their ratio (default / single thread; above 1: one thread is faster).

    TASKSPACE_DATA=../shared/data python benchmarks/scoring_threads.py benchmarks/work/grid-default
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import numpy as np
from _common import print_table, require_cifar, save

from taskspace.features import cached_source_outputs
from taskspace.runner import Run
from taskspace.scoring import get_estimator, list_estimators, single_threaded
from taskspace.training.seeds import derive_seed

MODES = {"default threads": contextlib.nullcontext, "single_threaded()": single_threaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--samples", default="500,all", help="comma-separated sizes per target; 'all': every image")
    parser.add_argument("--targets", type=int, default=3, help="targets scored (by every source)")
    arguments = parser.parse_args()
    context = Run.open(arguments.run, data_root=require_cifar())
    ids = context.space.ids
    names = list_estimators()
    accuracy = {s: float(context.source_metrics(s)["test_accuracy"]) for s in ids}
    rows = []
    for size in arguments.samples.split(","):
        seconds = {mode: dict.fromkeys(names, 0.0) for mode in MODES}
        cells = 0
        for target in ids[: arguments.targets]:
            split = context.splits(target).train
            for source in ids:
                outputs = cached_source_outputs(context.checkpoint(source), split, cache_dir=context.path("features"))
                if size != "all":
                    rng = np.random.default_rng(derive_seed(0, "threads", target))
                    outputs = outputs.subset(np.sort(rng.choice(len(outputs.labels), int(size), replace=False)))
                features, probabilities = outputs.features.astype(np.float64), outputs.probabilities()
                order = list(MODES) if cells % 2 == 0 else list(MODES)[::-1]
                for mode in order:
                    with MODES[mode]():
                        for name in names:
                            estimator = get_estimator(name)
                            available = {"features": features, "labels": outputs.labels,
                                         "source_probs": probabilities, "source_accuracy": accuracy[source]}
                            inputs = [available[argument] for argument in estimator.inputs]
                            began = time.perf_counter()
                            estimator.function(*inputs, **estimator.params)
                            seconds[mode][name] += time.perf_counter() - began
                cells += 1
        default, single = seconds["default threads"], seconds["single_threaded()"]
        for name in [*names, "every estimator"]:
            first = sum(default.values()) if name == "every estimator" else default[name]
            second = sum(single.values()) if name == "every estimator" else single[name]
            rows.append({"samples": size, "estimator": name, "cells": cells,
                         "default_ms_per_cell": 1000 * first / cells, "single_ms_per_cell": 1000 * second / cells,
                         "ratio_default_over_single": first / second})
    save(f"scoring_threads_{arguments.run.name.removeprefix('grid-')}", {"run": str(arguments.run), "rows": rows})
    print_table(["samples", "estimator", "cells", "default ms/cell", "single thread ms/cell", "default / single"],
                [[r["samples"], r["estimator"], r["cells"], r["default_ms_per_cell"], r["single_ms_per_cell"],
                  r["ratio_default_over_single"]] for r in rows])


if __name__ == "__main__":
    main()
