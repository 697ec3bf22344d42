"""Kernels: a contract over the registry, hand-computed values, validation."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from taskspace.errors import ConfigError
from taskspace.kernels import KERNELS, CosineKernel, Kernel, get_kernel, list_kernels

COSINE = ["cosine_relu", "cosine_sigmoid", "cosine_tanh"]
EXPECTED_RANGE = {
    "cosine_relu": (0.0, 1.0),
    "cosine_sigmoid": (0.0, 1.0),
    "cosine_tanh": (-1.0, 1.0),
    "gaussian": (0.0, 1.0),
}


def test_registry_lists_the_documented_kernels() -> None:
    assert list_kernels() == sorted(EXPECTED_RANGE)
    assert list(KERNELS) == list_kernels()


# --- contract over every registered kernel -------------------------------------------------------


@pytest.mark.parametrize("name", list_kernels())
@pytest.mark.parametrize("shape", [(6, 3, 4, 4), (6, 5), (6, 2, 3)])
def test_contract(name: str, shape: tuple[int, ...]) -> None:
    kernel = get_kernel(name)
    assert isinstance(kernel, Kernel)
    assert kernel.name == name
    assert isinstance(kernel.params, dict)
    assert (kernel.k_min, kernel.k_max) == EXPECTED_RANGE[name]

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator, requires_grad=True)
    y = torch.randn((4, *shape[1:]), generator=generator, requires_grad=True)

    gram = kernel(x)
    assert gram.shape == (6, 6)
    assert torch.isfinite(gram).all()
    assert torch.equal(gram, gram.T)
    torch.testing.assert_close(torch.diagonal(gram), torch.ones(6), rtol=0, atol=1e-6)
    tolerance = 1e-6
    assert gram.min() >= kernel.k_min - tolerance
    assert gram.max() <= kernel.k_max + tolerance

    cross = kernel(x, y)
    assert cross.shape == (6, 4)
    assert torch.isfinite(cross).all()
    assert cross.min() >= kernel.k_min - tolerance and cross.max() <= kernel.k_max + tolerance
    # y=None is the same as y=x.
    torch.testing.assert_close(kernel(x, x), gram, rtol=0, atol=1e-6)

    (gram.sum() + cross.pow(2).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert y.grad is not None and torch.isfinite(y.grad).all()

    features = kernel.feature_map(x)
    assert features.ndim == 2 and features.shape[0] == 6


@pytest.mark.parametrize("name", list_kernels())
def test_float64_is_kept(name: str) -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    assert get_kernel(name)(x).dtype == torch.float64


@pytest.mark.parametrize("name", list_kernels())
def test_all_zero_input_gives_no_nan(name: str) -> None:
    x = torch.zeros(4, 3, 2, 2, requires_grad=True)
    gram = get_kernel(name)(x)
    assert torch.isfinite(gram).all()
    gram.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list_kernels())
def test_kernels_compare_and_pickle_by_name_and_params(name: str) -> None:
    kernel = get_kernel(name)
    assert kernel == get_kernel(name)
    assert hash(kernel) == hash(get_kernel(name))
    restored = pickle.loads(pickle.dumps(kernel))
    x = torch.randn(3, 4)
    torch.testing.assert_close(restored(x), kernel(x))
    assert name in repr(kernel)


# --- feature maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COSINE)
def test_cosine_feature_map_has_unit_norm(name: str) -> None:
    kernel = get_kernel(name)
    x = torch.randn(7, 4, 3, 3, dtype=torch.float64) + 0.5
    features = kernel.feature_map(x)
    assert features.shape == (7, 4)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(7, dtype=torch.float64))
    torch.testing.assert_close(kernel(x), features @ features.T)


def test_cosine_relu_on_conv_output_is_normalised_pooled_relu() -> None:
    # method.md section 1: phi(u) = normalize(flatten(global_avg_pool(relu(u)))).
    x = torch.tensor(
        [
            [[[1.0, -1.0], [3.0, -5.0]], [[-2.0, 2.0], [2.0, 2.0]]],  # relu-pool: (1.0, 1.5)
            [[[-1.0, -1.0], [-1.0, -1.0]], [[0.0, 0.0], [0.0, 4.0]]],  # relu-pool: (0.0, 1.0)
        ]
    )
    kernel = get_kernel("cosine_relu")
    pooled = torch.tensor([[1.0, 1.5], [0.0, 1.0]])
    expected = pooled / pooled.norm(dim=1, keepdim=True)
    torch.testing.assert_close(kernel.feature_map(x), expected)
    # k = <(1, 1.5), (0, 1)> / |(1, 1.5)| = 1.5 / sqrt(3.25)
    torch.testing.assert_close(kernel(x)[0, 1], torch.tensor(1.5 / math.sqrt(3.25)))


def test_cosine_relu_by_hand_with_an_all_zero_row() -> None:
    # relu: (3, 4), (0, 0), (1, 0) -> phi: (0.6, 0.8), (0, 0), (1, 0)
    x = torch.tensor([[3.0, 4.0], [-1.0, 0.0], [1.0, 0.0]])
    expected = torch.tensor([[1.0, 0.0, 0.6], [0.0, 0.0, 0.0], [0.6, 0.0, 1.0]])
    torch.testing.assert_close(get_kernel("cosine_relu")(x), expected)


def test_cosine_tanh_by_hand() -> None:
    # With t = tanh(0.5) the activated rows are (t, -t), (t, t), (-t, t); normalised:
    # (t, -t).(t, t) / (2 t^2) = 0 and (t, -t).(-t, t) / (2 t^2) = -1.
    x = torch.tensor([[0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    expected = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    torch.testing.assert_close(get_kernel("cosine_tanh")(x), expected)


def test_cosine_sigmoid_by_hand() -> None:
    # sigmoid((0, 0)) = (0.5, 0.5) -> phi = (1, 1) / sqrt(2);
    # sigmoid((100, -100)) ~ (1, 0) -> phi = (1, 0); k = 1 / sqrt(2).
    x = torch.tensor([[0.0, 0.0], [100.0, -100.0]])
    gram = get_kernel("cosine_sigmoid")(x)
    torch.testing.assert_close(gram[0, 1], torch.tensor(1.0 / math.sqrt(2.0)))


def test_gaussian_by_hand() -> None:
    # ||(0, 0) - (3, 4)||^2 = 25, sigma = 5: exp(-25 / 50) = exp(-0.5)
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    gram = get_kernel("gaussian", sigma=5.0)(x)
    expected = torch.tensor([[1.0, math.exp(-0.5)], [math.exp(-0.5), 1.0]])
    torch.testing.assert_close(gram, expected)


def test_gaussian_feature_map_pools_without_activation_or_normalisation() -> None:
    x = torch.randn(3, 2, 4, 4)
    kernel = get_kernel("gaussian", sigma=0.7)
    torch.testing.assert_close(kernel.feature_map(x), x.mean(dim=(2, 3)))
    a = kernel.feature_map(x)
    expected = torch.exp(-torch.cdist(a, a).pow(2) / (2 * 0.7**2))
    torch.testing.assert_close(kernel(x), expected)


def test_gaussian_is_stable_far_from_the_origin() -> None:
    # Nearby points far from the origin: the naive |a|^2 + |b|^2 - 2<a, b> cancels badly in float32.
    base = torch.full((1, 8), 1.0e4)
    x = base + torch.tensor([[0.0] * 8, [0.01] + [0.0] * 7])
    gram = get_kernel("gaussian", sigma=0.1)(x)
    torch.testing.assert_close(gram[0, 1], torch.tensor(math.exp(-0.0001 / 0.02)), rtol=1e-3, atol=0)
    assert torch.equal(torch.diagonal(gram), torch.ones(2))


def test_gaussian_default_sigma_and_params() -> None:
    assert get_kernel("gaussian").params == {"sigma": 1.0}
    assert get_kernel("gaussian", sigma=2).params == {"sigma": 2.0}
    kernel = get_kernel("cosine_relu")
    assert isinstance(kernel, CosineKernel) and kernel.params == {}
    kernel.params["x"] = 1.0  # a copy: provenance cannot be changed behind the kernel's back
    assert kernel.params == {}


# --- validation ------------------------------------------------------------------------------------


def test_unknown_kernel_suggests_the_close_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'cosine_relu'"):
        get_kernel("cosine_rlu")


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf"), "1.0", True])
def test_bad_sigma(sigma: object) -> None:
    with pytest.raises(ConfigError, match="sigma"):
        get_kernel("gaussian", sigma=sigma)


def test_unknown_parameter() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'sigm'; did you mean 'sigma'"):
        get_kernel("gaussian", sigm=1.0)
    with pytest.raises(ConfigError, match="'cosine_relu' got unknown parameter 'sigma'"):
        get_kernel("cosine_relu", sigma=1.0)


def test_error_messages_are_one_line() -> None:
    for call in (lambda: get_kernel("nope"), lambda: get_kernel("gaussian", sigma=-1)):
        with pytest.raises(ConfigError) as info:
            call()
        assert "\n" not in str(info.value)


def test_bad_inputs() -> None:
    kernel = get_kernel("cosine_relu")
    with pytest.raises(ValueError, match="floating point"):
        kernel(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="features per sample"):
        kernel(torch.randn(3, 2), torch.randn(3, 5))
    with pytest.raises(TypeError):
        kernel([[1.0, 2.0]])  # type: ignore[arg-type]
