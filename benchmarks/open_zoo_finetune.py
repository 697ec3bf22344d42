"""The open zoo against fine-tuning on all its targets: a learning rate chosen on validation, two seeds.

    TASKSPACE_DATA=../shared/data python benchmarks/train_open_zoo.py   # the open zoo's weights, once
    TASKSPACE_DATA=../shared/data python benchmarks/open_zoo_finetune.py

The rule is in docs/history.md ("The open zoo's fine-tuning truth"), committed before this script first
ran. Two steps, each resumable (every cell is a file in benchmarks/work/open-zoo-finetune/):

1. **choose**: every module of the open zoo fine-tuned on ``cifar10`` and ``cat_vs_dog`` at every rate of
   the grid, tested on a validation split of the target's training images; the rate with the best mean
   validation accuracy is chosen (ties, within 0.005, to the smaller rate);
2. **measure**: a zoo run per seed (0 and 1) at the chosen rate, through the CLI: every estimator's
   matrix (``taskspace matrix``) and the fine-tuning truth on every module and target (``taskspace
   truth --protocols finetune``), target by target (``--targets`` measures some of them: a part).

Writes ``results/open_zoo_finetune.json`` after each step (a long measurement can be committed in parts):
every validation cell, the chosen rate, per seed every estimator's matrix and the truth (module x
target), the seconds of each step and the SHA-256 of every weights file (a measurement finished in parts
must read the same weights). ``benchmarks/history_ranker.py`` reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import WORK, print_table, require_cifar, save
from open_zoo import ZOOS, modular_checkpoints, write_zoo_file

from taskspace.cli import main as taskspace
from taskspace.io import read_json, sha256_of_file, write_json

#: The rule's grid, its choosing targets, its validation images, its tie and its seeds (docs/history.md).
GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
CHOOSING_TARGETS = ("cifar10", "cat_vs_dog")
VALIDATION_IMAGES = 500
TIE = 0.005
SEEDS = (0, 1)
SCORE_SAMPLES = 500
FOLDER = WORK / "open-zoo-finetune"


def choose(zoo_file: Path, data_root: str, *, limit_seconds: float | None = None) -> dict[str, Any]:
    """Every (module, choosing target, rate) validation cell, and the rate the rule chooses once every cell is
    measured; ``limit_seconds``: measure no new cell after that long, and return the cells measured so far
    (a part: ``chosen_lr`` is then None)."""
    from taskspace.tasks import TaskSpace
    from taskspace.zoo import read_zoo_file
    from taskspace.zoo.finetune import validation_accuracy
    from taskspace.zoo.run import ZooOptions, ZooRun
    from taskspace.zoo.targets import ZooTargets

    targets = ZooTargets("cifar10", TaskSpace.resolve("default", data_root=data_root), whole_dataset=True)
    run = ZooRun.create(FOLDER / "choose" / "run", read_zoo_file(zoo_file), targets, ZooOptions(),
                        data_root=data_root)
    chosen_targets = [target for target in run.target_list() if target.id in CHOOSING_TARGETS]
    cells, began = [], time.perf_counter()
    for module in run.modules:
        source, _, layer = module.partition(":")
        for target in chosen_targets:
            for rate in GRID:
                path = FOLDER / "choose" / "cells" / f"{module.replace(':', '__')}__{target.id}__{rate}.json"
                if not path.is_file() and limit_seconds is not None and time.perf_counter() - began > limit_seconds:
                    continue
                if not path.is_file():
                    options = dataclasses.replace(run.options, finetune_lr=rate)
                    record = validation_accuracy(run.zoo.source(source), layer, target.id, run.images(target),
                                                 dataset=run.dataset(), options=options,
                                                 validation=VALIDATION_IMAGES)
                    write_json(path, {"module": module, "target": target.id, "lr": rate, **record})
                    print(f"{module} -> {target.id} at {rate}: {record['accuracy']:.4f}", flush=True)
                cells.append(read_json(path))
    expected = len(run.modules) * len(chosen_targets) * len(GRID)
    if len(cells) < expected:
        return {"grid": list(GRID), "targets": list(CHOOSING_TARGETS), "validation_images": VALIDATION_IMAGES,
                "tie": TIE, "chosen_lr": None, "cells_expected": expected, "cells": cells}
    by_rate = {rate: float(np.mean([cell["accuracy"] for cell in cells if cell["lr"] == rate])) for rate in GRID}
    best = max(by_rate.values())
    chosen = min(rate for rate, value in by_rate.items() if value >= best - TIE)
    per_source: dict[str, dict[str, float]] = {}
    for cell in cells:
        source = cell["module"].partition(":")[0]
        per_source.setdefault(source, {}).setdefault(str(cell["lr"]), []).append(cell["accuracy"])  # type: ignore[arg-type]
    source_best = {source: max(values, key=lambda rate: float(np.mean(values[rate])))
                   for source, values in per_source.items()}
    return {"grid": list(GRID), "targets": list(CHOOSING_TARGETS), "validation_images": VALIDATION_IMAGES,
            "tie": TIE, "mean_validation_accuracy": {str(rate): value for rate, value in by_rate.items()},
            "chosen_lr": chosen, "each_source_best_lr": source_best,
            "seconds_this_call": time.perf_counter() - began, "cells": cells}


def run_command(command: list[str]) -> float:
    """A taskspace command in this process; its seconds. Exits on failure."""
    began = time.perf_counter()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = taskspace(command)
    if code != 0:
        raise SystemExit(f"`taskspace {' '.join(command)}` failed with exit code {code}")
    seconds = time.perf_counter() - began
    print(f"$ taskspace {' '.join(command)}   # {seconds:.0f} s\n{output.getvalue()}", flush=True)
    return seconds


def measure(zoo_file: Path, data_root: str, rate: float, seed: int, document: dict[str, Any],
            targets: list[str] | None) -> None:
    """One seed's zoo run at ``rate``: every estimator's matrix, then the fine-tuning truth target by target
    (``targets``, default all), the results written after each target so that a measurement stopped
    part-way keeps (and can commit) what it finished; the truth of a target not measured yet is null."""
    from taskspace.zoo.run import ZooRun

    folder = FOLDER / f"seed{seed}" / "run"
    base = [str(folder), "--data-root", data_root, "--quiet"]
    entry = document.setdefault("seeds", {}).setdefault(str(seed), {"seed": seed, "lr": rate, "seconds": {}})
    if entry["lr"] != rate:
        raise SystemExit(f"seed {seed} was measured at lr {entry['lr']}, and the rule now chooses {rate}")
    entry["seconds"]["matrix"] = entry["seconds"].get("matrix") or run_command([
        "matrix", *base, "--zoo", str(zoo_file), "--space", "default", "--target-dataset", "cifar10",
        "--score-samples", str(SCORE_SAMPLES), "--seed", str(seed), "--finetune-lr", str(rate)])
    run = ZooRun.open(folder)
    estimates = run.estimates()
    sources, every = list(run.modules), list(run.target_ids)
    entry.update({"sources": sources, "targets": every, "own_task": own_task_cells(sources, every),
                  "matrices": {name: {"greater_is_better": m.greater_is_better, "scores": _json_matrix(m.scores)}
                               for name, m in estimates.items()}})
    assert all(list(m.sources) == sources and list(m.targets) == every for m in estimates.values())
    for target in targets or every:
        truth = ZooRun.open(folder).truths().get("finetune")
        if truth is not None and target in truth.targets and all(
                module in truth.sources and np.isfinite(truth.score(module, target)) for module in sources):
            continue  # measured by an earlier part: its seconds stay those of the calls that measured it
        seconds = run_command(["truth", *base, "--protocols", "finetune", "--targets", target])
        spent = entry["seconds"].setdefault("truth_finetune", {})
        spent[target] = spent.get(target, 0.0) + seconds  # a target finished over several calls: their sum
        truth = ZooRun.open(folder).truths()["finetune"]
        measured = np.full((len(sources), len(every)), np.nan)
        for column, name in enumerate(every):
            if name in truth.targets:
                measured[:, column] = [truth.score(module, name) for module in sources]
        entry["truth"] = _json_matrix(measured)
        entry["complete"] = bool(np.isfinite(measured).all())
        save("open_zoo_finetune", document)


def _json_matrix(values: Any) -> list[list[float | None]]:
    return [[float(v) if np.isfinite(v) else None for v in row] for row in np.asarray(values, dtype=float)]


def own_task_cells(modules: list[str], targets: list[str]) -> list[list[str]]:
    """(module, target) cells where a modular net's module meets the task it was trained on."""
    return [[module, target] for module in modules for target in targets
            if module.partition(":")[0] == f"modular_{target}"]


