"""One composition: read the nets, apply an operator, train what it left fresh, measure, save a checkpoint.

::

    compose(ComposeRequest("stack", source="zoo/cat_vs_dog/model.pt", keep=1, task="deer_vs_horse"),
            out_dir="composed/stack")

Every input is checked before anything is written: the nets load, the operator's depth or module
exists, the modules fit, the task's classes exist, the output folder is not a source's own folder.
The result is an ordinary checkpoint (``model.pt``, readable by ``load_model``, usable as a zoo source
or to fine-tune from) with ``metrics.json`` (test accuracy, seconds of each part) and the composition
it records: which module came from which file (by SHA-256), which were trained here, which adapters
were placed and why.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from taskspace.compose.operators import drop, invert, split, stack, substitute
from taskspace.config import TrainConfig
from taskspace.data import ImageDataset, load_dataset
from taskspace.errors import ConfigError
from taskspace.io import ensure_writable_dir, read_json, sha256_of_file, write_json
from taskspace.models import ModularNet
from taskspace.tasks import Task
from taskspace.training.checkpoints import load_model, save_model
from taskspace.training.compute import machine_record
from taskspace.training.run import METRICS_FILE, MODEL_FILE
from taskspace.training.tensors import TensorSplit, to_tensor_split

__all__ = ["OPERATORS", "ComposeRequest", "compose"]

#: The operators and what each needs besides the source net.
OPERATORS = {
    "split": "cut_points: regroup the net's stages into modules (no training)",
    "port": "keep, task: the first `keep` modules, frozen, under a new output module for the task",
    "stack": "keep, task: the first `keep` modules, frozen, then new hidden modules trained with the pairwise "
             "objective for the task, then the output module",
    "substitute": "donor, module: module `module` taken from the donor net, adapters where statistics differ, "
                  "output module refitted",
    "drop": "keep: only the first `keep` modules, the output module refitted on the net's own task",
    "invert": "order: the hidden modules in a new order (a module may repeat), adapters where statistics differ, "
              "output module refitted",
}


@dataclass(frozen=True)
class ComposeRequest:
    """What to compose.

    Attributes:
        operator: one of :data:`OPERATORS`.
        source: the net's checkpoint (``model.pt``).
        donor: the second net's checkpoint (``substitute``).
        task: the target task (``port``, ``stack``); ``drop`` and ``substitute`` use the source's own.
        keep: hidden modules kept (``port``, ``stack``, ``drop``).
        module: the hidden module replaced (``substitute``).
        cut_points: the new module boundaries (``split``).
        order: the hidden modules in the order the new net runs them (``invert``).
        train: training settings of what is trained (dataset, epochs, objective, output module, seed).
    """

    operator: str
    source: str | os.PathLike[str]
    donor: str | os.PathLike[str] | None = None
    task: str | None = None
    keep: int | None = None
    module: int | None = None
    cut_points: Sequence[int] = ()
    order: Sequence[int] = ()
    train: dict[str, Any] = field(default_factory=dict)


def compose(request: ComposeRequest, *, out_dir: str | os.PathLike[str], data_root: str | None = None,
            dataset: ImageDataset | None = None, show_progress: bool = False,
            overwrite: bool = False) -> dict[str, Any]:
    """Build, train and measure the composed net; write ``model.pt`` and ``metrics.json`` to ``out_dir``.

    Args:
        overwrite: replace a network already in ``out_dir`` (its files, and the modules of an earlier
            split, are removed first); without it such a folder is refused.

    Raises:
        ConfigError: an unknown operator, a missing or out-of-range argument, modules that do not fit, an
            unknown task, an output folder that holds a source, lies inside a run, or holds a network
            (without ``overwrite``).
        CheckpointError: a source is not a taskspace checkpoint.
    """
    if request.operator not in OPERATORS:
        raise ConfigError(f"unknown operator '{request.operator}'; use one of {', '.join(OPERATORS)}")
    _refuse_unused_arguments(request)
    folder = Path(out_dir)
    sources = [Path(request.source)] + ([Path(request.donor)] if request.donor is not None else [])
    for path in sources:
        if folder.resolve() == path.resolve().parent:
            raise ConfigError(f"the output folder '{folder}' holds the source '{path}'; write the composed net to "
                              "another folder")
    run = enclosing_run(folder)
    if run is not None:
        raise ConfigError(f"the output folder '{folder}' is inside the run '{run}', whose networks are the run's "
                          "own; write the composed net to a folder outside it")
    held = [name for name in (MODEL_FILE, METRICS_FILE, "modules") if (folder / name).exists()]
    if held and not overwrite:
        raise ConfigError(f"the output folder '{folder}' already holds a network ({', '.join(held)}); choose an "
                          "empty folder, or pass --overwrite to replace it")
    net, saved = load_model(request.source)
    donor = load_model(request.donor)[0] if request.donor is not None else None
    config = _train_config(request, saved, sources[0])
    if dataset is None:
        dataset = load_dataset(config.dataset, data_root=data_root)
    task = Task.parse(config.task, class_names=dataset.class_names)
    splits = task.select(dataset, validation_fraction=config.validation_fraction, seed=config.seed)
    device = torch.device("cpu")
    normalization = saved["normalization"]
    tensors = {name: to_tensor_split(getattr(splits, name), mean=normalization["mean"], std=normalization["std"],
                                     device=device) for name in ("train", "validation", "test")}
    began = time.perf_counter()
    composed, trained, notes = _apply(request, net, donor, task.num_classes, tensors["train"], config.seed)
    build_seconds = time.perf_counter() - began
    ensure_writable_dir(folder)  # every input checked: only now is anything written
    if overwrite:  # nothing of the network replaced is left beside the new one
        for name in (METRICS_FILE, MODEL_FILE):  # the metrics, which mean done, first
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "modules", ignore_errors=True)
    # the model's own record of what made it: never the hash of a training config, so a composed net is
    # never taken for a run's trained network
    metrics: dict[str, Any] = {"operator": request.operator, "task": task.id, "seed": config.seed,
                               "config_hash": f"compose-{request.operator}", "build_seconds": build_seconds}
    metrics.update(_train(composed, trained, config, tensors, folder, show_progress=show_progress,
                          refit=request.operator != "split"))
    from taskspace.training.trainers import evaluate_accuracy

    metrics["test_accuracy"] = evaluate_accuracy(composed, tensors["test"])
    metrics["composition"] = _record(request, composed, trained, notes, sources)
    save_model(folder / MODEL_FILE, composed, normalization=normalization, task_classes=task.classes,
               config_hash=metrics["config_hash"], composition=metrics["composition"])
    metrics["model_sha256"] = sha256_of_file(folder / MODEL_FILE)
    metrics["trained_on"] = machine_record()  # the bytes above are this processor's (training/compute.py)
    if request.operator == "split":
        metrics["module_files"] = _save_modules(composed, folder, metrics["composition"])
    write_json(folder / METRICS_FILE, metrics)
    return metrics


def enclosing_run(folder: Path) -> Path | None:
    """The run folder (one holding a run record) that ``folder`` is, or lies inside, or None."""
    from taskspace.runner.folder import LAYOUT

    resolved = folder.expanduser().resolve()
    for candidate in (resolved, *resolved.parents):
        if (candidate / LAYOUT["record"]).is_file():
            return candidate
    return None


def _save_modules(net: ModularNet, folder: Path, composition: dict[str, Any]) -> list[str]:
    """Each hidden module on its own (``modules/module_<i>.pt``): its weights, its stages and where it came from."""
    from taskspace.compose.operators import module_bounds
    from taskspace.io import save_checkpoint

    bounds, written = module_bounds(net), []
    for index, module in enumerate(net.hidden):
        path = folder / "modules" / f"module_{index}.pt"
        save_checkpoint(path, {"schema": 1, "kind": "taskspace_module", "module": index,
                               "stages": [bounds[index], bounds[index + 1]], "spec": dict(net.spec),
                               "state_dict": module.state_dict(), "provenance": composition["modules"][index]})
        written.append(str(path.relative_to(folder)))
    return written


#: The arguments each operator reads (``task`` is also accepted where it names the source's own task;
#: ``epochs`` is the training option only stack uses).
_OPERATOR_ARGUMENTS = {"split": {"cut_points"}, "port": {"keep", "task"}, "stack": {"keep", "task", "epochs"},
                       "substitute": {"donor", "module", "task"}, "drop": {"keep", "task"},
                       "invert": {"order", "task"}}
_FLAGS = {"donor": "--with", "keep": "--keep", "module": "--module", "cut_points": "--cut-points",
          "order": "--order", "task": "--task", "epochs": "--epochs"}


def _refuse_unused_arguments(request: ComposeRequest) -> None:
    """An argument the operator does not read is a mistake to say, not to ignore (``--keep`` given to invert)."""
    given = {name: request.train.get(name) if name == "epochs" else getattr(request, name) for name in _FLAGS}
    reads = _OPERATOR_ARGUMENTS[request.operator]
    unused = [name for name, value in given.items() if value not in (None, ()) and name not in reads]
    if unused:
        raise ConfigError(f"{request.operator} does not use {', '.join(_FLAGS[name] for name in unused)}; it takes "
                          f"{', '.join(_FLAGS[name] for name in _FLAGS if name in reads)}")


def _train_config(request: ComposeRequest, saved: dict[str, Any], source: Path) -> TrainConfig:
    """The training settings: the request's, over the source's own config (``config.json`` beside it)."""
    recorded = source.parent / "config.json"
    base = read_json(recorded) if recorded.is_file() else {}
    own_task = "_vs_".join(saved["task_classes"])
    if request.operator in ("port", "stack"):
        if request.task is None:
            raise ConfigError(f"{request.operator} needs the target task (--task, e.g. deer_vs_horse)")
        task = request.task
    else:
        if request.task is not None and request.task != own_task:
            raise ConfigError(f"{request.operator} keeps the source's own task '{own_task}'; to reuse its modules "
                              "for another task use port or stack")
        task = own_task
    spec = saved["spec"]
    settings = {key: base[key] for key in ("dataset", "batch_size", "lr", "momentum", "weight_decay", "objective",
                                           "objective_params", "kernel", "kernel_params", "output_steps",
                                           "output_weight_decay", "validation_fraction", "augment", "epochs")
                if key in base}
    import dataclasses

    known = {item.name for item in dataclasses.fields(TrainConfig)} - {"task", "architecture", "width", "cut_points",
                                                                       "mode", "init_from"}
    unknown = sorted(set(request.train) - known)
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; use any of {', '.join(sorted(known))}")
    settings.update(request.train)
    settings.update(task=task, architecture=spec["architecture"], width=spec["width"], cut_points=spec["cut_points"])
    settings.setdefault("dataset", "digits" if spec["in_channels"] == 1 else "cifar10")
    return TrainConfig(**settings)


def _apply(request: ComposeRequest, net: ModularNet, donor: ModularNet | None, num_classes: int,
           probe: TensorSplit, seed: int) -> tuple[ModularNet, list[int], list[Any]]:
    """The composed net, the hidden modules to train, and the adapter notes."""
    def needs(value: Any, flag: str) -> Any:
        if value is None:
            raise ConfigError(f"{request.operator} needs {flag}")
        return value

    if request.operator == "split":
        if not request.cut_points:
            raise ConfigError("split needs the cut points (--cut-points, e.g. 1,2)")
        return split(net, request.cut_points), [], []
    if request.operator == "drop":
        return drop(net, needs(request.keep, "--keep"), num_classes=None), [], []
    if request.operator == "port":
        return drop(net, needs(request.keep, "--keep"), num_classes=num_classes), [], []
    if request.operator == "stack":
        keep = needs(request.keep, "--keep")
        composed = stack(net, keep, num_classes=num_classes, seed=seed)
        return composed, list(range(keep, composed.num_hidden)), []
    if request.operator == "invert":
        if not request.order:
            raise ConfigError("invert needs the new order of the hidden modules (--order, e.g. 0,2,1)")
        inverted, notes = invert(net, request.order, probe=_probe_images(probe, seed))
        return inverted, [], notes
    index = needs(request.module, "--module")
    if donor is None:
        raise ConfigError("substitute needs the donor net (--with DONOR/model.pt)")
    composed, notes = substitute(net, donor, index, probe=_probe_images(probe, seed))
    return composed, [], notes


def _probe_images(probe: TensorSplit, seed: int) -> torch.Tensor:
    """Up to 1,000 of the task's training images, drawn with ``seed``: where channel statistics are compared."""
    generator = torch.Generator().manual_seed(seed)
    return probe.images_at(torch.randperm(len(probe), generator=generator)[:1000])


