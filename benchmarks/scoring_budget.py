"""What does scoring a whole matrix cost next to measuring the truth? Forward passes + estimators vs fine-tuning.

On a finished grid run (transfer_grid.py with the finetune protocol): for every (source, target) it
times forward passes of the source over ``--samples`` of the target's training images (no cache) and
each estimator on them, and sets the total against the ground truth's measured time (the run's
per-cell seconds: their sum, and 225 x their median, which is robust to cells slowed by other jobs
on the machine). The estimators' full-sample cost comes from the run itself (score_seconds.json); the
full-sample forward passes are timed again here on one cell per target (source i+1 for target i) and
scaled to all cells.

    TASKSPACE_DATA=../shared/data python benchmarks/scoring_budget.py benchmarks/work/grid-default --samples 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import print_table, require_cifar, save

from taskspace.data import ImageSplit
from taskspace.features import source_outputs
from taskspace.io import read_json
from taskspace.runner import open_run
from taskspace.runner.cells import truth_path
from taskspace.scoring import get_estimator, list_estimators
from taskspace.training.checkpoints import load_model
from taskspace.training.seeds import derive_seed

KERNEL_SCORES = ("alignment", "alignment_whitened")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--name", default=None)
    arguments = parser.parse_args()
    context = open_run(arguments.run, None, data_root=require_cifar())
    ids = context.space.ids
    names = list_estimators()
    accuracy = {s: float(read_json(context.source_dir(s) / "metrics.json")["test_accuracy"]) for s in ids}
    forward_seconds, estimator_seconds = 0.0, dict.fromkeys(names, 0.0)
    nets = {source: load_model(context.checkpoint(source)) for source in ids}
    for target in ids:
        split = context.splits(target).train
        rng = np.random.default_rng(derive_seed(0, "budget", target))
        positions = np.sort(rng.choice(len(split.labels), size=arguments.samples, replace=False))
        subset = ImageSplit(split.images[positions], split.labels[positions])
        for source in ids:
            net, saved = nets[source]
            began = time.perf_counter()
            outputs = source_outputs(net, subset, normalization=saved["normalization"])
            forward_seconds += time.perf_counter() - began
            features = outputs.features.astype(np.float64)
            probabilities = outputs.probabilities()
            for name in names:
                began = time.perf_counter()
                get_estimator(name)(features, outputs.labels, source_probs=probabilities,
                                    source_accuracy=accuracy[source])
                estimator_seconds[name] += time.perf_counter() - began

    full_forward_sampled = 0.0
    for index, target in enumerate(ids):
        net, saved = nets[ids[(index + 1) % len(ids)]]
        split = context.splits(target).train
        began = time.perf_counter()
        source_outputs(net, split, normalization=saved["normalization"])
        full_forward_sampled += time.perf_counter() - began
    full_forward = full_forward_sampled * len(ids)  # len(ids) cells timed of len(ids)**2

    full = read_json(arguments.run / "score_seconds.json")
    truth = {}
    for protocol in ("frozen_k10", "frozen_all", "finetune"):
        cells = [read_json(truth_path(context, protocol, s, t))["seconds"] for s in ids for t in ids
                 if truth_path(context, protocol, s, t).is_file()]
        if len(cells) == len(ids) ** 2:
            truth[protocol] = {"sum": float(np.sum(cells)), "median_cell": float(np.median(cells)),
                               "median_times_cells": float(np.median(cells) * len(cells))}
    finetune = truth["finetune"]["median_times_cells"]
    cheap = [n for n in names if n not in ("knn", "linear_probe")]
    budgets = {
        "all estimators, all images": full_forward + sum(full[n] for n in names if n in full),
        "alignment_whitened, all images": full_forward + full.get("alignment_whitened", np.nan),
        f"all estimators, {arguments.samples} images": forward_seconds + sum(estimator_seconds.values()),
        f"all but knn and linear_probe, {arguments.samples} images": forward_seconds + sum(estimator_seconds[n] for n in cheap),
        f"alignment_whitened, {arguments.samples} images": forward_seconds + estimator_seconds["alignment_whitened"],
        f"alignment (paper), {arguments.samples} images": forward_seconds + estimator_seconds["alignment"],
    }
    rows = [{"scoring": label, "seconds": seconds, "share_of_finetune_truth": seconds / finetune,
             "share_of_frozen_all_truth": seconds / truth["frozen_all"]["median_times_cells"]}
            for label, seconds in budgets.items()]
    name = arguments.name or arguments.run.name.removeprefix("grid-")
    save(f"scoring_budget_{name}", {"run": str(arguments.run), "samples": arguments.samples,
                                    "torch_threads": torch.get_num_threads(),
                                    "forward_seconds": forward_seconds, "estimator_seconds": estimator_seconds,
                                    "full_sample_forward_seconds_scaled": full_forward,
                                    "full_sample_forward_seconds_timed_cells": full_forward_sampled,
                                    "full_sample_seconds": full, "truth_seconds": truth, "rows": rows})
    print(f"ground truth (seconds, all {len(ids) ** 2} cells; median cell x cells in brackets): " +
          ", ".join(f"{p} {v['sum']:.0f} [{v['median_times_cells']:.0f}]" for p, v in truth.items()))
    print(f"forward passes of {arguments.samples} images, all cells: {forward_seconds:.1f} s; of all images: "
          f"{full_forward:.0f} s ({full_forward_sampled:.1f} s timed on {len(ids)} cells, scaled)")
    print_table(["scoring the whole matrix", "seconds", "share of fine-tuning truth", "share of frozen_all truth"],
                [[r["scoring"], r["seconds"], f"{100 * r['share_of_finetune_truth']:.2f}%",
                  f"{100 * r['share_of_frozen_all_truth']:.1f}%"] for r in rows])


if __name__ == "__main__":
    main()
