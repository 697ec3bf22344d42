"""Trainers on the embedded digits: module boundaries, few labels, resume, determinism, fine-tuning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from taskspace.config import TrainConfig
from taskspace.data import load_digits_dataset
from taskspace.errors import CheckpointError, ConfigError, TaskspaceError
from taskspace.kernels import get_kernel
from taskspace.objectives import get_objective
from taskspace.training import (
    OptimizerSettings,
    build_model,
    load_model,
    prepare_splits,
    to_tensor_split,
    train_hidden_module,
    train_task,
)
from taskspace.training.progress import ProgressBar
from taskspace.training.tensors import channel_statistics


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def _splits(digits, task="3_vs_8", **options):
    config = TrainConfig(task=task, dataset="digits", **options)
    splits = prepare_splits(config, digits)
    mean, std = channel_statistics(splits.train.images)
    train = to_tensor_split(splits.train, mean=mean, std=std)
    return config, train, to_tensor_split(splits.validation, mean=mean, std=std)


def _settings(epochs=1):
    return OptimizerSettings(epochs=epochs, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                             warmup_epochs=0, augment=True)


def test_no_gradient_crosses_a_module_boundary(digits):
    config, train, validation = _splits(digits, cut_points=(1,))
    net = build_model(config, num_classes=2, in_channels=1)
    first_before = {name: value.clone() for name, value in net.hidden[0].state_dict().items()}
    second_before = {name: value.clone() for name, value in net.hidden[1].state_dict().items()}
    # Even with gradients switched back on for module 0, training module 1 must not reach it.
    net.hidden[0].requires_grad_(True)
    kernel = get_kernel("cosine_relu")
    train_hidden_module(net, 1, train=train, validation=validation, kernel=kernel,
                        objective=get_objective("upper_tri_alignment"), k_min=0.0, k_max=1.0,
                        settings=_settings(), seed=0, state_path=None, fingerprint="x")
    for name, value in net.hidden[0].state_dict().items():
        assert torch.equal(value, first_before[name]), f"module 0 changed: {name}"
    assert all(parameter.grad is None for parameter in net.hidden[0].parameters())
    assert any(not torch.equal(value, second_before[name]) for name, value in net.hidden[1].state_dict().items())
    assert not net.hidden[0].training  # frozen in eval mode: BatchNorm kept its running statistics


def test_hidden_input_is_detached(digits):
    config, train, _ = _splits(digits, cut_points=(1,))
    net = build_model(config, num_classes=2, in_channels=1)
    assert not net.hidden_input(train.images[:4].requires_grad_(True), 1).requires_grad


def test_modular_training_learns_and_few_labels_come_from_train(tmp_path, digits):
    config = TrainConfig(task="3_vs_8", dataset="digits", epochs=8, labels_per_class=2)
    metrics = train_task(config, out_dir=tmp_path / "run", dataset=digits)
    assert metrics["output_labels"] == 4
    assert metrics["test_accuracy"] > 0.9
    for name in ("config.json", "model.pt", "metrics.json"):
        assert (tmp_path / "run" / name).is_file()
    assert not (tmp_path / "run" / "resume").exists()


def test_output_module_with_unlabeled_images(tmp_path, digits):
    config = TrainConfig(task="3_vs_8", dataset="digits", epochs=8, labels_per_class=1, output_unlabeled=True)
    metrics = train_task(config, out_dir=tmp_path / "run", dataset=digits)
    assert metrics["output_labels"] == 2
    assert metrics["output_unlabeled_images"] == metrics["train_images"] - 2
    assert metrics["test_accuracy"] > 0.9


def test_modular_training_with_an_objective_parameter(tmp_path, digits):
    config = TrainConfig(task="3_vs_8", dataset="digits", epochs=8, objective="supervised_contrastive",
                         objective_params={"temperature": 0.2})
    metrics = train_task(config, out_dir=tmp_path / "run", dataset=digits)
    assert metrics["test_accuracy"] > 0.9
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["objective_params"] == {"temperature": 0.2}


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, digits):
    def weights(seed, folder):
        config = TrainConfig(task="1_vs_9", dataset="digits", epochs=2, seed=seed)
        train_task(config, out_dir=tmp_path / folder, dataset=digits)
        return load_model(tmp_path / folder / "model.pt")[0].state_dict()

    first, again, other = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, digits, monkeypatch):
    config = TrainConfig(task="0_vs_5", dataset="digits", mode="e2e", epochs=4)
    straight = train_task(config, out_dir=tmp_path / "straight", dataset=digits)

    original = ProgressBar.epoch_done

    def stop_after_second_epoch(self, epoch, metrics):
        original(self, epoch, metrics)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "epoch_done", stop_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_task(config, out_dir=tmp_path / "resumed", dataset=digits)
    assert (tmp_path / "resumed" / "resume" / "e2e.pt").is_file()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(ProgressBar, "epoch_done", original)
    resumed = train_task(config, out_dir=tmp_path / "resumed", dataset=digits)
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    def timeless(history):  # each epoch's seconds are measured, not reproduced
        assert all(epoch["seconds"] >= 0 for epoch in history)
        return [{key: value for key, value in epoch.items() if key != "seconds"} for epoch in history]

    assert timeless(resumed["history"]) == timeless(straight["history"])
    first = load_model(tmp_path / "straight" / "model.pt")[0].state_dict()
    second = load_model(tmp_path / "resumed" / "model.pt")[0].state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_sigkilled_cli_run_resumes_to_the_same_result(tmp_path):
    command = [sys.executable, "-m", "taskspace", "train", "--dataset", "digits", "--task", "all",
               "--mode", "modular", "--epochs", "40", "--quiet"]
    environment = dict(os.environ)
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True, env=environment,
                   capture_output=True)
    process = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "resume" / "hidden0.pt"
    deadline = time.time() + 120
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    killed_midway = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed_midway, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "metrics.json").exists()
    subprocess.run([*command, "--out", str(tmp_path / "killed")], check=True, env=environment, capture_output=True)
    first = load_model(tmp_path / "straight" / "model.pt")[0].state_dict()
    second = load_model(tmp_path / "killed" / "model.pt")[0].state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_finished_run_is_not_trained_again_and_other_config_is_refused(tmp_path, digits):
    config = TrainConfig(task="1_vs_3", dataset="digits", epochs=1)
    first = train_task(config, out_dir=tmp_path / "run", dataset=digits)
    assert train_task(config, out_dir=tmp_path / "run", dataset=digits) == first
    with pytest.raises(TaskspaceError, match="another config"):
        train_task(config.replace(epochs=2), out_dir=tmp_path / "run", dataset=digits)


def test_finetune_from_checkpoint_and_refuse_another_architecture(tmp_path, digits):
    source = TrainConfig(task="3_vs_8", dataset="digits", epochs=3)
    train_task(source, out_dir=tmp_path / "source", dataset=digits)
    target = TrainConfig(task="5_vs_9", dataset="digits", mode="finetune", epochs=10, lr=0.05,
                         init_from=str(tmp_path / "source" / "model.pt"))
    metrics = train_task(target, out_dir=tmp_path / "target", dataset=digits)
    assert metrics["test_accuracy"] > 0.7  # chance is 0.5
    wider = target.replace(width=8)
    with pytest.raises(CheckpointError, match="width"):
        train_task(wider, out_dir=tmp_path / "wider", dataset=digits)
    assert not (tmp_path / "wider" / "model.pt").exists()


def test_a_finetune_counts_its_source_by_contents_not_by_path(tmp_path, digits):
    import shutil

    from taskspace.training.run import finished_run

    source = TrainConfig(task="3_vs_8", dataset="digits", epochs=1)
    train_task(source, out_dir=tmp_path / "here" / "source", dataset=digits)
    target = TrainConfig(task="5_vs_9", dataset="digits", mode="finetune", epochs=1,
                         init_from=str(tmp_path / "here" / "source" / "model.pt"))
    train_task(target, out_dir=tmp_path / "here" / "target", dataset=digits)
    # the folder moved: the same fine-tune, found finished, not trained again
    shutil.move(tmp_path / "here", tmp_path / "there")
    moved = target.replace(init_from=str(tmp_path / "there" / "source" / "model.pt"))
    assert moved.hash() == target.replace(init_from=str(tmp_path / "there" / "source" / "model.pt")).hash()
    assert finished_run(tmp_path / "there" / "target", moved) is not None
    # a different checkpoint at the same path is another fine-tune
    train_task(source.replace(seed=1), out_dir=tmp_path / "other", dataset=digits)
    shutil.copyfile(tmp_path / "other" / "model.pt", tmp_path / "there" / "source" / "model.pt")
    assert finished_run(tmp_path / "there" / "target", moved) is None
    # a folder written when init_from counted by its path still reads as finished
    legacy = tmp_path / "legacy"
    shutil.copytree(tmp_path / "there" / "target", legacy)
    for name in ("config.json", "metrics.json"):
        record = json.loads((legacy / name).read_text())
        record["config_hash"] = moved.legacy_hash()
        (legacy / name).write_text(json.dumps(record))
    metrics = json.loads((legacy / "metrics.json").read_text())
    assert finished_run(legacy, moved) is not None and metrics["config_hash"] != moved.hash()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": -1}, "epochs must be an integer >= 1"),
        ({"labels_per_class": 0}, "labels_per_class must be an integer >= 1"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"mode": "modualr"}, "did you mean 'modular'"),
        ({"objective": "alignmnet"}, "did you mean 'alignment'"),
        ({"mode": "finetune"}, "--init-from"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"colour": "red"}, "unknown option 'colour'"),
    ],
)
def test_nonsense_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({"task": "cat_vs_dog", **options})


def test_labels_per_class_larger_than_the_class_fails_before_training(tmp_path, digits):
    config = TrainConfig(task="3_vs_8", dataset="digits", labels_per_class=10_000)
    with pytest.raises(ConfigError, match="more than the"):
        train_task(config, out_dir=tmp_path / "run", dataset=digits)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_output_module_is_trained_on_frozen_features_only(digits):
    config, train, _ = _splits(digits)
    net = build_model(config, num_classes=2, in_channels=1)
    before = {name: value.clone() for name, value in net.hidden.state_dict().items()}
    from taskspace.training import fit_output_module

    fit_output_module(net, train, labels_per_class=1, seed=0, steps=20, weight_decay=1e-4)
    assert all(torch.equal(value, before[name]) for name, value in net.hidden.state_dict().items())
    assert np.isfinite(net.output.linear.weight.detach().numpy()).all()


@pytest.mark.slow
def test_modular_and_e2e_training_on_real_cifar(tmp_path, cifar_root):
    modular = train_task(TrainConfig(task="automobile_vs_horse", epochs=2), out_dir=tmp_path / "modular",
                         data_root=cifar_root)
    assert modular["train_images"] == 9000 and modular["validation_images"] == 1000
    assert modular["test_images"] == 2000
    assert modular["test_accuracy"] > 0.8
    few = train_task(TrainConfig(task="automobile_vs_horse", epochs=2, labels_per_class=1),
                     out_dir=tmp_path / "one-label", data_root=cifar_root)
    assert few["output_labels"] == 2
    assert few["test_accuracy"] > 0.6


def test_a_trained_network_records_the_processor_its_bytes_came_from(tmp_path, digits):
    from taskspace.io import sha256_of_file

    metrics = train_task(TrainConfig(task="1_vs_3", dataset="digits", epochs=1), out_dir=tmp_path / "net",
                         dataset=digits)
    assert metrics["model_sha256"] == sha256_of_file(tmp_path / "net" / "model.pt")
    machine = json.loads((tmp_path / "net" / "metrics.json").read_text())["trained_on"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["torch_version"] == torch.__version__ and machine["cpu"]