def _train(net: ModularNet, trained: list[int], config: TrainConfig, tensors: dict[str, Any], folder: Path, *,
           show_progress: bool, refit: bool) -> dict[str, Any]:
    """Train the fresh hidden modules (pairwise objective) and refit the output module; seconds of each."""
    from taskspace.kernels import get_kernel
    from taskspace.objectives import get_objective
    from taskspace.training.run import fit_output_module
    from taskspace.training.trainers import OptimizerSettings, train_hidden_module

    metrics: dict[str, Any] = {}
    began = time.perf_counter()
    if trained:
        kernel = get_kernel(config.kernel, **config.kernel_params)
        objective = get_objective(config.objective, **config.objective_params)
        assert config.batch_size is not None  # set by TrainConfig
        settings = OptimizerSettings(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                                     momentum=config.momentum, weight_decay=config.weight_decay,
                                     warmup_epochs=config.warmup_epochs, augment=config.augment)
        for index in trained:
            train_hidden_module(net, index, train=tensors["train"], validation=tensors["validation"], kernel=kernel,
                                objective=objective, k_min=kernel.k_min, k_max=kernel.k_max, settings=settings,
                                seed=config.seed, state_path=None, fingerprint="compose", show_progress=show_progress)
    metrics["hidden_seconds"] = time.perf_counter() - began
    metrics["trained_modules"] = trained
    began = time.perf_counter()
    if refit:
        metrics.update(fit_output_module(net, tensors["train"], labels_per_class=config.labels_per_class,
                                         seed=config.seed, steps=config.output_steps,
                                         weight_decay=config.output_weight_decay))
    metrics["output_seconds"] = time.perf_counter() - began
    metrics["train_seconds"] = metrics["hidden_seconds"] + metrics["output_seconds"]
    return metrics


def _record(request: ComposeRequest, net: ModularNet, trained: list[int], notes: list[Any],
            sources: list[Path]) -> dict[str, Any]:
    """Which module came from where: kept from the source, taken from the donor, or trained here."""
    digests = {str(path): sha256_of_file(path) for path in sources}
    source, donor = str(sources[0]), str(sources[1]) if len(sources) > 1 else None
    modules = []
    for index in range(net.num_hidden):
        if index in trained:
            origin: dict[str, Any] = {"trained_here": True}
        elif request.operator == "substitute" and index == request.module:
            origin = {"from": donor, "sha256": digests[str(donor)], "module": index}
        elif request.operator == "invert":
            origin = {"from": source, "sha256": digests[source], "module": int(request.order[index])}
        else:
            origin = {"from": source, "sha256": digests[source], "module": index}
        modules.append({"module": index, **origin})
    return {"operator": request.operator, "modules": modules,
            "output_module": "kept" if request.operator == "split" else "refitted here",
            "adapters": [note.to_record() for note in notes]}
