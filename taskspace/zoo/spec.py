"""The zoo file: sources of any origin, named in TOML, checked before anything runs.

A zoo file lists ``[[source]]`` tables. Each names exactly one origin::

    [[source]]
    name = "r18_vehicles"
    torchvision = "resnet18"              # an architecture of torchvision.models, built by name
    weights = "weights/r18_vehicles.pt"   # a state_dict, read with torch.load(weights_only=True)
    options = { num_classes = 4 }         # keyword arguments of the constructor
    layers = ["layer2", "layer3", "layer4"]
    input = { size = 32, mean = [0.49, 0.48, 0.45], std = [0.25, 0.24, 0.26] }

Origins: ``torchvision`` (an architecture name), ``timm`` (a model name; needs ``taskspace[timm]``),
``factory`` (``"package.module:function"`` returning an ``nn.Module``), ``torchscript`` (a scripted
or traced module's file), ``checkpoint`` (a taskspace checkpoint) and ``features`` (features
extracted elsewhere: a path template with ``{target}`` and optionally ``{layer}`` and ``{split}``).
Relative paths are read from the zoo file's folder. Parsing needs no torch: this module only reads
and checks the file; :mod:`taskspace.zoo.networks` builds the networks.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskspace.errors import ConfigError, did_you_mean
from taskspace.io import content_hash, read_toml, sha256_of_file

__all__ = ["ORIGINS", "InputSpec", "SourceSpec", "ZooSpec", "read_zoo_file", "parse_zoo", "module_id",
           "split_module_id", "IMAGENET_INPUT", "TRAINED_LAYER", "TRAINED_REFERENCE"]

#: The keys that say where a source comes from; a source names exactly one.
ORIGINS = ("torchvision", "timm", "factory", "torchscript", "checkpoint", "features")

#: Every key a ``[[source]]`` table may hold.
_KEYS = (*ORIGINS, "name", "weights", "options", "layers", "input", "tokens", "logits", "accuracy")

#: The preprocessing torchvision's and timm's ImageNet weights expect, used when a source names none.
IMAGENET_INPUT = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
#: The pseudo-layer of a source whose features come from elsewhere without a ``{layer}`` placeholder.
FEATURES_LAYER = "features"
#: The pseudo-layer of a TorchScript source: its module's output (a scripted module has no graph to cut).
OUTPUT_LAYER = "output"


def module_id(source: str, layer: str) -> str:
    """The id of one (source, layer) module in matrices: ``source:layer``."""
    return f"{source}:{layer}"


def split_module_id(module: str) -> tuple[str, str]:
    """``source:layer`` back to ``(source, layer)`` (source names hold no colon)."""
    source, _, layer = module.partition(":")
    return source, layer


@dataclass(frozen=True)
class InputSpec:
    """How a source wants its images: resized to ``size`` (None = as they come), then normalised."""

    size: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_record(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std)}


#: The layer a source trained by the run is read at by default: φ, the kernel feature map at the end of
#: its trunk (what a task-space run's scores and probes have always read); its module id is the bare task id.
TRAINED_LAYER = "output.feature_map"

#: Where a run keeps the network it trains for a task, relative to the run folder.
TRAINED_REFERENCE = "zoo/{task}/model.pt"


@dataclass(frozen=True)
class SourceSpec:
    """One source of a zoo file, with its paths made absolute.

    Attributes:
        name: the source's name (letters, digits, ``_ . -``; no colon).
        origin: one of :data:`ORIGINS`.
        reference: what the origin key holds: an architecture or model name, ``module:function``, or
            a path (``torchscript``, ``checkpoint``) or path template (``features``).
        weights: the state_dict file (``torchvision``, ``timm``, ``factory``), or None.
        options: constructor keyword arguments.
        layers: the node names whose outputs are scored; each is one module of the zoo.
        input: the preprocessing; None for ``checkpoint`` (its own) and ``features``.
        tokens: how a token sequence (n, t, d) becomes one vector: ``"mean"`` or ``"first"`` (class token).
        logits: whether the network's output is a classifier's logits (fed to LEEP, N-LEEP, NCE).
        accuracy: the source's own test accuracy on its training task, when the file gives it.
        task: the task the source was trained on, when that task is a target of the run (its diagonal).
        train: the :class:`~taskspace.config.TrainConfig` the run trains the source with; set, the
            source's file (``reference``, relative to the run folder) is the run's to make, and its
            identity is this configuration, not the file's bytes.
    """

    name: str
    origin: str
    reference: str
    weights: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    input: InputSpec | None = None
    tokens: str = "mean"
    logits: bool = False
    accuracy: float | None = None
    task: str | None = None
    train: Any = None

    @property
    def trained(self) -> bool:
        """Whether the run trains this source itself (its file is the run's to make)."""
        return self.train is not None

    def module(self, layer: str) -> str:
        """The id of this source's module at ``layer``: ``name:layer``, or the bare name for a trained
        source at :data:`TRAINED_LAYER` (so a task-space run's rows and cell files keep their names)."""
        return self.name if self.trained and layer == TRAINED_LAYER else module_id(self.name, layer)

    @property
    def modules(self) -> tuple[str, ...]:
        """The ids of this source's modules, in the order of its layers (see :meth:`module`)."""
        return tuple(self.module(layer) for layer in self.layers)

    @property
    def has_weights(self) -> bool:
        """Whether taskspace can run the network (every origin but ``features``)."""
        return self.origin != "features"

    def files(self) -> list[Path]:
        """The files whose bytes decide this source's outputs (hashed into the run's identity)."""
        paths = [self.weights] if self.weights is not None else []
        if self.origin in ("torchscript", "checkpoint"):
            paths.append(Path(self.reference))
        return paths

    def features_file(self, *, target: str, layer: str, split: str) -> Path:
        """The NPZ of a ``features`` source for one target, layer and split (``train`` or ``test``)."""
        return Path(self.reference.format(target=target, layer=layer, split=split))

    def to_record(self) -> dict[str, Any]:
        """The source as JSON values, with every file's SHA-256 (its identity: contents, not paths). A
        trained source's identity is its training configuration (its file does not exist before the run)."""
        if self.trained:
            return {"name": self.name, "origin": "trained", "task": self.task, "train": self.train.hash(),
                    "layers": list(self.layers)}
        return {
            "name": self.name, "origin": self.origin,
            "reference": (self.reference if self.origin in ("torchvision", "timm", "factory", "features")
                          else sha256_of_file(self.reference)),
            "weights": sha256_of_file(self.weights) if self.weights is not None else None,
            "options": dict(self.options), "layers": list(self.layers),
            "input": self.input.to_record() if self.input is not None else None,
            "tokens": self.tokens, "logits": self.logits, "accuracy": self.accuracy,
        }

    def location(self) -> dict[str, Any]:
        """Where the source's files are now (recorded beside the identity, not part of it)."""
        return {"reference": self.reference, "weights": str(self.weights) if self.weights else None}


@dataclass(frozen=True)
class ZooSpec:
    """The sources of a zoo file, in order."""

    sources: tuple[SourceSpec, ...]
    path: Path | None = None

    @property
    def modules(self) -> tuple[str, ...]:
        """Every (source, layer) module's id, source by source."""
        return tuple(module for source in self.sources for module in source.modules)

    def source(self, name: str) -> SourceSpec:
        for source in self.sources:
            if source.name == name:
                return source
        names = [source.name for source in self.sources]
        raise ConfigError(f"the zoo has no source '{name}'{did_you_mean(name, names)} (sources: {', '.join(names)})")

    def to_record(self) -> list[dict[str, Any]]:
        return [source.to_record() for source in self.sources]

    @classmethod
    def trained(cls, space: Any, grid: Any, *, layers: tuple[str, ...] = (TRAINED_LAYER,)) -> ZooSpec:
        """The zoo a task-space run trains: one ``checkpoint`` source per task of ``space``, in order, each
        trained with ``grid``'s configuration for its task and read at ``layers`` (by default φ alone)."""
        return cls(tuple(
            SourceSpec(name=task.id, origin="checkpoint", reference=TRAINED_REFERENCE.format(task=task.id),
                       layers=tuple(layers), task=task.id, train=grid.source_config(task.id, space.dataset))
            for task in space.tasks))

    def identity(self) -> str:
        """SHA-256 (16 hex digits) of the zoo's content: specs and file contents, not paths."""
        return content_hash(self.to_record())


def read_zoo_file(path: str | os.PathLike[str]) -> ZooSpec:
    """Read and check a zoo file; relative paths in it are read from its folder.

    Raises:
        ConfigError: an unreadable file or any source that cannot work (one line naming the source,
            the key and the fix).
    """
    file = Path(path).expanduser()
    document = read_toml(file, what="zoo file")
    return parse_zoo(document, folder=file.absolute().parent, where=f"zoo file '{path}'", path=file.absolute())


def parse_zoo(document: Mapping[str, Any], *, folder: Path, where: str = "zoo", path: Path | None = None) -> ZooSpec:
    """Check a parsed zoo document (``{"source": [...]}``) and resolve its paths against ``folder``."""
    unknown = [key for key in document if key != "source"]
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key '{unknown[0]}'; a zoo file holds [[source]] tables only")
    entries = document.get("source")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} names no source; add a [[source]] table with a name and an origin "
                          f"({', '.join(ORIGINS)})")
    sources = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: source {number} is not a table; write it as [[source]]")
        sources.append(_parse_source(entry, folder=folder, where=f"{where}, source {number}"))
    names = [source.name for source in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{where}: source name '{repeated[0]}' is used twice; give every source its own name")
    return ZooSpec(tuple(sources), path)


def _parse_source(entry: dict[str, Any], *, folder: Path, where: str) -> SourceSpec:
    for key in entry:
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, _KEYS)} (keys: {', '.join(_KEYS)})")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: name {name!r} must be letters, digits, '_', '.' or '-' (e.g. name = \"r18\")")
    where = f"{where[: where.rfind(', source')]}, source '{name}'" if ", source" in where else f"source '{name}'"
    origins = [key for key in ORIGINS if key in entry]
    if len(origins) != 1:
        found = f"it names {', '.join(origins)}" if origins else "it names none"
        raise ConfigError(f"{where}: name exactly one origin of {', '.join(ORIGINS)} ({found})")
    origin = origins[0]
    reference = entry[origin]
    if not isinstance(reference, str) or not reference.strip():
        raise ConfigError(f"{where}: {origin} must be a non-empty string")
    if origin == "factory" and not _FACTORY.fullmatch(reference):
        raise ConfigError(f"{where}: factory '{reference}' must read 'package.module:function'")
    if origin in ("torchscript", "checkpoint"):
        reference = str(_existing_file(reference, folder, where=where, key=origin))
    if origin == "features":
        if "{target}" not in reference:
            raise ConfigError(f"{where}: features '{reference}' must hold {{target}} "
                              "(e.g. \"features/{target}.npz\")")
        bad = set(re.findall(r"\{([^}]*)\}", reference)) - {"target", "layer", "split"}
        if bad:
            raise ConfigError(f"{where}: features '{reference}' holds {{{sorted(bad)[0]}}}; only {{target}}, "
                              "{layer} and {split} are filled in")
        reference = str(_resolve(reference, folder))
    weights = _weights(entry, origin, folder, where)
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a table, e.g. options = {{ num_classes = 4 }}")
    if options and origin not in ("torchvision", "timm", "factory"):
        raise ConfigError(f"{where}: options are constructor arguments; a {origin} source is not constructed")
    layers = _layers(entry, origin, reference, where)
    tokens = entry.get("tokens", "mean")
    if tokens not in ("mean", "first"):
        raise ConfigError(f"{where}: tokens must be \"mean\" or \"first\" (the class token), got {tokens!r}")
    logits = entry.get("logits", origin in ("torchvision", "timm", "checkpoint"))
    if not isinstance(logits, bool):
        raise ConfigError(f"{where}: logits must be true or false")
    if logits and origin == "features":
        raise ConfigError(f"{where}: a features source gives its classifier's outputs as 'probs' in its files, "
                          "not with logits = true")
    accuracy = entry.get("accuracy")
    if accuracy is not None and (isinstance(accuracy, bool) or not isinstance(accuracy, int | float)
                                 or not 0 <= accuracy <= 1):
        raise ConfigError(f"{where}: accuracy must be a number in [0, 1] (the source's own test accuracy)")
    return SourceSpec(name=name, origin=origin, reference=reference, weights=weights, options=dict(options),
                      layers=layers, input=_input(entry, origin, where), tokens=tokens, logits=logits,
                      accuracy=float(accuracy) if accuracy is not None else None)


