"""Which 95% interval over targets to print: percentile bootstrap, BCa bootstrap or Student's t.

taskspace prints a mean over targets (a ranker's Kendall τ, weighted τ, regret, and its difference to the
zoo prior, paired by target) with a 95% interval over targets, and runs hold 6 to 45 targets. This
benchmark measures how often each kind of interval covers the mean it estimates, at those sizes, on
distributions of per-target values that real runs produced (not a normal model).

Populations: the per-target values committed in ``benchmarks/results/history_ranker.json`` (every section:
the Model Spider matrices, the default and confirmation CIFAR-10 spaces), for the rankers ``history``,
``zoo_prior``, ``logme`` and the section's estimator of highest mean Kendall τ, two quantities each: the
Kendall τ and its difference to ``zoo_prior`` on the same target (skipped for the prior itself). Each
population is the finite list of a section's targets; its mean is the truth.

For every population and every size n in 6, 8, 15, 45: ``--trials`` draws of n targets with replacement
from the population; for each draw the three intervals (2,000 bootstrap resamples; BCa and percentile by
``scipy.stats.bootstrap``, t by ``scipy.stats.t``); coverage is the share of draws whose interval holds
the population mean, width the mean width. Draws with one distinct value (every interval degenerate)
count as misses for every method.

The rule, committed before the first run: **switch the printed interval to BCa only if, pooled over the
populations at n <= 15, its coverage is closer to 0.95 than the percentile interval's by at least 0.01
and its mean width is at most 1.2 times the percentile interval's; otherwise keep the percentile
interval.** The t interval is reported beside them (the history protocol already prints it next to the
bootstrap interval for paired differences).

    python benchmarks/interval_coverage.py
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
from _common import RESULTS, print_table, save
from scipy import stats

SIZES = (6, 8, 15, 45)
METHODS = ("percentile", "BCa", "t")
RANKERS = ("history", "zoo_prior", "logme")


def populations(history: dict) -> list[dict]:
    """Per-target Kendall τ and paired difference to the prior, per (section, ranker)."""
    found = []
    for section, body in history.items():
        if not isinstance(body, dict) or "per_target" not in body:
            continue
        rows = body["per_target"]
        by_ranker: dict[str, dict[str, float]] = {}
        for row in rows:
            value = row.get("kendall_tau")
            if isinstance(value, float) and math.isfinite(value):
                by_ranker.setdefault(row["ranker"], {})[row["target"]] = value
        estimators = [row for row in body.get("summary", []) if row["ranker"] not in ("history", "zoo_prior")]
        best = max(estimators, key=lambda row: row["kendall_tau"])["ranker"] if estimators else None
        wanted = [name for name in by_ranker if name.lower() in RANKERS or name == best]
        prior = by_ranker.get("zoo_prior", {})
        for ranker in dict.fromkeys(wanted):
            values = by_ranker[ranker]
            found.append({"section": section, "ranker": ranker, "quantity": "kendall_tau",
                          "values": [values[t] for t in sorted(values)]})
            if ranker != "zoo_prior" and prior:
                shared = sorted(set(values) & set(prior))
                found.append({"section": section, "ranker": ranker, "quantity": "kendall_tau_vs_prior",
                              "values": [values[t] - prior[t] for t in shared]})
    return [p for p in found if len(p["values"]) >= 5 and np.ptp(p["values"]) > 0]


def intervals(sample: np.ndarray, rng: np.random.Generator, resamples: int) -> dict[str, tuple[float, float]]:
    if np.ptp(sample) == 0:
        return {method: (math.nan, math.nan) for method in METHODS}
    found = {}
    for method in ("percentile", "BCa"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns on near-degenerate draws; a NaN end counts as a miss
            interval = stats.bootstrap((sample,), np.mean, n_resamples=resamples, method=method, rng=rng,
                                       vectorized=True).confidence_interval
        found[method] = (float(interval.low), float(interval.high))
    n = len(sample)
    half = float(stats.t.ppf(0.975, n - 1) * sample.std(ddof=1) / math.sqrt(n))
    found["t"] = (float(sample.mean() - half), float(sample.mean() + half))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="draws per population and size (default 300)")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    began = time.perf_counter()
    history = json.loads((RESULTS / "history_ranker.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(arguments.seed)
    cells = []
    for population in populations(history):
        values = np.asarray(population["values"])
        truth = float(values.mean())
        for n in SIZES:
            hits = dict.fromkeys(METHODS, 0)
            widths: dict[str, list[float]] = {method: [] for method in METHODS}
            for _ in range(arguments.trials):
                sample = values[rng.integers(0, len(values), size=n)]
                for method, (low, high) in intervals(sample, rng, arguments.resamples).items():
                    hits[method] += int(low <= truth <= high)
                    if math.isfinite(low) and math.isfinite(high):
                        widths[method].append(high - low)
            cells.append({"section": population["section"], "ranker": population["ranker"],
                          "quantity": population["quantity"], "targets": len(values), "n": n,
                          **{f"{m}_coverage": hits[m] / arguments.trials for m in METHODS},
                          **{f"{m}_width": float(np.mean(widths[m])) if widths[m] else math.nan for m in METHODS}})
    pooled = []
    for n in SIZES:
        chosen = [cell for cell in cells if cell["n"] == n]
        pooled.append({"n": n, "populations": len(chosen),
                       **{f"{m}_coverage": float(np.mean([c[f"{m}_coverage"] for c in chosen])) for m in METHODS},
                       **{f"{m}_width": float(np.nanmean([c[f"{m}_width"] for c in chosen])) for m in METHODS}})
    small = [cell for cell in cells if cell["n"] <= 15]
    coverage = {m: float(np.mean([c[f"{m}_coverage"] for c in small])) for m in METHODS}
    width = {m: float(np.nanmean([c[f"{m}_width"] for c in small])) for m in METHODS}
    gain = abs(coverage["percentile"] - 0.95) - abs(coverage["BCa"] - 0.95)
    decision = "BCa" if gain >= 0.01 and width["BCa"] <= 1.2 * width["percentile"] else "percentile"
    save("interval_coverage", {
        "command": "python benchmarks/interval_coverage.py", "trials": arguments.trials,
        "resamples": arguments.resamples, "seed": arguments.seed,
        "rule": "BCa only if, pooled over n <= 15, its coverage is closer to 0.95 than the percentile "
                "interval's by >= 0.01 and its mean width is <= 1.2x the percentile interval's",
        "small_sizes": {"coverage": coverage, "width": width, "bca_gain": gain}, "decision": decision,
        "pooled": pooled, "cells": cells, "seconds": time.perf_counter() - began})
    print_table(["targets n", "populations", *(f"{m} coverage" for m in METHODS), *(f"{m} width" for m in METHODS)],
                [[row["n"], row["populations"], *(row[f"{m}_coverage"] for m in METHODS),
                  *(row[f"{m}_width"] for m in METHODS)] for row in pooled])
    print(f"n <= 15: BCa closer to 0.95 by {gain:+.4f}; width ratio {width['BCa'] / width['percentile']:.3f} "
          f"-> the printed interval: {decision}")


if __name__ == "__main__":
    main()
