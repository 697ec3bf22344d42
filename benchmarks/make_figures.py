"""The figures of a real run (figures/ in the repository): heatmaps, clustermaps, task graph, module
similarity, estimate vs truth, label efficiency.

    TASKSPACE_DATA=../shared/data python benchmarks/make_figures.py benchmarks/work/grid-default --out figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import RESULTS, require_cifar

from taskspace.io import read_json
from taskspace.plotting import (
    clustermap,
    estimate_vs_truth_grid,
    heatmap,
    label_efficiency_curve,
    save_figure,
    task_graph_plot,
)
from taskspace.runner import Run
from taskspace.similarity import module_similarity
from taskspace.structure import task_graph

#: Estimators shown against the truth: taskspace's, the paper's, and the field's strongest.
COMPARED = ("alignment_whitened", "alignment", "alignment_centered", "logme", "hscore", "knn", "leep", "gbc")


def label_efficiency_figure(out: Path) -> list[Path]:
    """Accuracy against labels per class: both 10-class trunks, with and without the unlabeled images."""
    curves = [
        ("label_efficiency_supcon.json", False, "supervised contrastive trunk"),
        ("label_efficiency_supcon.json", True, "supervised contrastive trunk + unlabeled images"),
        ("label_efficiency.json", False, "upper-triangle alignment trunk"),
    ]
    figure, ax = None, None
    for file, unlabeled, label in curves:
        if not (RESULTS / file).is_file():
            continue
        document = read_json(RESULTS / file)
        records = [r for r in document["records"]
                   if r["labels_per_class"] != "all" and bool(r.get("unlabeled_images", False)) == unlabeled]
        figure = label_efficiency_curve(records, ax=ax, label=label, all_labels_accuracy=None,
                                        title="10-class CIFAR-10, frozen modular trunk")
        ax = figure.axes[0]
        ax.axhline(document["all_labels_accuracy"], linestyle="--", linewidth=1.0, color=ax.lines[-1].get_color())
    if figure is None:
        return []
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(figure, out / "label_efficiency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path("figures"))
    parser.add_argument("--protocol", default="frozen_all")
    parser.add_argument("--only-label-efficiency", action="store_true", help="redraw that figure alone (no run needed)")
    arguments = parser.parse_args()
    if arguments.only_label_efficiency:
        print("\n".join(str(path) for path in label_efficiency_figure(arguments.out)))
        return
    context = Run.open(arguments.run, data_root=require_cifar())
    estimates, truths = context.estimates(), context.truths()
    name = context.default_estimator()
    truth = truths[arguments.protocol]
    space = context.space
    written = []
    written += save_figure(heatmap(estimates[name], title=f"{name} (forward passes only)"), arguments.out / "heatmap")
    written += save_figure(heatmap(truth, fmt=".3f", title=f"ground truth: {arguments.protocol} test accuracy"),
                           arguments.out / f"truth_{arguments.protocol}")
    written += save_figure(clustermap(estimates[name], title=name), arguments.out / "clustermap")
    written += save_figure(clustermap(truth, fmt=".3f", title=f"ground truth: {arguments.protocol}"),
                           arguments.out / f"clustermap_truth_{arguments.protocol}")
    graph = task_graph(estimates[name], top_k=2, groups=space.task_groups() if space.groups else None)
    written += save_figure(task_graph_plot(graph, layout="kamada_kawai",
                                           title=f"task graph: best 2 sources of each target by {name}"),
                           arguments.out / "task_graph")
    similarity = module_similarity(context, samples=2000)
    written += save_figure(clustermap(similarity, title="module similarity (linear CKA, 2,000 test images)"),
                           arguments.out / "module_similarity")
    shown = {key: estimates[key] for key in COMPARED if key in estimates}
    written += save_figure(estimate_vs_truth_grid(shown, truth), arguments.out / "estimate_vs_truth")
    written += label_efficiency_figure(arguments.out)
    print("\n".join(str(path) for path in written))


if __name__ == "__main__":
    main()
