"""Ground-truth protocols: how a source network is reused on a target, and the test accuracy it reaches.

A protocol is a function of one :class:`TransferJob` that returns the cell's record (``accuracy`` and
whatever else it measured), registered under a name by :func:`register_protocol`. A name may carry
one positive integer parameter, written ``{k}`` in the pattern::

    @register_protocol("frozen_k{k}", description="frozen trunk, linear probe on {k} labels per class")
    def frozen_few_labels(job: TransferJob, *, k: int) -> dict: ...

so ``frozen_k10`` calls it with ``k=10``. Built in:

- ``frozen_all``: the source's trunk frozen, a new output module fitted on all the target's training
  labels (forward passes and one linear fit);
- ``frozen_kK``: the same with K labels per class, averaged over the grid's seeded draws;
- ``finetune``: the whole network trained on the target, starting from the source's hidden modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace.config import TrainConfig
from taskspace.data import ImageDataset
from taskspace.errors import ConfigError, did_you_mean
from taskspace.features import SourceOutputs, cached_source_outputs
from taskspace.tasks import TaskSplits, sample_labels_per_class
from taskspace.training.seeds import derive_seed

__all__ = [
    "TransferJob",
    "Protocol",
    "register_protocol",
    "get_protocol",
    "list_protocols",
    "probe_draws",
    "probe_predictions",
    "probe_accuracy",
    "builtin_protocol",
]


@dataclass(frozen=True)
class TransferJob:
    """Everything a protocol needs to measure one (source, target) cell.

    Attributes:
        source: the source's task id.
        target: the target's task id.
        checkpoint: the source network's checkpoint.
        splits: the target's train, validation and test splits.
        config: the target's training options (as the zoo would train the target itself).
        seed: the grid's root seed; the protocol derives its own from it and the cell's ids.
        probe_draws: few-label subsets averaged per few-label probe.
        finetune_epochs: epochs of a fine-tuning protocol.
        finetune_lr: peak learning rate of a fine-tuning protocol (no warm-up).
        feature_cache: folder of cached forward passes.
        work_dir: a folder the protocol may train in (a rerun resumes there).
        dataset: the dataset of the target's images.
        outputs: the source's forward passes over the target's training and test images, where the
            run read them from its store for a protocol that reads them (else the protocol makes them).
    """

    source: str
    target: str
    checkpoint: Path
    splits: TaskSplits
    config: TrainConfig
    seed: int
    probe_draws: int
    finetune_epochs: int
    finetune_lr: float
    feature_cache: Path
    work_dir: Path
    dataset: ImageDataset
    outputs: tuple[SourceOutputs, SourceOutputs] | None = None


Measure = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Protocol:
    """A registered protocol bound to its parameter: ``measure(job)`` returns the cell's record.

    Attributes:
        name: the protocol's name (``frozen_k10``).
        description: what it measures, in words.
        function: the registered function.
        params: the parameter read from the name (``{"k": 10}``), or none.
        reads_outputs: whether it reads the source's frozen forward passes (``TransferJob.outputs``),
            which a run then takes from its store.
    """

    name: str
    description: str
    function: Measure
    params: dict[str, int]
    reads_outputs: bool = False

    def measure(self, job: TransferJob) -> dict[str, Any]:
        return self.function(job, **self.params)


@dataclass(frozen=True)
class _Entry:
    pattern: str
    description: str
    function: Measure
    reads_outputs: bool


_ENTRIES: dict[str, _Entry] = {}
_PARAMETER = re.compile(r"\{([a-z_]+)\}")


def register_protocol(pattern: str, *, description: str, reads_outputs: bool = False) -> Callable[[Measure], Measure]:
    """Decorator: register a protocol under ``pattern`` (a name, or a name with one ``{param}``);
    ``reads_outputs``: it reads the source's frozen forward passes from ``TransferJob.outputs`` when given.

    Raises:
        ValueError: a pattern registered twice, or with more than one parameter.
    """
    if pattern in _ENTRIES:
        raise ValueError(f"protocol '{pattern}' is registered twice")
    if len(_PARAMETER.findall(pattern)) > 1:
        raise ValueError(f"protocol pattern '{pattern}' has more than one parameter")

    def decorator(function: Measure) -> Measure:
        _ENTRIES[pattern] = _Entry(pattern, description, function, reads_outputs)
        return function

    return decorator


def list_protocols() -> list[str]:
    """The registered patterns, sorted (``finetune``, ``frozen_all``, ``frozen_k{k}``)."""
    return sorted(_ENTRIES)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a parametrised one is matched with its positive integer.

    Raises:
        ConfigError: no protocol matches (with the closest name and the patterns).
    """
    for pattern, entry in _ENTRIES.items():
        parameter = _PARAMETER.search(pattern)
        if parameter is None:
            if name == pattern:
                return Protocol(name, entry.description, entry.function, {}, entry.reads_outputs)
            continue
        prefix, suffix = pattern[: parameter.start()], pattern[parameter.end():]
        match = re.fullmatch(re.escape(prefix) + r"([1-9][0-9]*)" + re.escape(suffix), name)
        if match:
            params = {parameter.group(1): int(match.group(1))}
            return Protocol(name, entry.description.format(**params), entry.function, params, entry.reads_outputs)
    examples = [pattern.replace("{k}", "10") for pattern in list_protocols()]
    raise ConfigError(
        f"unknown ground-truth protocol '{name}'{did_you_mean(name, examples)} "
        f"(choose from: {', '.join(pattern.replace('{k}', 'K') for pattern in list_protocols())})"
    )