def _weights(entry: dict[str, Any], origin: str, folder: Path, where: str) -> Path | None:
    weights = entry.get("weights")
    if origin in ("torchvision", "timm", "factory"):
        if weights is None:
            raise ConfigError(f"{where}: a {origin} source needs weights = \"file.pt\" (a state_dict saved with "
                              "torch.save(model.state_dict(), ...))")
        if not isinstance(weights, str):
            raise ConfigError(f"{where}: weights must be a file's path")
        return _existing_file(weights, folder, where=where, key="weights")
    if weights is not None:
        raise ConfigError(f"{where}: a {origin} source carries its own weights; remove weights")
    return None


def _layers(entry: dict[str, Any], origin: str, reference: str, where: str) -> tuple[str, ...]:
    layers = entry.get("layers")
    if layers is None:
        if origin == "torchscript":
            return (OUTPUT_LAYER,)
        if origin == "features" and "{layer}" not in reference:
            return (FEATURES_LAYER,)
        if origin == "checkpoint":
            return ()  # filled in from the checkpoint: each of its hidden modules
        raise ConfigError(f"{where}: name the layers to score, e.g. layers = [\"layer3\", \"layer4\"] (node names "
                          "of torchvision.models.feature_extraction.get_graph_node_names)")
    if not isinstance(layers, list) or not layers or not all(isinstance(layer, str) and layer for layer in layers):
        raise ConfigError(f"{where}: layers must be a non-empty list of node names")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{where}: layers name a node twice; list each once")
    if origin == "torchscript" and layers != [OUTPUT_LAYER]:
        raise ConfigError(f"{where}: a TorchScript module has no graph to cut; its one layer is \"{OUTPUT_LAYER}\" "
                          "(export the layer you want as its output)")
    if origin == "features" and "{layer}" not in reference:
        raise ConfigError(f"{where}: layers need a {{layer}} placeholder in the features path")
    return tuple(layers)


