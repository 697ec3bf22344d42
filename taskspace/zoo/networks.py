"""A zoo source's network, built and loaded safely, and the outputs of its layers on images.

Building: ``torchvision`` by :func:`torchvision.models.get_model` (no weights, never a download),
``timm`` by ``timm.create_model(pretrained=False)``, ``factory`` by importing the named function,
``torchscript`` by :func:`torch.jit.load`, ``checkpoint`` by taskspace's own reader. Weights are a
state_dict read with ``torch.load(weights_only=True)``, or a ``.safetensors`` file read with the
``safetensors`` library (the optional extra): a file that needs more than tensors is refused, never
executed. Layers are read with
:func:`torchvision.models.feature_extraction.create_feature_extractor` (the graph surgery of a
maintained library, no hand-written hooks) and pooled to one vector per image: the global average
over space for maps ``(n, c, h, w)``, the mean or the first (class) token for sequences ``(n, t, d)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from taskspace.errors import CheckpointError, ConfigError, DataError
from taskspace.zoo.spec import OUTPUT_LAYER, SourceSpec

__all__ = ["SourceNetwork", "load_source", "pool", "pool_tensor", "node_names"]

#: The key under which a layer reader returns the network's own output (its logits, when it has them).
LOGITS = "__logits__"


@dataclass
class SourceNetwork:
    """A source's network (eval mode) and how to read its layers.

    Attributes:
        spec: the source.
        network: the loaded module.
        reader: a module returning ``{layer: tensor, LOGITS: output}`` for a batch of images.
        mean, std: the normalisation of its input; size: the input side (None = as given).
    """

    spec: SourceSpec
    network: nn.Module
    reader: nn.Module | Callable[[torch.Tensor], dict[str, torch.Tensor]]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int | None

    def parameters_up_to(self) -> dict[str, int]:
        """Parameters of the sub-network each layer's output needs (what a fine-tuning of it would train)."""
        from torchvision.models.feature_extraction import create_feature_extractor

        counts = {}
        for layer in self.spec.layers:
            if layer == OUTPUT_LAYER or not isinstance(self.network, nn.Module):
                counts[layer] = sum(parameter.numel() for parameter in self.network.parameters())
                continue
            part = create_feature_extractor(self.network, return_nodes={layer: layer}, tracer_kwargs=_tracer())
            counts[layer] = sum(parameter.numel() for parameter in part.parameters())
        return counts

    @torch.no_grad()
    def outputs(self, images: np.ndarray, *, batch_size: int = 256,
                device: str = "cpu") -> Iterator[dict[str, np.ndarray]]:
        """Pooled layer outputs (and ``LOGITS`` where the source has a classifier) per batch of ``images``.

        Shape:
            - images: (n, H, W, C) uint8.
            - each yielded array: (batch, d) float32.
        """
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        channels = images.shape[3]
        gray_to_colour = channels == 1 and len(self.mean) == 3  # grey images fed to a colour network, replicated
        if channels != len(self.mean) and not gray_to_colour:
            if self.spec.origin in ("checkpoint", "trained"):  # its input is its own: no zoo-file key changes it
                raise DataError(f"source '{self.spec.name}' is a network of {len(self.mean)}-channel images (its "
                                f"checkpoint records its own input) and the target's images have {channels}; score "
                                f"it on targets of a {len(self.mean)}-channel dataset")
            raise DataError(f"source '{self.spec.name}' takes images with {len(self.mean)} channels (its input mean "
                            f"has {len(self.mean)} values), the target's have {channels}; give input mean and std "
                            f"one value per channel of the target's images")
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(device).permute(0, 3, 1, 2).float()
            batch = batch.div_(255.0)
            if gray_to_colour:
                batch = batch.expand(-1, 3, -1, -1)
            if self.size is not None and batch.shape[-1] != self.size:
                batch = nn.functional.interpolate(batch, size=(self.size, self.size), mode="bilinear",
                                                  antialias=True, align_corners=False)
            batch = (batch - mean) / std
            try:
                produced = self.reader(batch)
            except Exception as error:  # a network's own failure on this input, one line
                raise DataError(
                    f"source '{self.spec.name}' cannot take {tuple(batch.shape[1:])} inputs ({type(error).__name__}: "
                    f"{_first_line(error)}); set its input size to one the network accepts"
                ) from None
            yield {name: pool(value, tokens=self.spec.tokens, name=f"{self.spec.name}:{name}")
                   for name, value in produced.items()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else "no message"


def pool_tensor(value: Any, *, tokens: str, name: str) -> torch.Tensor:
    """One vector per image (differentiable): maps averaged over space, sequences by ``tokens`` (mean or
    first token), anything else flattened; the first element of a tuple output."""
    if isinstance(value, (tuple, list)):
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise DataError(f"layer '{name}' returns {type(value).__name__}, not a tensor; choose a layer whose output "
                        "is a tensor")
    if value.dim() == 4:
        return value.mean(dim=(2, 3))
    if value.dim() == 3:
        return value[:, 0] if tokens == "first" else value.mean(dim=1)
    return value.flatten(1)


def pool(value: Any, *, tokens: str, name: str) -> np.ndarray:
    """:func:`pool_tensor` as a float32 array (what the scores and probes read)."""
    return np.ascontiguousarray(pool_tensor(value, tokens=tokens, name=name).detach().float().cpu().numpy())


def _tracer() -> dict[str, Any]:
    """Modules traced as one node: taskspace's kernel feature map (its input checks are not traceable)."""
    from taskspace.models.modular import FeatureMap

    return {"leaf_modules": [FeatureMap]}


def node_names(network: nn.Module) -> list[str]:
    """The node names of ``network``'s graph in eval mode (what ``layers`` may name)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    return list(get_graph_node_names(network, tracer_kwargs=_tracer())[1])


def load_source(spec: SourceSpec) -> SourceNetwork:
    """Build the source's network, load its weights and prepare its layer reader (eval mode).

    Raises:
        TaskspaceError: a factory that does not import, weights that do not fit (the first mismatching
            key and both shapes), a weights file that needs full unpickling (refused), a layer that does
            not exist (the nearest node names).
    """
    if spec.origin == "checkpoint":
        return _from_checkpoint(spec)
    if spec.origin == "torchscript":
        network = _torchscript(spec)
        assert spec.input is not None
        reader = _script_reader(network)
        return SourceNetwork(spec, network, reader, spec.input.mean, spec.input.std, spec.input.size)
    network = _construct(spec)
    assert spec.weights is not None and spec.input is not None
    _load_weights(network, spec)
    network.eval()
    reader = _extractor(network, spec, list(spec.layers))
    return SourceNetwork(spec, network, reader, spec.input.mean, spec.input.std, spec.input.size)


def _construct(spec: SourceSpec) -> nn.Module:
    where = f"source '{spec.name}'"
    options = dict(spec.options)
    try:
        if spec.origin == "torchvision":
            import torchvision

            names = torchvision.models.list_models()
            if spec.reference not in names:
                raise ConfigError(f"{where}: torchvision has no architecture '{spec.reference}'"
                                  f"{difflib_hint(spec.reference, names)}")
            network = torchvision.models.get_model(spec.reference, weights=None, **options)
        elif spec.origin == "timm":
            try:
                timm = importlib.import_module("timm")
            except ImportError:
                raise ConfigError(f"{where} is a timm model, and timm is not installed; "
                                  "pip install 'taskspace[timm]'") from None
            if spec.reference not in timm.list_models():
                raise ConfigError(f"{where}: timm has no model '{spec.reference}'"
                                  f"{difflib_hint(spec.reference, timm.list_models())}")
            network = timm.create_model(spec.reference, pretrained=False, **options)
        else:
            function = _factory(spec)
            try:
                network = function(**options)
            except TypeError:
                raise
            except Exception as error:  # the user's own code failed: say whose, not as taskspace's bug
                raise ConfigError(f"{where}: its factory {spec.reference} raised {type(error).__name__}: "
                                  f"{_first_line(error)}; fix the factory or its options") from None
    except ConfigError:
        raise
    except TypeError as error:
        raise ConfigError(f"{where}: its constructor refuses the options {options} ({_first_line(error)}); fix "
                          "options") from None
    if not isinstance(network, nn.Module):
        raise ConfigError(f"{where}: {spec.reference} returned {type(network).__name__}, not a torch.nn.Module")
    return network


def difflib_hint(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    return f"; nearest: {', '.join(close)}" if close else ""


def _factory(spec: SourceSpec) -> Callable[..., Any]:
    module_name, _, function_name = spec.reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module's own failure on import
        raise ConfigError(f"source '{spec.name}': factory module '{module_name}' does not import "
                          f"({type(error).__name__}: {_first_line(error)}); install it or put it on PYTHONPATH"
                          ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        public = [name for name in dir(module) if not name.startswith("_")]
        raise ConfigError(f"source '{spec.name}': module '{module_name}' has no function '{function_name}'"
                          f"{difflib_hint(function_name, public)}")
    return function


def is_safetensors(path: Any) -> bool:
    """Whether ``path`` holds the safetensors format: an 8-byte little-endian header length, then the
    header's JSON object (a ``torch.save`` file is a zip archive, or a pickle)."""
    try:
        with open(path, "rb") as file:
            head = file.read(9)
            size = os.fstat(file.fileno()).st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


def _read_safetensors(path: Any, *, source: str) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, read by the ``safetensors`` library (no pickle involved)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(f"source '{source}': '{path}' is a safetensors file and the safetensors reader is not "
                              "installed; pip install 'taskspace[safetensors]'") from None
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as error:  # SafetensorError, or a header that is not valid JSON
        raise CheckpointError(f"source '{source}': '{path}' cannot be read as safetensors ({type(error).__name__}: "
                              f"{_first_line(error)}); save it again with safetensors.torch.save_file") from None


def read_state_dict(path: Any, *, source: str) -> dict[str, torch.Tensor]:
    """A state_dict from ``path``: a safetensors file with the ``safetensors`` library, anything else with
    ``torch.load(weights_only=True)``; a file that holds more than tensors is refused in one line."""
    if is_safetensors(path):
        return _read_safetensors(path, source=source)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or unsafe file
        if "Unsupported global" in str(error) or "weights_only" in str(error):
            raise CheckpointError(
                f"source '{source}': '{path}' holds Python objects besides tensors, which taskspace never unpickles; "
                "save the weights with torch.save(model.state_dict(), path)"
            ) from None
        raise CheckpointError(f"source '{source}': '{path}' cannot be read ({type(error).__name__}: damaged, or not "
                              "saved by torch.save); save it with torch.save(model.state_dict(), path)") from None
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]  # a common wrapping: {"state_dict": ..., "epoch": ...}
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise CheckpointError(f"source '{source}': '{path}' is not a state_dict (a mapping of names to tensors); "
                              "save it with torch.save(model.state_dict(), path)")
    return loaded


