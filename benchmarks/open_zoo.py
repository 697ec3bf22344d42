"""An open zoo, ranked layer by layer: seven torchvision architectures and two modular nets on real CIFAR-10.

    TASKSPACE_DATA=../shared/data python benchmarks/train_open_zoo.py   # the open zoo's weights, once
    TASKSPACE_DATA=../shared/data python benchmarks/open_zoo.py

Sources: the seven networks of ``zoos/open_zoo.toml`` (each trained from scratch here on its own CIFAR-10
classes, read only through the zoo file as a user's weights would be) with three layers each, and two
of taskspace's modular nets (the default zoo's ``cat_vs_dog`` and ``automobile_vs_truck``, trained by
``benchmarks/transfer_grid.py`` or here if missing) with every stage's output. Targets: the 15 tasks of
the default space and the 10-class CIFAR-10. Truth: frozen probes (10 labels per class, and all) on
every target, fine-tuning on CIFAR-10 and cat_vs_dog. Everything goes through the CLI in one run folder
(resumable). Writes ``results/open_zoo.json``: the verdict of every estimator with the target-blind
baselines beside it, each estimator's top-1 pick against the measured best module, the depth profiles,
and the cost of the forward passes against a bare torch loop over the same batches.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import torch

from _common import WORK, print_table, require_cifar, save
from taskspace.cli import main as taskspace

ZOOS = Path(__file__).resolve().parent / "zoos"
TRAINING = Path(__file__).resolve().parent / "results" / "open_zoo_training.json"
MODULAR = ("cat_vs_dog", "automobile_vs_truck")
FINETUNE_TARGETS = ("cifar10", "cat_vs_dog", "automobile_vs_truck", "deer_vs_horse", "cat_vs_truck")
FIGURE = Path(__file__).resolve().parent.parent / "figures" / "open_zoo_depth_profile.png"


def modular_checkpoints(data_root: str) -> dict[str, Path]:
    """The two modular nets: from the default grid's zoo when it is there, else trained here (10 epochs)."""
    found = {}
    for task in MODULAR:
        checkpoint = WORK / "grid-default" / "zoo" / task / "model.pt"
        if not checkpoint.is_file():
            folder = WORK / "open-zoo-modular" / task
            if taskspace(["train", "--task", task, "--out", str(folder), "--epochs", "10", "--data-root", data_root,
                          "--quiet"]) != 0:
                raise SystemExit(f"training the modular net {task} failed")
            checkpoint = folder / "model.pt"
        found[task] = checkpoint
    return found


def write_zoo_file(folder: Path, data_root: str) -> Path:
    """The benchmark's zoo file: the open zoo with each network's measured accuracy, and the modular nets."""
    if not TRAINING.is_file():
        raise SystemExit("no open-zoo weights: run `python benchmarks/train_open_zoo.py` first")
    trained = json.loads(TRAINING.read_text())["sources"]
    text = (ZOOS / "open_zoo.toml").read_text().replace('weights = "weights/', f'weights = "{ZOOS}/weights/')
    lines = []
    for line in text.splitlines():
        lines.append(line)
        if line.startswith("name = "):
            name = line.split('"')[1]
            lines.append(f"accuracy = {trained[name]['test_accuracy']:.4f}")
    for task, checkpoint in modular_checkpoints(data_root).items():
        metrics = json.loads((checkpoint.parent / "metrics.json").read_text())
        lines += ["", "[[source]]", f'name = "modular_{task}"', f'checkpoint = "{checkpoint}"',
                  f"accuracy = {metrics['test_accuracy']:.4f}"]
    path = folder / "zoo.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(command: list[str]) -> tuple[str, float]:
    """A taskspace command in this process: its standard output and seconds; exits on failure."""
    began = time.perf_counter()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = taskspace(command)
    seconds = time.perf_counter() - began
    if code != 0:
        raise SystemExit(f"`taskspace {' '.join(command)}` failed with exit code {code}")
    print(f"$ taskspace {' '.join(command)}   # {seconds:.0f} s\n{output.getvalue()}", flush=True)
    return output.getvalue(), seconds


