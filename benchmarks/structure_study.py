"""Does the task space's structure emerge from the data? Group recovery and module similarity of a run.

For every estimator and every ground truth of a finished grid run (transfer_grid.py): hierarchical
clustering of the matrix, cut into as many clusters as the space has task groups, against the known
groups (adjusted Rand index per view, with a permutation p-value: the share of random relabellings of
the tasks, same group sizes, whose ARI is at least as high). Then linear CKA between every pair of
the zoo's modules on 2,000 test images: its own group recovery, and its agreement with each
transferability matrix (Spearman ρ of the symmetrised, rank-normalised matrices; one-sided Mantel p).

    TASKSPACE_DATA=../shared/data python benchmarks/structure_study.py benchmarks/work/grid-default
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import print_table, require_cifar, save

from taskspace.runner import Run
from taskspace.similarity import module_similarity, similarity_vs_transfer
from taskspace.structure import cluster_tasks, grouping_agreement, structure_summary

PERMUTATIONS = 2000


def permutation_p_value(labels_by_task: dict[str, int], groups: dict[str, str], observed: float, seed: int) -> float:
    """Share of random relabellings of the known groups (sizes kept) with an ARI >= the observed one."""
    rng = np.random.default_rng(seed)
    tasks = list(groups)
    values = list(groups.values())
    hits = 0
    for _ in range(PERMUTATIONS):
        shuffled = dict(zip(tasks, rng.permutation(values), strict=True))
        hits += grouping_agreement(labels_by_task, shuffled) >= observed - 1e-12
    return (1 + hits) / (1 + PERMUTATIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default=None)
    parser.add_argument("--samples", type=int, default=2000)
    arguments = parser.parse_args()
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
