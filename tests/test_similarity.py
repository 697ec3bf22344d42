"""CKA: feature-space formulas against n x n references, invariances, errors; zoo similarity on digits."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy import stats

import taskspace.similarity.cka as cka_module
from taskspace.errors import ConfigError, DataError, TaskspaceError
from taskspace.matrix import TransferabilityMatrix, read_matrix_set
from taskspace.runner import GridConfig, Run
from taskspace.similarity import (
    cka_estimator_name,
    cka_matrix,
    linear_cka,
    module_similarity,
    rbf_cka,
    similarity_vs_transfer,
    stored_similarity,
    write_similarity,
)

# References: the n x n formulas, written as plainly as possible -----------------------------------------


def _centring(n: int) -> np.ndarray:
    return np.eye(n) - np.ones((n, n)) / n


def _biased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    h = _centring(k.shape[0])
    return float(np.trace(k @ h @ l @ h))


def _unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (JMLR 2012), eq. 5, with the diagonals zeroed."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones = np.ones(n)
    return float(
        (np.trace(k @ l) + (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
         - 2.0 / (n - 2) * (ones @ k @ l @ ones)) / (n * (n - 3))
    )


def _reference_cka(k: np.ndarray, l: np.ndarray, *, debiased: bool) -> float:
    hsic = _unbiased_hsic if debiased else _biased_hsic
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _kornblith_unbiased_cka(k: np.ndarray, l: np.ndarray) -> float:
    """Kornblith et al.'s own form: unbiased centring of the Gram matrices (``center_gram(unbiased=True)``)."""
    def centre(gram: np.ndarray) -> np.ndarray:
        gram = gram.copy()
        n = gram.shape[0]
        np.fill_diagonal(gram, 0.0)
        means = gram.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0.0)
        return gram

    kc, lc = centre(k), centre(l)
    return float(np.vdot(kc, lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


def _reference_rbf_gram(x: np.ndarray, sigma_fraction: float) -> np.ndarray:
    distances = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1))
    median = np.median(distances[np.triu_indices(len(x), k=1)])
    return np.exp(-(distances**2) / (2.0 * (sigma_fraction * median) ** 2))


def _related_pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two dependent representations of different widths, neither centred."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 7)) + 3.0
    y = np.tanh(x @ rng.normal(size=(7, 5))) + 0.5 * rng.normal(size=(n, 5)) - 2.0
    return x, y


def _random_rotation(dimension: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dimension, dimension)))
    return q


ESTIMATORS = {
    "linear": lambda x, y: linear_cka(x, y),
    "linear_debiased": lambda x, y: linear_cka(x, y, debiased=True),
    "rbf": lambda x, y: rbf_cka(x, y),
    "rbf_debiased": lambda x, y: rbf_cka(x, y, debiased=True),
}


# Linear CKA in feature space == the n x n definition ------------------------------------------------------


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("n", [4, 5, 37, 120])
def test_linear_cka_in_feature_space_equals_the_n_by_n_reference(n, debiased):
    x, y = _related_pair(n, seed=n)
    expected = _reference_cka(x @ x.T, y @ y.T, debiased=debiased)
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(expected, abs=1e-10, rel=1e-10)


def test_debiased_linear_cka_equals_kornbliths_unbiased_centring():
    x, y = _related_pair(80, seed=3)
    assert linear_cka(x, y, debiased=True) == pytest.approx(
        _kornblith_unbiased_cka(x @ x.T, y @ y.T), abs=1e-10
    )


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_equals_the_n_by_n_reference(debiased):
    x, y = _related_pair(60, seed=5)
    expected = _reference_cka(_reference_rbf_gram(x, 0.8), _reference_rbf_gram(y, 0.8), debiased=debiased)
    assert rbf_cka(x, y, debiased=debiased) == pytest.approx(expected, abs=1e-10)
    if debiased:
        assert rbf_cka(x, y, debiased=True) == pytest.approx(
            _kornblith_unbiased_cka(_reference_rbf_gram(x, 0.8), _reference_rbf_gram(y, 0.8)), abs=1e-10
        )


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_with_a_wide_bandwidth_tends_to_linear_cka(debiased):
    # exp(-d²/2σ²) ≈ 1 - d²/2σ², and the centred squared distances are twice the linear kernel.
    x, y = _related_pair(300, seed=7)
    assert rbf_cka(x, y, sigma_fraction=100.0, debiased=debiased) == pytest.approx(
        linear_cka(x, y, debiased=debiased), abs=1e-4
    )


