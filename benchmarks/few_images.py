"""The default estimator on few target images: its verdict at 200, 500, 1,000 and all images, beside LogME's.

For each task space, every source's features on every target's training images come from the run's
feature banks (one forward pass per source and image); each target is then scored on stratified random
samples of ``size`` of its images (``--draws`` samples per size, the same images for every source, so
estimators and sources are compared on equal terms). Each estimator's ranking of the sources is set
against every measured ground truth of the run (Kendall τ per target, the diagonal left out, averaged
over the draws), and its mean τ is given with a 95% bootstrap interval over targets, with the paired
difference to LogME (the same targets and samples) and its interval.

The spaces: ``default`` (CIFAR-10, 15 targets of 9,000 images, features of 128 dimensions; where the
estimator was chosen) and ``digits`` (the 8x8 digits that ship with scikit-learn, 15 targets of 239
images, 64 dimensions, created here if missing; a confirmation). The open zoo (benchmarks/open_zoo.py:
29 modules of 9 networks, d from 24 to 2,048 on 500 images) is read from its run when present.

    TASKSPACE_DATA=../shared/data python benchmarks/few_images.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, WORK, print_table, require_cifar, save
from scipy import stats

from taskspace.analysis import per_target_agreement
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner import GridConfig, Run
from taskspace.runner.extraction import extract_bank, gather, read_bank
from taskspace.scoring import get_estimator
from taskspace.training.seeds import derive_seed

ESTIMATORS = ("kernel_ridge_r2", "alignment_whitened", "kernel_ridge_loo", "logme")
REFERENCE = "logme"
SPACES = {
    "default": {"run": WORK / "grid-default", "sizes": (200, 500, 1000, None), "truth": RESULTS / "transfer_default.json"},
    "digits": {"run": WORK / "grid-digits", "sizes": (50, 100, 200, None), "truth": None},
}
RESAMPLES = 2000


def digits_run(folder: Path) -> Run:
    """The digits space's zoo and ground truth (frozen probe with 5 labels per class and all, fine-tuning)."""
    run = Run.create(folder, GridConfig(space="digits", train={"epochs": 15, "seed": 0}, seed=0, finetune_epochs=5))
    run.measure(("frozen_k5", "frozen_all", "finetune"), show_progress=False)
    return run


def truths_of(run: Run, results: Path | None) -> dict[str, TransferabilityMatrix]:
    """The run's measured truth, or (when its cell files were cleared) the matrices its results file kept."""
    truths = run.truths()
    if truths or results is None:
        return truths
    recorded = json.loads(results.read_text())
    if recorded["grid"] != json.loads(run.path("record").read_text())["grid"]:
        raise SystemExit(f"{results} was measured on another grid than {run.folder}")
    ids = tuple(recorded["space_ids"])
    return {protocol: TransferabilityMatrix(np.array(matrix["scores"]), ids, ids, protocol)
            for protocol, matrix in recorded["truth"].items()}


def target_features(run: Run) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """source -> target -> (features of all the target's training images, labels), from the banks."""
    features = {}
    for source in run.space.ids:
        if read_bank(run, source) is None:
            extract_bank(run, source)
        bank = read_bank(run, source)
        features[source] = {}
        for target in run.space.ids:
            splits = run.splits(target)
            outputs = gather(bank, splits, np.arange(len(splits.train.labels)))
            features[source][target] = (outputs.features.astype(np.float64), np.asarray(outputs.labels))
    return features