def _load_weights(network: nn.Module, spec: SourceSpec) -> None:
    state = read_state_dict(spec.weights, source=spec.name)
    expected = network.state_dict()
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"source '{spec.name}': weights do not fit the architecture: '{key}' is {tuple(state[key].shape)} in "
                f"'{spec.weights}' but {tuple(tensor.shape)} in the network; fix options (e.g. num_classes) or the "
                "weights file")
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        what = (f"'{missing[0]}' is missing from the weights" if missing
                else f"'{unexpected[0]}' in the weights is not in the network")
        raise CheckpointError(f"source '{spec.name}': weights do not fit the architecture: {what} "
                              f"({len(missing)} missing, {len(unexpected)} unexpected keys); check the architecture "
                              "and options the weights were saved from")
    network.load_state_dict(state)


def _torchscript(spec: SourceSpec) -> Any:
    try:
        with warnings.catch_warnings():  # torch's notice that TorchScript is deprecated: not the user's to act on
            warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
            network = torch.jit.load(spec.reference, map_location="cpu")
    except Exception as error:  # a damaged or non-TorchScript file
        raise CheckpointError(f"source '{spec.name}': '{spec.reference}' is not a TorchScript file "
                              f"({type(error).__name__}); save it with torch.jit.save") from None
    network.eval()
    return network


