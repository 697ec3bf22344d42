"""How reproducible is the frozen-trunk ground truth itself? The noise ceiling of a per-target τ.

A frozen ground truth is the test accuracy of a new output module fitted on a source's frozen
features; each target has only its own test images (2,000 for a CIFAR-10 pair), so the accuracies of
the sources of one target differ by amounts comparable to the test set's sampling noise. On a
finished grid run, from its cached forward passes (no new forward pass), this refits every frozen
cell exactly as the run's TruthCell did (same config, steps, weight decay and, for frozen_kK, the same
label draws), checks the refit accuracy against the run's truth, and keeps the per-test-image
correctness. Per target it then resamples the test images (paired: one resample for all sources;
the diagonal source = target is left out, as the verdict leaves it out) and reports the mean
per-target Kendall τ-b of

- a replicate against the measured truth: what an estimator that knew each source's population
  accuracy exactly would reach against this truth (the ceiling of the verdict's τ);
- two independent replicates: the τ between two test sets of the same size (test-retest);
- the two halves of a random split of the test images (half-size test sets, no resampling);

beside the τ of frozen_kK and of the run's estimators (linear_probe, the best one) against frozen_all.

    TASKSPACE_DATA=../shared/data python benchmarks/truth_ceiling.py benchmarks/work/grid-default
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import print_table, require_cifar, save
from scipy import stats

from taskspace.analysis import evaluate
from taskspace.data import ImageSplit
from taskspace.features import SourceOutputs, outputs_cache_key
from taskspace.io import read_npz, sha256_of_file
from taskspace.runner import Run
from taskspace.training.checkpoints import load_model
from taskspace.training.seeds import derive_seed
from taskspace.transfer import get_protocol, probe_draws, probe_predictions


def kendall(first: np.ndarray, second: np.ndarray) -> float:
    """Kendall τ-b as taskspace.analysis computes it: NaN (not a warning) when a column is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        value = float(stats.kendalltau(first, second).statistic)
    return value if math.isfinite(value) else math.nan


