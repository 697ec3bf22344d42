"""The layering: the pure core (scoring, analysis, matrix, structure, CKA, plotting) runs without torch."""

from __future__ import annotations

import subprocess
import sys

PURE_CORE = ("taskspace.scoring", "taskspace.analysis", "taskspace.matrix", "taskspace.structure",
             "taskspace.similarity.cka", "taskspace.plotting")

BLOCK_TORCH = """
import sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is made unimportable for this test")
        return None

sys.meta_path.insert(0, BlockTorch())
"""


def test_the_pure_core_imports_and_runs_with_torch_unimportable() -> None:
    code = BLOCK_TORCH + "\n".join(f"import {module}" for module in PURE_CORE) + """
import numpy as np
from taskspace.scoring import get_estimator, list_estimators
from taskspace.similarity.cka import linear_cka
rng = np.random.default_rng(0)
features, labels = rng.random((60, 5)), np.repeat([0, 1, 2], 20)
probs = np.full((60, 4), 0.25)
for name in list_estimators():
    get_estimator(name)(features, labels, source_probs=probs, source_accuracy=0.9)
linear_cka(features, features[:, :3])
import taskspace
assert "torch" not in sys.modules, "torch was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
