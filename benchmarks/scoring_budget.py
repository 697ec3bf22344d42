"""What does scoring a whole matrix cost next to measuring the truth? Forward passes + estimators vs fine-tuning.

On a finished grid run (transfer_grid.py with the finetune protocol), for each sample size (all of a
target's training images, and each ``--samples`` value): the forward passes the grid does for it (one
per source and image, shared by the targets that have the image's class: the feature banks of
taskspace.runner.extraction), timed here with no cache, and every estimator on every (source,
target) cell, timed here too (each Estimator call runs on one BLAS / OpenMP thread, as in the grid).
The total is set against the ground truth's measured time (the run's
per-cell seconds: their sum, and cells x their median, which is robust to cells slowed by other jobs
on the machine). The verdict each estimator reaches on those samples (mean per-target Kendall τ
against each ground truth) is reported beside its cost.

    TASKSPACE_DATA=../shared/data python benchmarks/scoring_budget.py benchmarks/work/grid-default --samples 500,1000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from _common import print_table, require_cifar, save

from taskspace.analysis import evaluate
from taskspace.data import ImageSplit
from taskspace.features import source_outputs
from taskspace.io import read_json
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner import Run
from taskspace.runner.extraction import bank_indices, gather, score_positions
from taskspace.scoring import get_estimator, list_estimators
from taskspace.training.checkpoints import load_model

#: Rows of the budget table besides "every estimator".
SUBSETS = {
    "all but knn and linear_probe": lambda names: [n for n in names if n not in ("knn", "linear_probe")],
    "alignment_whitened": lambda names: ["alignment_whitened"],
    "alignment (paper)": lambda names: ["alignment"],
}


def measure(context: Run, names: list[str]) -> dict:
    """Forward passes over the banks and every estimator on every cell, timed; the score matrices."""
    ids = context.space.ids
    dataset = context.dataset()
    indices = bank_indices(context)
    accuracy = {s: float(context.source_metrics(s)["test_accuracy"]) for s in ids}
    splits = {target: context.splits(target) for target in ids}
    positions = {target: score_positions(context, splits[target]) for target in ids}
    forward_seconds = 0.0
    estimator_seconds = dict.fromkeys(names, 0.0)
    scores = {name: np.full((len(ids), len(ids)), np.nan) for name in names}
    for i, source in enumerate(ids):
        net, saved = load_model(context.checkpoint(source))
        images = ImageSplit(dataset.train.images[indices], np.asarray(dataset.train.labels)[indices])
        began = time.perf_counter()
        bank = source_outputs(net, images, normalization=saved["normalization"])
        forward_seconds += time.perf_counter() - began
        held = {"indices": indices, "features": bank.features, "logits": bank.logits,
                "pre_activations": bank.pre_activations}
        for j, target in enumerate(ids):
            outputs = gather(held, splits[target], positions[target])
            features, probabilities = outputs.features.astype(np.float64), outputs.probabilities()
            for name in names:
                began = time.perf_counter()
                value = get_estimator(name)(features, outputs.labels, source_probs=probabilities,
                                            source_accuracy=accuracy[source])
                estimator_seconds[name] += time.perf_counter() - began
                scores[name][i, j] = value
    return {"images_per_source": int(len(indices)), "forward_seconds": forward_seconds,
            "estimator_seconds": estimator_seconds, "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--samples", default="1000", help="comma list of per-target sample sizes (all images too)")
    parser.add_argument("--skip-all", action="store_true", help="leave out the all-images measurement")
    parser.add_argument("--name", default=None)
    arguments = parser.parse_args()
    context = Run.open(arguments.run, data_root=require_cifar())
    ids = context.space.ids
    names = list_estimators()
    truths = context.truths()
    truth_seconds = {}
    for protocol in truths:
        cells = [read_json(context.truth_file(protocol, s, t))["seconds"] for s in ids for t in ids
                 if context.truth_file(protocol, s, t).is_file()]
        if len(cells) == len(ids) ** 2:
            truth_seconds[protocol] = {"sum": float(np.sum(cells)), "median_cell": float(np.median(cells)),
                                       "median_times_cells": float(np.median(cells) * len(cells))}
    finetune = truth_seconds["finetune"]["median_times_cells"]
    sizes: list[int | None] = [] if arguments.skip_all else [None]
    sizes += [int(value) for value in arguments.samples.split(",")]
    results, rows = [], []
    for size in sizes:
        sized = dataclasses.replace(context, grid=dataclasses.replace(context.grid, score_samples=size))
        label = "all images" if size is None else f"{size} images"
        measured = measure(sized, names)
        matrices = {name: TransferabilityMatrix(measured["scores"][name], ids, ids, name) for name in names}
        verdict = {(row["estimator"], row["protocol"]): row["kendall_tau"]
                   for row in evaluate(matrices, truths, resamples=0)}
        budgets = {"every estimator": names, **{key: pick(names) for key, pick in SUBSETS.items()}}
        for scoring, chosen in budgets.items():
            seconds = measured["forward_seconds"] + sum(measured["estimator_seconds"][n] for n in chosen)
            rows.append({"samples": label, "scoring": scoring, "seconds": seconds,
                         "share_of_finetune_truth": seconds / finetune,
                         "share_of_frozen_all_truth": seconds / truth_seconds["frozen_all"]["median_times_cells"]})
        results.append({"samples": size, "images_per_source": measured["images_per_source"],
                        "forward_seconds": measured["forward_seconds"],
                        "estimator_seconds": measured["estimator_seconds"],
                        "kendall_tau": {f"{n}|{p}": verdict[(n, p)] for n, p in verdict}})
        print(f"{label}: {measured['images_per_source']} images per source, forward passes "
              f"{measured['forward_seconds']:.1f} s, estimators {sum(measured['estimator_seconds'].values()):.1f} s",
              flush=True)
    name = arguments.name or arguments.run.name.removeprefix("grid-")
    save(f"scoring_budget_{name}", {"run": str(arguments.run), "torch_threads": torch.get_num_threads(),
                                    "truth_seconds": truth_seconds, "sizes": results, "rows": rows})
    print("ground truth (seconds, all cells; cells x median cell in brackets): " +
          ", ".join(f"{p} {v['sum']:.0f} [{v['median_times_cells']:.0f}]" for p, v in truth_seconds.items()))
    print_table(["samples", "scoring the whole matrix", "seconds", "share of fine-tuning truth",
                 "share of frozen_all truth"],
                [[r["samples"], r["scoring"], r["seconds"], f"{100 * r['share_of_finetune_truth']:.2f}%",
                  f"{100 * r['share_of_frozen_all_truth']:.1f}%"] for r in rows])
    print()
    protocols = list(truths)
    print_table(["samples", "estimator", *[f"τ vs {p}" for p in protocols]],
                [[r["samples"] if r["samples"] else "all", n, *[r["kendall_tau"][f"{n}|{p}"] for p in protocols]]
                 for r in results for n in ("alignment_whitened", "kernel_ridge_loo", "kernel_prototypes", "logme",
                                            "hscore", "alignment", "nleep", "linear_probe")])


if __name__ == "__main__":
    main()
