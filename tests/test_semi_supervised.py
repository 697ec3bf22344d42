"""Label propagation by spherical k-means for the semi-supervised output module."""

from __future__ import annotations

import math

import pytest
import torch

from taskspace.config import TrainConfig
from taskspace.errors import ConfigError
from taskspace.training.semi_supervised import propagate_labels


def _at(degrees: list[float]) -> torch.Tensor:
    radians = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], dim=1)


def test_refined_prototypes_relabel_a_point_the_nearest_labeled_example_gets_wrong() -> None:
    # Labeled examples at 30 (class 0) and 60 degrees (class 1); the unlabeled clusters lie at 20 and
    # 90 degrees. A point at 46 degrees is nearer the class-1 example (14 vs 16 degrees) but, once
    # the prototypes move to their clusters (about 21 and 84 degrees), nearer class 0 (25 vs 38).
    labeled, labels = _at([30.0, 60.0]), torch.tensor([0, 1])
    unlabeled = _at([20.0] * 10 + [90.0] * 10 + [46.0])
    first_round = (unlabeled @ torch.nn.functional.normalize(labeled, dim=1).T).argmax(dim=1)
    assert first_round[-1] == 1
    result = propagate_labels(labeled, labels, unlabeled, num_classes=2)
    assert result.labels.tolist() == [0] * 10 + [1] * 10 + [0]
    assert result.changed_last == 0 and 2 <= result.iterations <= 20
    assert torch.allclose(result.prototypes.norm(dim=1), torch.ones(2, dtype=result.prototypes.dtype))


def test_separated_clusters_are_recovered_from_one_label_each() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(4, 16) * 3
    truth = torch.arange(200) % 4
    features = (centres[truth] + 0.3 * torch.randn(200, 16, generator=generator)).relu()
    labeled_positions = torch.tensor([0, 1, 2, 3])
    rest = torch.arange(4, 200)
    result = propagate_labels(features[labeled_positions], truth[labeled_positions], features[rest], num_classes=4)
    assert torch.equal(result.labels, truth[rest])
    again = propagate_labels(features[labeled_positions], truth[labeled_positions], features[rest], num_classes=4)
    assert torch.equal(again.labels, result.labels)


@pytest.mark.parametrize(
    ("labeled", "labels", "unlabeled", "message"),
    [
        (torch.ones(2, 3), torch.tensor([0, 0]), torch.ones(4, 3), r"classes \[1\] have no labeled example"),
        (torch.ones(2, 3), torch.tensor([0, 1]), torch.ones(4, 5), "3 dimensions, unlabeled 5"),
        (torch.ones(2, 3), torch.tensor([0, 1, 1]), torch.ones(4, 3), "2 labeled features but labels"),
        (torch.ones(3), torch.tensor([0, 1, 1]), torch.ones(4, 3), "2-D"),
    ],
)
def test_bad_inputs_raise(labeled, labels, unlabeled, message) -> None:
    with pytest.raises(ValueError, match=message):
        propagate_labels(labeled, labels, unlabeled, num_classes=2)


def test_zero_iterations_are_refused() -> None:
    with pytest.raises(ValueError, match="max_iterations"):
        propagate_labels(torch.eye(2), torch.tensor([0, 1]), torch.eye(2), num_classes=2, max_iterations=0)


@pytest.mark.parametrize(
    "options",
    [{"labels_per_class": None}, {"mode": "e2e", "labels_per_class": 1}],
)
def test_output_unlabeled_needs_few_labels_in_modular_mode(options) -> None:
    with pytest.raises(ConfigError, match="needs --mode modular and --labels-per-class"):
        TrainConfig(task="all", output_unlabeled=True, **options)


def test_output_unlabeled_enters_the_hash_only_when_set() -> None:
    plain = TrainConfig(task="all", labels_per_class=1)
    assert "output_unlabeled" in plain.to_dict()
    assert plain.hash() != TrainConfig(task="all", labels_per_class=1, output_unlabeled=True).hash()
