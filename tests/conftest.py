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
def model_spider_root() -> Path:
    """The public Model Spider matrices (``model-selection/model-spider`` beside CIFAR-10 in ``TASKSPACE_DATA``)."""
    root = os.environ.get("TASKSPACE_DATA")
    folder = Path(root) / "model-selection" / "model-spider" if root else None
    if folder is not None and (folder / "truth.csv").is_file() and (folder / "scores.csv").is_file():
        return folder
    message = f"model-selection/model-spider not found under TASKSPACE_DATA={root!r}"
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


DIGITS_SPACE = """dataset = "digits"
classes = ["1", "7", "3", "8"]

[groups]
strokes = ["1", "7"]
loops = ["3", "8"]
"""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Path:
    """A finished grid run on a 6-task digits space (classes 1, 7, 3, 8 in two groups): zoo, a matrix
    of three estimators, the frozen-trunk ground truth, the verdict and the module similarity. Shared by the tests of what reads a run
    (recommendation, structure, similarity, report); tests copy it before writing into it."""
    from taskspace.analysis import evaluate
    from taskspace.runner import GridConfig, Run
    from taskspace.similarity import module_similarity, write_similarity

    folder = tmp_path_factory.mktemp("digits-run")
    space_file = folder / "space.toml"
    space_file.write_text(DIGITS_SPACE)
    previous = os.environ.get("TASKSPACE_CACHE")
    os.environ["TASKSPACE_CACHE"] = str(session_cache)
    try:
        run = Run.create(folder / "run", GridConfig(space=str(space_file), train={"epochs": 3, "seed": 0}))
        matrices = run.score(("alignment", "kernel_ridge_r2", "logme"))
        run.measure(("frozen_k5", "frozen_all"))
        run.write_verdict(evaluate(matrices, run.truths(), resamples=200))
        write_similarity(run, module_similarity(run, samples=500))
    finally:
        if previous is None:
            os.environ.pop("TASKSPACE_CACHE", None)
        else:
            os.environ["TASKSPACE_CACHE"] = previous
    return folder / "run"