def resampled_accuracies(correct: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Accuracy of every source on ``replicates`` bootstrap resamples of the test images, paired.

    ``correct`` is (sources, images), the correctness of each source on each test image (a fraction
    when averaged over probe draws). One resample of the images serves every source, so the sources
    of a replicate are compared on the same test set. Returns (replicates, sources).
    """
    images = correct.shape[1]
    draws = rng.integers(0, images, size=(replicates, images))
    rows = np.repeat(np.arange(replicates), images) * images
    counts = np.bincount(rows + draws.ravel(), minlength=replicates * images).reshape(replicates, images)
    return counts @ correct.T / images


def paired_bootstrap_taus(
    correct: np.ndarray, measured: np.ndarray, *, replicates: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: τ(replicate, measured) and τ(replicate, an independent replicate).

    ``correct`` (sources, images) and ``measured`` (sources,) hold only the sources to be ranked (the
    caller leaves the diagonal out). Returns two arrays of ``replicates`` τ values (NaN when a column
    is constant).
    """
    first = resampled_accuracies(correct, replicates, rng)
    second = resampled_accuracies(correct, replicates, rng)
    against_measured = np.array([kendall(row, measured) for row in first])
    between = np.array([kendall(a, b) for a, b in zip(first, second, strict=True)])
    return against_measured, between


def split_half_taus(correct: np.ndarray, *, splits: int, rng: np.random.Generator) -> np.ndarray:
    """τ between the accuracy columns of the two halves of ``splits`` random splits of the test images."""
    images = correct.shape[1]
    half = images // 2
    taus = []
    for _ in range(splits):
        order = rng.permutation(images)
        taus.append(kendall(correct[:, order[:half]].mean(axis=1), correct[:, order[half : 2 * half]].mean(axis=1)))
    return np.array(taus)


def probe_correctness(train: SourceOutputs, test: SourceOutputs, *, steps: int, weight_decay: float) -> np.ndarray:
    """taskspace.transfer.probe_accuracy, keeping whether each test image is classified right."""
    return probe_predictions(train, test, steps=steps, weight_decay=weight_decay) == test.labels


class CachedOutputs:
    """The run's cached forward passes (taskspace.features.cached_source_outputs), read only: a
    missing entry is an error, never a new forward pass."""

    def __init__(self, context: Run) -> None:
        self.folder = context.path("features")
        self.keys: dict[str, tuple[str, dict[str, list[float]]]] = {}
        for source in context.space.ids:
            checkpoint = context.checkpoint(source)
            self.keys[source] = (sha256_of_file(checkpoint), load_model(checkpoint)[1]["normalization"])

    def __call__(self, source: str, split: ImageSplit) -> SourceOutputs:
        digest, normalization = self.keys[source]
        path = self.folder / f"{outputs_cache_key(checkpoint_digest=digest, split=split, normalization=normalization)}.npz"
        if not path.is_file():
            raise SystemExit(f"no cached forward pass of {source} at {path}; run the grid's truth stage first")
        arrays = read_npz(path)
        return SourceOutputs(arrays["features"], arrays["logits"], arrays["labels"], arrays["pre_activations"])


def refit(context: Run, outputs: CachedOutputs, protocol: str, target: str) -> np.ndarray:
    """Per-test-image correctness (sources, images) of every source's probe on ``target``, as TruthCell
    fits it: the mean over the probe draws for frozen_kK (its mean is the cell's accuracy)."""
    labels_per_class = get_protocol(protocol).params.get("k")
    config = context.grid.source_config(target, context.space.dataset)
    splits = context.splits(target)
    rows = []
    for source in context.space.ids:
        train, test = outputs(source, splits.train), outputs(source, splits.test)
        correct = [probe_correctness(train.subset(positions), test, steps=config.output_steps,
                                     weight_decay=config.output_weight_decay)
                   for positions in probe_draws(context.grid.seed, target, train.labels, labels_per_class,
                                                 context.grid.probe_draws)]
        rows.append(np.mean(correct, axis=0))
    return np.array(rows)


def _summary(per_replicate: np.ndarray) -> dict[str, float]:
    """Mean of per-replicate mean τ, with its 2.5 and 97.5 percentiles over replicates."""
    return {"mean": float(np.mean(per_replicate)), "low": float(np.percentile(per_replicate, 2.5)),
            "high": float(np.percentile(per_replicate, 97.5))}


def _mean_over_targets(taus: np.ndarray) -> np.ndarray:
    """(targets, replicates) -> (replicates,): the mean over the targets with a finite τ, as evaluate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(taus, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--protocols", default="frozen_all,frozen_k10")
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--splits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    arguments = parser.parse_args()
    began = time.perf_counter()
    context = Run.open(arguments.run, data_root=require_cifar())
    ids = context.space.ids
    estimates, truths = context.estimates(), context.truths()
    protocols = [p for p in arguments.protocols.split(",") if p in truths]
    outputs = CachedOutputs(context)
    results: dict[str, Any] = {}
    for protocol in protocols:
        started = time.perf_counter()
        truth = truths[protocol]
        refit_accuracy = np.full((len(ids), len(ids)), np.nan)
        against_measured, between, halves, per_target = [], [], [], {}
        for j, target in enumerate(ids):
            correct = refit(context, outputs, protocol, target)
            refit_accuracy[:, j] = correct.mean(axis=1)
            keep = np.array([source != target for source in ids])  # the verdict leaves the diagonal out
            measured = np.array([truth.score(source, target) for source in ids])[keep]
            rng = np.random.default_rng(derive_seed(arguments.seed, "truth_ceiling", protocol, target))
            first, second = paired_bootstrap_taus(correct[keep], measured, replicates=arguments.replicates, rng=rng)
            half = split_half_taus(correct[keep], splits=arguments.splits, rng=rng)
            against_measured.append(first)
            between.append(second)
            halves.append(half)
            images = correct.shape[1]
            standard_error = correct[keep].std(axis=1) / np.sqrt(images)
            per_target[target] = {
                "test_images": int(images), "tau_vs_measured": float(np.nanmean(first)),
                "tau_between_replicates": float(np.nanmean(second)), "tau_split_half": float(np.nanmean(half)),
                "accuracy_spread_std": float(np.std(measured)), "mean_standard_error": float(np.mean(standard_error)),
                "distinct_accuracies": int(len(np.unique(measured))),
            }
        difference = np.abs(refit_accuracy - truth.scores)
        results[protocol] = {
            "max_abs_refit_difference": float(np.max(difference)),
            "cells_differing": int(np.sum(difference > 1e-12)),
            "tau_vs_measured": _summary(_mean_over_targets(np.array(against_measured))),
            "tau_between_replicates": _summary(_mean_over_targets(np.array(between))),
            "tau_split_half": _summary(_mean_over_targets(np.array(halves))),
            "per_target": per_target,
            "seconds": time.perf_counter() - started,
        }
        print(f"{protocol}: refit max |Δ accuracy| = {results[protocol]['max_abs_refit_difference']:.3g} "
              f"({results[protocol]['cells_differing']} cells differ), {results[protocol]['seconds']:.0f} s", flush=True)
    comparisons: dict[str, dict[str, float]] = {}
    if "frozen_all" in truths:
        others = {p: m for p, m in truths.items() if p != "frozen_all"}
        for row in evaluate({**others, **estimates}, {"frozen_all": truths["frozen_all"]}, resamples=0):
            comparisons[row["estimator"]] = {"kendall_tau": row["kendall_tau"], "targets": row["targets"]}
    best = max((n for n in estimates if n in comparisons), key=lambda n: comparisons[n]["kendall_tau"], default=None)
    name = arguments.name or arguments.run.name.removeprefix("grid-")
    save(f"truth_ceiling_{name}", {
        "run": str(arguments.run), "replicates": arguments.replicates, "splits": arguments.splits,
        "seed": arguments.seed, "diagonal": "excluded", "protocols": results,
        "tau_vs_frozen_all": comparisons, "best_estimator_vs_frozen_all": best,
        "torch_threads": torch.get_num_threads(), "seconds": time.perf_counter() - began,
    })
    print(f"mean per-target Kendall τ-b (diagonal left out; {arguments.replicates} paired bootstrap replicates "
          f"of each target's test images, {arguments.splits} random halvings; [2.5, 97.5] percentiles):")
    table = []
    for protocol, result in results.items():
        for label, key in (("replicate vs measured truth (ceiling)", "tau_vs_measured"),
                           ("replicate vs replicate (test-retest)", "tau_between_replicates"),
                           ("half vs half (split-half)", "tau_split_half")):
            summary = result[key]
            table.append([protocol, label, summary["mean"], f"[{summary['low']:.3f}, {summary['high']:.3f}]"])
    for other in dict.fromkeys([p for p in truths if p != "frozen_all"] + ["linear_probe"] + ([best] if best else [])):
        if other in comparisons:
            table.append(["frozen_all", f"{other} vs frozen_all" + (" (best estimator)" if other == best else ""),
                          comparisons[other]["kendall_tau"], ""])
    print_table(["protocol", "τ of", "mean τ", "[2.5, 97.5]"], table)
    for protocol, result in results.items():
        spread = np.mean([t["accuracy_spread_std"] for t in result["per_target"].values()])
        error = np.mean([t["mean_standard_error"] for t in result["per_target"].values()])
        print(f"{protocol}: mean over targets of the sources' accuracy spread (std) {spread:.4f}, "
              f"of one accuracy's test-set standard error {error:.4f}")
    print(f"{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
