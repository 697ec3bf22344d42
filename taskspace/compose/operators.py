"""The operators of a modular workflow, on :class:`~taskspace.models.ModularNet`: split, drop, port, stack,
substitute and invert.

Each takes trained nets and returns a new net built from their modules, with the modules it copied
unchanged and what must be trained again left fresh: the output module always (a new task, or a trunk
whose output changed), the hidden modules above the stacking depth. Training is the caller's
(:mod:`taskspace.compose.run`); these functions only build, copy weights and check that modules fit.

A composed net is an ordinary :class:`ModularNet`: its spec (architecture, width, cut points, ``depth``
when cut short, ``adapters`` where two modules trained apart meet) rebuilds it from a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from taskspace.errors import ConfigError
from taskspace.models import ModularNet, get_model, stage_width
from taskspace.training.seeds import derive_seed

__all__ = ["AdapterNote", "adapter_channels", "module_bounds", "split", "drop", "stack", "substitute", "invert",
           "ADAPTER_THRESHOLD"]

#: Channel statistics that differ by more than this (mean |shift| in deviations plus mean |log ratio| of
#: deviations) get a :class:`~taskspace.models.ChannelAdapter` between two modules trained apart.
ADAPTER_THRESHOLD = 0.1


@dataclass(frozen=True)
class AdapterNote:
    """Where a substituted module meets the rest of the net, and whether the two were bridged.

    Attributes:
        before_module: the hidden module the interface feeds.
        mismatch: how far the channel statistics there differ from those the module was trained on.
        adapter: whether a per-channel affine adapter was placed (``mismatch > ADAPTER_THRESHOLD``).
    """

    before_module: int
    mismatch: float
    adapter: bool

    def to_record(self) -> dict[str, Any]:
        return {"before_module": self.before_module, "mismatch": self.mismatch, "adapter": self.adapter}


def module_bounds(net: ModularNet) -> list[int]:
    """Stage index where each hidden module starts, then the number of stages: ``[0, *cuts, stages]``."""
    return [0, *net.cut_points, _stage_count(net)]


def _stage_count(net: ModularNet) -> int:
    return len(_stages(net))


def _stages(net: ModularNet) -> list[nn.Module]:
    return [stage for module in net.hidden for stage in module.children()]


def adapter_channels(net: ModularNet, *, below: int | None = None) -> dict[int, int]:
    """Hidden module index -> channels of the adapter before it (those before module ``below`` only)."""
    from taskspace.models import ChannelAdapter

    found = {}
    for key, adapter in net.adapters.items():
        if isinstance(adapter, ChannelAdapter) and (below is None or int(key) < below):
            found[int(key)] = int(adapter.affine.in_channels)
    return found


def _check_in_order(net: ModularNet) -> None:
    if net.spec.get("order") is not None:
        raise ConfigError(f"the net runs its modules in the order {net.spec['order']} (an inverted net), so its stages "
                          "no longer follow its cut points; compose from the net it was inverted from")


def _rebuild(net: ModularNet, *, num_classes: int, cut_points: Sequence[int], depth: int | None,
             adapters: dict[int, int] | None = None, seed: int = 0) -> ModularNet:
    """A fresh net of ``net``'s architecture (weights drawn from ``seed``; the global RNG untouched)."""
    _check_in_order(net)
    spec = net.spec
    full = spec.get("depth") is None and depth is None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "compose"))
        return get_model(spec["architecture"], num_classes=num_classes, in_channels=spec["in_channels"],
                         width=spec["width"], cut_points=cut_points, depth=None if full else depth,
                         adapters=adapters)


def _copy_stages(source: ModularNet, target: ModularNet, count: int) -> None:
    for mine, theirs in zip(_stages(target)[:count], _stages(source)[:count], strict=True):
        mine.load_state_dict(theirs.state_dict())


def _check_depth(net: ModularNet, keep: int, *, what: str, allow_all: bool) -> None:
    top = net.num_hidden if allow_all else net.num_hidden - 1
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= top:
        raise ConfigError(f"the net has {net.num_hidden} hidden modules; {what} must be 1 to {top}, got {keep}"
                          + ("" if net.num_hidden > 1 else "; split it into modules first (compose split)"))


def split(net: ModularNet, cut_points: Sequence[int]) -> ModularNet:
    """The same net, its stages grouped into hidden modules at ``cut_points`` (every weight kept).

    Raises:
        ConfigError: cut points outside the net's stages, or a net with adapters (their places would move).
    """
    if net.adapters:
        raise ConfigError("a net with adapters between modules cannot be split again; split its sources instead")
    cuts = sorted(set(int(point) for point in cut_points))
    stages = _stage_count(net)
    if any(not 0 < point < stages for point in cuts):
        raise ConfigError(f"the net has {stages} stages; cut points must lie between 1 and {stages - 1}, "
                          f"got {list(cut_points)}")
    rebuilt = _rebuild(net, num_classes=net.num_classes, cut_points=cuts, depth=net.spec.get("depth"))
    _copy_stages(net, rebuilt, stages)
    rebuilt.output.load_state_dict(net.output.state_dict())
    return rebuilt.eval()


