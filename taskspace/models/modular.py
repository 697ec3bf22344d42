"""A network as a chain of modules: hidden modules cut from a list of stages, then an output module.

F = F_out ∘ F_L ∘ … ∘ F_1 (docs/method.md, networks as modules). Hidden module i is the run of stages
between two cut points; the output module is φ followed by one linear layer, with φ the feature map of the cosine kernel
(ReLU, global average pooling, L2 normalisation), so the whole net is an ordinary CNN with an
L2-normalised penultimate layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from taskspace.errors import ConfigError
from taskspace.kernels import get_kernel

__all__ = ["FeatureMap", "OutputModule", "ChannelAdapter", "ModularNet"]


class FeatureMap(nn.Module):
    """φ of the ``cosine_relu`` kernel as a module: normalize(flatten(global_avg_pool(relu(u)))).

    For 2-D input it is normalize(relu(u)); zero vectors stay zero, so φ never produces NaN.
    """

    def __init__(self) -> None:
        super().__init__()
        self.kernel = get_kernel("cosine_relu")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.kernel.feature_map(inputs)


class ChannelAdapter(nn.Module):
    """A per-channel affine map as a 1x1 convolution (one weight and one bias per channel), identity at first.

    It bridges two modules trained apart: set to map the channel means and deviations one module produces
    onto those the next module was trained on (:func:`taskspace.compose.operators.substitute`).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.affine = nn.Conv2d(channels, channels, kernel_size=1, groups=channels, bias=True)
        self.set_moments(torch.ones(channels), torch.zeros(channels))

    def set_moments(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """``y_c = scale_c x_c + shift_c``."""
        bias = self.affine.bias
        assert bias is not None  # built with bias=True
        with torch.no_grad():
            self.affine.weight.copy_(scale.reshape(-1, 1, 1, 1))
            bias.copy_(shift.reshape(-1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.affine(inputs)


class OutputModule(nn.Module):
    """F_out(u) = Wᵀ φ(u) + b."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.feature_map = FeatureMap()
        self.linear = nn.Linear(feature_dim, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(self.feature_map(inputs))


class ModularNet(nn.Module):
    """Hidden modules (runs of stages between cut points) followed by an output module.

    Args:
        stages: the architecture as a list of stages; the last stage outputs pre-activations.
        feature_dim: width of the last stage's output (after pooling).
        num_classes: outputs of the linear layer.
        cut_points: stage indices where one hidden module ends and the next begins; ``()`` makes the
            whole trunk one hidden module, as in the paper's CIFAR-10 runs.
        spec: how the net was built (architecture name and arguments), stored in checkpoints.
        adapters: hidden module index -> channels: a per-channel affine 1x1 convolution placed before that
            module (a composed net's bridge between modules trained apart; see taskspace.compose).
        order: the modules cut at ``cut_points``, in the order the net runs them (an inverted net): position
            ``j`` runs a copy of module ``order[j]``, a module listed twice is run twice (its own weights
            each time). The last stage's pre-activations are followed by a ReLU wherever its module is
            not last, since the next module was trained on activations.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        feature_dim: int,
        num_classes: int,
        cut_points: Sequence[int] = (),
        spec: dict[str, Any] | None = None,
        adapters: Mapping[int, int] | None = None,
        order: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        cuts = sorted(set(int(point) for point in cut_points))
        if any(point <= 0 or point >= len(stages) for point in cuts):
            example = (f"e.g. --cut-points {len(stages) // 2}" if len(stages) > 1
                       else "this net has a single stage: give no cut points")
            raise ConfigError(
                f"cut points {list(cut_points)} must lie strictly between 0 and {len(stages)} "
                f"(the number of stages); {example}"
            )
        bounds = [0, *cuts, len(stages)]
        modules = [nn.Sequential(*stages[start:end]) for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
        if order is not None:
            modules = _ordered(modules, order)
        self.hidden = nn.ModuleList(modules)
        if any(not 0 <= int(index) < len(self.hidden) for index in (adapters or {})):
            raise ConfigError(f"adapters {sorted(adapters or {})} must sit before hidden modules 0 to "
                              f"{len(self.hidden) - 1}")
        self.adapters = nn.ModuleDict({str(int(index)): ChannelAdapter(int(channels))
                                       for index, channels in sorted((adapters or {}).items())})
        self.output = OutputModule(feature_dim, num_classes)
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.cut_points = tuple(cuts)
        self.spec = dict(spec or {})

    @property
    def num_hidden(self) -> int:
        return len(self.hidden)

    def trunk(self, inputs: torch.Tensor) -> torch.Tensor:
        """Output of the last hidden module (pre-activations)."""
        for index, module in enumerate(self.hidden):
            if str(index) in self.adapters:
                inputs = self.adapters[str(index)](inputs)
            inputs = module(inputs)
        return inputs

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """φ of the trunk's output: unit-norm vectors of size ``feature_dim``."""
        return self.output.feature_map(self.trunk(inputs))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.output(self.trunk(inputs))

    def hidden_input(self, inputs: torch.Tensor, index: int) -> torch.Tensor:
        """The input of hidden module ``index``: earlier modules run frozen, with no graph kept."""
        with torch.no_grad():
            for position, module in enumerate(self.hidden[:index]):
                if str(position) in self.adapters:
                    inputs = self.adapters[str(position)](inputs)
                inputs = module(inputs)
            if str(index) in self.adapters:
                inputs = self.adapters[str(index)](inputs)
        return inputs.detach()

    def freeze_hidden(self, upto: int) -> None:
        """Freeze hidden modules ``0..upto-1``: eval mode (BatchNorm running statistics), no gradients."""
        for module in self.hidden[:upto]:
            module.eval()
            module.requires_grad_(False)

    def new_output_module(self, num_classes: int) -> None:
        """Replace the output module by a fresh one with ``num_classes`` outputs (for transfer)."""
        self.output = OutputModule(self.feature_dim, num_classes)
        self.num_classes = num_classes
        self.spec["num_classes"] = num_classes


def _ordered(modules: list[nn.Sequential], order: Sequence[int]) -> list[nn.Sequential]:
    """Copies of ``modules`` in ``order``; the last module's pre-activations get a ReLU where it is not last."""
    import copy

    if not order or any(isinstance(index, bool) or not 0 <= int(index) < len(modules) for index in order):
        raise ConfigError(f"the order {list(order)} must list hidden modules 0 to {len(modules) - 1}")
    last = len(modules) - 1
    placed = []
    for position, index in enumerate(order):
        module = copy.deepcopy(modules[int(index)])
        if int(index) == last and position < len(order) - 1:
            module = nn.Sequential(*module.children(), nn.ReLU())  # the same parameter names, then φ's ReLU
        placed.append(module)
    return placed
