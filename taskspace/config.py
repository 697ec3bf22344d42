"""Configuration as data: frozen dataclasses validated once, TOML in, JSON out, and a config hash.

The CLI builds a :class:`TrainConfig` from a TOML file and its flags; library functions receive it
explicitly. :meth:`TrainConfig.hash` names a configuration in run folders and checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskspace.errors import ConfigError, did_you_mean
from taskspace.io import content_hash, read_toml, sha256_of_file

__all__ = ["TrainConfig", "GridConfig", "MODES", "PRECISIONS", "load_toml_options"]

MODES = ("modular", "e2e", "finetune")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the result of one training run.

    Attributes:
        task: task id (``cat_vs_dog``) or ``all`` for every class of the dataset.
        dataset: ``cifar10``, ``digits`` or an image folder.
        mode: ``modular`` (pairwise kernel objective per hidden module, then the output module),
            ``e2e`` (cross-entropy through the whole net) or ``finetune`` (``e2e`` starting from the
            hidden modules of ``init_from``).
        architecture: a registered architecture; ``None`` picks ``digits_cnn`` for the digits and
            ``small_cnn`` otherwise.
        width: channels of the first stage (``None``: the architecture's default).
        cut_points: stage boundaries between hidden modules; empty = the whole trunk is one module.
        epochs: passes over the training split for each hidden module (modular) or the net (e2e).
        batch_size: mini-batch size (the pairwise objective sees batch_size² pairs); ``None`` picks 32
            for the digits (a few hundred images per task: 128 would leave BatchNorm's running
            statistics unsettled after the handful of steps an epoch has) and 128 otherwise.
        lr: peak learning rate of the warm-up + cosine schedule (SGD with momentum).
        momentum: SGD momentum.
        weight_decay: L2 penalty of SGD.
        warmup_epochs: epochs of linear warm-up before the cosine decay.
        objective: pairwise objective of hidden modules (see ``taskspace.objectives``).
        objective_params: keyword arguments of the objective (e.g. ``{"temperature": 0.1}`` for
            ``supervised_contrastive``).
        kernel: kernel of hidden modules (see ``taskspace.kernels``).
        kernel_params: keyword arguments of the kernel (e.g. ``{"sigma": 1.0}`` for ``gaussian``).
        labels_per_class: labels used by the output module (modular) or the whole net (e2e);
            ``None`` = all training labels. Drawn from the training split only.
        output_steps: L-BFGS iterations of the output module.
        output_unlabeled: with ``labels_per_class``, also use the rest of the training split without
            its labels: they are labelled by spherical k-means from the few labeled images
            (semi-supervised; see ``taskspace.training.semi_supervised``). Modular mode only.
        output_weight_decay: L2 penalty of the output module.
        validation_fraction: share of the training data held out for checkpoint choice.
        augment: random crop (pad 4) and horizontal flip while training.
        seed: the one seed every random choice is derived from.
        init_from: checkpoint whose hidden modules start a ``finetune`` run.
        device: ``cpu``, ``cuda`` or ``auto``.
        precision: ``fp32``, or ``bf16`` (forward passes under bfloat16 autocast; the pairwise
            objective, the loss and the weights stay float32).
        compile: compile the training step's forward pass with ``torch.compile``.
    """

    task: str
    dataset: str = "cifar10"
    mode: str = "modular"
    architecture: str | None = None
    width: int | None = None
    cut_points: tuple[int, ...] = ()
    epochs: int = 10
    batch_size: int | None = None
    lr: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    objective: str = "upper_tri_alignment"
    objective_params: dict[str, float] = field(default_factory=dict)
    kernel: str = "cosine_relu"
    kernel_params: dict[str, float] = field(default_factory=dict)
    labels_per_class: int | None = None
    output_steps: int = 200
    output_weight_decay: float = 1e-4
    output_unlabeled: bool = False
    validation_fraction: float = 0.1
    augment: bool = True
    seed: int = 0
    init_from: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        object.__setattr__(self, "cut_points", tuple(int(point) for point in self.cut_points))
        object.__setattr__(self, "kernel_params", dict(self.kernel_params))
        object.__setattr__(self, "objective_params", dict(self.objective_params))
        if self.architecture is None:
            object.__setattr__(self, "architecture", "digits_cnn" if self.dataset == "digits" else "small_cnn")
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", 32 if self.dataset == "digits" else 128)
        self._validate()

    def _validate(self) -> None:
        from taskspace.kernels import list_kernels
        from taskspace.models import list_models
        from taskspace.objectives import get_objective, list_objectives

        _choice("mode", self.mode, MODES)
        _choice("architecture", str(self.architecture), list_models())
        _choice("objective", self.objective, list_objectives())
        get_objective(self.objective, **self.objective_params)
        _choice("kernel", self.kernel, list_kernels())
        _choice("device", self.device, ("cpu", "cuda", "auto"))
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true or false, got {self.compile!r}")
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size, minimum=2)
        _positive_int("output_steps", self.output_steps)
        if self.width is not None:
            _positive_int("width", self.width)
        if self.labels_per_class is not None:
            _positive_int("labels_per_class", self.labels_per_class)
        for name in ("lr", "weight_decay", "output_weight_decay", "warmup_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value != value or value < 0 or value == float("inf"):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr == 0:
            raise ConfigError("lr must be > 0, got 0; use e.g. --lr 0.5")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}; e.g. 0.1")
        if not isinstance(self.output_unlabeled, bool):
            raise ConfigError(f"output_unlabeled must be true or false, got {self.output_unlabeled!r}")
        if self.output_unlabeled and (self.mode != "modular" or self.labels_per_class is None):
            raise ConfigError(
                "output_unlabeled labels the rest of the training split from a few labels: it needs "
                "--mode modular and --labels-per-class K"
            )
        if self.mode == "finetune" and not self.init_from:
            raise ConfigError("mode 'finetune' needs a source checkpoint; pass --init-from DIR/model.pt")
        if self.mode != "finetune" and self.init_from:
            raise ConfigError(f"--init-from is only used with --mode finetune, not '{self.mode}'")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        values = dataclasses.asdict(self)
        values["cut_points"] = list(self.cut_points)
        return values

    def hash(self) -> str:
        """Short SHA-256 of the canonical JSON of every field but ``device``; ``init_from`` counts by the
        checkpoint's contents (its SHA-256), not its path, so a moved folder keeps its hash and a
        checkpoint changed in place does not.

        Options added after run folders were first written (``objective_params``,
        ``output_unlabeled``, ``precision``, ``compile``) are left out while they hold their defaults,
        so those folders keep their hash and stay usable.
        """
        values = self._hashed_values()
        if self.init_from and Path(self.init_from).is_file():
            values["init_from"] = "sha256:" + sha256_of_file(self.init_from)
        return content_hash(values)

    def legacy_hash(self) -> str:
        """The hash folders written before ``init_from`` counted by contents recorded (by its path); equal to
        :meth:`hash` when there is no ``init_from``."""
        return content_hash(self._hashed_values())

    def _hashed_values(self) -> dict[str, Any]:
        values = self.to_dict()
        values.pop("device")
        for name, default in _ADDED_LATER.items():
            if values[name] == default:
                values.pop(name)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError` with a suggestion."""
        names = {item.name for item in dataclasses.fields(cls)}
        for key in values:
            if key not in names:
                raise ConfigError(f"unknown option '{key}'{did_you_mean(key, names)}")
        if "task" not in values or values["task"] is None:
            raise ConfigError("no task given; pass --task ID (list them with `taskspace tasks`)")
        cleaned = dict(values)
        if "cut_points" in cleaned and cleaned["cut_points"] is not None:
            cleaned["cut_points"] = tuple(cleaned["cut_points"])
        try:
            return cls(**cleaned)
        except TypeError as error:
            raise ConfigError(f"bad options ({error})") from None

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: What a value of each annotation of :class:`TrainConfig` must be, and how the message names it.
_TYPE_CHECKS: dict[str, tuple[Any, str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "int | None": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "an integer"),
    "float": (_is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict[str, float]": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_number(x)
                                                               for k, x in v.items()), "a table of numbers"),
    "tuple[int, ...]": (lambda v: isinstance(v, list | tuple) and all(isinstance(x, int) and not isinstance(x, bool)
                                                                      for x in v), "a list of integers"),
}


def _check_types(config: Any) -> None:
    """Every field of ``config`` of the type its annotation names (read from the dataclass), else one line."""
    for item in dataclasses.fields(config):
        check = _TYPE_CHECKS.get(str(item.type))
        value = getattr(config, item.name)
        if check is not None and not check[0](value):
            raise ConfigError(f"{item.name} must be {check[1]}, got {value!r}")


@dataclass(frozen=True)
class GridConfig:
    """A task-space experiment: the zoo, the scores and the ground truth.

    Attributes:
        space: ``default``, ``digits`` or a TOML file of a task space: where the space is read from
            when a run is created. A run is identified by the space's content, not by this name.
        train: options of every source network's :class:`TrainConfig` (the task is set per source).
        score_samples: target training images the estimators see (``None`` = all, exact scores).
        probe_draws: few-label subsets averaged per frozen_kK ground-truth cell.
        finetune_epochs: epochs of the fine-tuning ground truth.
        finetune_lr: peak learning rate of the fine-tuning ground truth (no warm-up).
        seed: root seed; every cell derives its own from it.
    """

    space: str = "default"
    train: dict[str, Any] = field(default_factory=dict)
    score_samples: int | None = None
    probe_draws: int = 3
    finetune_epochs: int = 2
    finetune_lr: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", dict(self.train))
        if not isinstance(self.space, str):
            raise ConfigError(f"space must be a name or a TOML file's path, got {self.space!r}")
        if "task" in self.train or "mode" in self.train:
            raise ConfigError("grid training options must not set task or mode; the grid sets them per source")
        try:  # every option checked now, before a run folder is written with them
            TrainConfig.from_dict({**self.train, "task": "all", "mode": "modular"})
        except ConfigError as error:
            raise ConfigError(f"grid training options: {error}") from None
        if self.score_samples is not None:
            _positive_int("score_samples", self.score_samples, minimum=10)
        _positive_int("probe_draws", self.probe_draws)
        _positive_int("finetune_epochs", self.finetune_epochs)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.finetune_lr, int | float) or not 0 < self.finetune_lr < float("inf"):
            raise ConfigError(f"finetune_lr must be a finite number > 0, got {self.finetune_lr!r}")

    def source_config(self, task_id: str, dataset: str) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, "task": task_id, "dataset": dataset, "mode": "modular"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity_dict(self) -> dict[str, Any]:
        """Every option but ``space`` (a run's space is identified by its content) and the training
        ``device`` (where the zoo trains, not what it is)."""
        values = self.to_dict()
        values.pop("space")
        values["train"] = {key: value for key, value in values["train"].items() if key != "device"}
        return values

    def hash(self) -> str:
        return content_hash(self.to_dict())


#: Options added after the first run folders were written, with the default the hash leaves out.
_ADDED_LATER: dict[str, Any] = {"objective_params": {}, "output_unlabeled": False, "precision": "fp32",
                                "compile": False}


def load_toml_options(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the options of a TOML config file (top-level keys, or the ``[train]`` table)."""
    file = Path(path)
    document = read_toml(file, what="config file")
    options = document.get("train", document)
    if not isinstance(options, dict):
        raise ConfigError(f"[train] in '{file}' must be a table of options")
    return dict(options)


def _choice(name: str, value: str, options: list[str] | tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(
            f"unknown {name} '{value}'{did_you_mean(str(value), options)} (choose from: {', '.join(options)})"
        )


def _positive_int(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
