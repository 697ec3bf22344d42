"""The history ranker against the target-blind zoo prior and every estimator, on data nobody here made.

The rule (docs/history.md) was committed before this script was first run, and nothing in it is tuned
here: every dataset below is a confirmation.

- ``model_spider``: the public 10-model x 8-target matrix shipped with Model Spider (fine-tuning
  accuracies of ImageNet models and nine estimators' values; ../shared/data/model-selection/model-spider,
  MIT), read through ``taskspace.history.read_history`` as a user's import would;
- ``model_spider_ftd``: its 66 fine-tuned models x 7 targets (truth only: the ranker has no evidence, so
  it is the standardised prior; reported with leave-one-source-out);
- ``default`` and ``confirm``: taskspace's own CIFAR-10 task spaces (benchmarks/results/transfer_*.json:
  15 targets each, every estimator's matrix and every truth measured there); a
  source's own task (the diagonal) is left out, as in every verdict of a task space.

Per target: weighted τ (scipy.stats.weightedtau(score, accuracy)), Kendall τ, top-1 and top-3 regret;
means with 95% bootstrap intervals over targets; each ranker's paired difference to the zoo prior with a
t interval and a bootstrap interval. The per-target rows behind every number are in the JSON.

    python benchmarks/history_ranker.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, print_table, save

from taskspace.history import (
    HISTORY,
    ZOO_PRIOR,
    history_protocol,
    leave_one_source_out,
    rank_dispersion,
    rank_with_history,
    raw_prior,
    read_history,
    summarise,
    target_result,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "model-selection" / "model-spider"
#: Published figures on the same truth, quoted for comparison (the Model Spider README's table).
PUBLISHED = {"Model Spider": 0.800, "LogME": 0.676, "NCE": 0.666, "H-Score": 0.648}


def evaluate_history(truth: np.ndarray, evidence: dict[str, np.ndarray], sources: tuple[str, ...],
                     targets: tuple[str, ...], *, newcomers: bool) -> dict[str, Any]:
    """Every ranker on every target, the summary rows, the truth's dispersion and (optionally) LOSO."""
    started = time.perf_counter()
    results = history_protocol(truth, evidence, sources=sources, targets=targets)
    seconds = time.perf_counter() - started
    results += one_estimator_history(truth, evidence, sources, targets)
    document: dict[str, Any] = {
        "sources": len(sources), "targets": len(targets), "cells": int(np.isfinite(truth).sum()),
        "estimators": list(evidence), "rank_dispersion": rank_dispersion(truth),
        "evaluate_seconds": seconds,
        "summary": sorted(summarise(results), key=lambda row: -_sortable(row["weighted_tau"])),
        "per_target": [dataclasses.asdict(result) for result in results],
    }
    if newcomers:
        loso = leave_one_source_out(truth, evidence, sources=sources, targets=targets)
        rows = summarise(loso)
        for row in rows:
            errors = [r.detail["rank_error"] for r in loso if r.ranker == row["ranker"]]
            row["newcomer_rank_error"] = float(np.mean(errors))
        document["leave_one_source_out"] = {"summary": rows,
                                            "per_cell": [dataclasses.asdict(result) for result in loso]}
    return document


#: The declared one-estimator variant (docs/history.md): the history rule with LogME's values alone.
HISTORY_LOGME = "history_logme"


def logme_evidence(evidence: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The declared variant's only evidence: LogME's values, spelled ``logme`` or ``LogME`` (none if absent)."""
    return {name: values for name, values in evidence.items() if name.lower() == "logme"}


def one_estimator_history(truth: np.ndarray, evidence: dict[str, np.ndarray], sources: tuple[str, ...],
                          targets: tuple[str, ...]) -> list[Any]:
    """``history_logme`` on every target with a truth (none where the data holds no LogME values)."""
    logme = logme_evidence(evidence)
    if not logme:
        return []
    results = []
    for column, target in enumerate(targets):
        if np.isfinite(truth[:, column]).sum() < 2:
            continue
        ranking = rank_with_history(truth, logme, column, sources=sources, targets=targets)
        results.append(target_result(HISTORY_LOGME, target, ranking.scores, truth[:, column],
                                     weights=ranking.weights))
    return results


def _sortable(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def space_history(name: str, protocol: str) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[str, ...],
                                                      tuple[str, ...]]:
    """A task space's truth and estimator matrices from its transfer results, the diagonal left out."""
    document = json.loads((RESULTS / f"transfer_{name}.json").read_text())
    ids = tuple(document["space_ids"])

    def matrix(entry: dict[str, Any]) -> np.ndarray:
        assert tuple(entry["sources"]) == ids and tuple(entry["targets"]) == ids
        values = np.array(entry["scores"], dtype=np.float64)
        values = values if entry.get("greater_is_better", True) else -values
        np.fill_diagonal(values, np.nan)  # a source's own task is not a transfer
        return values

    evidence = {estimator: matrix(entry) for estimator, entry in document["matrices"].items()}
    return matrix(document["truth"][protocol]), evidence, ids, ids


def open_zoo_history(document: dict[str, Any], seed: str) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                     tuple[str, ...], tuple[str, ...]]:
    """One seed of the open zoo's fine-tuning results (benchmarks/results/open_zoo_finetune.json): its truth
    and estimator matrices (higher is better), a modular net's cells on its own training task left out."""
    measured = document["seeds"][seed]
    sources, targets = tuple(measured["sources"]), tuple(measured["targets"])
    own = {(sources.index(module), targets.index(target)) for module, target in measured["own_task"]}

    def matrix(values: list[list[float | None]], sign: float = 1.0) -> np.ndarray:
        array = sign * np.array([[np.nan if v is None else v for v in row] for row in values], dtype=np.float64)
        for row, column in own:
            array[row, column] = np.nan
        return array

    evidence = {name: matrix(entry["scores"], 1.0 if entry["greater_is_better"] else -1.0)
                for name, entry in measured["matrices"].items()}
    return matrix(measured["truth"]), evidence, sources, targets


