"""The main job on the embedded 8x8 digits: a task space trained modular and end to end, no download."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from taskspace.config import TrainConfig
from taskspace.data import load_digits_dataset
from taskspace.io import ensure_writable_dir, write_json
from taskspace.tasks import TaskSpace
from taskspace.training import evaluate_accuracy, fit_output_module, load_model, prepare_splits, train_task
from taskspace.training.tensors import to_tensor_split

__all__ = ["run_demo"]


def run_demo(*, out_dir: Path, epochs: int = 15, seed: int = 0, show_progress: bool = True) -> list[dict[str, Any]]:
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


def _one_label_accuracy(run: Path, task_id: str, dataset, seed: int) -> float:  # type: ignore[no-untyped-def]
    net, checkpoint = load_model(run / "model.pt")
    config = TrainConfig(task=task_id, dataset="digits", seed=seed)
    splits = prepare_splits(config, dataset)
    normalization = checkpoint["normalization"]
    train = to_tensor_split(splits.train, **normalization)
    fit_output_module(net, train, labels_per_class=1, seed=seed, steps=config.output_steps,
                      weight_decay=config.output_weight_decay)
    return evaluate_accuracy(net, to_tensor_split(splits.test, **normalization))