def _script_reader(network: Any) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    def read(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {OUTPUT_LAYER: network(batch)}

    return read


def _extractor(network: nn.Module, spec: SourceSpec, layers: list[str], *, output: str | None = None) -> nn.Module:
    """A feature extractor returning ``layers`` (and the network's output as ``LOGITS`` when it has logits)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        names = node_names(network)
    except Exception as error:  # a network FX cannot trace
        raise ConfigError(f"source '{spec.name}': its graph cannot be traced to read layers ({type(error).__name__}: "
                          f"{_first_line(error)}); export the layer as a TorchScript source instead") from None
    # a module's name stands for its last node (``layer4`` for ``layer4.1.relu_1``), as torchvision allows
    readable = set(names) | {".".join(name.split(".")[:depth]) for name in names
                             for depth in range(1, name.count(".") + 1)}
    for layer in layers:
        if layer not in readable:
            close = difflib.get_close_matches(layer, sorted(readable), n=5, cutoff=0.5) or names[-5:]
            raise ConfigError(f"source '{spec.name}' has no layer '{layer}'; nearest node names: {', '.join(close)}")
    returns = {layer: layer for layer in layers}
    if spec.logits:
        returns[output or names[-1]] = LOGITS
    return create_feature_extractor(network, return_nodes=returns, tracer_kwargs=_tracer())


def trained_outputs(checkpoint: str | os.PathLike[str], images: Any, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """A taskspace checkpoint's φ (:data:`~taskspace.zoo.spec.TRAINED_LAYER`) and logits (``LOGITS``) on
    ``images`` (an :class:`~taskspace.data.ImageSplit`), read on the path every task-space run has read
    them on (:func:`taskspace.features.source_outputs`: the checkpoint's normalisation, channels-last
    batches of 500), so they equal the feature bank's rows bit for bit.

    Shape:
        - images: an ImageSplit of n images.
        - each returned array: (n, d) float32.
    """
    from taskspace.features import source_outputs
    from taskspace.training.checkpoints import load_model
    from taskspace.zoo.spec import TRAINED_LAYER

    net, saved = load_model(checkpoint)
    outputs = source_outputs(net, images, normalization=saved["normalization"], device=device)
    return {TRAINED_LAYER: outputs.features, LOGITS: outputs.logits}


def _from_checkpoint(spec: SourceSpec) -> SourceNetwork:
    from taskspace.training.checkpoints import load_model

    network, saved = load_model(spec.reference)
    if not spec.layers:
        spec = dataclasses.replace(spec, layers=tuple(default_checkpoint_layers(network)))
    normalization = saved["normalization"]
    reader = _extractor(network, spec, list(spec.layers))
    return SourceNetwork(spec, network, reader, tuple(normalization["mean"]), tuple(normalization["std"]), None)


def default_checkpoint_layers(network: nn.Module) -> list[str]:
    """The layers a taskspace checkpoint is read at when the zoo file names none: the output of every stage
    of every hidden module (``hidden.<module>.<stage>``'s last node), the paper's modules and their parts."""
    names = [name for name in node_names(network) if name.startswith("hidden.")]
    last: dict[str, str] = {}
    for name in names:
        stage = ".".join(name.split(".")[:3])
        previous = next(reversed(last), None)
        if (isinstance(network.get_submodule(stage), nn.ReLU) and previous is not None
                and previous.split(".")[:2] == stage.split(".")[:2]):
            stage = previous  # the activation an inverted net adds after a moved last stage belongs to it
        last[stage] = name
    return list(last.values())


def resolve_layers(zoo: Any, image_shape: tuple[int, int, int] | None = None) -> Any:
    """The zoo with every source checked: networks built, weights loaded, layers found, and (given the
    targets' ``(H, W, C)``) two blank images passed through; a checkpoint source that names no layers gets
    :func:`default_checkpoint_layers`. Raises one line on the first problem."""
    sources = []
    for spec in zoo.sources:
        if spec.has_weights:
            loaded = load_source(spec)
            spec = loaded.spec
            if image_shape is not None:
                blank = np.zeros((2, *image_shape), dtype=np.uint8)
                for _ in loaded.outputs(blank):
                    pass
        sources.append(spec)
    return dataclasses.replace(zoo, sources=tuple(sources))