def forward_cost(zoo_file: Path, data_root: str, images: int = 4000, repeats: int = 3) -> list[dict[str, float]]:
    """Images per second of taskspace's layer reader against a bare torch loop over the same batches.

    Both are run once to warm up (allocator, first-call costs) and then ``repeats`` times alternately;
    each keeps its fastest pass, so neither pays for going first or for a moment of load on the machine.
    """
    from taskspace.data import load_dataset
    from taskspace.zoo import read_zoo_file
    from taskspace.zoo.networks import load_source

    dataset = load_dataset("cifar10", data_root=data_root)
    batch = dataset.test.images[:images]
    rows = []
    for spec in read_zoo_file(zoo_file).sources:
        loaded = load_source(spec)
        mean = torch.tensor(loaded.mean).view(1, -1, 1, 1)
        std = torch.tensor(loaded.std).view(1, -1, 1, 1)

        def ours(count: int, loaded=loaded) -> None:
            for _ in loaded.outputs(batch[:count]):
                pass

        def bare(count: int, loaded=loaded, mean=mean, std=std) -> None:
            with torch.no_grad():
                for start in range(0, count, 256):
                    tensor = torch.from_numpy(batch[start : min(start + 256, count)]).permute(0, 3, 1, 2)
                    loaded.network((tensor.float().div_(255.0) - mean) / std)

        ours(256), bare(256)
        seconds = {"ours": [], "bare": []}
        for _ in range(repeats):
            for name, step in (("ours", ours), ("bare", bare)):
                began = time.perf_counter()
                step(images)
                seconds[name].append(time.perf_counter() - began)
        fastest = {name: min(values) for name, values in seconds.items()}
        rows.append({"source": spec.name, "layers": len(loaded.spec.layers),
                     "taskspace_images_per_second": images / fastest["ours"],
                     "bare_images_per_second": images / fastest["bare"], "time_ratio": fastest["ours"] / fastest["bare"]})
    return rows


