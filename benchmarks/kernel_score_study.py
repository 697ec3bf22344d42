"""Which kernel-family score ranks sources best? Candidates scored from a finished grid run.

Reads the cached forward passes of a run made by transfer_grid.py (no new forward pass), computes
each candidate score for every (source, target), and reports its mean per-target Kendall τ against
every ground truth of the run, beside LogME. Choose on one space, confirm on another.

    python benchmarks/kernel_score_study.py benchmarks/work/grid-default
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import print_table, save
from sklearn.covariance import LedoitWolf

from taskspace.analysis import evaluate
from taskspace.features import SourceOutputs, cached_source_outputs
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner import open_run, read_truth_csv
from taskspace.scoring import get_estimator


def _unit(values: np.ndarray) -> np.ndarray:
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def _centered_alignment(features: np.ndarray, labels: np.ndarray) -> float:
    onehot = np.eye(int(labels.max()) + 1)[labels]
    centred = features - features.mean(axis=0)
    targets = onehot - onehot.mean(axis=0)
    cross = np.linalg.norm(centred.T @ targets) ** 2
    return float(cross / (np.linalg.norm(centred.T @ centred) * np.linalg.norm(targets.T @ targets)))


def _whitened_alignment(features: np.ndarray, labels: np.ndarray) -> float:
    centred = features - features.mean(axis=0)
    covariance = LedoitWolf(assume_centered=True).fit(centred).covariance_
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitened = centred @ eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-12))
    return _centered_alignment(whitened, labels)


def _standardized_alignment(features: np.ndarray, labels: np.ndarray) -> float:
    centred = features - features.mean(axis=0)
    return _centered_alignment(centred / np.maximum(centred.std(axis=0), 1e-6), labels)


CANDIDATES: dict[str, Callable[[SourceOutputs], float]] = {
    "alignment (paper)": lambda o: get_estimator("alignment")(o.features, o.labels),
    "centred φ": lambda o: _centered_alignment(o.features.astype(np.float64), o.labels),
    "centred pre-activation": lambda o: _centered_alignment(o.pre_activations.astype(np.float64), o.labels),
    "centred unit pre-activation": lambda o: _centered_alignment(_unit(o.pre_activations.astype(np.float64)),
                                                                 o.labels),
    "standardised φ": lambda o: _standardized_alignment(o.features.astype(np.float64), o.labels),
    "standardised pre-activation": lambda o: _standardized_alignment(o.pre_activations.astype(np.float64),
                                                                     o.labels),
    "whitened φ (Ledoit-Wolf)": lambda o: _whitened_alignment(o.features.astype(np.float64), o.labels),
    "whitened pre-activation": lambda o: _whitened_alignment(o.pre_activations.astype(np.float64), o.labels),
    "logme": lambda o: get_estimator("logme")(o.features.astype(np.float64), o.labels),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default=None)
    arguments = parser.parse_args()
    context = open_run(arguments.run, None)
    ids = context.space.ids
    scores = {name: np.full((len(ids), len(ids)), np.nan) for name in CANDIDATES}
    for j, target in enumerate(ids):
        split = context.splits(target).train
        for i, source in enumerate(ids):
            outputs = cached_source_outputs(context.checkpoint(source), split, cache_dir=arguments.run / "features")
            for name, candidate in CANDIDATES.items():
                scores[name][i, j] = candidate(outputs)
    matrices = {name: TransferabilityMatrix(values, ids, ids, name) for name, values in scores.items()}
    truths = read_truth_csv(arguments.run / "truth.csv")
    rows = evaluate(matrices, truths, resamples=2000)
    table = [[row["protocol"], row["estimator"], row["kendall_tau"],
              f"[{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]", row["weighted_tau"], row["top1_regret"]]
             for row in sorted(rows, key=lambda r: (r["protocol"], -r["kendall_tau"]))]
    print_table(["protocol", "candidate", "mean τ", "95% CI", "mean τw", "top-1 regret"], table)
    name = arguments.name or arguments.run.name
    save(f"kernel_score_study_{name}", {"run": str(arguments.run), "evaluation": rows,
                                         "matrices": {k: m.to_json_dict() for k, m in matrices.items()}})


if __name__ == "__main__":
    main()
