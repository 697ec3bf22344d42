"""Cost of the alignment score: exact (method.md §5) vs mini-batch vs LogME, time and peak memory.

Same features for every estimator: n unit-norm non-negative vectors of d = 512 (ReLU of Gaussian
draws, L2-normalised) with balanced binary labels, at n = 1,000, 10,000 and 50,000. Peak memory is the
tracemalloc peak of the call (numpy allocations are traced); time is the median of repeats.

    python benchmarks/scoring_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from _common import print_table, save

from taskspace.scoring import get_estimator

ESTIMATORS = ("alignment", "alignment_minibatch", "alignment_centered", "alignment_whitened", "logme")


def _features(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    features = np.maximum(rng.normal(size=(n, d)) + 0.3 * labels[:, None] * (np.arange(d) < d // 8), 0.0)
    features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return features, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    records, rows = [], []
    for n in (int(value) for value in arguments.sizes.split(",")):
        features, labels = _features(n, arguments.dim, seed=n)
        baseline = None
        for name in ESTIMATORS:
            estimator = get_estimator(name)
            estimator(features, labels)  # warm-up
            times = []
            for _ in range(arguments.repeats):
                started = time.perf_counter()
                value = estimator(features, labels)
                times.append(time.perf_counter() - started)
            tracemalloc.start()
            estimator(features, labels)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            seconds = statistics.median(times)
            if name == "logme":
                baseline = seconds
            records.append({"n": n, "d": arguments.dim, "estimator": name, "seconds": seconds,
                            "peak_bytes": peak, "score": value, "n_squared_float64_bytes": 8 * n * n})
        for record in records[-len(ESTIMATORS):]:
            record["time_ratio_to_logme"] = record["seconds"] / baseline
            rows.append([n, record["estimator"], 1000 * record["seconds"], record["peak_bytes"] / 2**20,
                         record["time_ratio_to_logme"], record["n_squared_float64_bytes"] / 2**20])
    path = save("scoring_cost", {"records": records})
    print_table(["n", "estimator", "ms", "peak MiB", "time / logme", "n² float64 MiB"], rows)
    print(f"written {path}")


if __name__ == "__main__":
    main()