def judge(folder: Path) -> dict[str, object]:
    """Per estimator and protocol: how often its top module is the measured best, and the depth profiles."""
    from taskspace.zoo.run import ZooRun

    zoo_run = ZooRun.open(folder)
    estimates, truths = zoo_run.estimates(), zoo_run.truths()
    picks: dict[str, dict[str, float]] = {}
    for protocol, truth in truths.items():
        for name, matrix in estimates.items():
            hits, regrets = [], []
            for target in truth.targets:
                measured, scored = truth.column(target), matrix.column(target)
                usable = np.isfinite(measured) & np.isfinite(scored)
                if usable.sum() < 2:
                    continue
                best = np.nanmax(np.where(usable, measured, np.nan))
                pick = int(np.nanargmax(np.where(usable, scored, -np.inf)))
                hits.append(float(measured[pick] == best))
                regrets.append(float(best - measured[pick]))
            if hits:
                picks.setdefault(protocol, {})[name] = {"targets": len(hits), "best_picked": float(np.mean(hits)),
                                                        "mean_regret": float(np.mean(regrets))}
    profiles: dict[str, dict[str, list[float]]] = {}
    for label, matrix in [("estimate:" + name, m) for name, m in estimates.items()] + [
            ("truth:" + p, t) for p, t in truths.items()]:
        for index, module in enumerate(matrix.sources):
            source = module.partition(":")[0]
            row = matrix.scores[index]
            value = float(np.nanmean(row)) if np.isfinite(row).any() else None
            profiles.setdefault(source, {}).setdefault(label, []).append(value)
    return {"top1": picks, "depth_profiles": profiles, "modules": list(zoo_run.modules)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score-samples", type=int, default=500, help="target images the estimators see")
    parser.add_argument("--recommend-again", action="store_true",
                        help="only run the recommendation again on the finished run, and replace it in the results "
                             "(for a change to recommend; every measurement stays as it was)")
    arguments = parser.parse_args()
    data_root = require_cifar()
    folder = WORK / "open-zoo"
    if arguments.recommend_again:
        recommend_again(folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    zoo_file = write_zoo_file(folder, data_root)
    began = time.perf_counter()
    steps = {}
    base = [str(folder / "run"), "--data-root", data_root, "--quiet"]
    matrix_text, steps["matrix"] = run(["matrix", *base, "--zoo", str(zoo_file), "--space", "default",
                                        "--target-dataset", "cifar10", "--score-samples", str(arguments.score_samples)])
    truth_text, steps["truth_frozen"] = run(["truth", *base, "--protocols", "frozen_k10,frozen_all"])
    _, steps["truth_finetune"] = run(["truth", *base, "--protocols", "finetune", "--targets", ",".join(FINETUNE_TARGETS)])
    verdict_text, steps["evaluate"] = run(["evaluate", str(folder / "run"), "--resamples", "2000"])
    recommend_text, steps["recommend"] = run(["recommend", str(folder / "run"), "--target", "cifar10", "--k", "5"])
    run(["plot", str(folder / "run"), "depth-profile", "--out", str(FIGURE.with_suffix("")), "--formats", "png"])
    total = time.perf_counter() - began
    cost = forward_cost(zoo_file, data_root)
    verdict = [dict(row) for row in _verdict_rows(folder / "run" / "evaluation.csv")]
    judged = judge(folder / "run")
    save("open_zoo", {
        "command": "python benchmarks/open_zoo.py", "zoo": tomllib.loads(zoo_file.read_text())["source"],
        "training": json.loads(TRAINING.read_text())["sources"], "score_samples": arguments.score_samples,
        "finetune_targets": list(FINETUNE_TARGETS), "seconds": {**steps, "total": total},
        "verdict": verdict, "verdict_text": verdict_text, "recommend_cifar10": recommend_text, **judged,
        "forward_cost": cost, "figure": "figures/open_zoo_depth_profile.png",
        "readme": {"zoo_file": README_ZOO, "commands": [
            {"command": f"taskspace matrix runs/zoo --zoo zoo.toml --space default --target-dataset cifar10 "
                        f"--score-samples {arguments.score_samples}", "output": _relative(matrix_text, folder)},
            {"command": "taskspace truth runs/zoo --protocols frozen_k10,frozen_all",
             "output": _relative(truth_text, folder)},
            {"command": "taskspace recommend runs/zoo --target cifar10 --k 5",
             "output": _relative(recommend_text, folder)}]},
    })
    rows = [(r["estimator"], r["protocol"], r["kendall_tau"], r["kendall_tau_low"], r["kendall_tau_high"],
             r["weighted_tau"], r["top1_regret"]) for r in verdict if r["protocol"] == "frozen_all"]
    print_table(["estimator", "protocol", "kendall τ", "low", "high", "weighted τ", "top-1 regret"],
                sorted(rows, key=lambda r: -(r[2] if r[2] == r[2] else -9)))
    print_table(["source", "layers", "taskspace img/s", "bare torch img/s", "time ratio"],
                [(c["source"], c["layers"], c["taskspace_images_per_second"], c["bare_images_per_second"],
                  c["time_ratio"]) for c in cost])
    print(f"total {total:.0f} s")


def recommend_again(folder: Path) -> None:
    """Replace the recommendation's output in results/open_zoo.json by what ``recommend`` says now."""
    from _common import RESULTS, environment

    from taskspace.io import read_json, write_json

    path = RESULTS / "open_zoo.json"
    results = read_json(path)
    text, seconds = run(["recommend", str(folder / "run"), "--target", "cifar10", "--k", "5"])
    results["recommend_cifar10"] = text
    for entry in results["readme"]["commands"]:
        if entry["command"].startswith("taskspace recommend"):
            entry["output"] = _relative(text, folder)
    results["recommend_again"] = {"environment": environment(), "seconds": seconds,
                                  "why": "recommend changed after the run: its accuracy line is fitted from chance "
                                         "to 1 and mapped back for the target's class count"}
    write_json(path, results)
    print(f"written {path}")


#: The README's ten-line zoo file: two of the benchmark's sources, as a user would write them.
README_ZOO = """[[source]]
name = "resnet18_vehicles"
torchvision = "resnet18"
weights = "weights/resnet18_vehicles.pt"
options = { num_classes = 4 }
layers = ["layer2", "layer3", "layer4"]
input = { size = 32, mean = [0.4914, 0.4822, 0.4465], std = [0.2470, 0.2435, 0.2616] }

[[source]]
name = "modular_cat_vs_dog"
checkpoint = "runs/grid/zoo/cat_vs_dog/model.pt"
"""


def _relative(text: str, folder: Path) -> str:
    """Command output with the benchmark's work folder written as the README's ``runs/zoo``."""
    return (text.rstrip().replace(str(folder / "run"), "runs/zoo").replace("benchmarks/work/open-zoo/run", "runs/zoo")
            .replace("work/open-zoo/run", "runs/zoo"))


def _verdict_rows(path: Path) -> list[dict[str, object]]:
    import csv

    with open(path, encoding="utf-8") as handle:
        return [{key: (value if key in ("estimator", "protocol") else float(value)) for key, value in row.items()}
                for row in csv.DictReader(handle)]


if __name__ == "__main__":
    main()
