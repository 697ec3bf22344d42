"""One training run from a :class:`TrainConfig` to a folder: config.json, model.pt, metrics.json.

The folder is the unit of resuming: an interrupted run leaves its resume state under ``resume/`` and
a rerun with the same config continues from there; a finished run (``metrics.json`` present) is not
trained again. ``metrics.json`` is written last, so its presence means the run is complete.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace._version import __version__
from taskspace.config import TrainConfig
from taskspace.data import ImageDataset, dataset_class_names, load_dataset
from taskspace.errors import ConfigError, TaskspaceError
from taskspace.io import ensure_writable_dir, read_json, sha256_of_file, write_json
from taskspace.kernels import get_kernel
from taskspace.models import ModularNet, get_model
from taskspace.objectives import get_objective
from taskspace.tasks import Task, TaskSplits, sample_labels_per_class
from taskspace.training.checkpoints import load_hidden_from, save_model
from taskspace.training.compute import FLOAT32, Compute, machine_record
from taskspace.training.seeds import derive_seed
from taskspace.training.semi_supervised import propagate_labels
from taskspace.training.tensors import TensorSplit, channel_statistics, to_tensor_split
from taskspace.training.trainers import (
    OptimizerSettings,
    evaluate_accuracy,
    extract_features,
    train_end_to_end,
    train_hidden_module,
    train_output_module,
)

__all__ = ["train_task", "finished_run", "build_model", "prepare_splits", "resolve_device", "fit_output_module"]

CONFIG_FILE, MODEL_FILE, METRICS_FILE, RESUME_DIR = "config.json", "model.pt", "metrics.json", "resume"


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def build_model(config: TrainConfig, *, num_classes: int, in_channels: int) -> ModularNet:
    """The config's architecture with weights drawn from the config's seed (global RNG untouched).

    In ``finetune`` mode the net takes the shape of ``init_from``'s: cut short (``depth``), with adapters
    between modules or its modules in another order, as a composed net (taskspace.compose) may be.
    """
    shape: dict[str, Any] = {}
    if config.mode == "finetune" and config.init_from is not None and Path(config.init_from).is_file():
        from taskspace.io import load_checkpoint

        saved = load_checkpoint(config.init_from).get("spec", {})
        shape = {"depth": saved.get("depth"),
                 "adapters": {int(index): int(channels) for index, channels in saved.get("adapters", {}).items()},
                 "order": saved.get("order")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "init"))
        return get_model(
            str(config.architecture),
            num_classes=num_classes,
            in_channels=in_channels,
            width=config.width,
            cut_points=config.cut_points,
            **shape,
        )


def prepare_splits(config: TrainConfig, dataset: ImageDataset) -> TaskSplits:
    """The task's splits, with the training split reduced to ``labels_per_class`` in e2e modes."""
    task = Task.parse(config.task, class_names=dataset.class_names)
    return task.select(dataset, validation_fraction=config.validation_fraction, seed=config.seed)


def fit_output_module(
    net: ModularNet,
    train: TensorSplit,
    *,
    labels_per_class: int | None,
    seed: int,
    steps: int,
    weight_decay: float,
    unlabeled: bool = False,
    compute: Compute = FLOAT32,
) -> dict[str, Any]:
    """Train the output module on frozen features of all training labels or ``labels_per_class`` each.

    With ``unlabeled`` (and ``labels_per_class``), the rest of the training split enters without its
    labels: :func:`~taskspace.training.semi_supervised.propagate_labels` labels it from the few labeled
    images, and the output module is fitted on both.
    """
    labels = train.labels.cpu().numpy()
    if labels_per_class is None:
        positions = np.arange(len(labels))
    else:
        positions = sample_labels_per_class(labels, labels_per_class, seed=derive_seed(seed, "few-labels"))
    index = torch.from_numpy(positions).to(train.labels.device)
    if not unlabeled or labels_per_class is None:
        features = extract_features(net, train.subset(index), compute=compute)
        loss = train_output_module(
            net, features=features, labels=train.labels[index], steps=steps, weight_decay=weight_decay
        )
        return {"output_labels": int(len(positions)), "output_train_loss": loss}
    rest = np.setdiff1d(np.arange(len(labels)), positions)
    rest_index = torch.from_numpy(rest).to(train.labels.device)
    labeled_features = extract_features(net, train.subset(index), compute=compute)
    unlabeled_features = extract_features(net, train.subset(rest_index), compute=compute)
    propagated = propagate_labels(
        labeled_features, train.labels[index], unlabeled_features, num_classes=net.num_classes
    )
    loss = train_output_module(
        net, features=torch.cat([labeled_features, unlabeled_features]),
        labels=torch.cat([train.labels[index], propagated.labels]), steps=steps, weight_decay=weight_decay,
    )
    return {"output_labels": int(len(positions)), "output_unlabeled_images": int(len(rest)),
            "output_propagation_rounds": propagated.iterations, "output_train_loss": loss}


