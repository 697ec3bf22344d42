"""Modular workflows on the real CIFAR-10 default space: stack, port, fine-tune or train from scratch; which
depth to reuse; and whether module similarity (CKA) or the transferability score predicts substitution.

1. A zoo: one modular net per task of the default space (small_cnn, cut into 3 hidden modules at stages
   1 and 2, the pairwise objective, ``--epochs`` per module). Training it is the from-scratch baseline.
2. Reusability by depth: every (net, module) on every target, scored by forward passes (500 images per
   target) and measured (a linear probe on the frozen module's output, all training labels), as a zoo run.
3. For every target, the source module ranked first by the default estimator and the measured best
   (depths 1 and 2): stack (train new modules above it with the pairwise objective, then the output
   module), port (the frozen modules and a new output module) and fine-tune (the whole source net, end to
   end, ``--finetune-epochs``); test accuracy and wall time of each against training from scratch.
4. Substitution: for every ordered pair of ``--substitution-nets`` nets and modules 1 and 2 (of 3), net A
   with module i of net B (adapters where statistics differ, output module refitted) on A's task,
   against the linear CKA of the two modules' pooled outputs on the same images and against B's
   module's transferability score on A's task: Spearman correlations with permutation p-values and
   bootstrap intervals.

Resumable: every net and composition lives under benchmarks/work/compose-study and is reused.

    TASKSPACE_DATA=../shared/data python benchmarks/compose_study.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import WORK, environment, print_table, require_cifar, save
from scipy import stats

from taskspace.cli import main as taskspace
from taskspace.compose import ComposeRequest, compose
from taskspace.config import TrainConfig
from taskspace.data import load_dataset
from taskspace.io import write_json
from taskspace.tasks import TaskSpace
from taskspace.training import load_model, train_task
from taskspace.training.tensors import to_tensor_split

FOLDER = WORK / "compose-study"
CUT_POINTS = (1, 2)
DEPTHS = (1, 2, 3)
ESTIMATOR = "kernel_ridge_r2"
SUBSTITUTION_NETS = ("automobile_vs_truck", "cat_vs_dog", "deer_vs_horse", "automobile_vs_cat", "dog_vs_horse",
                     "cat_vs_truck")


def train_zoo(tasks: list[str], data_root: str, dataset, epochs: int) -> dict[str, dict]:
    """One modular net per task, cut into 3 modules; its metrics (the from-scratch baseline)."""
    metrics = {}
    for task in tasks:
        config = TrainConfig(task=task, cut_points=CUT_POINTS, epochs=epochs, seed=0)
        metrics[task] = train_task(config, out_dir=FOLDER / "zoo" / task, dataset=dataset)
        print(f"zoo {task}: {metrics[task]['test_accuracy']:.4f} in {metrics[task]['train_seconds']:.0f} s", flush=True)
    return metrics


def first_seconds(name: str, seconds: float) -> float:
    """The seconds a step took when it first computed its results (a resumed step takes none): kept in
    the work folder's seconds.json, so a rerun reports the measurement, not the resume."""
    path = FOLDER / "seconds.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.setdefault(name, seconds)
    path.write_text(json.dumps(recorded, indent=2))
    return float(recorded[name])


