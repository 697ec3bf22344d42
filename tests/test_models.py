"""Architectures as stages, cut into modules; every registered architecture obeys the same contract."""

from __future__ import annotations

import pytest
import torch

from taskspace.errors import ConfigError
from taskspace.models import FeatureMap, get_model, list_models

INPUT = {"small_cnn": (3, 32), "resnet18": (3, 32), "digits_cnn": (1, 8), "uniform_cnn": (3, 32)}


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_builds_cuts_and_gives_unit_norm_features(name):
    channels, size = INPUT[name]
    width = 4 if name == "resnet18" else None
    net = get_model(name, num_classes=3, in_channels=channels, width=width)
    images = torch.randn(5, channels, size, size)
    assert net(images).shape == (5, 3)
    features = net.features(images)
    assert features.shape == (5, net.feature_dim)
    assert torch.allclose(features.norm(dim=1), torch.ones(5), atol=1e-5)
    stages = sum(len(module) for module in net.hidden)
    for cut in range(1, stages):
        cut_net = get_model(name, num_classes=3, in_channels=channels, width=width, cut_points=(cut,))
        assert cut_net.num_hidden == 2
        assert cut_net(images).shape == (5, 3)


def test_last_stage_outputs_pre_activations():
    net = get_model("small_cnn", num_classes=2)
    assert (net.trunk(torch.randn(8, 3, 32, 32)) < 0).any()


def test_feature_map_of_zero_input_is_zero_not_nan():
    assert torch.equal(FeatureMap()(torch.zeros(2, 4, 3, 3)), torch.zeros(2, 4))


def test_bad_cut_points_and_unknown_architecture():
    with pytest.raises(ConfigError, match="cut points"):
        get_model("small_cnn", num_classes=2, cut_points=(4,))
    with pytest.raises(ConfigError, match="did you mean 'resnet18'"):
        get_model("resnet81", num_classes=2)
