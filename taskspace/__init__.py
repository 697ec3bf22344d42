"""taskspace: transfer-learning task-space analysis with modular networks trained by pairwise kernels.

``taskspace.Run`` (a run folder and its one owner, :class:`taskspace.runner.Run`) and
``taskspace.GridConfig`` are importable from here; importing the package itself loads neither torch
nor anything else.
"""

from typing import Any

from taskspace._version import __version__

__all__ = ["__version__", "Run", "GridConfig"]


def __getattr__(name: str) -> Any:
    if name == "Run":
        from taskspace.runner.run import Run

        return Run
    if name == "GridConfig":
        from taskspace.config import GridConfig

        return GridConfig
    raise AttributeError(f"module 'taskspace' has no attribute '{name}'")
