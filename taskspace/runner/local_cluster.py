"""A Ray cluster of several nodes on this machine, for trying and testing the ``ray`` executor.

Each node is its own ``ray start`` process with its own temp folder, as on separate machines; the
cluster uses Ray's token authentication with a fresh token. Nothing here is needed to use a real
cluster: pass its address with ``--ray-address``.

::

    with local_ray_cluster(nodes=2, cpus_per_node=1) as cluster:
        subprocess.run(["taskspace", "matrix", "runs/grid", "--executor", "ray",
                        "--ray-address", cluster.address], env=cluster.environment, check=True)
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taskspace.errors import TaskspaceError

__all__ = ["LocalCluster", "local_ray_cluster"]

#: Seconds a node may take to start.
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class LocalCluster:
    """A running local cluster.

    Attributes:
        address: the head's address, for ``--ray-address``.
        environment: the environment a driver needs to join it (the authentication token's path).
        nodes: how many nodes it has.
    """

    address: str
    environment: dict[str, str]
    nodes: int


@contextlib.contextmanager
def local_ray_cluster(*, nodes: int = 2, cpus_per_node: int = 1) -> Iterator[LocalCluster]:
    """Start ``nodes`` Ray nodes on this machine, yield the cluster, and stop every Ray process after.

    Raises:
        TaskspaceError: a node did not start (its output's last line says why).
    """
    ray = str(Path(sys.executable).with_name("ray"))
    folder = Path(tempfile.mkdtemp(prefix="ts-ray-", dir="/tmp"))  # short: Ray's socket paths are length-limited
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    environment = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                   "RAY_USAGE_STATS_ENABLED": "0"}
    environment.pop("RAY_ADDRESS", None)
    try:
        head = _start(ray, ["--head", "--port=0", "--include-dashboard=false"], folder / "node0", cpus_per_node,
                      environment)
        found = re.search(r"ray start --address='([^']+)'", head)
        if found is None:
            raise TaskspaceError("the Ray head node did not print its address; see `ray start --head` by hand")
        address = found.group(1)
        for index in range(1, nodes):
            _start(ray, [f"--address={address}"], folder / f"node{index}", cpus_per_node, environment)
        yield LocalCluster(address=address, environment=environment, nodes=nodes)
    finally:
        subprocess.run([ray, "stop", "--force"], env=environment, capture_output=True, timeout=START_TIMEOUT_S)
        shutil.rmtree(folder, ignore_errors=True)


def _start(ray: str, options: list[str], temp_dir: Path, cpus: int, environment: dict[str, str]) -> str:
    result = subprocess.run([ray, "start", *options, f"--num-cpus={cpus}", f"--temp-dir={temp_dir}",
                             "--disable-usage-stats"], env=environment, capture_output=True, text=True,
                            timeout=START_TIMEOUT_S)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {result.returncode}"
        raise TaskspaceError(f"a Ray node did not start ({last})")
    return output