def noise_ceiling(first: np.ndarray, second: np.ndarray, targets: tuple[str, ...]) -> dict[str, Any]:
    """Per target, Kendall τ and weighted τ between two measurements of the same truth; their means with a
    t interval over targets."""
    from scipy import stats

    rows = []
    for column, target in enumerate(targets):
        result = target_result("remeasurement", target, first[:, column], second[:, column])
        rows.append({"target": target, "kendall_tau": result.kendall_tau, "weighted_tau": result.weighted_tau})
    summary: dict[str, Any] = {"per_target": rows}
    for metric in ("kendall_tau", "weighted_tau"):
        values = np.array([row[metric] for row in rows if math.isfinite(row[metric])])
        half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
        summary[metric] = float(values.mean())
        summary[f"{metric}_t_low"], summary[f"{metric}_t_high"] = summary[metric] - half, summary[metric] + half
    return summary


def against_other_seed(truth: np.ndarray, evidence: dict[str, np.ndarray], other: np.ndarray,
                       sources: tuple[str, ...], targets: tuple[str, ...]) -> dict[str, Any]:
    """Every ranker read from one seed (its history, its estimators), and that seed's own truth as a ranker
    (the re-measurement), judged against the other seed's truth; paired to the prior and to the
    re-measurement."""
    results = []
    for column, target in enumerate(targets):
        accuracy = other[:, column]
        if np.isfinite(accuracy).sum() < 2:
            continue
        ranking = rank_with_history(truth, evidence, column, sources=sources, targets=targets)
        results.append(target_result(HISTORY, target, ranking.scores, accuracy))
        logme = logme_evidence(evidence)
        if logme:
            one = rank_with_history(truth, logme, column, sources=sources, targets=targets)
            results.append(target_result(HISTORY_LOGME, target, one.scores, accuracy))
        results.append(target_result(ZOO_PRIOR, target, raw_prior(truth, column), accuracy))
        results.append(target_result("remeasurement", target, truth[:, column], accuracy))
        for name, values in evidence.items():
            results.append(target_result(name, target, values[:, column], accuracy))
    to_prior = sorted(summarise(results), key=lambda row: -_sortable(row["weighted_tau"]))
    to_remeasurement = {row["ranker"]: {key.replace("_vs_prior", "_vs_remeasurement"): value
                                        for key, value in row.items() if "_vs_prior" in key}
                        for row in summarise(results, baseline="remeasurement")}
    for row in to_prior:
        row.update(to_remeasurement.get(row["ranker"], {}))
    return {"summary": to_prior, "per_target": [dataclasses.asdict(result) for result in results]}


def recommend_cost(truth: Path, scores: Path) -> dict[str, Any]:
    """Seconds to import the files as a run and write its verdict, and of ``recommend`` on every target, by
    history and by LogME alone, in this process (the run is made in a temporary folder)."""
    import tempfile

    from taskspace.baselines import run_verdict
    from taskspace.runner.imported import ImportedRun

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run = ImportedRun.create(Path(folder) / "run", truth=truth, scores=scores, percent=True)
        with run.writing():
            run.write_verdict(run_verdict(run))
        import_and_evaluate = time.perf_counter() - started
        return {"import_and_evaluate_run_seconds": import_and_evaluate, **recommend_seconds(run, "LogME")}


def recommend_seconds(run: Any, estimator: str, repeats: int = 3) -> dict[str, Any]:
    """Mean seconds of ``recommend`` on each of the run's targets, by history (the default) and by
    ``estimator`` alone, called ``repeats`` times each, in this process."""
    from taskspace.recommend import recommend

    seconds: dict[str, list[float]] = {"history": [], estimator: []}
    for _ in range(repeats):
        for target in run.target_ids:
            for ranker in seconds:
                started = time.perf_counter()
                recommend(run, target, k=3, estimator=None if ranker == "history" else ranker)
                seconds[ranker].append(time.perf_counter() - started)
    mean = {ranker: float(np.mean(values)) for ranker, values in seconds.items()}
    return {"recommend_seconds": mean, "history_adds_seconds": mean["history"] - mean[estimator],
            "calls_each": len(seconds["history"])}


