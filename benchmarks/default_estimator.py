"""The default estimator chosen by the rule of docs/default-estimator.md (committed before this ran).

Measures, resumably under benchmarks/work/: the default space (15 CIFAR-10 tasks; chooses), the
digits space and the confirmation space (confirm), each with every registered estimator and the
frozen-probe truths; then applies the rule and writes ``results/default_estimator.json`` with the
per-target Kendall τ of every estimator on every truth, each space's scoring seconds, the choice and
its confirmation. It also says whether the re-measured default-space matrices of the estimators that
``results/transfer_default.json`` holds came out the same (the zoo trains deterministically on the CPU).

    TASKSPACE_DATA=../shared/data python benchmarks/default_estimator.py
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from _common import RESULTS, WORK, print_table, require_cifar, save
from scipy import stats

from taskspace.analysis import per_target_agreement
from taskspace.runner import GridConfig, Run
from taskspace.scoring import list_estimators

#: The spaces: folder name, grid, truths, role.
SPACES = {
    "default": (GridConfig(space="default", train={"epochs": 10, "seed": 0}, seed=0, finetune_epochs=2),
                ("frozen_k10", "frozen_all"), "chooses"),
    "digits": (GridConfig(space="digits", train={"epochs": 15, "seed": 0}, seed=0, finetune_epochs=5),
               ("frozen_k5", "frozen_all"), "confirms"),
    "confirm": (GridConfig(space="benchmarks/spaces/confirm.toml", train={"epochs": 10, "seed": 0}, seed=0,
                           finetune_epochs=2), ("frozen_k10", "frozen_all"), "confirms"),
}
TARGET_BLIND = ("source_accuracy",)


def measure(name: str, data_root: str, estimators: tuple[str, ...]) -> dict[str, Any]:
    """One space's per-target Kendall τ of every estimator against each truth, and its scoring seconds."""
    grid, protocols, role = SPACES[name]
    run = Run.create(WORK / f"grid-{name}", grid, data_root=None if grid.space == "digits" else data_root)
    started = time.perf_counter()
    run.train_zoo()
    matrices = run.score(estimators)
    run.measure(protocols)
    truths = run.truths()
    seconds = json.loads(run.path("score_seconds").read_text())
    per_target = {estimator: {protocol: {row.target: row.kendall_tau
                                         for row in per_target_agreement(matrix, truths[protocol])}
                              for protocol in protocols}
                  for estimator, matrix in matrices.items() if estimator not in TARGET_BLIND}
    return {"role": role, "protocols": list(protocols), "targets": list(run.space.ids), "per_target": per_target,
            "score_seconds": {e: seconds.get(e) for e in estimators}, "wall_seconds": time.perf_counter() - started,
            "matrices": {e: m.to_json_dict() for e, m in matrices.items()}}


def target_means(space: dict[str, Any], estimator: str, protocols: list[str]) -> np.ndarray:
    """Per target, the estimator's Kendall τ averaged over ``protocols``."""
    return np.array([np.mean([space["per_target"][estimator][p][t] for p in protocols]) for t in space["targets"]])


def paired_t(first: np.ndarray, second: np.ndarray) -> tuple[float, float, float]:
    difference = first - second
    mean = float(difference.mean())
    half = float(stats.t.ppf(0.975, len(difference) - 1) * difference.std(ddof=1) / math.sqrt(len(difference)))
    return mean, mean - half, mean + half


def apply_rule(spaces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """docs/default-estimator.md, step by step."""
    chooser = spaces["default"]
    candidates = sorted(chooser["per_target"])
    means = {e: float(target_means(chooser, e, chooser["protocols"]).mean()) for e in candidates}
    leader = max(candidates, key=lambda e: means[e])
    ties = {}
    for estimator in candidates:
        mean, low, high = paired_t(target_means(chooser, estimator, chooser["protocols"]),
                                   target_means(chooser, leader, chooser["protocols"]))
        ties[estimator] = {"difference_to_leader": mean, "low": low, "high": high, "tied": low <= 0 <= high
                           or estimator == leader}
    tied = [e for e in candidates if ties[e]["tied"]]
    by_cost = sorted(tied, key=lambda e: chooser["score_seconds"][e])
    confirmations = {e: confirm(spaces, e) for e in by_cost}
    passing = [e for e in by_cost if all(c["confirmed"] for c in confirmations[e].values())]
    choice = by_cost[0] if (not passing or passing[0] == by_cost[0]) else passing[0]
    return {"means": means, "leader": leader, "ties": ties, "tied_by_cost": by_cost, "first_choice": by_cost[0],
            "confirmations": confirmations, "choice": choice,
            "choice_confirmed": all(c["confirmed"] for c in confirmations[choice].values())}


def confirm(spaces: dict[str, dict[str, Any]], estimator: str) -> dict[str, Any]:
    """On every confirming truth: the estimator's paired difference to the best estimator there."""
    results = {}
    for name, space in spaces.items():
        if space["role"] != "confirms":
            continue
        for protocol in space["protocols"]:
            best = max(space["per_target"], key=lambda e: np.mean(target_means(space, e, [protocol])))
            mean, low, high = paired_t(target_means(space, estimator, [protocol]),
                                       target_means(space, best, [protocol]))
            results[f"{name}/{protocol}"] = {"best": best, "difference": mean, "low": low, "high": high,
                                             "confirmed": high >= 0}
    return results


def same_as_committed(space: dict[str, Any]) -> dict[str, float]:
    """Largest absolute difference per estimator between this run's default-space matrices and the
    committed results/transfer_default.json (NaN where it lacks the estimator)."""
    committed = json.loads((RESULTS / "transfer_default.json").read_text())["matrices"]
    return {e: (float(np.nanmax(np.abs(np.array(m["scores"], dtype=float)
                                       - np.array(committed[e]["scores"], dtype=float))))
                if e in committed else math.nan) for e, m in space["matrices"].items()}


def _json_safe(value: Any) -> Any:
    """NaN (a τ of a constant ranking, an estimator the earlier results lack) as null, which JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="default,digits,confirm")
    arguments = parser.parse_args()
    data_root = require_cifar()
    estimators = tuple(list_estimators())
    spaces = {name: measure(name, data_root, estimators) for name in arguments.spaces.split(",")}
    payload: dict[str, Any] = {"rule": "docs/default-estimator.md", "spaces": spaces}
    if "default" in spaces:
        payload["default_reproduced"] = same_as_committed(spaces["default"])
    if "default" in spaces:
        payload["decision"] = apply_rule(spaces)
        payload["decision"]["confirming_spaces_measured"] = [n for n, space in spaces.items()
                                                             if space["role"] == "confirms"]
        payload["decision"]["confirming_spaces_missing"] = [n for n in SPACES if SPACES[n][2] == "confirms"
                                                            and n not in spaces]
    path = save("default_estimator", _json_safe(payload))
    if "decision" in payload:
        decision = payload["decision"]
        ordered = sorted(decision["means"], key=lambda e: -decision["means"][e])
        rows = [(e, decision["means"][e], decision["ties"][e]["difference_to_leader"], decision["ties"][e]["tied"],
                 spaces["default"]["score_seconds"][e]) for e in ordered]
        print_table(["estimator", "mean τ (default, frozen)", "minus the leader", "tied", "scoring seconds"], rows)
        missing = decision["confirming_spaces_missing"]
        measured = ", ".join(decision["confirming_spaces_measured"])
        pending = f"; not yet measured: {', '.join(missing)}" if missing else ""
        print(f"choice: {decision['choice']} (confirmed on {measured}: {decision['choice_confirmed']}{pending})")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