def _default_statistics(origin: str, reference: str) -> dict[str, tuple[float, ...]]:
    """The mean and std a source expects when its zoo file gives none: a timm model's own (its pretrained
    configuration: a ViT's are 0.5, not ImageNet's), else ImageNet's (torchvision's weights)."""
    if origin == "timm":
        try:
            import timm

            config = timm.get_pretrained_cfg(reference)
        except Exception:  # timm missing (said when the source is built) or no configuration for the name
            config = None
        if config is not None and config.mean and config.std:
            return {"mean": tuple(config.mean), "std": tuple(config.std)}
    return dict(IMAGENET_INPUT)


def _input(entry: dict[str, Any], origin: str, where: str) -> InputSpec | None:
    given = entry.get("input")
    if origin in ("checkpoint", "features"):
        if given is not None:
            raise ConfigError(f"{where}: a {origin} source has its own input; remove input")
        return None
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: input must be a table, e.g. input = {{ size = 224, mean = [...], std = [...] }}")
    unknown = [key for key in given if key not in ("size", "mean", "std")]
    if unknown:
        raise ConfigError(f"{where}: input has an unknown key '{unknown[0]}' (keys: size, mean, std)")
    size = given.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096):
        raise ConfigError(f"{where}: input size must be an integer from 8 to 4096 (pixels per side)")
    stats = {}
    defaults = _default_statistics(origin, str(entry.get(origin, ""))) if not {"mean", "std"} <= set(given) else {}
    for key in ("mean", "std"):
        values = given.get(key, defaults.get(key))
        if (not isinstance(values, list | tuple) or not values
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values)):
            raise ConfigError(f"{where}: input {key} must be a list of numbers, one per channel")
        if key == "std" and any(value <= 0 for value in values):
            raise ConfigError(f"{where}: input std must be positive")
        stats[key] = tuple(float(value) for value in values)
    if len(stats["mean"]) != len(stats["std"]):
        raise ConfigError(f"{where}: input mean and std must have one value per channel each")
    return InputSpec(size, stats["mean"], stats["std"])


def _resolve(path: str, folder: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else folder / candidate


def _existing_file(path: str, folder: Path, *, where: str, key: str) -> Path:
    resolved = _resolve(path, folder)
    if not resolved.is_file():
        raise ConfigError(f"{where}: {key} file '{resolved}' does not exist; fix the path (relative paths are read "
                          "from the zoo file's folder)")
    return resolved