def weights_digests(data_root: str) -> dict[str, str]:
    """SHA-256 of every network the zoo file reads: the open zoo's weights and the modular nets' checkpoints."""
    digests = {path.name: sha256_of_file(path) for path in sorted((ZOOS / "weights").glob("*.pt"))}
    digests.update({f"modular_{task}": sha256_of_file(path) for task, path in modular_checkpoints(data_root).items()})
    return digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="choose,measure", help="comma-separated: choose, measure")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds to measure (default: 0,1)")
    parser.add_argument("--limit-seconds", type=float, default=None,
                        help="choose: measure no new validation cell after this long (a part; 0 gathers the cells "
                             "measured so far)")
    parser.add_argument("--targets", default=None,
                        help="measure the truth of these targets only (comma-separated; default: all): a long "
                             "measurement in parts, each part's results written as it ends")
    arguments = parser.parse_args()
    data_root = require_cifar()
    FOLDER.mkdir(parents=True, exist_ok=True)
    zoo_file = write_zoo_file(FOLDER, data_root)
    results_path = Path(__file__).resolve().parent / "results" / "open_zoo_finetune.json"
    document: dict[str, Any] = read_json(results_path) if results_path.is_file() else {}
    document.pop("environment", None)  # save() writes this call's
    digests = weights_digests(data_root)
    if document.get("weights_sha256") not in (None, digests):
        raise SystemExit("the open zoo's weights differ from those the results were measured with; train them "
                         "again with benchmarks/train_open_zoo.py or start the results afresh")
    document.update({"command": "python benchmarks/open_zoo_finetune.py", "rule": "docs/history.md",
                     "weights_sha256": digests, "score_samples": SCORE_SAMPLES})
    steps = arguments.steps.split(",")
    if "choose" in steps or "choice" not in document:
        document["choice"] = choose(zoo_file, data_root, limit_seconds=arguments.limit_seconds)
        save("open_zoo_finetune", document)
    if document["choice"]["chosen_lr"] is None:
        print(f"the rate is not chosen yet: {len(document['choice']['cells'])} of "
              f"{document['choice']['cells_expected']} validation cells measured; run again to go on")
        return 0
    rate = float(document["choice"]["chosen_lr"])
    print_table(["learning rate", "mean validation accuracy"],
                [(rate_, value) for rate_, value in document["choice"]["mean_validation_accuracy"].items()])
    print(f"chosen: {rate}")
    if "measure" in steps:
        targets = arguments.targets.split(",") if arguments.targets else None
        for seed in (int(text) for text in arguments.seeds.split(",")):
            measure(zoo_file, data_root, rate, seed, document, targets)
    rows = []
    for seed, measured in sorted(document.get("seeds", {}).items()):
        if "truth" not in measured:
            continue
        truth = np.array([[np.nan if v is None else v for v in row] for row in measured["truth"]])
        done = int(np.isfinite(truth).any(axis=0).sum())
        rows.append((seed, measured["lr"], f"{done}/{truth.shape[1]}", float(np.nanmean(truth)),
                     float(np.nanmin(truth)), float(np.nanmax(truth)),
                     float(sum(measured["seconds"].get("truth_finetune", {}).values()))))
    if rows:
        print_table(["seed", "lr", "targets measured", "mean fine-tuned accuracy", "min", "max", "truth seconds"],
                    rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
