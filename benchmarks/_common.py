"""Shared helpers of the benchmark scripts: environment record, data root, result files, tables."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import taskspace
from taskspace.io import write_json
from taskspace.training.compute import machine_record

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / "work"


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    machine = machine_record()
    return {
        "taskspace_version": taskspace.__version__,
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        # the kernels torch picks depend on these: trained weights differ in their last bits across them
        **{key: machine[key] for key in ("cpu", "cpu_capability")},
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def require_cifar() -> str:
    """The data root from TASKSPACE_DATA; exit with a clear line when the real CIFAR-10 is missing."""
    root = os.environ.get("TASKSPACE_DATA")
    if not root or not (Path(root) / "cifar-10-batches-py").is_dir():
        sys.exit("benchmarks need the real CIFAR-10: set TASKSPACE_DATA to the folder holding cifar-10-batches-py")
    return root


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` atomically, with the environment added."""
    path = RESULTS / f"{name}.json"
    write_json(path, {"environment": environment(), **payload})
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table on stdout (it pastes into the README as is)."""
    cells = [[_format(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)) + " |")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def run_folder(experiment: str, config: Any) -> Path:
    """Where a benchmark keeps the run of ``config`` (resumable, shared between scripts)."""
    return WORK / experiment / f"{config.task}-{config.mode}-e{config.epochs}-s{config.seed}-{config.hash()}"
