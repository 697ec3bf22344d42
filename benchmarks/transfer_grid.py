"""The transferability matrix of a task space on the real CIFAR-10, its ground truth and the verdict.

Trains the zoo (one modular net per task), scores every source on every target with every estimator,
measures the ground truth, and evaluates each estimator against each ground truth (mean per-target
Kendall τ with bootstrap intervals, weighted τ, top-1 regret). Also the cost: scoring the whole
matrix (feature extraction + each estimator) against computing each ground truth. Resumable: the run
lives under benchmarks/work/ and a rerun skips finished cells.

    TASKSPACE_DATA=../shared/data python benchmarks/transfer_grid.py --space default
    TASKSPACE_DATA=../shared/data python benchmarks/transfer_grid.py --space benchmarks/spaces/confirm.toml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import WORK, print_table, require_cifar, save

from taskspace.analysis import compare_estimators, evaluate
from taskspace.io import read_json
from taskspace.runner import GridConfig, Run
from taskspace.scoring import list_estimators

#: Pairs whose difference is tested: taskspace's kernel score against the paper's and the best peers.
COMPARISONS = (("alignment_whitened", "logme"), ("alignment_whitened", "hscore"),
               ("alignment_whitened", "alignment"), ("alignment_centered", "alignment"),
               ("kernel_ridge_loo", "logme"), ("kernel_ridge_loo", "alignment_whitened"),
               ("kernel_ridge_loo", "linear_probe"), ("kernel_prototypes", "logme"),
               ("kernel_prototypes", "alignment_whitened"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="default")
    parser.add_argument("--name", default=None, help="result name (default: from the space)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimators", default=",".join(list_estimators()))
    parser.add_argument("--protocols", default="frozen_k10,frozen_all")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args()
    data_root = require_cifar()
    name = arguments.name or Path(arguments.space).stem
    grid = GridConfig(space=arguments.space, train={"epochs": arguments.epochs, "seed": arguments.seed},
                      seed=arguments.seed, finetune_epochs=arguments.finetune_epochs)
    context = Run.create(WORK / f"grid-{name}", grid, data_root=data_root)
    estimators = arguments.estimators.split(",")
    protocols = arguments.protocols.split(",")
    matrices = context.score(estimators, show_progress=arguments.progress)
    context.measure(protocols, show_progress=arguments.progress)
    truths = context.truths()
    rows = evaluate(matrices, truths, resamples=2000, seed=arguments.seed)
    context.write_verdict(rows)

    comparisons = [
        compare_estimators(matrices[first], matrices[second], truths[protocol], resamples=2000, seed=arguments.seed)
        for first, second in COMPARISONS if first in matrices and second in matrices
        for protocol in protocols
    ]

    ids = context.space.ids
    score_seconds = read_json(context.path("score_seconds"))
    truth_seconds = {
        protocol: sum(read_json(context.truth_file(protocol, s, t))["seconds"] for s in ids for t in ids)
        for protocol in protocols
    }
    zoo_seconds = sum(context.source_metrics(t)["train_seconds"] for t in ids)
    scoring_total = sum(score_seconds.values())
    cost = {
        "zoo_train_seconds": zoo_seconds,
        "score_seconds": score_seconds,
        "scoring_total_seconds": scoring_total,
        "truth_seconds": truth_seconds,
        "scoring_over_truth": {protocol: scoring_total / seconds for protocol, seconds in truth_seconds.items()},
    }
    save(f"transfer_{name}", {
        "space": arguments.space, "space_ids": list(ids), "grid": grid.to_dict(), "run": str(context.folder),
        "matrices": {key: matrix.to_json_dict() for key, matrix in matrices.items()},
        "truth": {key: matrix.to_json_dict() for key, matrix in truths.items()},
        "evaluation": rows, "comparisons": comparisons, "cost": cost,
    })
    table = []
    for protocol in protocols:
        for row in sorted((r for r in rows if r["protocol"] == protocol), key=lambda r: -_value(r["kendall_tau"])):
            table.append([protocol, row["estimator"], row["kendall_tau"],
                          f"[{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]", row["weighted_tau"],
                          row["top1_regret"], score_seconds.get(row["estimator"], float("nan"))])
    print_table(["protocol", "estimator", "mean τ", "95% CI", "mean τw", "top-1 regret", "seconds (all cells)"],
                table)
    print("\npaired bootstrap over targets of the difference in mean Kendall τ:")
    print_table(["first", "second", "protocol", "τ difference", "95% CI", "share of resamples first ahead"],
                [[c["first"], c["second"], c["protocol"], c["difference"], f"[{c['low']:.3f}, {c['high']:.3f}]",
                  c["share_first_ahead"]] for c in comparisons])
    print(json.dumps(cost, indent=1))


def _value(number: float) -> float:
    return number if number == number else -2.0


if __name__ == "__main__":
    main()
