"""Shared fixtures.

Tests that need the real CIFAR-10 find it through ``TASKSPACE_DATA``. Without it they are skipped,
unless ``TASKSPACE_REQUIRE_DATA=1`` (set by ``.ci/run``), which turns missing data into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    """The folder that holds ``cifar-10-batches-py`` (the real CIFAR-10)."""
    root = os.environ.get("TASKSPACE_DATA")
    if root and (Path(root) / "cifar-10-batches-py" / "data_batch_1").is_file():
        return Path(root)
    message = f"real CIFAR-10 not found under TASKSPACE_DATA={root!r}"
    if os.environ.get("TASKSPACE_REQUIRE_DATA") == "1":
        pytest.fail(message + " and TASKSPACE_REQUIRE_DATA=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the whole session (converted arrays land here)."""
    return tmp_path_factory.mktemp("taskspace-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    # No test writes into the user's real cache folder.
    monkeypatch.setenv("TASKSPACE_CACHE", str(session_cache))
