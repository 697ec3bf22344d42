"""Does the verdict survive a second zoo? The same task space trained and scored with two seeds.

Reads the results of two transfer_grid.py runs of one space that differ only in the seed (the zoo's
training seed and the grid's: new networks, new probe draws), e.g. transfer_default.json (seed 0) and
transfer_default_seed1.json (seed 1). Reported per estimator and ground truth: the mean per-target
Kendall τ under each zoo and their difference; and per target, the Kendall τ between the two zoos'
columns of the same matrix (how much a ranking of the same named sources moves when the sources are
retrained), for every estimator and for the ground truths themselves.

    TASKSPACE_DATA=../shared/data python benchmarks/transfer_grid.py --space default --seed 1 --name default_seed1
    python benchmarks/zoo_seeds.py transfer_default transfer_default_seed1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import RESULTS, print_table, save
from scipy import stats


def _columns_tau(first: np.ndarray, second: np.ndarray) -> float:
    """Mean over targets of the τ between two matrices' columns, the diagonal left out (as the verdict)."""
    taus = []
    for j in range(first.shape[1]):
        keep = np.arange(first.shape[0]) != j
        a, b = first[keep, j], second[keep, j]
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            taus.append(stats.kendalltau(a, b).statistic)
    return float(np.mean(taus)) if taus else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="result name of the first run (benchmarks/results/<name>.json)")
    parser.add_argument("second", help="result name of the second run")
    arguments = parser.parse_args()
    runs = [json.loads((RESULTS / f"{name}.json").read_text()) for name in (arguments.first, arguments.second)]
    if runs[0]["space_ids"] != runs[1]["space_ids"]:
        raise SystemExit("the two runs score different task spaces; pass two runs of one space")
    verdicts = [{(r["estimator"], r["protocol"]): r for r in run["evaluation"]} for run in runs]
    protocols = [p for p in runs[0]["truth"] if p in runs[1]["truth"]]
    rows = []
    for protocol in protocols:
        truth_tau = _columns_tau(np.array(runs[0]["truth"][protocol]["scores"]),
                                 np.array(runs[1]["truth"][protocol]["scores"]))
        names = [n for n in runs[0]["matrices"] if n in runs[1]["matrices"] and (n, protocol) in verdicts[1]]
        for name in names:
            first, second = verdicts[0][(name, protocol)], verdicts[1][(name, protocol)]
            rows.append({
                "protocol": protocol, "estimator": name,
                "kendall_tau_first": first["kendall_tau"], "kendall_tau_second": second["kendall_tau"],
                "difference": second["kendall_tau"] - first["kendall_tau"],
                "scores_tau_between_zoos": _columns_tau(np.array(runs[0]["matrices"][name]["scores"]),
                                                        np.array(runs[1]["matrices"][name]["scores"])),
                "truth_tau_between_zoos": truth_tau,
            })
    rows.sort(key=lambda r: (r["protocol"], -(r["kendall_tau_first"] + r["kendall_tau_second"])))
    save(f"zoo_seeds_{arguments.second}", {"first": arguments.first, "second": arguments.second, "rows": rows})
    for protocol in protocols:
        chosen = [r for r in rows if r["protocol"] == protocol]
        print(f"\nagainst {protocol} (its own columns agree between the zoos at τ {chosen[0]['truth_tau_between_zoos']:.3f}):")
        print_table(["estimator", f"τ, {arguments.first}", f"τ, {arguments.second}", "difference",
                     "τ between the zoos' score columns"],
                    [[r["estimator"], r["kendall_tau_first"], r["kendall_tau_second"], r["difference"],
                      r["scores_tau_between_zoos"]] for r in chosen])


if __name__ == "__main__":
    main()
