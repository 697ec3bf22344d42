"""Does the task space's structure emerge from the data? Group recovery and module similarity of a run.

For every estimator and every ground truth of a finished grid run (transfer_grid.py): hierarchical
clustering of the matrix, cut into as many clusters as the space has task groups, against the known
groups (adjusted Rand index per view, with a permutation p-value: the share of random relabellings of
the tasks, same group sizes, whose ARI is at least as high). Then linear CKA between every pair of
the zoo's modules on 2,000 test images: its own group recovery, and its agreement with each
transferability matrix (Spearman ρ of the symmetrised, rank-normalised matrices; one-sided Mantel p).

    TASKSPACE_DATA=../shared/data python benchmarks/structure_study.py benchmarks/work/grid-default
    python benchmarks/structure_study.py --reanalyse --name default   # p-values again, from the committed JSON
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, environment, print_table, require_cifar, save
from scipy import stats

from taskspace.matrix import TransferabilityMatrix

from taskspace.runner import Run
from taskspace.similarity import module_similarity, similarity_vs_transfer
from taskspace.structure import cluster_tasks, grouping_agreement, structure_summary

PERMUTATIONS = 2000


def permutation_p_value(labels_by_task: dict[str, int], groups: dict[str, str], observed: float, seed: int) -> float:
    """Share of random relabellings of the known groups (sizes kept) with an ARI >= the observed one
    (scipy.stats.permutation_test, pairings of tasks to group labels, one-sided, ``PERMUTATIONS - 1``
    resamples so that p = (1 + hits) / PERMUTATIONS)."""
    tasks = list(groups)
    found = np.array([labels_by_task[task] for task in tasks])
    codes = {name: code for code, name in enumerate(sorted(set(groups.values())))}
    known = np.array([codes[groups[task]] for task in tasks])

    def ari(permuted_known: np.ndarray) -> float:
        return grouping_agreement(dict(zip(tasks, found.tolist(), strict=True)),
                                  dict(zip(tasks, permuted_known.tolist(), strict=True)))

    test = stats.permutation_test((known,), ari, permutation_type="pairings", alternative="greater",
                                  n_resamples=PERMUTATIONS - 1, vectorized=False, rng=np.random.default_rng(seed))
    assert abs(test.statistic - observed) < 1e-12, (test.statistic, observed)
    return float(test.pvalue)


def reanalyse(name: str) -> None:
    """The group-recovery p-values again, from the committed results: each matrix from
    results/transfer_<name>.json (its ARI must equal the recorded one, else that row is left as it was
    and said), the module similarity from results/structure_<name>.json; the file is rewritten."""
    document = json.loads((RESULTS / f"structure_{name}.json").read_text(encoding="utf-8"))
    transfer = json.loads((RESULTS / f"transfer_{name}.json").read_text(encoding="utf-8"))
    groups = document["task_groups"]
    moved = []
    for row in document["recovery"]:
        source = transfer["matrices" if row["kind"] == "estimator" else "truth"].get(row["matrix"])
        if source is None:
            print(f"{row['matrix']} ({row['kind']}): not in transfer_{name}.json; its p-values are kept")
            continue
        matrix = TransferabilityMatrix.from_json_dict(source)
        summary = structure_summary(matrix, groups)
        for view, ari in summary.items():
            if abs(ari - row[view]) > 1e-12:
                print(f"{row['matrix']} {view}: ARI {ari:.6f} here, {row[view]:.6f} recorded; p kept")
                continue
            clustering = cluster_tasks(matrix, view=view, n_clusters=len(set(groups.values())))
            p_value = permutation_p_value(clustering.labels_by_task, groups, ari, seed=0)
            moved.append((row["matrix"], view, row[f"{view}_p"], p_value))
            row[f"{view}_p"] = p_value
    similarity = TransferabilityMatrix.from_json_dict(document["module_similarity"]["matrix"])
    clusters = cluster_tasks(similarity, view="sources", n_clusters=len(set(groups.values())))
    module = document["module_similarity"]
    moved.append(("module similarity", "sources", module["p_value"],
                  permutation_p_value(clusters.labels_by_task, groups, module["adjusted_rand_index"], seed=0)))
    module["p_value"] = moved[-1][3]
    document["reanalysed"] = {  # the matrices were measured where "environment" says; the p-values here
        "what": "group-recovery p-values from scipy.stats.permutation_test (benchmarks/structure_study.py --reanalyse)",
        "environment": environment()}
    save(f"structure_{name}", document)
    print_table(["matrix", "view", "p before", "p now"], [[m, v, f"{a:.4f}", f"{b:.4f}"] for m, v, a, b in moved])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("--name", default=None)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--reanalyse", action="store_true",
                        help="recompute the group-recovery p-values from the committed results of --name")
    arguments = parser.parse_args()
    if arguments.reanalyse:
        if not arguments.name:
            raise SystemExit("--reanalyse needs --name (default or confirm)")
        reanalyse(arguments.name)
        return
    if arguments.run is None:
        raise SystemExit("name the finished grid run, e.g. benchmarks/work/grid-default")
    context = Run.open(arguments.run, data_root=require_cifar())
    space = context.space
    if not space.groups:
        raise SystemExit(f"the space of '{arguments.run}' names no class groups; add [groups] to its TOML file")
    groups = space.task_groups()
    estimates, truths = context.estimates(), context.truths()
    recovery = []
    for kind, matrices in (("estimator", estimates), ("ground truth", truths)):
        for name, matrix in matrices.items():
            summary = structure_summary(matrix, groups)
            row = {"matrix": name, "kind": kind}
            for view, ari in summary.items():
                clustering = cluster_tasks(matrix, view=view, n_clusters=len(set(groups.values())))
                row[view] = ari
                row[f"{view}_p"] = permutation_p_value(clustering.labels_by_task, groups, ari, seed=0)
            recovery.append(row)

    started = time.perf_counter()
    similarity = module_similarity(context, samples=arguments.samples)
    similarity_seconds = time.perf_counter() - started
    module_clusters = cluster_tasks(similarity, view="sources", n_clusters=len(set(groups.values())))
    module_ari = grouping_agreement(module_clusters.labels_by_task, groups)
    module_p = permutation_p_value(module_clusters.labels_by_task, groups, module_ari, seed=0)
    agreement = []
    for kind, matrices in (("estimator", estimates), ("ground truth", truths)):
        for name, matrix in matrices.items():
            result = similarity_vs_transfer(similarity, matrix, permutations=10000, seed=0)
            agreement.append({"matrix": name, "kind": kind, "spearman": result["spearman"], "p_value": result["p_value"]})

    name = arguments.name or arguments.run.name.removeprefix("grid-")
    save(f"structure_{name}", {
        "run": str(arguments.run), "task_groups": groups, "permutations": PERMUTATIONS, "recovery": recovery,
        "module_similarity": {"estimator": similarity.estimator, "samples": arguments.samples,
                              "seconds": similarity_seconds, "matrix": similarity.to_json_dict(),
                              "leaf_order": list(module_clusters.ordered_ids), "adjusted_rand_index": module_ari,
                              "p_value": module_p},
        "similarity_vs_transfer": agreement,
    })
    print(f"group recovery (ARI; p = share of {PERMUTATIONS} random relabellings at least as good):")
    print_table(["matrix", "kind", "sources", "p", "targets", "p", "affinity", "p"],
                [[r["matrix"], r["kind"], r["sources"], r["sources_p"], r["targets"], r["targets_p"],
                  r["affinity"], r["affinity_p"]] for r in recovery])
    print(f"\nmodule similarity ({similarity.estimator}, {arguments.samples} images, {similarity_seconds:.1f} s): "
          f"ARI of module clusters vs groups {module_ari:.3f} (p {module_p:.4f})")
    print_table(["transferability", "kind", "Spearman ρ with CKA", "Mantel p"],
                [[r["matrix"], r["kind"], r["spearman"], r["p_value"]] for r in agreement])


if __name__ == "__main__":
    main()