def quiet(command: list[str]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        if taskspace(command) != 0:
            raise SystemExit(f"`taskspace {' '.join(command)}` failed")
    return output.getvalue()


def depth_run(tasks: list[str], data_root: str) -> dict:
    """Every (net, module) scored and probed on every target: the zoo run's matrix, truth and verdict."""
    from taskspace.zoo.run import ZooRun

    zoo_file = FOLDER / "zoo.toml"
    zoo_file.write_text("".join(f'[[source]]\nname = "{task}"\ncheckpoint = "{FOLDER / "zoo" / task / "model.pt"}"\n'
                                f'layers = ["hidden.0", "hidden.1", "hidden.2"]\n\n' for task in tasks))
    space = "default"
    if sorted(tasks) != sorted(TaskSpace.default().ids):
        space = str(FOLDER / "space.toml")
        Path(space).write_text('dataset = "cifar10"\npairs = [' + ", ".join(
            "[" + ", ".join(f'"{c}"' for c in task.split("_vs_")) + "]" for task in tasks) + "]\n")
    run = FOLDER / "run"
    base = [str(run), "--data-root", data_root, "--quiet"]
    began = time.perf_counter()
    quiet(["matrix", *base, "--zoo", str(zoo_file), "--space", space, "--score-samples", "500",
           "--estimators", f"{ESTIMATOR},logme,linear_probe"])
    score_seconds = first_seconds("score", time.perf_counter() - began)
    began = time.perf_counter()
    quiet(["truth", *base, "--protocols", "frozen_all"])
    truth_seconds = first_seconds("truth", time.perf_counter() - began)
    verdict = quiet(["evaluate", str(run), "--resamples", "2000"])
    zoo_run = ZooRun.open(run)
    return {"run": zoo_run, "verdict_text": verdict, "score_seconds": score_seconds, "truth_seconds": truth_seconds}


def by_depth(zoo_run) -> dict:
    """Mean measured probe accuracy and mean score at each depth, over sources and targets (own net left out)."""
    estimate, truth = zoo_run.estimates()[ESTIMATOR], zoo_run.truths()["frozen_all"]
    rows = {}
    for depth in DEPTHS:
        layer = f"hidden.{depth - 1}"
        measured, scored = [], []
        for module in truth.sources:
            source, module_layer = module.split(":")
            if module_layer != layer:
                continue
            for target in truth.targets:
                if target != source:
                    measured.append(truth.score(module, target))
                    scored.append(estimate.score(module, target))
        rows[depth] = {"mean_accuracy": float(np.mean(measured)), "mean_score": float(np.mean(scored))}
    best_depth = {}
    for target in truth.targets:
        column = {m: truth.score(m, target) for m in truth.sources if not m.startswith(target + ":")}
        best_depth[target] = int(max(column, key=column.get).split(":hidden.")[1]) + 1
    return {"by_depth": rows, "best_depth_per_target": best_depth}


def pick(zoo_run, target: str, matrix_name: str, depths: tuple[int, ...]) -> tuple[str, int]:
    """The (source net, depth) ranked first for ``target`` by an estimator or by the truth (own net left out)."""
    matrix = zoo_run.estimates()[matrix_name] if matrix_name != "truth" else zoo_run.truths()["frozen_all"]
    candidates = [m for m in matrix.sources if not m.startswith(target + ":")
                  and int(m.split(":hidden.")[1]) + 1 in depths]
    best = max(candidates, key=lambda m: matrix.score(m, target))
    return best.split(":")[0], int(best.split(":hidden.")[1]) + 1


def composed(kind: str, source: str, keep: int, target: str, dataset, epochs: int) -> dict:
    out = FOLDER / "compose" / target / f"{kind}-{source}-{keep}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    request = ComposeRequest(kind, source=FOLDER / "zoo" / source / "model.pt", keep=keep, task=target,
                             train={"epochs": epochs, "seed": 0})
    return compose(request, out_dir=out, dataset=dataset)


def finetuned(source: str, target: str, dataset, epochs: int) -> dict:
    config = TrainConfig(task=target, mode="finetune", init_from=str(FOLDER / "zoo" / source / "model.pt"),
                         cut_points=CUT_POINTS, epochs=epochs, lr=0.05, seed=0)
    return train_task(config, out_dir=FOLDER / "finetune" / target / source, dataset=dataset)


def workflows(zoo_run, scratch: dict, tasks: list[str], dataset, epochs: int, finetune_epochs: int) -> list[dict]:
    rows = []
    for target in tasks:
        row = {"target": target, "scratch_accuracy": scratch[target]["test_accuracy"],
               "scratch_seconds": scratch[target]["train_seconds"]}
        for chooser in (ESTIMATOR, "truth"):
            source, depth = pick(zoo_run, target, chooser, (1, 2))
            stacked = composed("stack", source, depth, target, dataset, epochs)
            label = "estimator" if chooser != "truth" else "measured_best"
            row[f"{label}_pick"] = f"{source}:{depth}"
            row[f"stack_{label}_accuracy"] = stacked["test_accuracy"]
            row[f"stack_{label}_seconds"] = stacked["train_seconds"]
        source, depth = pick(zoo_run, target, ESTIMATOR, DEPTHS)
        ported = composed("port", source, depth, target, dataset, epochs)
        row.update(port_pick=f"{source}:{depth}", port_accuracy=ported["test_accuracy"],
                   port_seconds=ported["train_seconds"])
        source, _ = pick(zoo_run, target, ESTIMATOR, (3,))
        tuned = finetuned(source, target, dataset, finetune_epochs)
        row.update(finetune_pick=source, finetune_accuracy=tuned["test_accuracy"],
                   finetune_seconds=tuned["train_seconds"])
        rows.append(row)
        print(f"{target}: scratch {row['scratch_accuracy']:.4f} ({row['scratch_seconds']:.0f} s), stack "
              f"{row['stack_estimator_accuracy']:.4f} ({row['stack_estimator_seconds']:.0f} s), port "
              f"{row['port_accuracy']:.4f}, finetune {row['finetune_accuracy']:.4f}", flush=True)
    return rows


