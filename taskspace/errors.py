"""Errors a person can act on.

Every error raised for bad input is a :class:`TaskspaceError` whose message is one line naming the
problem and the fix. The CLI prints that line and exits non-zero; library callers can catch it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["TaskspaceError", "DataError", "ConfigError", "CheckpointError", "did_you_mean"]


class TaskspaceError(Exception):
    """Bad input: the message names the problem and the fix, on one line."""


class DataError(TaskspaceError):
    """Missing, truncated, corrupt or unsafe data."""


class ConfigError(TaskspaceError, ValueError):
    """An option with a value that cannot work."""


class CheckpointError(TaskspaceError):
    """A checkpoint that is missing, corrupt or belongs to another model."""


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option, or ``""`` if none is close."""
    matches = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