# Properties --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ESTIMATORS)
def test_cka_is_invariant_to_rotation_isotropic_scaling_and_shift(name):
    estimator = ESTIMATORS[name]
    x, y = _related_pair(90, seed=11)
    reference = estimator(x, y)
    transformed = 3.7 * x @ _random_rotation(x.shape[1], seed=1) + 5.0
    assert estimator(transformed, y) == pytest.approx(reference, abs=1e-10)
    assert estimator(x, 0.01 * y @ _random_rotation(y.shape[1], seed=2)) == pytest.approx(reference, abs=1e-10)
    assert estimator(y, x) == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_cka_of_a_representation_with_itself_is_one(name):
    x, _ = _related_pair(50, seed=13)
    assert ESTIMATORS[name](x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_not_invariant_to_anisotropic_scaling():
    x, y = _related_pair(90, seed=17)
    stretched = x * np.array([10.0, 1, 1, 1, 1, 1, 0.1])
    assert abs(linear_cka(stretched, y) - linear_cka(x, y)) > 1e-3


def test_independent_representations_debiased_near_zero_biased_not():
    rng = np.random.default_rng(19)
    x, y = rng.normal(size=(5000, 10)), rng.normal(size=(5000, 10))
    assert abs(linear_cka(x, y, debiased=True)) < 0.005
    small_x, small_y = rng.normal(size=(200, 50)), rng.normal(size=(200, 50))
    assert abs(linear_cka(small_x, small_y, debiased=True)) < 0.02
    assert abs(rbf_cka(small_x, small_y, debiased=True)) < 0.02
    # The biased estimator's known flaw at n ~ d: unrelated features look similar.
    assert linear_cka(small_x, small_y) > 0.1


@pytest.mark.parametrize("name", ESTIMATORS)
def test_biased_values_lie_in_the_unit_interval(name):
    rng = np.random.default_rng(23)
    for _ in range(5):
        x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 6))
        value = ESTIMATORS[name](x, y)
        if "debiased" not in name:
            assert 0.0 <= value <= 1.0
        else:
            assert -1.0 <= value <= 1.0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_zero_variance_representation_gives_nan(name):
    x, _ = _related_pair(30, seed=29)
    assert np.isnan(ESTIMATORS[name](x, np.zeros((30, 4))))
    assert np.isnan(ESTIMATORS[name](np.full((30, 3), 0.3), x))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matrix_matches_pairwise_calls_bit_for_bit(kernel, debiased):
    x, y = _related_pair(70, seed=31)
    z = np.random.default_rng(31).normal(size=(70, 3))
    dead = np.zeros((70, 5))
    matrix = cka_matrix([x, y, z, dead], kernel=kernel, debiased=debiased)
    pairwise = linear_cka if kernel == "linear" else rbf_cka
    assert matrix.shape == (4, 4)
    assert np.array_equal(matrix, matrix.T, equal_nan=True)
    assert np.array_equal(np.diag(matrix)[:3], np.ones(3))
    assert np.isnan(matrix[3]).all() and np.isnan(matrix[:, 3]).all()
    for i, first in enumerate((x, y, z)):
        for j, second in enumerate((x, y, z)):
            if i < j:
                assert matrix[i, j] == pairwise(first, second, debiased=debiased)
            elif i > j:  # the transposed product rounds differently
                assert matrix[i, j] == pytest.approx(pairwise(first, second, debiased=debiased), abs=1e-14)


def test_cka_matrix_recomputes_rbf_kernels_beyond_its_memory_budget(monkeypatch):
    x, y = _related_pair(40, seed=37)
    kept = cka_matrix([x, y, x + 1.0], kernel="rbf")
    monkeypatch.setattr(cka_module, "_RBF_CACHE_BYTES", 0)
    assert np.array_equal(cka_matrix([x, y, x + 1.0], kernel="rbf"), kept)


