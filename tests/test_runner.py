"""The grid on the embedded digits: resumable cells, executors that agree, runs that never mix."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from taskspace.errors import TaskspaceError
from taskspace.matrix import read_matrix_set
from taskspace.runner import GridConfig, compute_matrix, compute_truth, open_run, read_truth_csv

SPACE = """dataset = "digits"
pairs = [["3", "8"], ["1", "7"], ["0", "6"], ["5", "9"]]
"""
ESTIMATORS = ("alignment", "alignment_centered", "logme", "leep", "source_accuracy")


@pytest.fixture()
def space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return str(path)


def _grid(space_file, **options):
    return GridConfig(space=space_file, train={"epochs": 3, "seed": 0}, **options)


def test_matrix_and_truth_on_digits(tmp_path, space_file):
    context = open_run(tmp_path / "run", _grid(space_file))
    matrices = compute_matrix(context, estimators=ESTIMATORS)
    assert set(matrices) == set(ESTIMATORS)
    ids = ("3_vs_8", "1_vs_7", "0_vs_6", "5_vs_9")
    for matrix in matrices.values():
        assert matrix.sources == ids and matrix.targets == ids
        assert np.isfinite(matrix.scores).all()
    # source_accuracy never looks at the target: constant along each row
    baseline = matrices["source_accuracy"].scores
    assert np.allclose(baseline, baseline[:, :1])
    assert read_matrix_set(tmp_path / "run" / "matrix.npz")["logme"].equals(matrices["logme"])
    rows = compute_truth(context, protocols=("frozen_k5", "frozen_all"))
    assert len(rows) == 2 * 16
    truth = read_truth_csv(tmp_path / "run" / "truth.csv")
    assert set(truth) == {"frozen_k5", "frozen_all"}
    # the diagonal is computed and marked
    assert (tmp_path / "run" / "truth.csv").read_text().count(",true") == 2 * 4
    assert 0.5 <= np.nanmean(truth["frozen_all"].scores) <= 1.0


def test_rerun_skips_finished_cells_and_other_config_is_refused(tmp_path, space_file):
    context = open_run(tmp_path / "run", _grid(space_file))
    compute_matrix(context, estimators=("alignment",))
    stamp = context.score_file("3_vs_8", "1_vs_7").stat().st_mtime_ns
    compute_matrix(context, estimators=("alignment",))
    assert context.score_file("3_vs_8", "1_vs_7").stat().st_mtime_ns == stamp
    with pytest.raises(TaskspaceError, match="holds another run .*seed: run 0, asked 1"):
        open_run(tmp_path / "run", _grid(space_file, seed=1))


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_parallel_executors_give_the_serial_matrix(tmp_path, space_file, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    serial = compute_matrix(open_run(tmp_path / "serial", _grid(space_file)), estimators=ESTIMATORS, threads=1)
    parallel = compute_matrix(open_run(tmp_path / executor, _grid(space_file)), estimators=ESTIMATORS,
                              executor=executor, workers=2, threads=1)
    for name in ESTIMATORS:
        assert parallel[name].equals(serial[name]), name


def test_sigkilled_matrix_run_resumes_to_the_identical_matrix(tmp_path, space_file):
    command = [sys.executable, "-m", "taskspace", "matrix", "--space", space_file, "--epochs", "3",
               "--estimators", ",".join(ESTIMATORS), "--quiet"]
    subprocess.run([*command, str(tmp_path / "straight")], check=True, capture_output=True)
    process = subprocess.Popen([*command, str(tmp_path / "killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "zoo" / "1_vs_7" / "metrics.json"
    deadline = time.time() + 300
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed_midway = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed_midway, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "matrix.csv").exists()
    subprocess.run([*command, str(tmp_path / "killed")], check=True, capture_output=True)
    straight = read_matrix_set(tmp_path / "straight" / "matrix.json")
    resumed = read_matrix_set(tmp_path / "killed" / "matrix.json")
    for name in ESTIMATORS:
        assert resumed[name].equals(straight[name]), name


@pytest.mark.parametrize("content", ["{}", '{"grid": 3}', '{"grid": {"nonsense": 1}}'])
def test_a_damaged_run_record_is_refused_in_one_line(tmp_path, content):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(content)
    with pytest.raises(TaskspaceError, match="not a taskspace run record"):
        open_run(tmp_path / "run", None)


def test_adding_an_estimator_does_not_pass_the_images_again(tmp_path, space_file):
    import json

    from taskspace.runner.extraction import bank_key

    context = open_run(tmp_path / "run", _grid(space_file))
    compute_matrix(context, estimators=("alignment",))
    store = tmp_path / "run" / "features" / f"{bank_key(context, '3_vs_8')}.npz"
    record_file = tmp_path / "run" / "features" / "banks" / "3_vs_8.json"
    stamp, record = store.stat().st_mtime_ns, json.loads(record_file.read_text())
    compute_matrix(context, estimators=("alignment", "logme"))
    cell = json.loads(context.score_file("3_vs_8", "1_vs_7").read_text())
    assert set(cell["scores"]) == {"alignment", "logme"}
    assert store.stat().st_mtime_ns == stamp
    assert json.loads(record_file.read_text()) == record
    timing = json.loads((tmp_path / "run" / "score_seconds.json").read_text())
    banks = sorted((tmp_path / "run" / "features" / "banks").glob("*.json"))
    assert timing["feature_extraction"] == pytest.approx(sum(json.loads(p.read_text())["seconds"] for p in banks))


def test_a_network_changed_under_the_run_is_scored_again_whole(tmp_path, space_file):
    """Scores measured on a network whose bytes changed since are never kept beside new ones."""
    import json
    import shutil

    from taskspace.io import sha256_of_file
    from taskspace.training import train_task

    context = open_run(tmp_path / "run", _grid(space_file))
    compute_matrix(context, estimators=("alignment",))
    cell_file = context.score_file("3_vs_8", "1_vs_7")
    before = json.loads(cell_file.read_text())
    assert before["checkpoint_sha256"] == sha256_of_file(context.checkpoint("3_vs_8"))
    # another network of the same task and config (another seed) put in its place, its metrics made to agree
    config = context.grid.source_config("3_vs_8", context.space.dataset)
    other = tmp_path / "other"
    train_task(type(config)(**{**config.to_dict(), "seed": 5}), out_dir=other)
    shutil.copyfile(other / "model.pt", context.checkpoint("3_vs_8"))
    metrics_file = context.checkpoint("3_vs_8").parent / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["model_sha256"] = sha256_of_file(context.checkpoint("3_vs_8"))
    metrics_file.write_text(json.dumps(metrics))
    compute_matrix(context, estimators=("alignment", "logme"))
    after = json.loads(cell_file.read_text())
    assert after["checkpoint_sha256"] == sha256_of_file(other / "model.pt")
    assert set(after["scores"]) == {"alignment", "logme"}
    assert after["scores"]["alignment"] != before["scores"]["alignment"]  # measured again, on the new network
