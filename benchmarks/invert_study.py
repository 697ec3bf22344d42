"""Invert: do modular nets keep more of their accuracy than end-to-end nets when their modules are reordered?

The essay on modular deep learning names *invert* ("the hierarchical dependencies between modules can be
rearranged") as what monolithic networks cannot offer, their layers being coupled by end-to-end training.
This study measures it on the 15 binary tasks of the default CIFAR-10 space.

Nets: ``uniform_cnn`` (a stem, then three inner stages of one shape, width ``--width``), cut at every stage
(4 hidden modules), one per task and recipe, the same seed, the same ``--epochs`` (the project's
convention: in modular mode each hidden module trains that many epochs with the pairwise objective, then
the output module on frozen features; end to end, the whole net that many epochs with cross-entropy).

Orders: the stem stays first; the three inner modules in each of their 6 orders (the identity included).
Every order, the identity as well, goes through ``compose invert``: adapters where statistics differ and
the output module refitted on all training labels, so the only difference from the identity is the order.

Measured, per task, recipe and order: test accuracy; its drop from the identity order; and the mean linear
CKA (on 1,000 test images, channel-pooled) between each moved module's output and the output of the module
that held its position in the original net.

The rule, committed before the first run:
- the claim "modular nets keep more of their accuracy under inversion" is judged on the per-task mean drop
  over the 5 non-identity orders, modular minus end to end, paired by task (15 tasks): a 95% t interval
  (and the BCa bootstrap beside it). Above 0 entirely (modular drops less): the claim holds; below 0
  entirely: it is reversed; across 0: no difference is measurable at this size.
- per order, the same paired difference with its t interval;
- CKA predicts survival if the Spearman correlation between the mean CKA and the drop across (task,
  order) pairs, within each recipe, has a permutation p below 0.05 (scipy.stats.permutation_test,
  pairings, 9,999 resamples) and the sign that says higher CKA, smaller drop.

Resumable: every net and composition lives under benchmarks/work/invert-study and is reused.

    TASKSPACE_DATA=../shared/data python benchmarks/invert_study.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from _common import WORK, print_table, require_cifar, save
from scipy import stats

from taskspace.compose import ComposeRequest, compose
from taskspace.config import TrainConfig
from taskspace.data import load_dataset
from taskspace.intervals import mean_interval
from taskspace.similarity.cka import linear_cka
from taskspace.tasks import TaskSpace
from taskspace.training import load_model, train_task
from taskspace.training.tensors import to_tensor_split

FOLDER = WORK / "invert-study"
CUT_POINTS = (1, 2, 3)
RECIPES = ("modular", "e2e")
ORDERS = tuple((0, *inner) for inner in itertools.permutations((1, 2, 3)))
IDENTITY = (0, 1, 2, 3)


def train_nets(tasks: list[str], dataset, *, width: int, epochs: int) -> dict[tuple[str, str], dict]:
    metrics = {}
    for task, mode in itertools.product(tasks, RECIPES):
        config = TrainConfig(task=task, architecture="uniform_cnn", width=width, cut_points=CUT_POINTS, mode=mode,
                             epochs=epochs, seed=0)
        metrics[task, mode] = train_task(config, out_dir=FOLDER / "nets" / mode / task, dataset=dataset)
        print(f"{mode} {task}: {metrics[task, mode]['test_accuracy']:.4f}", flush=True)
    return metrics


def inverted(task: str, mode: str, order: tuple[int, ...], dataset) -> dict:
    out = FOLDER / "inverted" / mode / task / "-".join(map(str, order))
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    request = ComposeRequest("invert", source=FOLDER / "nets" / mode / task / "model.pt", order=order)
    return compose(request, out_dir=out, dataset=dataset)


def module_outputs(net, images: torch.Tensor) -> list[np.ndarray]:
    """Each hidden module's output on ``images``, channel-pooled (ReLU, global average)."""
    outputs = []
    with torch.no_grad():
        for index in range(net.num_hidden):
            produced = net.hidden[index](net.hidden_input(images, index))
            outputs.append(produced.relu().mean(dim=(2, 3)).double().numpy())
    return outputs


def moved_cka(outputs: list[np.ndarray], order: tuple[int, ...]) -> float:
    """Mean linear CKA between each moved module's output and that of the module in its original place."""
    pairs = [(index, position) for position, index in enumerate(order) if index != position]
    if not pairs:
        return 1.0
    return float(np.mean([linear_cka(outputs[index], outputs[position]) for index, position in pairs]))


