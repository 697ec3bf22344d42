"""The main job on the embedded 8x8 digits, no download: modular vs end to end, then the whole chain.

Part 1 trains every task of the digits space modular and end to end. Part 2 runs the transfer chain
on the same space: the zoo, the transferability matrix of every estimator, the ground truth
(frozen trunk with 5 labels per class and with all labels, and fine-tuning), the verdict, source
recommendations for a task of the zoo and a new one, and the HTML report of the run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskspace.config import TrainConfig
from taskspace.data import ImageDataset, load_digits_dataset
from taskspace.io import ensure_writable_dir, write_json
from taskspace.tasks import TaskSpace
from taskspace.training import (
    evaluate_accuracy,
    fit_output_module,
    load_model,
    prepare_splits,
    train_task,
)
from taskspace.training.tensors import to_tensor_split

if TYPE_CHECKING:
    from taskspace.runner import Run

__all__ = ["run_demo"]


def run_demo(*, out_dir: Path, epochs: int = 15, seed: int = 0, show_progress: bool = True) -> list[dict[str, Any]]:
    """Both parts of the demo; returns the rows of part 1."""
    rows = run_training_demo(out_dir=out_dir / "training", epochs=epochs, seed=seed, show_progress=show_progress)
    run_transfer_demo(out_dir=out_dir / "transfer", epochs=epochs, seed=seed, show_progress=show_progress)
    return rows


def run_transfer_demo(*, out_dir: Path, epochs: int, seed: int, show_progress: bool) -> None:
    """Zoo, matrix, ground truth and verdict on the digits space."""
    from taskspace.analysis import evaluate
    from taskspace.runner import GridConfig, Run
    from taskspace.scoring import list_estimators

    started = time.perf_counter()
    run = Run.create(out_dir, GridConfig(space="digits", train={"epochs": epochs, "seed": seed}, seed=seed,
                                         finetune_epochs=5))
    matrices = run.score(list_estimators(), show_progress=show_progress)
    run.measure(("frozen_k5", "frozen_all", "finetune"), show_progress=show_progress)
    rows = evaluate(matrices, run.truths(), resamples=1000, seed=seed)
    run.write_verdict(rows)
    targets = len(run.space.ids)
    print(f"\nHow well each estimator ranks the sources of a target (mean Kendall tau over {targets} targets):")
    protocols = sorted({row["protocol"] for row in rows})
    print(f"{'estimator':<22}" + "".join(f"{protocol:>14}" for protocol in protocols))
    for name in sorted(matrices):
        values = {row["protocol"]: row["kendall_tau"] for row in rows if row["estimator"] == name}
        print(f"{name:<22}" + "".join(f"{values[protocol]:>14.3f}" for protocol in protocols))
    print(f"transfer chain in {time.perf_counter() - started:.0f} s; matrix.csv, truth.csv under {out_dir}")
    show_recommendations(run, targets=("3_vs_8", "4_vs_7"))
    from taskspace.report import write_report
    from taskspace.similarity import module_similarity, write_similarity

    with run.writing():
        write_similarity(run, module_similarity(run))  # the report reads only what the run holds
    paths = write_report(out_dir)
    print(f"report of the whole run (matrix, structure, module similarity, verdict, recommendations): {paths.html}")


def show_recommendations(run: Run, *, targets: tuple[str, ...]) -> None:
    """The top 3 sources for each target (one in the zoo, one new), beside the measured best and worst."""
    from taskspace.recommend import recommend

    for target in targets:
        result = recommend(run, target, k=3, measure=True)
        where = "in the zoo" if result.in_zoo else f"new task, scored by forward passes in {result.score_seconds:.1f} s"
        print(f"\nsources for {target} ({where}), ranked by {result.estimator}:")
        if result.warning() is not None:
            print(f"  {result.warning()}")
        for row in result.top:
            print(f"  {row.rank}. {row.source:<8} predicted {row.predicted_accuracy:.3f} "
                  f"[{row.predicted_low:.3f}, {row.predicted_high:.3f}], measured {row.measured_accuracy:.3f}  "
                  f"({row.reason})")
        best, worst = result.measured_best(), result.measured_worst()
        if best is None or worst is None:
            continue
        print(f"  measured best {best.source} {best.measured_accuracy:.3f}, "
              f"worst {worst.source} {worst.measured_accuracy:.3f}")


def run_training_demo(
    *, out_dir: Path, epochs: int = 15, seed: int = 0, show_progress: bool = True
) -> list[dict[str, Any]]:
    """Train every task of the digits space (and all 10 digits) modular and end to end.

    For each task: test accuracy of the modular net (output module on all labels and on one label per
    class, trunk shared) and of the same net trained end to end. Writes ``summary.json`` and prints a table.
    """
    folder = ensure_writable_dir(out_dir)
    dataset = load_digits_dataset()
    space = TaskSpace.digits()
    task_ids = [*space.ids, "all"]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    print(f"{'task':<10} {'modular':>8} {'1 label':>8} {'e2e':>8}")
    for task_id in task_ids:
        row: dict[str, Any] = {"task": task_id}
        for mode in ("modular", "e2e"):
            config = TrainConfig(task=task_id, dataset="digits", mode=mode, epochs=epochs, seed=seed)
            metrics = train_task(config, out_dir=folder / task_id / mode, dataset=dataset, show_progress=show_progress)
            row[mode] = metrics["test_accuracy"]
        row["modular_1_label"] = _one_label_accuracy(folder / task_id / "modular", task_id, dataset, seed)
        rows.append(row)
        print(f"{task_id:<10} {row['modular']:>8.3f} {row['modular_1_label']:>8.3f} {row['e2e']:>8.3f}")
    mean = {key: sum(row[key] for row in rows) / len(rows) for key in ("modular", "modular_1_label", "e2e")}
    print(f"{'mean':<10} {mean['modular']:>8.3f} {mean['modular_1_label']:>8.3f} {mean['e2e']:>8.3f}")
    print(f"{len(task_ids)} tasks in {time.perf_counter() - started:.0f} s; runs under {folder}")
    write_json(folder / "summary.json", {"epochs": epochs, "seed": seed, "rows": rows, "mean": mean})
    return rows


def _one_label_accuracy(run: Path, task_id: str, dataset: ImageDataset, seed: int) -> float:
    net, checkpoint = load_model(run / "model.pt")
    config = TrainConfig(task=task_id, dataset="digits", seed=seed)
    splits = prepare_splits(config, dataset)
    normalization = checkpoint["normalization"]
    train = to_tensor_split(splits.train, **normalization)
    fit_output_module(net, train, labels_per_class=1, seed=seed, steps=config.output_steps,
                      weight_decay=config.output_weight_decay)
    return evaluate_accuracy(net, to_tensor_split(splits.test, **normalization))
