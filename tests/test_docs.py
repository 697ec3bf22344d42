"""The documentation's generated pages: each matches the code or the JSON it comes from."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_page_matches_its_source(generate) -> None:
    stale = generate.stale(generate.pages())
    assert not stale, f"regenerate with `python docs/generate.py`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_every_result_has_a_page_and_a_producer(generate) -> None:
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert (ROOT / "docs" / "results" / f"{path.stem}.md").is_file(), path.name
        assert any(path.stem.startswith(prefix) for prefix in generate.PRODUCERS), path.name


def test_a_page_follows_its_json(generate, tmp_path) -> None:
    original = ROOT / "benchmarks" / "results" / "ray_cluster.json"
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    document = json.loads(copy.read_text())
    document["scoring_seconds"]["process"] = 123456.0
    copy.write_text(json.dumps(document))
    page = generate.render_result(copy)
    assert "123,456" in page and page != generate.render_result(original)
    assert "python benchmarks/ray_cluster.py" in page and "cpu count 2" in page


def test_the_references_list_every_registered_name(generate) -> None:
    from taskspace.scoring import list_estimators
    from taskspace.transfer import list_protocols

    estimators, protocols = generate.render_estimators(), generate.render_protocols()
    assert all(f"`{name}`" in estimators for name in list_estimators())
    assert all(f"`{pattern}`" in protocols for pattern in list_protocols())
    assert "taskspace matrix" in generate.render_cli()


def test_the_readme_is_for_users() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "make demo" in readme and "make test" in readme


def test_the_readme_findings_follow_the_json(generate, tmp_path) -> None:
    """Every number of "What the benchmarks show" is written from the results: change one, the text follows."""
    from findings import render_findings

    results = ROOT / "benchmarks" / "results"
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    document = json.loads((copy / "transfer_default.json").read_text())
    for row in document["evaluation"]:
        if row["protocol"] == "frozen_all" and row["estimator"] == "logme":
            row["kendall_tau"] = 0.123456
    (copy / "transfer_default.json").write_text(json.dumps(document))
    original, changed = render_findings(results), render_findings(copy)
    assert "LogME 0.761" in " ".join(original.split()) and "LogME 0.123" in " ".join(changed.split())
    assert original in (ROOT / "README.md").read_text(encoding="utf-8")