#: Seed 0's run of the open zoo (benchmarks/open_zoo_finetune.py), where it was measured on this machine.
OPEN_ZOO_RUN = Path(__file__).resolve().parent / "work" / "open-zoo-finetune" / "seed0" / "run"


def open_zoo_recommend_cost() -> dict[str, Any] | None:
    """``recommend``'s seconds on the open zoo's own run (29 modules, 16 targets, 18 estimators' matrices and
    the fine-tuning truth), by history and by LogME alone; None where the run is not on this machine."""
    from taskspace.runner.record import open_any_run

    if not (OPEN_ZOO_RUN / "run.json").is_file():
        return None
    run = open_any_run(OPEN_ZOO_RUN)
    truth = run.truths().get("finetune")
    if truth is None or not np.isfinite(truth.scores).all():
        return None
    return {"run": "benchmarks/work/open-zoo-finetune/seed0/run", **recommend_seconds(run, "logme")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-spider", type=Path, default=SHARED,
                        help="folder of truth.csv, scores.csv, ftd_truth.csv")
    arguments = parser.parse_args()
    payload: dict[str, Any] = {"rule": "docs/history.md", "published_model_spider": PUBLISHED}

    started = time.perf_counter()
    spider = read_history(arguments.model_spider / "truth.csv", arguments.model_spider / "scores.csv", percent=True)
    payload["model_spider"] = evaluate_history(spider.truths["finetune"], spider.evidence, spider.sources,
                                               spider.targets, newcomers=True)
    payload["model_spider"]["read_and_evaluate_seconds"] = time.perf_counter() - started
    payload["model_spider"]["cost"] = recommend_cost(arguments.model_spider / "truth.csv",
                                                     arguments.model_spider / "scores.csv")
    open_zoo_cost = open_zoo_recommend_cost()
    if open_zoo_cost is not None:
        payload["open_zoo_recommend_cost"] = open_zoo_cost

    ftd = read_history(arguments.model_spider / "ftd_truth.csv", percent=True)
    payload["model_spider_ftd"] = evaluate_history(ftd.truths["finetune"], {}, ftd.sources, ftd.targets,
                                                   newcomers=True)
    for space in ("default", "confirm"):
        for protocol in json.loads((RESULTS / f"transfer_{space}.json").read_text())["truth"]:
            truth, evidence, sources, targets = space_history(space, protocol)
            payload[f"{space}_{protocol}"] = evaluate_history(truth, evidence, sources, targets, newcomers=False)

    open_zoo = RESULTS / "open_zoo_finetune.json"
    seeds = json.loads(open_zoo.read_text()).get("seeds", {}) if open_zoo.is_file() else {}
    seeds = {seed: measured for seed, measured in seeds.items() if measured.get("complete")}  # every target measured
    for seed in sorted(seeds):
        truth, evidence, sources, targets = open_zoo_history(json.loads(open_zoo.read_text()), seed)
        payload[f"open_zoo_finetune_seed{seed}"] = evaluate_history(truth, evidence, sources, targets, newcomers=True)
    if {"0", "1"} <= set(seeds):
        document = json.loads(open_zoo.read_text())
        first, evidence, sources, targets = open_zoo_history(document, "0")
        second = open_zoo_history(document, "1")[0]
        payload["open_zoo_finetune_ceiling"] = {"between_seeds": noise_ceiling(first, second, targets),
                                                "seed0_rankers_on_seed1_truth": against_other_seed(
                                                    first, evidence, second, sources, targets)}
    path = save("history_ranker", payload)
    headers = ["data", "ranker", "weighted τ [95% CI]", "Δ vs prior (t 95%)", "Kendall τ", "top-1 regret", "targets"]
    table = []
    for data, document in payload.items():
        if not isinstance(document, dict) or "summary" not in document:
            continue
        estimators = [row for row in document["summary"] if row["ranker"] not in (HISTORY, ZOO_PRIOR, HISTORY_LOGME)]
        shown = [row for row in document["summary"] if row["ranker"] in (HISTORY, ZOO_PRIOR, HISTORY_LOGME)] + (
            estimators[:1])
        for row in shown:
            difference = (f"{row['weighted_tau_vs_prior']:+.3f} [{row['weighted_tau_vs_prior_t_low']:+.3f}, "
                          f"{row['weighted_tau_vs_prior_t_high']:+.3f}]" if "weighted_tau_vs_prior" in row else "")
            table.append([data, row["ranker"] + (" (best estimator)" if row in estimators else ""),
                          f"{row['weighted_tau']:.3f} [{row['weighted_tau_low']:.3f}, {row['weighted_tau_high']:.3f}]",
                          difference, row["kendall_tau"], row["top1_regret"], row["targets"]])
    print_table(headers, table)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
