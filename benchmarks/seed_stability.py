"""How stable is each estimator's verdict when the target sample changes? Seeds of the scored subset.

Users rarely score on every target image. For each seed, every target keeps a random subset of
``--samples`` training images (the same subset for all sources of that target), every estimator
scores every (source, target) on it from the run's cached forward passes (no new forward pass), and
the verdict (mean per-target Kendall τ against each ground truth) is recomputed. Reported per
estimator: the mean, standard deviation, minimum and maximum of τ over the seeds, and the mean
Kendall τ between the score columns of two seeds (how much the ranking itself moves).

    python benchmarks/seed_stability.py benchmarks/work/grid-default --samples 1000 --seeds 5
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from _common import print_table, require_cifar, save
from scipy import stats

from taskspace.analysis import evaluate
from taskspace.features import cached_source_outputs
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner import Run
from taskspace.scoring import get_estimator, list_estimators
from taskspace.training.seeds import derive_seed

#: Left out by default: they cost minutes per seed (a classifier per cell) and are not kernel scores.
SLOW = ("knn", "linear_probe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--estimators", default=",".join(n for n in list_estimators() if n not in SLOW))
    parser.add_argument("--name", default=None)
    arguments = parser.parse_args()
    context = Run.open(arguments.run, data_root=require_cifar())
    ids = context.space.ids
    names = arguments.estimators.split(",")
    truths = context.truths()
    accuracy = {s: float(context.source_metrics(s)["test_accuracy"]) for s in ids}
    scores = {seed: {name: np.full((len(ids), len(ids)), np.nan) for name in names} for seed in range(arguments.seeds)}
    seconds = dict.fromkeys(names, 0.0)
    for j, target in enumerate(ids):
        split = context.splits(target).train
        for i, source in enumerate(ids):
            outputs = cached_source_outputs(context.checkpoint(source), split, cache_dir=context.path("features"))
            for seed in range(arguments.seeds):
                rng = np.random.default_rng(derive_seed(seed, "stability", target))
                positions = np.sort(rng.choice(len(outputs.labels), size=arguments.samples, replace=False))
                subset = outputs.subset(positions)
                probabilities = subset.probabilities()
                for name in names:
                    began = time.perf_counter()
                    scores[seed][name][i, j] = get_estimator(name)(
                        subset.features.astype(np.float64), subset.labels, source_probs=probabilities,
                        source_accuracy=accuracy[source])
                    seconds[name] += time.perf_counter() - began
    taus: dict[tuple[str, str], list[float]] = {}
    for seed in range(arguments.seeds):
        matrices = {name: TransferabilityMatrix(scores[seed][name], ids, ids, name) for name in names}
        for row in evaluate(matrices, truths, resamples=0):
            taus.setdefault((row["estimator"], row["protocol"]), []).append(row["kendall_tau"])
    rows = []
    for (name, protocol), values in sorted(taus.items(), key=lambda item: (item[0][1], -np.mean(item[1]))):
        between = []
        for first, second in itertools.combinations(range(arguments.seeds), 2):
            for j in range(len(ids)):
                keep = np.arange(len(ids)) != j
                a, b = scores[first][name][keep, j], scores[second][name][keep, j]
                if np.ptp(a) > 0 and np.ptp(b) > 0:
                    between.append(stats.kendalltau(a, b).statistic)
        rows.append({"estimator": name, "protocol": protocol, "kendall_tau_per_seed": values,
                     "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                     "min": float(np.min(values)), "max": float(np.max(values)),
                     "ranking_tau_between_seeds": float(np.mean(between)) if between else float("nan"),
                     "seconds_all_seeds": seconds[name]})
    name = arguments.name or arguments.run.name.removeprefix("grid-")
    save(f"seed_stability_{name}", {"run": str(arguments.run), "samples": arguments.samples,
                                    "seeds": arguments.seeds, "rows": rows})
    print(f"mean per-target Kendall τ over {arguments.seeds} seeds of {arguments.samples} target images each:")
    print_table(["protocol", "estimator", "mean τ", "std", "min", "max", "τ between seeds' rankings"],
                [[r["protocol"], r["estimator"], r["mean"], r["std"], r["min"], r["max"],
                  r["ranking_tau_between_seeds"]] for r in rows])


if __name__ == "__main__":
    main()