# Errors: one line naming the problem and the fix -------------------------------------------------------


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("x", "y", "debiased", "match"),
    [
        (np.ones((10, 3)), np.ones((9, 3)), False, "same inputs"),
        (np.array([[0.0, np.nan], [1, 2], [3, 4]]), np.ones((3, 2)), False, "non-finite value nan in row 0"),
        (np.ones((3, 2)), np.array([[0.0, 1], [1, np.inf], [3, 4]]), False, "non-finite value inf in row 1"),
        (np.ones((1, 3)), np.ones((1, 3)), False, "at least 2 inputs"),
        (np.ones((3, 3)), np.ones((3, 3)), True, "at least 4 inputs"),
        (np.ones(10), np.ones((10, 2)), False, "2-D"),
        (np.ones((10, 0)), np.ones((10, 2)), False, "no features"),
        (np.array([["a", "b"]] * 5), np.ones((5, 2)), False, "numeric"),
    ],
)
def test_invalid_inputs_raise_one_line_data_errors(x, y, debiased, match):
    for estimator in (linear_cka, rbf_cka):
        with pytest.raises(DataError, match=match) as error:
            estimator(x, y, debiased=debiased)
        _one_line(error)


def test_rbf_refuses_more_inputs_than_its_limit(monkeypatch):
    monkeypatch.setattr(cka_module, "RBF_MAX_SAMPLES", 10)
    x = np.random.default_rng(0).normal(size=(11, 2))
    with pytest.raises(DataError, match="at most 10 inputs, got n=11; subsample") as error:
        rbf_cka(x, x)
    _one_line(error)
    assert np.isfinite(linear_cka(x, x))  # the feature-space form has no such limit


def test_rbf_refuses_a_zero_median_distance():
    x = np.zeros((10, 2))
    x[:2] = [[1.0, 0.0], [0.0, 1.0]]  # 8 identical rows: most pairs are at distance 0
    with pytest.raises(DataError, match="median distance") as error:
        rbf_cka(x, np.random.default_rng(0).normal(size=(10, 2)))
    _one_line(error)


def test_bad_options_raise_config_errors():
    x, y = _related_pair(20, seed=41)
    with pytest.raises(ConfigError, match="did you mean 'linear'"):
        cka_matrix([x, y], kernel="lineer")
    for fraction in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="sigma_fraction"):
            rbf_cka(x, y, sigma_fraction=fraction)
    with pytest.raises(ConfigError, match="at least one representation"):
        cka_matrix([])
    with pytest.raises(DataError, match=r"representations\[2\] has 19"):
        cka_matrix([x, y, y[:19]])


# Similarity versus transfer -----------------------------------------------------------------------------


def _task_ids(count: int) -> tuple[str, ...]:
    return tuple(f"t{index}" for index in range(count))


def _transfer_and_similarity(count: int, seed: int) -> tuple[TransferabilityMatrix, TransferabilityMatrix]:
    """A random transfer matrix and a similarity that is a monotone function of its symmetrised ranks."""
    rng = np.random.default_rng(seed)
    ids = _task_ids(count)
    transfer = TransferabilityMatrix(rng.uniform(0.5, 1.0, size=(count, count)), ids, ids, "frozen_all")
    ranks = np.full((count, count), np.nan)
    for column in range(count):
        rows = np.arange(count) != column
        ranks[rows, column] = stats.rankdata(transfer.scores[rows, column])
    symmetric = (ranks + ranks.T) / 2
    np.fill_diagonal(symmetric, count)
    similarity = TransferabilityMatrix(np.tanh(symmetric / count), ids, ids, "cka_linear")
    return transfer, similarity


def test_similarity_vs_transfer_finds_a_monotone_link():
    transfer, similarity = _transfer_and_similarity(7, seed=0)
    result = similarity_vs_transfer(similarity, transfer, permutations=2000, seed=0)
    assert result["spearman"] == pytest.approx(1.0)
    assert result["p_value"] < 0.01
    assert result["pairs"] == 21 and result["tasks"] == list(_task_ids(7))
    assert (result["similarity"], result["transfer"], result["alternative"]) == ("cka_linear", "frozen_all", "greater")


