"""Pairwise objectives: a contract over the registry, hand-computed values, identities, edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from taskspace.errors import ConfigError
from taskspace.kernels import get_kernel
from taskspace.objectives import OBJECTIVES, get_objective, ideal_kernel, list_objectives

# Documented value ranges for kernels with values in [k_min, k_max] = [0, 1].
RANGES = {
    "alignment": (0.0, 1.0),
    "upper_tri_alignment": (0.0, 1.0),
    "raw": (-1.0, 1.0),
    "nmse": (-1.0, 0.0),
    "contrastive": (0.0, 1.0),
    "log_contrastive": (-math.inf, 0.0),
    "negative_raw": (-1.0, 0.0),
    "negative_nmse": (-1.0, 0.0),
    "supervised_contrastive": (-math.inf, 0.0),
}

# A hand-written gram for labels (0, 0, 1); with k_min = 0, k_max = 1 the ideal kernel is
#   G* = [[1, 1, 0], [1, 1, 0], [0, 0, 1]].
HAND_GRAM = [[1.0, 0.5, 0.2], [0.5, 1.0, 0.1], [0.2, 0.1, 1.0]]
HAND_LABELS = [0, 0, 1]
E5, E2, E1 = math.exp(0.5), math.exp(0.2), math.exp(0.1)
HAND_EXPECTED = {
    # <G, G*> = 1 + .5 + .5 + 1 + 1 = 4; ||G||^2 = 3 + 2 (.25 + .04 + .01) = 3.6; ||G*||^2 = 5
    # -> 4 / sqrt(18) = 0.9428090415820634
    "alignment": 0.9428090415820634,
    # upper triangles: G (.5, .2, .1), G* (1, 0, 0) -> .5 / sqrt(.3) = 0.9128709291752769
    "upper_tri_alignment": 0.9128709291752769,
    # same i!=j: 2 * .5 = 1; different: 2 * (.2 + .1) = .6; (1 - .6) / (3 * 2) = 0.0666...
    "raw": 0.4 / 6,
    # squared errors: diagonal 0, 2 * .25 + 2 * .04 + 2 * .01 = .6; -.6 / 9 = -0.0666...
    "nmse": -0.6 / 9,
    # 2 e^.5 / (2 e^.5 + 2 e^.2 + 2 e^.1) = 1.6487213 / 3.9752949 = 0.4147419
    "contrastive": E5 / (E5 + E2 + E1),
    # log(0.4147419) = -0.8800990
    "log_contrastive": math.log(E5 / (E5 + E2 + E1)),
    # different pairs .2, .2, .1, .1 -> -(.6 / 4) = -0.15
    "negative_raw": -0.15,
    # (.04 + .04 + .01 + .01) / 4 = .025 -> -0.025
    "negative_nmse": -0.025,
    # temperature .1; anchor 2 has no partner. Anchor 0: 5 - log(e^5 + e^2); anchor 1: 5 - log(e^5 + e^1)
    # -> -(log(1 + e^-3) + log(1 + e^-4)) / 2 = -0.0340457
    "supervised_contrastive": -(math.log1p(math.exp(-3)) + math.log1p(math.exp(-4))) / 2,
}


def test_registry_lists_the_documented_objectives() -> None:
    assert list_objectives() == sorted(HAND_EXPECTED)
    assert list(OBJECTIVES) == list_objectives()


def _random_batch(
    seed: int, n: int = 12, classes: int = 3, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 8, generator=generator, dtype=dtype)
    labels = torch.arange(n) % classes
    return features, labels


# --- contract over every registered objective ----------------------------------------------------


@pytest.mark.parametrize("name", list_objectives())
@pytest.mark.parametrize("kernel_name", ["cosine_relu", "cosine_tanh", "gaussian"])
def test_contract(name: str, kernel_name: str) -> None:
    objective = get_objective(name)
    kernel = get_kernel(kernel_name)
    features, labels = _random_batch(0)
    features.requires_grad_(True)
    gram = kernel(features)
    gram.retain_grad()
    value = objective(gram, labels, k_min=kernel.k_min, k_max=kernel.k_max)
    assert value.ndim == 0
    assert value.dtype == gram.dtype
    assert torch.isfinite(value)
    value.backward()
    assert gram.grad is not None and torch.isfinite(gram.grad).all()
    assert gram.grad.abs().sum() > 0
    assert torch.isfinite(features.grad).all()
    if kernel.k_min == 0.0:
        low, high = RANGES[name]
        assert low - 1e-6 <= value.item() <= high + 1e-6


@pytest.mark.parametrize("name", list_objectives())
def test_default_k_is_relu(name: str) -> None:
    gram = torch.tensor(HAND_GRAM)
    labels = torch.tensor(HAND_LABELS)
    objective = get_objective(name)
    assert objective(gram, labels).item() == objective(gram, labels, k_min=0.0, k_max=1.0).item()


@pytest.mark.parametrize("name", list_objectives())
def test_labels_on_any_integer_dtype(name: str) -> None:
    gram = torch.tensor(HAND_GRAM)
    expected = get_objective(name)(gram, torch.tensor(HAND_LABELS))
    for dtype in (torch.int32, torch.uint8):
        labels = torch.tensor(HAND_LABELS, dtype=dtype)
        torch.testing.assert_close(get_objective(name)(gram, labels), expected)


# --- hand-computed values ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_objectives())
def test_hand_computed(name: str) -> None:
    gram = torch.tensor(HAND_GRAM, dtype=torch.float64)
    value = get_objective(name)(gram, torch.tensor(HAND_LABELS), k_min=0.0, k_max=1.0)
    assert value.item() == pytest.approx(HAND_EXPECTED[name], rel=1e-12, abs=1e-15)


def test_hand_computed_with_tanh_targets() -> None:
    gram = torch.tensor(HAND_GRAM, dtype=torch.float64)
    labels = torch.tensor(HAND_LABELS)
    # G* = [[1, 1, -1], [1, 1, -1], [-1, -1, 1]]; different pairs (G + 1)^2: 1.44, 1.44, 1.21, 1.21
    # -> -(5.3 / 4) = -1.325
    value = get_objective("negative_nmse")(gram, labels, k_min=-1.0, k_max=1.0)
    assert value.item() == pytest.approx(-1.325)
    # nmse: same-pair errors 2 * .25, different-pair errors 5.3 -> -(5.8 / 9)
    value = get_objective("nmse")(gram, labels, k_min=-1.0, k_max=1.0)
    assert value.item() == pytest.approx(-5.8 / 9)
    # <G, G*> = 4 - 2 (.2 + .1) = 3.4; ||G*||^2 = 9 -> 3.4 / sqrt(3.6 * 9) = 3.4 / 5.692099788
    value = get_objective("alignment")(gram, labels, k_min=-1.0, k_max=1.0)
    assert value.item() == pytest.approx(3.4 / math.sqrt(32.4))
    # upper triangles: G (.5, .2, .1), G* (1, -1, -1): (.5 - .3) / (sqrt(.3) sqrt(3))
    value = get_objective("upper_tri_alignment")(gram, labels, k_min=-1.0, k_max=1.0)
    assert value.item() == pytest.approx(0.2 / math.sqrt(0.9))


def test_ideal_kernel() -> None:
    labels = torch.tensor([2, 0, 2])
    expected = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])
    assert torch.equal(ideal_kernel(labels, k_min=-1.0, k_max=1.0), expected)
    assert ideal_kernel(labels, k_min=0.0, k_max=1.0, dtype=torch.float64).dtype == torch.float64


# --- identities ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alignment", "upper_tri_alignment"])
@pytest.mark.parametrize("k_min", [0.0, -1.0])
def test_alignment_is_one_at_the_ideal_kernel(name: str, k_min: float) -> None:
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 2])
    target = ideal_kernel(labels, k_min=k_min, k_max=1.0, dtype=torch.float64)
    assert get_objective(name)(target, labels, k_min=k_min).item() == pytest.approx(1.0, abs=1e-12)
    # and invariant to a positive scale
    assert get_objective(name)(3.0 * target, labels, k_min=k_min).item() == pytest.approx(1.0, abs=1e-12)
    features, _ = _random_batch(1, n=7)
    assert get_objective(name)(get_kernel("cosine_relu")(features.double()), labels).item() < 1.0


def test_upper_tri_alignment_matches_a_double_loop() -> None:
    generator = torch.Generator().manual_seed(3)
    n = 9
    gram = torch.rand(n, n, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=generator)
    for k_min in (0.0, -1.0):
        numerator = gram_squares = target_squares = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                target = 1.0 if labels[i] == labels[j] else k_min
                numerator += gram[i, j].item() * target
                gram_squares += gram[i, j].item() ** 2
                target_squares += target**2
        expected = numerator / math.sqrt(gram_squares * target_squares)
        value = get_objective("upper_tri_alignment")(gram, labels, k_min=k_min, k_max=1.0)
        assert value.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kernel_name", ["cosine_relu", "cosine_tanh"])
def test_closed_form_of_method_section_5(kernel_name: str) -> None:
    # With unit-norm features Phi: sum_ij G_ij G*_ij = sum_c ||s_c||^2 (k_min = 0), ||G||_F^2 =
    # ||Phi^T Phi||_F^2, and the diagonal adds exactly n to both (strict upper triangle: (. - n) / 2).
    kernel = get_kernel(kernel_name)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(40, 6, 3, 3, generator=generator, dtype=torch.float64) + 0.3
    labels = torch.randint(0, 4, (40,), generator=generator)
    phi = kernel.feature_map(x)
    n = phi.shape[0]
    class_sums = torch.zeros(4, phi.shape[1], dtype=torch.float64).index_add_(0, labels, phi)
    counts = torch.bincount(labels, minlength=4).double()
    same_sum = class_sums.pow(2).sum()  # sum_c ||s_c||^2
    gram_sq = (phi.T @ phi).pow(2).sum()  # ||Phi^T Phi||_F^2

    if kernel.k_min == 0.0:
        inner, target_sq = same_sum, counts.pow(2).sum()
    else:
        # G* = 2 [same] - 1: <G, G*> = 2 sum_c ||s_c||^2 - ||sum_i phi_i||^2 and ||G*||^2 = n^2.
        inner = 2 * same_sum - phi.sum(dim=0).pow(2).sum()
        target_sq = torch.tensor(float(n * n), dtype=torch.float64)
    full = inner / (gram_sq.sqrt() * target_sq.sqrt())
    upper = ((inner - n) / 2) / (((gram_sq - n) / 2).sqrt() * ((target_sq - n) / 2).sqrt())

    gram = kernel(x)
    k = {"k_min": kernel.k_min, "k_max": kernel.k_max}
    assert get_objective("alignment")(gram, labels, **k).item() == pytest.approx(full.item(), rel=1e-10)
    assert get_objective("upper_tri_alignment")(gram, labels, **k).item() == pytest.approx(
        upper.item(), rel=1e-10
    )


def test_log_contrastive_is_the_log_of_contrastive() -> None:
    features, labels = _random_batch(5, dtype=torch.float64)
    gram = get_kernel("cosine_relu")(features) * 7.0
    contrastive = get_objective("contrastive")(gram, labels)
    log_contrastive = get_objective("log_contrastive")(gram, labels)
    assert log_contrastive.item() == pytest.approx(math.log(contrastive.item()), rel=1e-12)


def test_contrastive_does_not_overflow() -> None:
    gram = torch.tensor([[0.0, 500.0, 1.0], [500.0, 1e4, 2.0], [1.0, 2.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    value = get_objective("contrastive")(gram, labels)
    assert value.item() == pytest.approx(1.0)
    value.backward()
    assert torch.isfinite(gram.grad).all()
    assert torch.isfinite(get_objective("log_contrastive")(gram.detach(), labels))


# --- edge cases -----------------------------------------------------------------------------------


def _value_and_grad(
    name: str, gram: torch.Tensor, labels: torch.Tensor, **k: float
) -> tuple[torch.Tensor, torch.Tensor]:
    gram = gram.clone().requires_grad_(True)
    value = get_objective(name)(gram, labels, **k)
    value.backward()
    return value, gram.grad


@pytest.mark.parametrize("name", list_objectives())
@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_samples_raise(name: str, n: int) -> None:
    with pytest.raises(ValueError, match="at least one pair"):
        get_objective(name)(torch.ones(n, n), torch.zeros(n, dtype=torch.long))


ONE_CLASS_GRAM = [[1.0, 0.4, 0.6], [0.4, 1.0, 0.2], [0.6, 0.2, 1.0]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # G* = all ones: <G, G*> = 3 + 2 (.4 + .6 + .2) = 5.4; ||G||^2 = 3 + 2 (.16 + .36 + .04) = 4.12;
        # ||G*||^2 = 9 -> 5.4 / sqrt(37.08)
        ("alignment", 5.4 / math.sqrt(37.08)),
        # upper: (.4, .6, .2) . (1, 1, 1) / (sqrt(.56) sqrt(3)) = 1.2 / sqrt(1.68)
        ("upper_tri_alignment", 1.2 / math.sqrt(1.68)),
        # mean of the off-diagonal entries: 2 (.4 + .6 + .2) / 6 = 0.4
        ("raw", 0.4),
        # squared errors: .36 + .16 + .64 twice = 2.32; -2.32 / 9
        ("nmse", -2.32 / 9),
        ("contrastive", 1.0),
        ("log_contrastive", 0.0),
        ("negative_raw", 0.0),
        ("negative_nmse", 0.0),
        # every off-diagonal pair is a partner; temperature .1:
        # anchors (5 - log(e^4 + e^6)), (3 - log(e^4 + e^2)), (4 - log(e^6 + e^2)), averaged
        (
            "supervised_contrastive",
            (5 - math.log(math.exp(4) + math.exp(6)) + 3 - math.log(math.exp(4) + math.exp(2))
             + 4 - math.log(math.exp(6) + math.exp(2))) / 3,
        ),
    ],
)
def test_one_class_only(name: str, expected: float) -> None:
    gram = torch.tensor(ONE_CLASS_GRAM, dtype=torch.float64)
    value, grad = _value_and_grad(name, gram, torch.tensor([4, 4, 4]))
    assert value.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert torch.isfinite(grad).all()
    if name.startswith("negative_"):
        assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # G* = identity (k_min = 0): <G, G*> = 3; ||G||^2 = 4.12; ||G*||^2 = 3 -> 3 / sqrt(12.36)
        ("alignment", 3.0 / math.sqrt(12.36)),
        ("upper_tri_alignment", 0.0),  # 0 / 0, defined as 0
        # no same pair: -2 (.4 + .6 + .2) / 6 = -0.4
        ("raw", -0.4),
        # off-diagonal squared errors 2 (.16 + .36 + .04) = 1.12 -> -1.12 / 9
        ("nmse", -1.12 / 9),
        ("contrastive", 0.0),
        ("negative_raw", -0.4),
        # 2 (.16 + .36 + .04) / 6 = 0.186666...
        ("negative_nmse", -1.12 / 6),
        ("supervised_contrastive", 0.0),
    ],
)
def test_no_same_class_pair(name: str, expected: float) -> None:
    gram = torch.tensor(ONE_CLASS_GRAM, dtype=torch.float64)
    value, grad = _value_and_grad(name, gram, torch.tensor([0, 1, 2]))
    assert value.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert torch.isfinite(grad).all()
    if name in ("upper_tri_alignment", "contrastive", "supervised_contrastive"):
        assert torch.equal(grad, torch.zeros_like(grad))


def test_no_same_class_pair_with_tanh_targets_is_defined() -> None:
    # k_min = -1: the target triangle is all -1, so the upper-triangle alignment is a real cosine.
    value = get_objective("upper_tri_alignment")(
        torch.tensor(ONE_CLASS_GRAM), torch.tensor([0, 1, 2]), k_min=-1.0, k_max=1.0
    )
    # (.4, .6, .2) . (-1, -1, -1) / (sqrt(.56) sqrt(3)) = -1.2 / sqrt(1.68)
    assert value.item() == pytest.approx(-1.2 / math.sqrt(1.68), rel=1e-6)


def test_log_contrastive_without_same_class_pair_raises() -> None:
    with pytest.raises(ValueError, match="same-class pair"):
        get_objective("log_contrastive")(torch.tensor(ONE_CLASS_GRAM), torch.tensor([0, 1, 2]))


# log_contrastive without a same-class pair raises (tested above), so that one case is left out.
ZERO_CASES = [
    (name, labels)
    for name in list_objectives()
    for labels in ([0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 2, 3])
    if not (name == "log_contrastive" and labels == [0, 1, 2, 3])
]


@pytest.mark.parametrize(("name", "labels"), ZERO_CASES)
def test_all_zero_features_give_no_nan(name: str, labels: list[int]) -> None:
    features = torch.zeros(4, 3, 2, 2, requires_grad=True)
    kernel = get_kernel("cosine_relu")
    gram = kernel(features)
    value = get_objective(name)(gram, torch.tensor(labels))
    assert torch.isfinite(value)
    if name in ("alignment", "upper_tri_alignment"):
        assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(features.grad).all()

    zero_gram = torch.zeros(4, 4, requires_grad=True)
    value = get_objective(name)(zero_gram, torch.tensor(labels))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(zero_gram.grad).all()
    if name in ("alignment", "upper_tri_alignment"):
        assert value.item() == 0.0
        assert torch.equal(zero_gram.grad, torch.zeros(4, 4))


# --- validation ------------------------------------------------------------------------------------


def test_unknown_objective_suggests_the_close_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'alignment'"):
        get_objective("alignmnet")
    with pytest.raises(ConfigError, match="did you mean 'upper_tri_alignment'"):
        get_objective("upper_triangle_alignment")


@pytest.mark.parametrize("name", list_objectives())
def test_bad_inputs_raise(name: str) -> None:
    objective = get_objective(name)
    labels = torch.tensor(HAND_LABELS)
    gram = torch.tensor(HAND_GRAM)
    with pytest.raises(ValueError, match="square"):
        objective(gram[:2], labels)
    with pytest.raises(ValueError, match="labels"):
        objective(gram, labels[:2])
    with pytest.raises(ValueError, match="integer"):
        objective(gram, labels.float())
    with pytest.raises(ValueError, match="k_min must be < k_max"):
        objective(gram, labels, k_min=1.0, k_max=1.0)


# --- supervised_contrastive and objective parameters ----------------------------------------------


def test_supervised_contrastive_matches_a_loop_over_anchors() -> None:
    features, labels = _random_batch(3, n=10, classes=3, dtype=torch.float64)
    gram = get_kernel("cosine_relu")(features)
    temperature = 0.3
    per_anchor = []
    for anchor in range(10):
        others = [other for other in range(10) if other != anchor]
        normaliser = torch.logsumexp(torch.stack([gram[anchor, a] / temperature for a in others]), dim=0)
        partners = [p for p in others if labels[p] == labels[anchor]]
        if partners:
            per_anchor.append(sum(gram[anchor, p] / temperature - normaliser for p in partners) / len(partners))
    expected = torch.stack(per_anchor).mean()
    value = get_objective("supervised_contrastive", temperature=temperature)(gram, labels)
    assert value.item() == pytest.approx(expected.item(), rel=1e-12)


def test_supervised_contrastive_rises_as_classes_separate() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    objective = get_objective("supervised_contrastive")
    mixed = torch.tensor([[1.0, 0.5, 0.5, 0.5], [0.5, 1.0, 0.5, 0.5], [0.5, 0.5, 1.0, 0.5], [0.5, 0.5, 0.5, 1.0]])
    separated = torch.tensor([[1.0, 0.9, 0.1, 0.1], [0.9, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 0.9], [0.1, 0.1, 0.9, 1.0]])
    assert objective(mixed, labels).item() == pytest.approx(-math.log(3))
    assert objective(separated, labels) > objective(mixed, labels)


def test_supervised_contrastive_rejects_a_non_positive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        get_objective("supervised_contrastive")(torch.tensor(HAND_GRAM), torch.tensor(HAND_LABELS), temperature=0.0)


def test_objective_parameters_are_bound_and_checked() -> None:
    gram, labels = torch.tensor(HAND_GRAM, dtype=torch.float64), torch.tensor(HAND_LABELS)
    bound = get_objective("supervised_contrastive", temperature=0.5)
    # temperature .5: anchors 1 - log(e^1 + e^.4) and 1 - log(e^1 + e^.2)
    expected = -(math.log1p(math.exp(-0.6)) + math.log1p(math.exp(-0.8))) / 2
    assert bound(gram, labels).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ConfigError, match="has no parameter 'tau'.*temperature"):
        get_objective("supervised_contrastive", tau=0.5)
    with pytest.raises(ConfigError, match="has no parameter 'temperature' \\(it takes none\\)"):
        get_objective("alignment", temperature=0.5)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ConfigError, match="finite number > 0"):
            get_objective("supervised_contrastive", temperature=bad)