def pooled_module_outputs(net, index: int, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        outputs = net.hidden[index](net.hidden_input(images, index))
    return outputs.relu().mean(dim=(2, 3)).double().numpy()


def substitutions(zoo_run, nets: tuple[str, ...], dataset, data_root: str) -> dict:
    """Every ordered pair of nets, modules 0 and 1 (the first two of three): accuracy, CKA, score."""
    from taskspace.similarity.cka import linear_cka

    estimate = zoo_run.estimates()[ESTIMATOR]
    rows = []
    probe_images = dataset.test.images[:1000]
    for receiver, donor in itertools.permutations(nets, 2):
        net_r, saved_r = load_model(FOLDER / "zoo" / receiver / "model.pt")
        net_d, _ = load_model(FOLDER / "zoo" / donor / "model.pt")
        normalization = saved_r["normalization"]
        probe = to_tensor_split(type(dataset.test)(probe_images, np.zeros(len(probe_images), dtype=np.int64)),
                                mean=normalization["mean"], std=normalization["std"], device=torch.device("cpu")).images
        for module in (0, 1):
            out = FOLDER / "substitute" / f"{receiver}__{donor}__{module}"
            if (out / "metrics.json").is_file():
                metrics = json.loads((out / "metrics.json").read_text())
            else:
                request = ComposeRequest("substitute", source=FOLDER / "zoo" / receiver / "model.pt",
                                         donor=FOLDER / "zoo" / donor / "model.pt", module=module)
                metrics = compose(request, out_dir=out, dataset=dataset)
            similarity = linear_cka(pooled_module_outputs(net_r, module, probe), pooled_module_outputs(net_d, module, probe))
            own = json.loads((FOLDER / "zoo" / receiver / "metrics.json").read_text())["test_accuracy"]
            rows.append({"receiver": receiver, "donor": donor, "module": module + 1,
                         "accuracy": metrics["test_accuracy"], "receiver_own_accuracy": own,
                         "adapters": sum(note["adapter"] for note in metrics["composition"]["adapters"]),
                         "cka": similarity, "score": estimate.score(f"{donor}:hidden.{module}", receiver)})
    return substitution_statistics(rows)


def substitution_statistics(rows: list[dict]) -> dict:
    """The correlations of :func:`correlate` per substituted module and over all rows."""
    return {"rows": rows, **{f"module_{m}": correlate([r for r in rows if r["module"] == m]) for m in (1, 2)},
            "all": correlate(rows)}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def within_receiver(rows: list[dict], key: str, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean over receivers of the Spearman correlation across donors: the receiver's task (which moves both
    the score and the accuracy) held fixed. Permutation p from shuffling donors within each receiver (a
    stratified shuffle, which scipy.stats.permutation_test does not offer); bootstrap interval over
    receivers (scipy.stats.bootstrap, percentile)."""
    rng = np.random.default_rng(seed)
    groups = {}
    for row in rows:
        groups.setdefault(row["receiver"], []).append((row[key], row["accuracy"]))
    pairs = [np.array(group) for group in groups.values()]

    def mean_rho(samples: list[np.ndarray]) -> float:
        return float(np.nanmean([spearman(g[:, 0], g[:, 1]) for g in samples]))

    observed = mean_rho(pairs)
    permuted = [mean_rho([np.column_stack([g[:, 0], rng.permutation(g[:, 1])]) for g in pairs])
                for _ in range(resamples)]
    per_receiver = np.array([spearman(g[:, 0], g[:, 1]) for g in pairs])
    interval = stats.bootstrap((per_receiver,), np.nanmean, n_resamples=resamples, method="percentile",
                               rng=rng, vectorized=True).confidence_interval
    return {"mean_spearman": observed, "receivers": len(pairs),
            "permutation_p": float((np.sum(np.abs(permuted) >= abs(observed)) + 1) / (resamples + 1)),
            "interval": [float(interval.low), float(interval.high)]}


def correlate(rows: list[dict], resamples: int = 2000, seed: int = 0) -> dict:
    """Spearman of substitution accuracy with CKA and with the score: a two-sided permutation p
    (scipy.stats.permutation_test, pairings) and a percentile bootstrap interval over pairs
    (scipy.stats.bootstrap, paired)."""
    rng = np.random.default_rng(seed)
    accuracy = np.array([r["accuracy"] for r in rows])
    found = {"pairs": len(rows)}
    for key in ("cka", "score"):
        values = np.array([r[key] for r in rows])
        test = stats.permutation_test((values, accuracy), spearman, permutation_type="pairings",
                                      n_resamples=resamples, vectorized=False, rng=rng)
        interval = stats.bootstrap((values, accuracy), spearman, paired=True, n_resamples=resamples,
                                   method="percentile", vectorized=False, rng=rng).confidence_interval
        found[key] = {"spearman": spearman(values, accuracy), "permutation_p": float(test.pvalue),
                      "interval": [float(interval.low), float(interval.high)],
                      "within_receiver": within_receiver(rows, key, resamples=resamples, seed=seed)}
    found["mean_accuracy"] = float(accuracy.mean())
    return found


def reanalyse(name: str) -> dict:
    """The substitution statistics recomputed from the rows a results file holds (no training)."""
    path = Path(__file__).parent / "results" / f"{name}.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    results["substitution"] = substitution_statistics(results["substitution"]["rows"])
    results["statistics_recomputed"] = {"command": f"python benchmarks/compose_study.py --reanalyse --name {name}",
                                        "at": environment()["measured_at"]}
    write_json(path, results)  # the environment stays the one the rows were measured on
    return results


def print_substitution(substitution: dict) -> None:
    print_table(["module", "pairs", "within receiver: ρ(CKA, accuracy) [p]", "ρ(score, accuracy) [p]"],
                [[m, substitution[f"module_{m}"]["pairs"],
                  "{mean_spearman:.3f} [{permutation_p:.3f}]".format(**substitution[f"module_{m}"]["cka"]["within_receiver"]),
                  "{mean_spearman:.3f} [{permutation_p:.3f}]".format(**substitution[f"module_{m}"]["score"]["within_receiver"])]
                 for m in (1, 2)])
    print_table(["module", "pairs", "pooled: ρ(CKA, accuracy) [p]", "ρ(score, accuracy) [p]"],
                [[m, substitution[f"module_{m}"]["pairs"],
                  f"{substitution[f'module_{m}']['cka']['spearman']:.3f} [{substitution[f'module_{m}']['cka']['permutation_p']:.3f}]",
                  f"{substitution[f'module_{m}']['score']['spearman']:.3f} [{substitution[f'module_{m}']['score']['permutation_p']:.3f}]"]
                 for m in (1, 2)])



def main() -> None:
    global FOLDER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each hidden module (zoo, stacking)")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--tasks", default=None, help="comma list of tasks (default: the 15 of the default space)")
    parser.add_argument("--work", type=Path, default=FOLDER, help="work folder (default: benchmarks/work/compose-study)")
    parser.add_argument("--name", default="compose_study", help="results file name")
    parser.add_argument("--reanalyse", action="store_true",
                        help="recompute the substitution statistics from the rows in the results file (no training)")
    arguments = parser.parse_args()
    if arguments.reanalyse:
        print_substitution(reanalyse(arguments.name)["substitution"])
        return
    FOLDER = arguments.work
    data_root = require_cifar()
    torch.set_num_threads(2)
    dataset = load_dataset("cifar10", data_root=data_root)
    tasks = arguments.tasks.split(",") if arguments.tasks else list(TaskSpace.default().ids)
    nets = tuple(net for net in SUBSTITUTION_NETS if net in tasks) or tuple(tasks[:3])
    began = time.perf_counter()
    scratch = train_zoo(tasks, data_root, dataset, arguments.epochs)
    zoo_seconds = sum(float(metrics["train_seconds"]) for metrics in scratch.values())
    depth = depth_run(tasks, data_root)
    zoo_run = depth.pop("run")
    depth.update(by_depth(zoo_run))
    rows = workflows(zoo_run, scratch, tasks, dataset, arguments.epochs, arguments.finetune_epochs)
    substitution = substitutions(zoo_run, nets, dataset, data_root)
    summary = {kind: float(np.mean([r[f"{kind}_accuracy"] for r in rows]))
               for kind in ("scratch", "stack_estimator", "stack_measured_best", "port", "finetune")}
    seconds = {kind: float(np.mean([r[f"{kind}_seconds"] for r in rows]))
               for kind in ("scratch", "stack_estimator", "stack_measured_best", "port", "finetune")}
    save(arguments.name, {"command": "python benchmarks/compose_study.py", "epochs": arguments.epochs,
                           "finetune_epochs": arguments.finetune_epochs, "cut_points": list(CUT_POINTS),
                           "estimator": ESTIMATOR, "zoo_seconds": zoo_seconds, "mean_accuracy": summary,
                           "mean_seconds": seconds, "workflows": rows, "depth": depth, "substitution": substitution,
                           "this_run_seconds": time.perf_counter() - began})
    print_table(["workflow", "mean test accuracy", "mean seconds"], [[k, summary[k], seconds[k]] for k in summary])
    print(depth["verdict_text"])
    print_substitution(substitution)

if __name__ == "__main__":
    main()