def test_similarity_vs_transfer_agrees_with_scipy_and_is_deterministic():
    rng = np.random.default_rng(1)
    ids = _task_ids(6)
    transfer = TransferabilityMatrix(rng.normal(size=(6, 6)), ids, ids, "logme")
    raw = rng.uniform(size=(6, 6))
    similarity = TransferabilityMatrix((raw + raw.T) / 2, ids, ids, "cka_linear")
    result = similarity_vs_transfer(similarity, transfer, permutations=500, seed=3)
    ranks = np.full((6, 6), np.nan)
    for column in range(6):
        rows = np.arange(6) != column
        ranks[rows, column] = (stats.rankdata(transfer.scores[rows, column]) - 1) / 4
    upper = np.triu_indices(6, k=1)
    expected = stats.spearmanr(similarity.scores[upper], ((ranks + ranks.T) / 2)[upper]).statistic
    assert result["spearman"] == pytest.approx(expected, abs=1e-12)
    assert 0.0 < result["p_value"] <= 1.0
    assert similarity_vs_transfer(similarity, transfer, permutations=500, seed=3) == result
    # lower-is-better scores are turned around before ranking
    flipped = TransferabilityMatrix(-transfer.scores, ids, ids, "logme", greater_is_better=False)
    assert similarity_vs_transfer(similarity, flipped, permutations=500, seed=3)["spearman"] == result["spearman"]


def test_similarity_vs_transfer_errors():
    transfer, similarity = _transfer_and_similarity(4, seed=2)
    with pytest.raises(ConfigError, match="permutations"):
        similarity_vs_transfer(similarity, transfer, permutations=0)
    two = TransferabilityMatrix(transfer.scores[:2, :2], transfer.sources[:2], transfer.targets[:2], "frozen_all")
    with pytest.raises(DataError, match="share 2 task"):
        similarity_vs_transfer(similarity, two)
    holed = transfer.scores.copy()
    holed[1, 2] = np.nan
    with pytest.raises(DataError, match="t1 -> t2") as error:
        similarity_vs_transfer(similarity, TransferabilityMatrix(holed, transfer.sources, transfer.targets, "x"))
    _one_line(error)
    rectangular = TransferabilityMatrix(transfer.scores[:, :3], transfer.sources, transfer.targets[:3], "cka")
    with pytest.raises(DataError, match="same ids as rows and columns"):
        similarity_vs_transfer(rectangular, transfer)


# The zoo on the embedded digits ---------------------------------------------------------------------------

SPACE = """dataset = "digits"
pairs = [["3", "8"], ["1", "7"], ["0", "6"], ["5", "9"]]
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A digits run with its four-module zoo trained (one epoch each: a few seconds)."""
    folder = tmp_path_factory.mktemp("similarity-zoo")
    space_file = folder / "space.toml"
    space_file.write_text(SPACE)
    run = Run.create(folder / "run", GridConfig(space=str(space_file), train={"epochs": 1, "seed": 0}))
    run.train_zoo()
    return run.folder


@pytest.fixture()
def run(trained_run, tmp_path):
    """A private copy of the trained run, reopened from its folder."""
    shutil.copytree(trained_run, tmp_path / "run")
    return Run.open(tmp_path / "run")


def _digits_test_images_of_space(context) -> int:
    dataset = context.dataset()
    codes = [dataset.class_names.index(name) for name in context.space.classes]
    return int(np.isin(dataset.test.labels, codes).sum())


def test_module_similarity_on_digits(run):
    similarity = module_similarity(run, samples=150)
    ids = run.space.ids
    assert len(ids) == 4 and similarity.sources == ids and similarity.targets == ids
    assert similarity.estimator == "cka_linear" and similarity.greater_is_better
    assert np.array_equal(similarity.scores, similarity.scores.T)
    assert np.array_equal(np.diag(similarity.scores), np.ones(len(ids)))
    assert ((similarity.scores >= 0.0) & (similarity.scores <= 1.0)).all()
    assert similarity.provenance["probe_size"] == 150 and similarity.provenance["seed"] == 0
    assert not (run.folder / "similarity").exists()  # computed, not written
    folder = write_similarity(run, similarity)
    assert {path.name for path in folder.iterdir()} == {"cka_linear.csv", "cka_linear.json", "cka_linear.npz"}
    assert stored_similarity(run).equals(similarity)
    for name in ("cka_linear.json", "cka_linear.npz"):
        assert read_matrix_set(folder / name)["cka_linear"].equals(similarity)