def drop(net: ModularNet, keep: int, *, num_classes: int | None = None) -> ModularNet:
    """The first ``keep`` hidden modules (weights and adapters kept) under a new, untrained output module.

    With ``num_classes`` the output module is for another task: that is *port* (the frozen modules of a
    source reused for a new task); without it, *drop* (exclude the top modules, same task).

    Raises:
        ConfigError: ``keep`` is not 1 to the number of hidden modules.
    """
    _check_depth(net, keep, what="the modules kept", allow_all=num_classes is not None)
    bounds = module_bounds(net)
    depth = bounds[keep]
    adapters = adapter_channels(net, below=keep)
    rebuilt = _rebuild(net, num_classes=num_classes or net.num_classes, cut_points=bounds[1:keep], depth=depth,
                       adapters=adapters)
    _copy_stages(net, rebuilt, depth)
    for index in adapters:
        rebuilt.adapters[str(index)].load_state_dict(net.adapters[str(index)].state_dict())
    return rebuilt.eval()


def stack(net: ModularNet, keep: int, *, num_classes: int, seed: int) -> ModularNet:
    """``net``'s first ``keep`` hidden modules, then fresh hidden modules of its architecture up to its full
    depth, then a fresh output module: the modules above ``keep`` are to be trained for the new task.

    Raises:
        ConfigError: ``keep`` is not 1 to the number of hidden modules minus 1.
    """
    _check_depth(net, keep, what="the modules stacked on", allow_all=False)
    bounds = module_bounds(net)
    adapters = adapter_channels(net, below=keep)
    rebuilt = _rebuild(net, num_classes=num_classes, cut_points=bounds[1:-1], depth=bounds[-1], adapters=adapters,
                       seed=seed)
    _copy_stages(net, rebuilt, bounds[keep])
    for index in adapters:
        rebuilt.adapters[str(index)].load_state_dict(net.adapters[str(index)].state_dict())
    return rebuilt.eval()


def _channels(net: ModularNet, index: int) -> tuple[int, int]:
    """Channels hidden module ``index`` takes and gives."""
    bounds, stages = module_bounds(net), _stages(net)
    takes = net.spec["in_channels"] if index == 0 else stage_width(stages[bounds[index] - 1])
    return takes, stage_width(stages[bounds[index + 1] - 1])


def _interface(net: ModularNet, index: int) -> str:
    spec, bounds = net.spec, module_bounds(net)
    takes, gives = _channels(net, index)
    width = "its default width" if spec["width"] is None else f"width {spec['width']}"
    return (f"{spec['architecture']} {width}, stages {bounds[index]}-{bounds[index + 1] - 1}, "
            f"{takes} -> {gives} channels")


def invert(net: ModularNet, order: Sequence[int], *, probe: torch.Tensor,
           threshold: float = ADAPTER_THRESHOLD) -> tuple[ModularNet, list[AdapterNote]]:
    """``net``'s hidden modules run in ``order`` (a permutation, or with a module repeated, e.g. ``0, 1, 1``),
    bridged by adapters where needed; the output module is left as it was (refit it).

    Module ``order[j]`` must take the channels that module ``order[j - 1]`` gives (the image's channels at
    ``j = 0``). Each module now receives another input than it was trained on: on the ``probe`` images
    (normalised as ``net``'s inputs), the input it receives is compared with the input it was trained on,
    and where their channel statistics differ by more than ``threshold`` a per-channel affine adapter maps
    one onto the other (closed form, as :func:`substitute` does). Modules are copied, never shared: a
    repeated module is two modules with the same weights.

    Raises:
        ConfigError: an empty order or a module that does not exist, a module that cannot follow the one
            before it (both interfaces named), or a net cut short, bridged or already inverted.
    """
    _check_in_order(net)
    order = list(order)
    if not order or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < net.num_hidden for i in order):
        raise ConfigError(f"the net has hidden modules 0 to {net.num_hidden - 1}; the order must list some of them, "
                          f"got {list(order)}")
    if net.spec.get("depth") is not None or net.adapters:
        raise ConfigError("only a whole net without adapters can be inverted (this one is cut short or bridged); "
                          "invert the net it was composed from")
    given = net.spec["in_channels"]
    for position, index in enumerate(order):
        takes, gives = _channels(net, index)
        if takes != given:
            before = ("the image" if position == 0 else f"module {order[position - 1]} "
                      f"({_interface(net, order[position - 1])})")
            raise ConfigError(f"module {index} ({_interface(net, index)}) cannot follow {before}: it takes {takes} "
                              f"channels and is given {given}; {net.spec['architecture']}'s stages cannot be "
                              "reordered there (an architecture whose inner modules share their width, such as "
                              "uniform_cnn, can be)")
        given = gives
    composed = get_model(net.spec["architecture"], num_classes=net.num_classes, in_channels=net.spec["in_channels"],
                         width=net.spec["width"], cut_points=net.cut_points, order=order)
    for position, index in enumerate(order):
        own = dict(net.hidden[index].state_dict())
        composed.hidden[position].load_state_dict(own)
    composed.output.load_state_dict(net.output.state_dict())
    composed.eval()
    notes = []
    with torch.no_grad():
        for position, index in enumerate(order):
            if order[: position + 1] == list(range(position + 1)):
                continue  # the same modules below as in training: the same input
            received = composed.hidden_input(probe, position)
            trained_on = net.hidden_input(probe, index)
            notes.append(_bridge(composed, position, received, trained_on, threshold))
    return composed.eval(), notes