def sample(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` positions split evenly over the classes, drawn at random; all positions when ``size`` is None."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), size // len(classes), replace=False)
                                   for c in classes]))


def taus_per_target(scores: dict[str, np.ndarray], ids: tuple[str, ...],
                    truths: dict[str, TransferabilityMatrix]) -> dict[str, dict[str, np.ndarray]]:
    """estimator -> protocol -> Kendall τ per target."""
    return {name: {protocol: np.array([row.kendall_tau for row in per_target_agreement(
        TransferabilityMatrix(matrix, ids, ids, name), truth)]) for protocol, truth in truths.items()}
        for name, matrix in scores.items()}


def interval(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Mean and 95% bootstrap interval over the finite entries (targets)."""
    finite = values[np.isfinite(values)]
    found = stats.bootstrap((finite,), np.mean, n_resamples=RESAMPLES, method="percentile", rng=rng,
                            vectorized=True).confidence_interval
    return [float(finite.mean()), float(found.low), float(found.high)]


def study_space(name: str, run: Run, truths: dict[str, TransferabilityMatrix], sizes, draws: int) -> list[dict]:
    ids = run.space.ids
    began = time.perf_counter()
    features = target_features(run)
    print(f"{name}: features of {len(ids)} sources x {len(ids)} targets in {time.perf_counter() - began:.0f} s",
          flush=True)
    rows = []
    for size in sizes:
        per_draw = []
        seconds = dict.fromkeys(ESTIMATORS, 0.0)
        for draw in range(draws if size is not None else 1):
            scores = {e: np.full((len(ids), len(ids)), np.nan) for e in ESTIMATORS}
            for j, target in enumerate(ids):
                picked = sample(features[ids[0]][target][1], size, derive_seed(draw, "few-images", target))
                for i, source in enumerate(ids):
                    values, labels = features[source][target]
                    for estimator in ESTIMATORS:
                        started = time.perf_counter()
                        scores[estimator][i, j] = get_estimator(estimator)(values[picked], labels[picked])
                        seconds[estimator] += time.perf_counter() - started
            per_draw.append(taus_per_target(scores, ids, truths))
        images = len(features[ids[0]][ids[0]][1]) if size is None else size
        for protocol in truths:
            rng = np.random.default_rng(0)
            mean_tau = {e: np.nanmean([d[e][protocol] for d in per_draw], axis=0) for e in ESTIMATORS}
            for estimator in ESTIMATORS:
                row = {"space": name, "images": images, "all_images": size is None, "draws": len(per_draw),
                       "protocol": protocol, "estimator": estimator,
                       "kendall_tau": interval(mean_tau[estimator], rng),
                       "seconds_per_cell": seconds[estimator] / (len(per_draw) * len(ids) ** 2)}
                if estimator != REFERENCE:
                    row["minus_logme"] = interval(mean_tau[estimator] - mean_tau[REFERENCE], rng)
                rows.append(row)
        print(f"{name}: {images} images done", flush=True)
    return rows


def open_zoo_rows() -> list[dict]:
    """The open zoo's verdict (500 images per target), paired against LogME, when its run is here."""
    from taskspace.zoo.run import ZooRun

    folder = WORK / "open-zoo" / "run"
    if not (folder / "truth.csv").is_file():
        print("open zoo: no run under benchmarks/work/open-zoo (python benchmarks/open_zoo.py); left out")
        return []
    run = ZooRun.open(folder)
    estimates, truths = run.estimates(), run.truths()
    missing = [e for e in ESTIMATORS if e not in estimates]
    if missing:
        raise SystemExit(f"the open zoo run lacks {', '.join(missing)}: score it with "
                         f"`taskspace matrix {folder} --estimators {','.join(missing)}` (and its zoo flags)")
    rows = []
    for protocol, truth in truths.items():
        rng = np.random.default_rng(0)
        tau = {e: np.array([r.kendall_tau for r in per_target_agreement(estimates[e], truth)]) for e in ESTIMATORS}
        for estimator in ESTIMATORS:
            row = {"space": "open zoo", "images": 500, "all_images": False, "draws": 1, "protocol": protocol,
                   "estimator": estimator, "kendall_tau": interval(tau[estimator], rng)}
            if estimator != REFERENCE:
                both = np.isfinite(tau[estimator]) & np.isfinite(tau[REFERENCE])
                row["minus_logme"] = interval(tau[estimator][both] - tau[REFERENCE][both], rng)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3, help="random samples per size (default: 3)")
    parser.add_argument("--spaces", default="default,digits")
    arguments = parser.parse_args()
    data_root = require_cifar()
    rows = []
    for name in arguments.spaces.split(","):
        spec = SPACES[name]
        folder = spec["run"]
        if name == "digits" and not (folder / "run.json").is_file():
            run = digits_run(folder)
        else:
            run = Run.open(folder, data_root=data_root if name == "default" else None)
            if name == "digits":
                run.measure(("frozen_k5", "frozen_all", "finetune"), show_progress=False)
        truths = truths_of(run, spec["truth"])
        if not truths:
            raise SystemExit(f"{folder} has no measured truth: python benchmarks/transfer_grid.py --space {name}")
        rows += study_space(name, run, truths, spec["sizes"], arguments.draws)
    rows += open_zoo_rows()
    save("few_images", {"command": "python benchmarks/few_images.py", "estimators": list(ESTIMATORS),
                        "reference": REFERENCE, "rows": rows})
    print_table(["space", "images", "truth", "estimator", "τ [95%]", "minus LogME [95%]"],
                [[r["space"], r["images"], r["protocol"], r["estimator"],
                  "{:.3f} [{:.3f}, {:.3f}]".format(*r["kendall_tau"]),
                  "{:+.3f} [{:+.3f}, {:+.3f}]".format(*r["minus_logme"]) if "minus_logme" in r else ""]
                 for r in rows])


if __name__ == "__main__":
    main()