def builtin_protocol(name: str) -> tuple[str, int | None]:
    """Which built-in protocol ``name`` is, checked against the one registry: ``("frozen", K)`` (K labels
    per class, None = all) or ``("finetune", None)``. What a zoo run measures itself.

    Raises:
        ConfigError: an unknown name (as :func:`get_protocol` says it), or a protocol registered by a
            user, which a zoo run cannot carry out (its results can be imported).
    """
    protocol = get_protocol(name)
    if protocol.function is frozen_all_labels:
        return "frozen", None
    if protocol.function is frozen_few_labels:
        return "frozen", protocol.params["k"]
    if protocol.function is finetune:
        return "finetune", None
    raise ConfigError(f"protocol '{name}' is measured on a trained run only; a zoo run measures frozen_all, "
                      "frozen_kK and finetune itself (import other results with `taskspace truth RUN --import FILE`)")


# -- the frozen-trunk probes --------------------------------------------------------------------------


def probe_draws(seed: int, target: str, train_labels: np.ndarray, labels_per_class: int | None,
                draws: int) -> list[np.ndarray]:
    """Positions in the target's training split that each probe is fitted on: all of them once
    (``labels_per_class`` None), else ``draws`` seeded draws of K labels per class."""
    if labels_per_class is None:
        return [np.arange(len(train_labels))]
    return [sample_labels_per_class(train_labels, labels_per_class,
                                    seed=derive_seed(seed, "probe", target, labels_per_class, draw))
            for draw in range(draws)]


def probe_predictions(train: SourceOutputs, test: SourceOutputs, *, steps: int, weight_decay: float) -> np.ndarray:
    """Test-set class predictions of a new output module fitted on frozen source features."""
    from taskspace.training.trainers import fit_linear

    classes = int(max(train.labels.max(), test.labels.max())) + 1
    linear = torch.nn.Linear(train.features.shape[1], classes)
    fit_linear(linear, features=torch.from_numpy(train.features), labels=torch.from_numpy(train.labels),
               steps=steps, weight_decay=weight_decay)
    with torch.no_grad():
        return np.asarray(linear(torch.from_numpy(test.features)).argmax(dim=1).numpy())


def probe_accuracy(train: SourceOutputs, test: SourceOutputs, *, steps: int, weight_decay: float) -> float:
    """Test accuracy of a new output module fitted on frozen source features (forward passes only)."""
    predictions = probe_predictions(train, test, steps=steps, weight_decay=weight_decay)
    return float((predictions == test.labels).mean())


def _frozen(job: TransferJob, labels_per_class: int | None) -> dict[str, Any]:
    from taskspace.training.run import resolve_device

    if job.outputs is not None:  # read from the run's store, where the scores' forward passes are
        train, test = job.outputs
    else:
        device = resolve_device(job.config.device)
        train = cached_source_outputs(job.checkpoint, job.splits.train, cache_dir=job.feature_cache, device=device)
        test = cached_source_outputs(job.checkpoint, job.splits.test, cache_dir=job.feature_cache, device=device)
    accuracies = [
        probe_accuracy(train.subset(positions), test, steps=job.config.output_steps,
                       weight_decay=job.config.output_weight_decay)
        for positions in probe_draws(job.seed, job.target, train.labels, labels_per_class, job.probe_draws)
    ]
    recipe = {"trains": "a linear output module on the frozen trunk's features (unit norm), L-BFGS",
              "steps": job.config.output_steps, "weight_decay": job.config.output_weight_decay,
              "labels_per_class": labels_per_class, "draws": len(accuracies)}
    return {"accuracy": float(np.mean(accuracies)), "draws": accuracies, "recipe": recipe}


@register_protocol("frozen_all", description="frozen trunk, linear probe trained on all target labels",
                   reads_outputs=True)
def frozen_all_labels(job: TransferJob) -> dict[str, Any]:
    return _frozen(job, None)


@register_protocol("frozen_k{k}", description="frozen trunk, linear probe trained on {k} labels per class",
                   reads_outputs=True)
def frozen_few_labels(job: TransferJob, *, k: int) -> dict[str, Any]:
    return _frozen(job, k)


@register_protocol("finetune", description="the whole network fine-tuned on the target")
def finetune(job: TransferJob) -> dict[str, Any]:
    from taskspace.training import train_task

    config = job.config.replace(
        mode="finetune",
        epochs=job.finetune_epochs,
        lr=job.finetune_lr,
        init_from=str(job.checkpoint),
        seed=derive_seed(job.seed, "finetune", job.target) % (2**31),
        warmup_epochs=0.0,
    )
    metrics = train_task(config, out_dir=job.work_dir, dataset=job.dataset)
    recipe = {"trains": "the whole network from the source's hidden modules, with a new output module",
              "optimizer": f"SGD, momentum {config.momentum}, weight decay {config.weight_decay}",
              "lr": config.lr, "epochs": config.epochs, "warmup_epochs": config.warmup_epochs,
              "batch_size": config.batch_size}
    return {"accuracy": float(metrics["test_accuracy"]), "train_seconds": metrics["train_seconds"], "recipe": recipe}
