"""CKA between every pair of a run's modules on one shared probe set, and its link to transfer.

:func:`module_similarity` feeds one probe set of test images to every module of a run and compares
their features pairwise with CKA. The modules are a trained run's networks (φ at each trunk's end) or a
zoo run's (source, layer) modules (each layer's pooled output); the probe set is drawn from the
dataset's test images of every class the run's targets use (each test image once, whichever targets
share its class), so every module sees the same inputs. The forward passes are read from the run's
store (:mod:`taskspace.zoo.store`), where scoring and the frozen truth keep theirs: a module scored
before passes no image twice. The result is a :class:`~taskspace.matrix.TransferabilityMatrix` over
modules x modules (symmetric, diagonal 1), written to ``<run>/similarity/<estimator>.{csv,json,npz}``
and reused while its inputs (the modules' networks, probe images, options) are unchanged.

A zoo's ``features`` sources hold features of their targets' images only, not of a shared probe set:
they are left out, and the matrix's provenance names them. An imported run holds no networks.

:func:`similarity_vs_transfer` asks whether similar modules transfer well to each other's tasks: the
Spearman correlation of the similarity with the symmetrised transferability over task pairs, and a
Mantel permutation test of it. It needs the task-by-task view: modules that are the targets' own
networks (a trained run).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from taskspace._version import __version__
from taskspace.data import ImageSplit
from taskspace.errors import ConfigError, DataError, TaskspaceError
from taskspace.io import canonical_json, content_hash, sha256_of_file
from taskspace.matrix import TransferabilityMatrix, read_matrix_set, write_matrix_set
from taskspace.similarity.cka import (
    RBF_MAX_SAMPLES,
    _check_kernel,
    _check_sigma_fraction,
    cka_matrix,
)
from taskspace.training.seeds import derive_seed

__all__ = ["cka_estimator_name", "module_similarity", "stored_similarity", "write_similarity", "similarity_vs_transfer"]

#: Bumped when the way a similarity matrix is computed changes: older cached results are recomputed.
_SIMILARITY_FORMAT = 1

#: Smallest probe set: the unbiased HSIC needs 4 inputs.
_MIN_SAMPLES = 4

#: Permutations evaluated at a time by the Mantel test (bounds its memory to this x task pairs).
_PERMUTATION_BATCH = 1000


def cka_estimator_name(kernel: str, *, debiased: bool) -> str:
    """``cka_linear``, ``cka_linear_debiased``, ``cka_rbf`` or ``cka_rbf_debiased``."""
    return f"cka_{_check_kernel(kernel)}" + ("_debiased" if debiased else "")


@dataclass(frozen=True)
class _Modules:
    """What a run compares: its modules, the classes of the probe, what identifies each module's network,
    and how to read the modules' features on test images (from the run's store)."""

    ids: tuple[str, ...]
    classes: tuple[str, ...]
    dataset: str
    networks: dict[str, str]
    representation: str
    left_out: tuple[str, ...]
    features: Callable[[np.ndarray], list[np.ndarray]]


def _run_modules(run: Any, *, device: str, batch_size: int) -> _Modules:
    """The modules of a trained or a zoo run (see the module docstring)."""
    if run.kind == "trained":
        return _trained_modules(run)
    if run.kind == "zoo":
        return _zoo_modules(run, device=device, batch_size=batch_size)
    raise TaskspaceError(f"'{run.folder}' is an imported run: it holds results, no networks to compare; run "
                         "`taskspace similarity` on a run made with `taskspace matrix`")


def _trained_modules(run: Any) -> _Modules:
    from taskspace.runner.extraction import store_rows

    ids = tuple(run.space.ids)
    for task_id in ids:
        if not run.checkpoint(task_id).is_file():
            raise TaskspaceError(
                f"module '{task_id}' is not trained (no '{run.checkpoint(task_id)}'); "
                f"train the zoo first with `taskspace matrix {run.folder}`"
            )

    def features(positions: np.ndarray) -> list[np.ndarray]:
        return [store_rows(run, task_id, "test", positions)[0]["features"] for task_id in ids]

    return _Modules(ids, tuple(run.space.classes), run.space.dataset,
                    {task_id: sha256_of_file(run.checkpoint(task_id)) for task_id in ids},
                    "features (phi of the trunk output)", (), features)


def _zoo_modules(run: Any, *, device: str, batch_size: int) -> _Modules:
    from taskspace.zoo.forward import zoo_fingerprint
    from taskspace.zoo.store import layer_features

    sources = [spec for spec in run.zoo.sources if spec.has_weights]
    left_out = tuple(module for spec in run.zoo.sources if not spec.has_weights for module in spec.modules)
    ids = tuple(module for spec in sources for module in spec.modules)
    if len(ids) < 2:
        raise TaskspaceError(f"'{run.folder}' has {len(ids)} module(s) taskspace can run (features sources hold no "
                             "shared probe); CKA compares two or more: add a source with weights to the zoo")
    dataset = run.dataset()
    used = {name for target in run.target_list() for name in target.task.classes}
    classes = tuple(name for name in dataset.class_names if name in used)
    records = {spec.name: spec.to_record() for spec in sources}

    def features(positions: np.ndarray) -> list[np.ndarray]:
        fingerprint = zoo_fingerprint(run)
        found = []
        for spec in sources:
            layers, _, _ = layer_features(spec, source_record=records[spec.name], dataset=dataset,
                                          fingerprint=fingerprint, split="test", indices=positions,
                                          folder=run.path("features"), device=device, batch_size=batch_size)
            found += [layers[layer] for layer in spec.layers]
        return found

    networks = {module: content_hash(records[spec.name]) for spec in sources for module in spec.modules}
    return _Modules(ids, classes, run.targets.dataset, networks, "each layer's output, pooled to one vector",
                    left_out, features)


def _probe_split(run: Any, classes: tuple[str, ...], *, samples: int, seed: int) -> tuple[ImageSplit, np.ndarray]:
    """The shared probe set and the positions of its images in the dataset's test split.

    ``samples`` test images of ``classes``, drawn without replacement (all of them when there are fewer),
    in test-split order; the draw depends only on ``seed``.
    """
    dataset = run.dataset()
    class_codes = [dataset.class_names.index(name) for name in classes]
    candidates = np.flatnonzero(np.isin(dataset.test.labels, class_codes))
    if len(candidates) < _MIN_SAMPLES:
        raise DataError(
            f"the test split holds {len(candidates)} images of the run's classes, fewer than the "
            f"{_MIN_SAMPLES} CKA needs; use a dataset with more test images"
        )
    if samples < len(candidates):
        rng = np.random.default_rng(derive_seed(seed, "similarity-probe"))
        candidates = np.sort(rng.choice(candidates, size=samples, replace=False))
    return dataset.test.take(candidates), candidates


def _probe_digest(probe: ImageSplit) -> str:
    digest = hashlib.sha256(repr(probe.images.shape).encode())
    digest.update(np.ascontiguousarray(probe.images).tobytes())
    return digest.hexdigest()


def _cached_matrix(path: Path, *, estimator: str, inputs_hash: str) -> TransferabilityMatrix | None:
    """The matrix stored at ``path`` if it was computed from the same inputs, else None."""
    if not path.is_file():
        return None
    try:
        matrix = read_matrix_set(path).get(estimator)
    except (TaskspaceError, KeyError, ValueError):
        return None  # damaged: computed again and overwritten
    if matrix is None or matrix.provenance.get("inputs_hash") != inputs_hash:
        return None
    return matrix


def module_similarity(
    run: Any,
    *,
    samples: int = 2000,
    kernel: str = "linear",
    debiased: bool = False,
    sigma_fraction: float = 0.8,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 256,
) -> TransferabilityMatrix:
    """CKA between the features of every pair of the run's modules on one probe set.

    The probe set is ``samples`` images drawn with ``seed`` from the test images of the classes of the
    run's targets (see the module docstring). Features are read from the run's store, where images it
    lacks are passed through the networks first; the matrix is written to
    ``<run>/similarity/<estimator>.{csv,json,npz}`` and returned from there on a later call whose
    inputs hash the same (the modules' networks, probe images and every option).

    Args:
        run: a trained run with its zoo trained (``taskspace matrix``), or a zoo run.
        samples: probe images (at least 4; all of them when the test split holds fewer). The RBF
            kernel accepts at most :data:`~taskspace.similarity.RBF_MAX_SAMPLES`.
        kernel: ``"linear"`` or ``"rbf"``.
        debiased: use the unbiased HSIC estimator.
        sigma_fraction: RBF bandwidth as a fraction of the median pairwise distance (RBF only).
        seed: seed of the probe draw.
        device, batch_size: where and in what batches a zoo run's forward passes run (a trained run's
            use its training device).

    Returns:
        A symmetric matrix over the run's modules (sources = targets: a trained run's task ids, a zoo
        run's ``source:layer`` ids), estimator :func:`cka_estimator_name`, diagonal 1; a module with
        constant features gets NaN in its row and column (CKA is undefined for it). Provenance names
        each module's network (``networks``: a checkpoint's SHA-256, or a hash of a zoo source's
        record with its files' SHA-256), the probe's hash and the modules left out.

    Raises:
        ConfigError: an unknown kernel or a bad ``samples`` / ``sigma_fraction``.
        TaskspaceError: a module of a trained run is not trained yet; an imported run; a zoo with fewer
            than two modules that taskspace can run.
    """
    estimator = cka_estimator_name(kernel, debiased=debiased)
    fraction = _check_sigma_fraction(sigma_fraction)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < _MIN_SAMPLES:
        raise ConfigError(f"samples must be an integer of at least {_MIN_SAMPLES}, got {samples!r}; e.g. 2000")
    modules = _run_modules(run, device=device, batch_size=batch_size)
    ids = modules.ids
    probe, positions = _probe_split(run, modules.classes, samples=int(samples), seed=seed)
    if kernel == "rbf" and len(probe) > RBF_MAX_SAMPLES:
        raise ConfigError(
            f"RBF CKA builds n x n kernels and accepts at most {RBF_MAX_SAMPLES} probe images, got {len(probe)}; "
            f"pass samples={RBF_MAX_SAMPLES} or fewer, or use kernel='linear'"
        )
    options = {"kernel": kernel, "debiased": bool(debiased), "samples": int(samples), "seed": int(seed),
               "sigma_fraction": fraction if kernel == "rbf" else None}
    probe_sha256 = _probe_digest(probe)
    inputs_hash = hashlib.sha256(canonical_json({
        "format": _SIMILARITY_FORMAT, "options": options, "task_ids": list(ids),
        "checkpoint_sha256": [modules.networks[module] for module in ids], "probe_sha256": probe_sha256,
    }).encode()).hexdigest()
    # The .npz is written last of the set, so a matching .npz means the .csv and .json match too.
    cached = _cached_matrix(run.path("similarity", f"{estimator}.npz"), estimator=estimator, inputs_hash=inputs_hash)
    if cached is not None:
        return cached

    started = time.perf_counter()
    features = modules.features(positions)
    extracted = time.perf_counter()
    scores = cka_matrix(features, kernel=kernel, debiased=debiased, sigma_fraction=fraction)
    provenance: dict[str, Any] = {
        **options,
        "inputs_hash": inputs_hash,
        "probe_size": len(probe),
        "probe_sha256": probe_sha256,
        "probe_source": "test images of the classes of the run's targets",
        "probe_classes": list(modules.classes),
        "dataset": modules.dataset,
        "space_ids": list(ids),
        "representation": modules.representation,
        ("checkpoint_sha256" if run.kind == "trained" else "networks"): modules.networks,
        "left_out": list(modules.left_out),
        "run_identity": run.identity,
        "feature_seconds": extracted - started,
        "cka_seconds": time.perf_counter() - extracted,
        "taskspace_version": __version__,
        "numpy_version": np.__version__,
    }
    return TransferabilityMatrix(scores, ids, ids, estimator, True, provenance)


def write_similarity(run: Any, matrix: TransferabilityMatrix) -> Path:
    """Keep a similarity matrix in the run (``.csv``, ``.json``, ``.npz``); returns its folder."""
    folder = run.path("similarity")
    write_matrix_set(folder, [matrix], stem=matrix.estimator)
    return folder


def stored_similarity(run: Any, *, kernel: str = "linear", debiased: bool = False) -> TransferabilityMatrix | None:
    """The similarity matrix the run holds for these options, if its modules are the run's current ones
    (a trained run: its checkpoints, by SHA-256; a zoo run: its identity, which holds its files'); else
    None (compute it with ``taskspace similarity RUN``). Runs no forward pass."""
    estimator = cka_estimator_name(kernel, debiased=debiased)
    path = run.path("similarity", f"{estimator}.npz")
    if run.kind not in ("trained", "zoo") or not path.is_file():
        return None
    try:
        matrix = read_matrix_set(path).get(estimator)
    except (TaskspaceError, KeyError, ValueError):
        return None
    if matrix is None:
        return None
    if run.kind == "zoo":
        return matrix if matrix.provenance.get("run_identity") == run.identity else None
    if list(matrix.sources) != list(run.space.ids):
        return None
    recorded = matrix.provenance.get("checkpoint_sha256", {})
    for task_id in run.space.ids:
        checkpoint = run.checkpoint(task_id)
        if not checkpoint.is_file() or recorded.get(task_id) != sha256_of_file(checkpoint):
            return None
    return matrix


# Similarity versus transfer -----------------------------------------------------------------------------


def _column_ranks(scores: np.ndarray) -> np.ndarray:
    """Each column's off-diagonal entries ranked 1 .. m-1 (m-1 = best, ties averaged); diagonal NaN.

    Every column ranks the same number of sources, so scaling the ranks to [0, 1] would be one affine
    map for all columns and leave the Spearman correlation unchanged; the raw ranks (integers and
    halves) keep the sums of the symmetrisation exact, so equal sums stay tied.
    """
    count = scores.shape[0]
    ranks = np.full(scores.shape, np.nan)
    for column in range(count):
        rows = np.arange(count) != column
        ranks[rows, column] = stats.rankdata(scores[rows, column])
    return ranks


def _first_missing_pair(matrix: np.ndarray, ids: list[str]) -> tuple[str, str] | None:
    missing = ~np.isfinite(matrix)
    np.fill_diagonal(missing, False)
    if not missing.any():
        return None
    row, column = np.argwhere(missing)[0]
    return ids[row], ids[column]


def similarity_vs_transfer(
    similarity: TransferabilityMatrix,
    transfer_matrix: TransferabilityMatrix,
    *,
    permutations: int = 10000,
    seed: int = 0,
) -> dict[str, Any]:
    """Do similar modules transfer well to each other's tasks? Spearman ρ with a Mantel p-value.

    Over the tasks both matrices share, the transferability is made comparable across targets and
    symmetric: each target column is rank-normalised over its sources (the diagonal left out; 1 = best
    source, 0 = worst; scores where lower is better are negated first), then ``(R + R') / 2``. ρ is
    the Spearman correlation of the strict upper triangles of the similarity and of that matrix. The
    Mantel test (Mantel, Cancer Research 27(2), 1967) permutes the task labels of the similarity
    jointly on rows and columns; the p-value is one-sided (``alternative="greater"``):
    ``(1 + #{ρ_perm >= ρ}) / (1 + permutations)``.

    Args:
        similarity: a symmetric task x task similarity (sources = targets), e.g. from
            :func:`module_similarity`.
        transfer_matrix: source x target transferability (an estimator's scores or a ground truth).
        permutations: random permutations of the Mantel test (>= 1).
        seed: seed of the permutations.

    Returns:
        JSON-ready dict: ``spearman``, ``p_value``, ``alternative``, ``permutations``, ``seed``,
        ``tasks`` (the shared ids, in the similarity's order), ``pairs``, ``similarity`` and
        ``transfer`` (the two estimators' names). ``spearman`` and ``p_value`` are NaN when either
        side is constant over the pairs.

    Raises:
        DataError: the similarity is not square over one id list, fewer than 3 shared tasks, or a
            missing/NaN off-diagonal cell among them (named).
        ConfigError: ``permutations`` < 1.
    """
    if similarity.sources != similarity.targets:
        raise DataError(
            f"similarity '{similarity.estimator}' must have the same ids as rows and columns; "
            "pass a task x task matrix such as module_similarity's"
        )
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) or permutations < 1:
        raise ConfigError(f"permutations must be an integer of at least 1, got {permutations!r}; e.g. 10000")
    ids = [task for task in similarity.sources
           if task in transfer_matrix.sources and task in transfer_matrix.targets]
    if len(ids) < 3:
        raise DataError(
            f"similarity and transfer matrix share {len(ids)} task(s) ({', '.join(ids) or 'none'}), fewer than "
            "the 3 a correlation over task pairs needs; compare matrices of the same run"
        )
    similarity_positions = [similarity.sources.index(task) for task in ids]
    similarity_scores = similarity.scores[np.ix_(similarity_positions, similarity_positions)]
    transfer_scores = transfer_matrix.scores[
        np.ix_([transfer_matrix.sources.index(task) for task in ids],
               [transfer_matrix.targets.index(task) for task in ids])
    ]
    for name, matrix, scores in (("similarity", similarity, similarity_scores),
                                 ("transfer matrix", transfer_matrix, transfer_scores)):
        pair = _first_missing_pair(scores, ids)
        if pair is not None:
            raise DataError(
                f"{name} '{matrix.estimator}' has no finite value for {pair[0]} -> {pair[1]}; compute the "
                "missing cells or leave those tasks out"
            )
    if not transfer_matrix.greater_is_better:
        transfer_scores = -transfer_scores
    column_ranks = _column_ranks(transfer_scores)
    symmetric_transfer = (column_ranks + column_ranks.T) / 2.0

    upper_rows, upper_columns = np.triu_indices(len(ids), k=1)
    transfer_ranks = stats.rankdata(symmetric_transfer[upper_rows, upper_columns])
    similarity_ranks = stats.rankdata(similarity_scores[upper_rows, upper_columns])
    # Spearman ρ = Pearson correlation of the ranks. A joint relabelling of the tasks only reorders the
    # similarity's pairs, so its ranks are permuted, never recomputed, and the norms stay the same.
    transfer_centred = transfer_ranks - transfer_ranks.mean()
    similarity_centred = similarity_ranks - similarity_ranks.mean()
    denominator = float(np.linalg.norm(transfer_centred) * np.linalg.norm(similarity_centred))
    result: dict[str, Any] = {
        "alternative": "greater",
        "permutations": int(permutations),
        "seed": int(seed),
        "tasks": ids,
        "pairs": int(len(upper_rows)),
        "similarity": similarity.estimator,
        "transfer": transfer_matrix.estimator,
    }
    if denominator == 0.0:
        return {**result, "spearman": float("nan"), "p_value": float("nan")}
    observed = float(similarity_centred @ transfer_centred) / denominator

    rank_matrix = np.zeros((len(ids), len(ids)))
    rank_matrix[upper_rows, upper_columns] = similarity_centred
    rank_matrix += rank_matrix.T
    rng = np.random.default_rng(derive_seed(seed, "mantel"))
    at_least_observed = 0
    for start in range(0, permutations, _PERMUTATION_BATCH):
        batch = min(_PERMUTATION_BATCH, permutations - start)
        relabelled = np.argsort(rng.random((batch, len(ids))), axis=1)
        permuted = rank_matrix[relabelled[:, upper_rows], relabelled[:, upper_columns]]
        correlations = permuted @ transfer_centred / denominator
        # The tolerance counts permutations that reproduce the observed ρ up to rounding as ties.
        at_least_observed += int(np.count_nonzero(correlations >= observed - 1e-12))
    return {**result, "spearman": observed, "p_value": (1 + at_least_observed) / (1 + permutations)}
