"""How a training step is computed: in float32 or under bfloat16 autocast, compiled or not.

The default (float32, not compiled) is exact CPU arithmetic: a run under it gives the same weights
bit for bit on every call on one kind of processor. Across processors the kernels torch picks (by
instruction set and vendor) sum in other orders, so the weights' last bits, and a checkpoint's SHA-256,
differ; :func:`machine_record` is written beside every trained network so that a record says which
processor made its bytes. ``bf16`` runs the forward passes under ``torch.autocast`` (convolutions
and matrix products in bfloat16, accumulation, normalisation and the loss in float32), and
``compile`` hands the step's forward pass to ``torch.compile``; both are for accelerators.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from taskspace.errors import ConfigError

__all__ = ["Compute", "FLOAT32", "machine_record"]

Function = TypeVar("Function", bound=Callable[..., Any])


@dataclass(frozen=True)
class Compute:
    """Precision (``fp32`` or ``bf16``) and whether to compile the training step's forward pass."""

    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"unknown precision '{self.precision}' (choose from: fp32, bf16)")

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        """bfloat16 autocast on ``device`` under ``bf16``; nothing under ``fp32``."""
        if self.precision == "fp32":
            yield
            return
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield

    def compiled(self, function: Function) -> Function:
        """``function`` compiled with ``torch.compile`` when asked for, else ``function`` itself."""
        if not self.compile:
            return function
        return torch.compile(function)  # type: ignore[return-value]


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Float32 inside an autocast region (the pairwise kernel and its objective need it)."""
    if not torch.is_autocast_enabled(device.type):
        yield
        return
    with torch.autocast(device_type=device.type, enabled=False):
        yield


#: The default: float32, not compiled.
FLOAT32 = Compute()


def machine_record(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The processor a network was trained on, as far as it decides the arithmetic: its model name, the
    instruction set torch's CPU kernels use, torch's version, and the accelerator where one trained it."""
    record: dict[str, Any] = {"cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                              "torch_version": torch.__version__}
    if torch.device(device).type == "cuda":
        record["accelerator"] = torch.cuda.get_device_name(torch.device(device))
    return record


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
