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
from taskspace.runner import Run
from taskspace.scoring import get_estimator
from taskspace.scoring._common import ledoit_wolf_spectrum
from taskspace.training.seeds import derive_seed


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


def _leave_one_out_least_squares(features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Leave-one-out accuracy and R^2 of the ridge least-squares classifier on the cosine features.

    The classifier whose in-sample fit alignment_whitened measures: one-hot targets regressed on the
    centred unit rows with an intercept and the ridge that Ledoit-Wolf shrinkage implies
    (``lambda = n s mean(e) / (1 - s)``); leave-one-out predictions in closed form from the leverages.
    """
    unit = _unit(features)
    centred = unit - unit.mean(axis=0)
    n = centred.shape[0]
    onehot = np.eye(int(labels.max()) + 1)[labels]
    spectrum = ledoit_wolf_spectrum(centred)
    ridge = n * spectrum.shrinkage * spectrum.eigenvalues.mean() / max(1.0 - spectrum.shrinkage, 1e-12)
    scale = 1.0 / np.maximum(n * spectrum.eigenvalues + ridge, 1e-12)
    rotated = centred @ spectrum.eigenvectors  # (n, d)
    fitted = onehot.mean(axis=0) + (rotated * scale) @ (rotated.T @ (onehot - onehot.mean(axis=0)))
    leverage = 1.0 / n + np.einsum("ij,ij->i", rotated * scale, rotated)
    left_out = (fitted - leverage[:, None] * onehot) / (1.0 - leverage)[:, None]
    accuracy = float(np.mean(np.argmax(left_out, axis=1) == labels))
    press = float(np.sum((onehot - left_out) ** 2))
    total = float(np.sum((onehot - onehot.mean(axis=0)) ** 2))
    return accuracy, 1.0 - press / total


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
    "whitened LOO least-squares accuracy": lambda o: _leave_one_out_least_squares(o.features.astype(np.float64),
                                                                                o.labels)[0],
    "whitened LOO least-squares R²": lambda o: _leave_one_out_least_squares(o.features.astype(np.float64),
                                                                          o.labels)[1],
    "logme": lambda o: get_estimator("logme")(o.features.astype(np.float64), o.labels),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default=None)
    parser.add_argument("--samples", type=int, default=None, help="score on this many images per target (seeded)")
    parser.add_argument("--only", default=None, help="comma-separated candidates (default: all)")
    arguments = parser.parse_args()
    candidates = {k: v for k, v in CANDIDATES.items() if arguments.only is None or k in arguments.only.split(",")}
    context = Run.open(arguments.run)
    ids = context.space.ids
    scores = {name: np.full((len(ids), len(ids)), np.nan) for name in candidates}
    for j, target in enumerate(ids):
        split = context.splits(target).train
        for i, source in enumerate(ids):
            outputs = cached_source_outputs(context.checkpoint(source), split, cache_dir=context.path("features"))
            if arguments.samples is not None:
                rng = np.random.default_rng(derive_seed(0, "stability", target))  # seed_stability.py's seed 0
                outputs = outputs.subset(np.sort(rng.choice(len(outputs.labels), arguments.samples, replace=False)))
            for name, candidate in candidates.items():
                scores[name][i, j] = candidate(outputs)
    matrices = {name: TransferabilityMatrix(values, ids, ids, name) for name, values in scores.items()}
    truths = context.truths()
    rows = evaluate(matrices, truths, resamples=2000)
    table = [[row["protocol"], row["estimator"], row["kendall_tau"],
              f"[{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]", row["weighted_tau"], row["top1_regret"]]
             for row in sorted(rows, key=lambda r: (r["protocol"], -r["kendall_tau"]))]
    print_table(["protocol", "candidate", "mean τ", "95% CI", "mean τw", "top-1 regret"], table)
    name = arguments.name or arguments.run.name + ("" if arguments.samples is None else f"_{arguments.samples}")
    save(f"kernel_score_study_{name}", {"run": str(arguments.run), "evaluation": rows,
                                         "matrices": {k: m.to_json_dict() for k, m in matrices.items()}})


if __name__ == "__main__":
    main()