def substitute(net: ModularNet, donor: ModularNet, index: int, *, probe: torch.Tensor,
               threshold: float = ADAPTER_THRESHOLD) -> tuple[ModularNet, list[AdapterNote]]:
    """``net`` with hidden module ``index`` taken from ``donor``, bridged by adapters where needed.

    The two modules must have the same interface: the same architecture, width and cut points (so the
    module's stages, input and output channels are the same). Modules trained apart still see different
    channel statistics: on the ``probe`` images (normalised as ``net``'s inputs), the input the donor's
    module now receives is compared with the input it was trained on, and its output with what
    ``net``'s next module was trained on; where they differ by more than ``threshold``, a per-channel
    affine adapter maps one set of means and deviations onto the other (closed form, no training). The
    output module is left as it was: refit it (the trunk's output changed).

    Raises:
        ConfigError: ``index`` out of range, or the modules' interfaces differ (both named).
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < net.num_hidden:
        raise ConfigError(f"the net has hidden modules 0 to {net.num_hidden - 1}; module {index} does not exist")
    keys = ("architecture", "width", "in_channels", "cut_points", "depth")
    if index >= donor.num_hidden or any(net.spec.get(key) != donor.spec.get(key) for key in keys):
        theirs = _interface(donor, index) if index < donor.num_hidden else f"none (it has {donor.num_hidden} modules)"
        raise ConfigError(f"module {index} does not fit: the net's is {_interface(net, index)}, the donor's is "
                          f"{theirs}; substitute between nets of the same architecture, width and cut points")
    composed = drop(net, net.num_hidden, num_classes=net.num_classes)
    composed.output.load_state_dict(net.output.state_dict())
    composed.hidden[index].load_state_dict(donor.hidden[index].state_dict())
    composed.eval()
    notes = []
    with torch.no_grad():
        if index > 0:
            received = composed.hidden_input(probe, index)
            trained_on = donor.hidden_input(probe, index)
            notes.append(_bridge(composed, index, received, trained_on, threshold))
        if index + 1 < net.num_hidden:
            received = composed.hidden_input(probe, index + 1)
            trained_on = net.hidden_input(probe, index + 1)
            notes.append(_bridge(composed, index + 1, received, trained_on, threshold))
    return composed.eval(), notes


def _bridge(net: ModularNet, index: int, received: torch.Tensor, expected: torch.Tensor,
            threshold: float) -> AdapterNote:
    """Place (or leave out) the adapter before module ``index`` that maps ``received``'s channel moments onto
    ``expected``'s; ``net.spec`` records it."""
    mean_in, deviation_in = _moments(received)
    mean_out, deviation_out = _moments(expected)
    scale = deviation_out / deviation_in
    mismatch = float((torch.abs(mean_in - mean_out) / deviation_out).mean() + torch.log(scale).abs().mean())
    needed = math.isfinite(mismatch) and mismatch > threshold
    if needed:
        from taskspace.models import ChannelAdapter

        adapter = ChannelAdapter(received.shape[1])
        adapter.set_moments(scale, mean_out - scale * mean_in)
        net.adapters[str(index)] = adapter.eval()
        net.spec["adapters"] = {str(key): channels for key, channels in sorted(adapter_channels(net).items())}
    return AdapterNote(before_module=index, mismatch=mismatch, adapter=needed)


def _moments(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and deviation over images and positions (deviations floored away from 0)."""
    flat = values.transpose(0, 1).reshape(values.shape[1], -1).double()
    return flat.mean(dim=1).float(), flat.std(dim=1).clamp_min(1e-6).float()