def t_interval(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "modular keeps more"
    if high < 0:
        return "end to end keeps more"
    return "no difference measurable"


def main() -> None:
    global FOLDER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--tasks", default=None, help="comma list (default: the 15 of the default space)")
    parser.add_argument("--name", default="invert_study")
    parser.add_argument("--work", type=Path, default=FOLDER, help="work folder (default: benchmarks/work/invert-study)")
    arguments = parser.parse_args()
    FOLDER = arguments.work
    data_root = require_cifar()
    torch.set_num_threads(2)
    began = time.perf_counter()
    dataset = load_dataset("cifar10", data_root=data_root)
    tasks = arguments.tasks.split(",") if arguments.tasks else list(TaskSpace.default().ids)
    trained = train_nets(tasks, dataset, width=arguments.width, epochs=arguments.epochs)
    rows = []
    for task, mode in itertools.product(tasks, RECIPES):
        source = FOLDER / "nets" / mode / task / "model.pt"
        net, saved = load_model(source)
        probe = to_tensor_split(dataset.test, mean=saved["normalization"]["mean"], std=saved["normalization"]["std"],
                                device=torch.device("cpu")).images[:1000]
        outputs = module_outputs(net, probe)
        identity = inverted(task, mode, IDENTITY, dataset)["test_accuracy"]
        for order in ORDERS:
            made = inverted(task, mode, order, dataset)
            rows.append({"task": task, "recipe": mode, "order": list(order), "test_accuracy": made["test_accuracy"],
                         "identity_accuracy": identity, "trained_accuracy": trained[task, mode]["test_accuracy"],
                         "drop": identity - made["test_accuracy"], "moved_cka": moved_cka(outputs, order),
                         "adapters": sum(note["adapter"] for note in made["composition"]["adapters"])})
        print(f"inverted {mode} {task}", flush=True)

    def drops(mode: str, order: tuple[int, ...] | None) -> np.ndarray:
        return np.array([np.mean([r["drop"] for r in rows if r["task"] == task and r["recipe"] == mode
                                  and (tuple(r["order"]) == order if order else tuple(r["order"]) != IDENTITY)])
                         for task in tasks])

    paired = []
    for order in (None, *[o for o in ORDERS if o != IDENTITY]):
        modular, e2e = drops("modular", order), drops("e2e", order)
        difference = e2e - modular  # > 0: the modular nets lose less
        mean, low, high = t_interval(difference)
        boot_low, boot_high = mean_interval(difference, resamples=2000, rng=np.random.default_rng(0))
        paired.append({"order": "all five" if order is None else "-".join(map(str, order)),
                       "modular_drop": float(modular.mean()), "e2e_drop": float(e2e.mean()),
                       "e2e_minus_modular": mean, "t_low": low, "t_high": high, "boot_low": boot_low,
                       "boot_high": boot_high, "verdict": verdict(low, high)})
    cka = {}
    for mode in RECIPES:
        moved = [r for r in rows if r["recipe"] == mode and tuple(r["order"]) != IDENTITY]
        x, y = np.array([r["moved_cka"] for r in moved]), np.array([r["drop"] for r in moved])
        test = stats.permutation_test((x, y), lambda a, b: stats.spearmanr(a, b).statistic,
                                      permutation_type="pairings", n_resamples=9999, rng=np.random.default_rng(0))
        rho = float(stats.spearmanr(x, y).statistic)
        cka[mode] = {"spearman_cka_vs_drop": rho, "permutation_p": float(test.pvalue), "pairs": len(moved),
                     "predicts": bool(test.pvalue < 0.05 and rho < 0)}
    mean_accuracy = {mode: float(np.mean([trained[t, mode]["test_accuracy"] for t in tasks])) for mode in RECIPES}
    save(arguments.name, {"command": "python benchmarks/invert_study.py", "epochs": arguments.epochs,
                           "width": arguments.width, "tasks": tasks, "trained_accuracy": mean_accuracy,
                           "paired": paired, "cka": cka, "rows": rows, "seconds": time.perf_counter() - began})
    print_table(["recipe", "mean trained accuracy"], [[m, mean_accuracy[m]] for m in RECIPES])
    print_table(["order", "modular drop", "e2e drop", "e2e - modular [t 95%]", "verdict"],
                [[p["order"], p["modular_drop"], p["e2e_drop"],
                  f"{p['e2e_minus_modular']:+.4f} [{p['t_low']:+.4f}, {p['t_high']:+.4f}]", p["verdict"]]
                 for p in paired])
    print_table(["recipe", "ρ(moved CKA, drop)", "permutation p", "CKA predicts"],
                [[m, cka[m]["spearman_cka_vs_drop"], cka[m]["permutation_p"], cka[m]["predicts"]] for m in RECIPES])
    print(f"-> {Path(__file__).parent / 'results' / (arguments.name + '.json')}")


if __name__ == "__main__":
    main()
