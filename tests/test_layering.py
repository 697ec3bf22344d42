"""The layering: the pure core (scoring, analysis, matrix, structure, CKA, plotting) runs without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

import taskspace

PURE_CORE = ("taskspace.scoring", "taskspace.analysis", "taskspace.matrix", "taskspace.structure", "taskspace.history",
             "taskspace.intervals",
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


def _import_graph() -> dict[str, set[str]]:
    """Which taskspace module imports which, read from the source (lazy imports inside functions and
    imports under ``if TYPE_CHECKING:`` included: a type-only import is still a dependency)."""
    root = Path(taskspace.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                wanted = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            elif isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = _import_graph()
    cycles = list(nx.simple_cycles(nx.DiGraph([(a, b) for a, targets in graph.items() for b in targets])))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in cycles[:5])


def test_no_module_imports_the_package_it_belongs_to() -> None:
    graph = _import_graph()
    upward = [(name, target) for name, targets in graph.items() for target in targets if name.startswith(target + ".")]
    assert not upward, f"modules importing their own package's face: {upward}"


def test_every_declared_dependency_is_imported() -> None:
    """``pip install taskspace`` pulls nothing that taskspace never imports."""
    import re
    import tomllib

    project = tomllib.loads((Path(taskspace.__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    import_names = {"scikit-learn": "sklearn", "pillow": "PIL"}
    imported = {target.split(".")[0] for targets in _all_imports().values() for target in targets}
    for requirement in project["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        assert import_names.get(name, name) in imported, f"{name} is declared but never imported"


def _all_imports() -> dict[str, set[str]]:
    """Every module each taskspace module imports, inside the package or not."""
    root = Path(taskspace.__file__).parent
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        names = found.setdefault(str(path), set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return found
