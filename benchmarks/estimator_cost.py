"""Every estimator's time and peak memory at zoo scale (n = 50,000 images, d = 2,048), and LogME against
its authors' own code on the same features.

    TASKSPACE_DATA=../shared/data python benchmarks/estimator_cost.py --logme-peer /path/to/LogME

Features: the 50,000 real CIFAR-10 training images through a fixed random layer (3,072 pixels ->
2,048 ReLU units, seed 0): real images, the width of a ResNet-50's last layer. Every registered
estimator is timed once per size (n = 1,000, 10,000, 50,000) with tracemalloc's peak of what it
allocates (numpy reports its buffers to tracemalloc); an estimator whose time at 10,000 projects to
more than ``--budget`` seconds at 50,000 (by its measured growth from 1,000 to 10,000) is not run there,
and that is said. ``--logme-peer`` names a folder holding the LogME authors' ``LogME.py`` (with numba
importable): both run on the same float64 features in the same process, best of three.
Writes ``results/estimator_cost.json``.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
import tracemalloc

import numpy as np

from _common import print_table, require_cifar, save
from taskspace.data import load_dataset
from taskspace.scoring import get_estimator, list_estimators

SIZES = (1000, 10000, 50000)


def real_features(data_root: str, width: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10's training images through a fixed random ReLU layer: (50,000, width) float64, labels."""
    dataset = load_dataset("cifar10", data_root=data_root)
    pixels = dataset.train.images.reshape(len(dataset.train.images), -1).astype(np.float32) / 255.0
    pixels -= pixels.mean(axis=0)
    weights = np.random.default_rng(0).standard_normal((pixels.shape[1], width)).astype(np.float32)
    features = np.maximum(pixels @ weights / math.sqrt(pixels.shape[1]), 0.0)
    return features.astype(np.float64), np.asarray(dataset.train.labels)


def source_probabilities(labels: np.ndarray, classes: int = 6, seed: int = 1) -> np.ndarray:
    """A source classifier's softmax outputs for estimators that need them (random, the cost is what counts)."""
    logits = np.random.default_rng(seed).standard_normal((len(labels), classes))
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def measure(name: str, features: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(seconds, peak MiB allocated) of one call."""
    estimator = get_estimator(name)
    tracemalloc.start()
    began = time.perf_counter()
    estimator(features, labels, source_probs=probs, source_accuracy=0.9)
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def logme_against_peer(folder: str, features: np.ndarray, labels: np.ndarray) -> list[dict[str, float]]:
    sys.path.insert(0, folder)
    peer = importlib.import_module("LogME").LogME
    ours = get_estimator("logme")
    rows = []
    for width in (512, 2048):
        for n in SIZES:
            f, y = np.ascontiguousarray(features[:n, :width]), labels[:n]
            times = {"taskspace": [], "authors": []}
            values = {}
            for _ in range(3):
                began = time.perf_counter()
                values["taskspace"] = ours(f, y)
                times["taskspace"].append(time.perf_counter() - began)
                began = time.perf_counter()
                values["authors"] = float(peer().fit(f, y))
                times["authors"].append(time.perf_counter() - began)
            rows.append({"n": n, "d": width, "taskspace_seconds": min(times["taskspace"]),
                         "authors_seconds": min(times["authors"]),
                         "ratio": min(times["taskspace"]) / min(times["authors"]),
                         "taskspace_score": values["taskspace"], "authors_score": values["authors"]})
            print(f"logme n={n} d={width}: taskspace {rows[-1]['taskspace_seconds']:.3f} s, authors "
                  f"{rows[-1]['authors_seconds']:.3f} s (ratio {rows[-1]['ratio']:.2f})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logme-peer", help="folder with the LogME authors' LogME.py (numba importable)")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds an estimator may take at n=50,000")
    parser.add_argument("--estimators", nargs="*", default=None, help="default: every registered estimator")
    parser.add_argument("--skip", nargs="*", default=[], help="estimators not to time (said in the results)")
    arguments = parser.parse_args()
    features, labels = real_features(require_cifar())
    probs = source_probabilities(labels)
    get_estimator("logme")(features[:500], labels[:500])  # warm the BLAS threads and caches before timing
    records = []
    for name in [name for name in arguments.estimators or list_estimators() if name not in arguments.skip]:
        seconds: dict[int, float] = {}
        for n in SIZES:
            if n == SIZES[-1] and SIZES[1] in seconds:
                growth = math.log(max(seconds[SIZES[1]], 1e-6) / max(seconds[SIZES[0]], 1e-6)) / math.log(10)
                projected = seconds[SIZES[1]] * (SIZES[2] / SIZES[1]) ** max(growth, 1.0)
                if projected > arguments.budget:
                    records.append({"estimator": name, "n": n, "d": features.shape[1], "seconds": None,
                                    "peak_mib": None, "projected_seconds": projected})
                    print(f"{name} n={n}: not run, projected {projected:.0f} s", flush=True)
                    continue
            took, peak = measure(name, features[:n], labels[:n], probs[:n])
            seconds[n] = took
            records.append({"estimator": name, "n": n, "d": features.shape[1], "seconds": took, "peak_mib": peak})
            print(f"{name} n={n}: {took:.2f} s, peak {peak:.0f} MiB", flush=True)
    peer = logme_against_peer(arguments.logme_peer, features, labels) if arguments.logme_peer else []
    command = " ".join(["python benchmarks/estimator_cost.py", *(["--logme-peer PATH"] if arguments.logme_peer else []),
                        *([f"--budget {arguments.budget:g}"] if arguments.budget != 600.0 else []),
                        *(["--estimators", *arguments.estimators] if arguments.estimators else []),
                        *(["--skip", *arguments.skip] if arguments.skip else [])])
    save("estimator_cost", {"command": command, "features":
                            "CIFAR-10 train images through a fixed random 3072->2048 ReLU layer (seed 0)",
                            "records": records, "logme_vs_authors": peer, "budget_seconds": arguments.budget,
                            "skipped": arguments.skip})
    print_table(["estimator", "n", "seconds", "peak MiB"],
                [(r["estimator"], r["n"], r["seconds"] if r["seconds"] is not None else
                  f"not run (projected {r['projected_seconds']:.0f} s)", r["peak_mib"] if r["peak_mib"] else "-")
                 for r in records if r["n"] == SIZES[-1]])
    if peer:
        print_table(["n", "d", "taskspace s", "authors s", "ratio"],
                    [(r["n"], r["d"], r["taskspace_seconds"], r["authors_seconds"], r["ratio"]) for r in peer])


if __name__ == "__main__":
    main()
