"""TrainConfig: the hash that names run folders, and the objective's own parameters."""

from __future__ import annotations

import re

import pytest

from taskspace.config import TrainConfig, load_toml_options
from taskspace.errors import ConfigError


def test_hash_of_a_config_without_objective_params_is_unchanged() -> None:
    # The benchmark run folders of 10-class CIFAR-10 were named before objective_params existed.
    assert TrainConfig(task="all", mode="modular", epochs=15, seed=0).hash() == "9c740fe6f62ac1d0"
    assert TrainConfig(task="all", mode="e2e", epochs=15, seed=0).hash() == "b6c84d67d14a74d9"


def test_objective_params_enter_the_hash() -> None:
    plain = TrainConfig(task="all", objective="supervised_contrastive")
    sharp = TrainConfig(task="all", objective="supervised_contrastive", objective_params={"temperature": 0.05})
    assert plain.hash() != sharp.hash()
    assert sharp.to_dict()["objective_params"] == {"temperature": 0.05}
    assert TrainConfig.from_dict(sharp.to_dict()) == sharp


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"objective": "alignment", "objective_params": {"temperature": 0.1}}, "has no parameter 'temperature'"),
        ({"objective": "supervised_contrastive", "objective_params": {"temprature": 0.1}},
         "has no parameter 'temprature'.*temperature"),
        ({"objective": "supervised_contrastive", "objective_params": {"temperature": -1}}, "finite number > 0"),
    ],
)
def test_bad_objective_params_are_refused(options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(task="all", **options)


def test_objective_params_from_toml(tmp_path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text('[train]\nobjective = "supervised_contrastive"\nobjective_params = { temperature = 0.2 }\n')
    config = TrainConfig.from_dict({"task": "all", **load_toml_options(path)})
    assert config.objective_params == {"temperature": 0.2}


@pytest.mark.parametrize(("train", "message"), [
    ({"epoch": 1}, "grid training options: unknown option 'epoch'; did you mean 'epochs'"),
    ({"epochs": -1}, "grid training options: epochs must be an integer >= 1, got -1"),
    ({"epochs": "1"}, "grid training options: epochs must be an integer, got '1'"),
])
def test_a_grid_checks_its_training_options_when_built(tmp_path, train, message) -> None:
    # before: the grid was accepted, Run.create wrote run.json, and the CLI then blamed --epochs
    from taskspace.config import GridConfig
    from taskspace.runner import Run

    with pytest.raises(ConfigError, match=re.escape(message)):
        Run.create(tmp_path / "run", GridConfig(space="digits", train=train))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"augment": "yes"}, "augment must be true or false, got 'yes'"),
    ({"dataset": 5}, "dataset must be a string, got 5"),
    ({"kernel_params": {"sigma": "a"}}, "kernel_params must be a table of numbers, got {'sigma': 'a'}"),
    ({"cut_points": ["x"]}, "cut_points must be a list of integers, got ['x']"),
])
def test_training_options_are_checked_against_their_annotations(options, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(task="all", **options)