def train_task(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    dataset: ImageDataset | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Train one network as ``config`` says and write it to ``out_dir``; returns the metrics.

    A finished run with the same config is returned as is; a folder holding another config is refused.
    """
    class_names = dataset.class_names if dataset else dataset_class_names(config.dataset, data_root=data_root)
    Task.parse(config.task, class_names=class_names)  # a bad task fails before any data is read
    folder = Path(out_dir)
    _refuse_inside_dataset(folder, config.dataset)
    _check_folder(folder, config)
    done = finished_run(folder, config)
    if done is not None:
        return done
    device = resolve_device(config.device)
    if dataset is None:
        dataset = load_dataset(config.dataset, data_root=data_root)
    splits = prepare_splits(config, dataset)
    if config.labels_per_class is not None:
        # Fail now, not after training, when k exceeds a class.
        sample_labels_per_class(splits.train.labels, config.labels_per_class, seed=0)
    if config.mode == "finetune":
        load_hidden_from(build_model(config, num_classes=splits.task.num_classes,
                                     in_channels=int(dataset.train.images.shape[-1])), str(config.init_from))
    # Every input checked: only now is anything written.
    ensure_writable_dir(folder)
    for stale in (METRICS_FILE, MODEL_FILE):  # a half-finished folder (model or metrics missing)
        (folder / stale).unlink(missing_ok=True)
    write_json(folder / CONFIG_FILE, _config_record(config))

    in_channels = int(dataset.train.images.shape[-1])
    net = build_model(config, num_classes=splits.task.num_classes, in_channels=in_channels)
    normalization: dict[str, list[float]]
    if config.mode == "finetune":
        source = load_hidden_from(net, str(config.init_from))
        normalization = source["normalization"]
    else:
        mean, std = channel_statistics(splits.train.images)
        normalization = {"mean": mean, "std": std}
    net.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # ~25% faster on CPU
    mean, std = normalization["mean"], normalization["std"]
    train = to_tensor_split(splits.train, mean=mean, std=std, device=device)
    validation = to_tensor_split(splits.validation, mean=mean, std=std, device=device)
    test = to_tensor_split(splits.test, mean=mean, std=std, device=device)
    assert config.batch_size is not None  # set by TrainConfig from the dataset
    settings = OptimizerSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        warmup_epochs=config.warmup_epochs,
        augment=config.augment,
        compute=Compute(precision=config.precision, compile=config.compile),
    )
    resume = folder / RESUME_DIR
    fingerprint = config.hash()
    metrics: dict[str, Any] = {
        "task": splits.task.id,
        "mode": config.mode,
        "config_hash": fingerprint,
        "train_images": len(splits.train),
        "validation_images": len(splits.validation),
        "test_images": len(splits.test),
        "seed": config.seed,
    }
    if config.mode == "modular":
        kernel = get_kernel(config.kernel, **config.kernel_params)
        objective = get_objective(config.objective, **config.objective_params)
        hidden_history = []
        hidden_seconds = 0.0
        for index in range(net.num_hidden):
            result = train_hidden_module(
                net, index, train=train, validation=validation, kernel=kernel, objective=objective,
                k_min=kernel.k_min, k_max=kernel.k_max, settings=settings, seed=config.seed,
                state_path=resume / f"hidden{index}.pt", fingerprint=fingerprint, show_progress=show_progress,
            )
            hidden_seconds += result.seconds
            hidden_history.append(
                {"best_epoch": result.best_epoch, "best_validation_objective": result.best_score,
                 "history": result.history}
            )
        metrics["hidden_modules"] = hidden_history
        output_started = time.perf_counter()
        metrics.update(
            fit_output_module(
                net, train, labels_per_class=config.labels_per_class, seed=config.seed,
                steps=config.output_steps, weight_decay=config.output_weight_decay,
                unlabeled=config.output_unlabeled, compute=settings.compute,
            )
        )
        metrics["hidden_seconds"] = hidden_seconds
        metrics["output_seconds"] = time.perf_counter() - output_started
        metrics["train_seconds"] = hidden_seconds + metrics["output_seconds"]
    else:
        if config.labels_per_class is not None:
            positions = sample_labels_per_class(
                train.labels.cpu().numpy(), config.labels_per_class, seed=derive_seed(config.seed, "few-labels")
            )
            few = torch.from_numpy(positions).to(device)
            train = train.subset(few)
        result = train_end_to_end(
            net, train=train, validation=validation, settings=settings, seed=config.seed,
            state_path=resume / "e2e.pt", fingerprint=fingerprint, phase=config.mode, show_progress=show_progress,
        )
        metrics["best_epoch"] = result.best_epoch
        metrics["history"] = result.history
        metrics["train_seconds"] = result.seconds
    metrics["validation_accuracy"] = (evaluate_accuracy(net, validation, compute=settings.compute)
                                      if len(validation) else None)
    metrics["test_accuracy"] = evaluate_accuracy(net, test, compute=settings.compute)
    net.cpu()
    save_model(
        folder / MODEL_FILE, net, normalization=normalization, task_classes=splits.task.classes,
        config_hash=fingerprint,
    )
    metrics["model_sha256"] = sha256_of_file(folder / MODEL_FILE)
    metrics["trained_on"] = machine_record(device)  # the bytes above are this processor's (compute.py)
    write_json(folder / METRICS_FILE, metrics)
    shutil.rmtree(resume, ignore_errors=True)
    return metrics


def finished_run(folder: str | os.PathLike[str], config: TrainConfig) -> dict[str, Any] | None:
    """The metrics of a finished training run of ``config`` in ``folder``, else None.

    Finished means: ``config.json`` names this config's hash, ``model.pt`` is there and ``metrics.json``
    is readable, names the same hash, holds a test accuracy in [0, 1] and the model's SHA-256 (where
    it recorded one).
    """
    path = Path(folder)
    if not (path / MODEL_FILE).is_file() or not (path / METRICS_FILE).is_file():
        return None
    try:
        recorded, metrics = read_json(path / CONFIG_FILE), read_json(path / METRICS_FILE)
    except TaskspaceError:
        return None
    if not isinstance(recorded, dict) or not isinstance(metrics, dict):
        return None
    accuracy = metrics.get("test_accuracy")
    hashes = {config.hash(), config.legacy_hash()}  # a folder written before init_from counted by contents
    if recorded.get("config_hash") not in hashes or metrics.get("config_hash", config.hash()) not in hashes:
        return None
    if not isinstance(accuracy, int | float) or isinstance(accuracy, bool) or not 0.0 <= accuracy <= 1.0:
        return None
    if "model_sha256" in metrics and metrics["model_sha256"] != sha256_of_file(path / MODEL_FILE):
        return None  # the model was changed or damaged after training
    return metrics


def _refuse_inside_dataset(folder: Path, dataset: str) -> None:
    """An output folder inside an image-folder dataset would add a class folder to it."""
    from taskspace.data import dataset_names

    if dataset in dataset_names():
        return
    root = Path(dataset).expanduser().resolve()
    if folder.resolve() == root or root in folder.resolve().parents:
        raise TaskspaceError(
            f"the output folder '{folder}' is inside the dataset '{dataset}', and writing there would change the "
            "dataset; choose a folder outside it"
        )


def _config_record(config: TrainConfig) -> dict[str, Any]:
    return {"config": config.to_dict(), "config_hash": config.hash(), "taskspace_version": __version__,
            "torch_version": torch.__version__}


def _check_folder(folder: Path, config: TrainConfig) -> None:
    """Refuse a folder that holds a training run of another config (it is never overwritten)."""
    if folder.exists() and not folder.is_dir():
        raise TaskspaceError(f"'{folder}' is a file, not a folder; choose a folder for --out")
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        if (folder / METRICS_FILE).is_file() or (folder / MODEL_FILE).is_file():
            raise TaskspaceError(
                f"'{folder}' holds a model or metrics but no {CONFIG_FILE}, so not a taskspace training run; "
                "choose an empty --out folder"
            )
        return
    try:
        record = read_json(config_file)
        saved_hash = record.get("config_hash") if isinstance(record, dict) else None
    except TaskspaceError:
        saved_hash = None
    if saved_hash not in (config.hash(), config.legacy_hash()):
        raise TaskspaceError(
            f"'{folder}' holds a training run of another config (hash {saved_hash}, this one {config.hash()}); "
            "choose another --out folder, or the options of that run"
        )