def test_module_similarity_is_deterministic(run):
    first = module_similarity(run, samples=150, seed=5)
    shutil.rmtree(run.folder / "features")
    second = module_similarity(run, samples=150, seed=5)
    assert second.equals(first)
    assert second.provenance["inputs_hash"] == first.provenance["inputs_hash"]
    other_draw = module_similarity(run, samples=150, seed=6)
    assert other_draw.provenance["probe_sha256"] != first.provenance["probe_sha256"]
    assert not np.array_equal(other_draw.scores, first.scores)


def test_module_similarity_reuses_its_cache(run, monkeypatch):
    first = module_similarity(run, samples=150)
    write_similarity(run, first)
    stamps = {path.name: path.stat().st_mtime_ns for path in (run.folder / "similarity").iterdir()}

    def no_forward_passes(*args, **kwargs):
        raise AssertionError("the cached similarity should have been reused")

    monkeypatch.setattr("taskspace.runner.extraction.store_rows", no_forward_passes)  # reads of the run's store
    again = module_similarity(run, samples=150)
    assert again.equals(first)
    assert {path.name: path.stat().st_mtime_ns for path in (run.folder / "similarity").iterdir()} == stamps
    # other inputs are not served from the cache
    with pytest.raises(AssertionError, match="reused"):
        module_similarity(run, samples=150, seed=1)
    with pytest.raises(AssertionError, match="reused"):
        module_similarity(run, samples=149)


def test_module_similarity_recomputes_when_a_module_changes(run):
    first = module_similarity(run, samples=150)
    write_similarity(run, first)
    first_task, second_task = run.space.ids[:2]
    shutil.copyfile(run.checkpoint(second_task), run.checkpoint(first_task))  # now the same module twice
    second = module_similarity(run, samples=150)
    assert second.provenance["inputs_hash"] != first.provenance["inputs_hash"]
    assert second.score(first_task, second_task) == pytest.approx(1.0, abs=1e-12)
    assert first.score(first_task, second_task) < 1.0 - 1e-6
    assert stored_similarity(run) is None  # what the run holds is of other modules


def test_module_similarity_kernels_and_full_probe(run):
    everything = _digits_test_images_of_space(run)
    for kernel, debiased in (("linear", True), ("rbf", False), ("rbf", True)):
        similarity = module_similarity(run, samples=100_000, kernel=kernel, debiased=debiased)
        write_similarity(run, similarity)
        assert similarity.estimator == cka_estimator_name(kernel, debiased=debiased)
        assert similarity.provenance["probe_size"] == everything
        assert np.isfinite(similarity.scores).all()
        assert np.array_equal(np.diag(similarity.scores), np.ones(len(run.space.ids)))
    assert {path.stem for path in (run.folder / "similarity").glob("*.json")} == {
        "cka_linear_debiased", "cka_rbf", "cka_rbf_debiased"
    }


def test_module_similarity_feeds_similarity_vs_transfer(run):
    similarity = module_similarity(run, samples=150)
    ids = run.space.ids
    truth = TransferabilityMatrix(np.random.default_rng(0).uniform(size=(4, 4)), ids, ids, "frozen_all")
    result = similarity_vs_transfer(similarity, truth, permutations=200)
    assert result["tasks"] == list(ids) and result["pairs"] == 6
    assert (result["similarity"], result["transfer"]) == ("cka_linear", "frozen_all")
    assert -1.0 <= result["spearman"] <= 1.0 and 0.0 < result["p_value"] <= 1.0
    assert similarity_vs_transfer(similarity, truth, permutations=200) == result


def test_module_similarity_errors(run):
    with pytest.raises(ConfigError, match="did you mean 'rbf'"):
        module_similarity(run, kernel="rbg")
    with pytest.raises(ConfigError, match="samples must be an integer of at least 4"):
        module_similarity(run, samples=3)
    missing = run.space.ids[-1]
    run.checkpoint(missing).unlink()
    with pytest.raises(TaskspaceError, match=f"module '{missing}' is not trained") as error:
        module_similarity(run)
    _one_line(error)
