"""The ray executor on an existing two-node Ray cluster started on this machine (`ray start --head`, then a
second `ray start --address ...`, each with its own temp folder): the serial matrix bit for bit, also when a
worker is killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskspace.matrix import read_matrix_set

pytest.importorskip("ray")

SPACE = 'dataset = "digits"\npairs = [["3", "8"], ["1", "7"], ["0", "6"]]\n'
ESTIMATORS = "alignment,logme,leep,source_accuracy"


@pytest.fixture(scope="module")
def cluster():
    """(address, environment) of a running two-node cluster with token authentication."""
    from taskspace.runner.local_cluster import local_ray_cluster

    with local_ray_cluster(nodes=2, cpus_per_node=1) as running:
        nodes = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{running.address}', "
                                "log_to_driver=False); print(len([n for n in ray.nodes() if n['Alive']]))"],
                               env=running.environment, capture_output=True, text=True, timeout=180)
        assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stdout + nodes.stderr
        yield running.address, running.environment


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    (folder / "space.toml").write_text(SPACE)
    command = [sys.executable, "-m", "taskspace", "matrix", str(folder / "run"), "--space", str(folder / "space.toml"),
               "--epochs", "1", "--estimators", ESTIMATORS, "--threads", "1", "--quiet"]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return read_matrix_set(folder / "run" / "matrix.json"), folder / "space.toml"


def _matrix_command(space: Path, run: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "taskspace", "matrix", str(run), "--space", str(space), "--epochs", "1",
            "--estimators", ESTIMATORS, "--threads", "1", "--executor", "ray", "--ray-address", address, "--quiet"]


def test_the_two_node_cluster_gives_the_serial_matrix(cluster, serial, tmp_path) -> None:
    address, environment = cluster
    expected, space = serial
    result = subprocess.run(_matrix_command(space, tmp_path / "run", address), env=environment,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    matrices = read_matrix_set(tmp_path / "run" / "matrix.json")
    for name in ESTIMATORS.split(","):
        assert matrices[name].equals(expected[name]), name
    import json

    placement = json.loads((tmp_path / "run" / "ray_placement.json").read_text())
    assert len(placement["nodes"]) == 2, placement  # the cells ran on both nodes, not one
    assert set(placement["cells"].values()) == set(placement["nodes"])


def _cell_workers() -> list[int]:
    """Pids of Ray workers running a taskspace cell now (Ray titles them by the task's function)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split(None, 1)[0]) for line in listing.splitlines() if "ray::_compute" in line]


def test_a_worker_killed_mid_run_is_survived(cluster, serial, tmp_path) -> None:
    address, environment = cluster
    expected, space = serial
    process = subprocess.Popen(_matrix_command(space, tmp_path / "run", address), env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 300
    while killed is None and process.poll() is None and time.time() < deadline:
        workers = _cell_workers()
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.05)
    _, errors = process.communicate(timeout=600)
    assert killed is not None, "no cell was seen running to kill"
    assert process.returncode == 0, errors
    matrices = read_matrix_set(tmp_path / "run" / "matrix.json")
    for name in ESTIMATORS.split(","):
        assert matrices[name].equals(expected[name]), name


def test_an_unreachable_cluster_is_one_line(tmp_path) -> None:
    (tmp_path / "space.toml").write_text(SPACE)
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    result = subprocess.run(_matrix_command(tmp_path / "space.toml", tmp_path / "run", "127.0.0.1:1"),
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("taskspace: error:")]
    assert len(lines) == 1 and "cannot join the Ray cluster at '127.0.0.1:1'" in lines[0]
