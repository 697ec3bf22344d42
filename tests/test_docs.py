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


def test_a_command_output_keeps_its_lines_on_a_results_page(generate, tmp_path) -> None:
    output = "rank  source   score\n   1  a_vs_b   0.5000\n   2  c_vs_d   0.2500"
    path = tmp_path / "tour.json"
    path.write_text(json.dumps({"verdict_text": output, "commands": [
        {"command": "taskspace recommend RUN --target x", "output": output, "seconds": 1.5}]}))
    page = generate.render_result(path)
    assert page.count("```text\n" + output + "\n```") == 2  # verbatim, lines and columns kept
    assert all(output.splitlines()[1] not in line for line in page.splitlines() if line.startswith("|"))
    assert "| taskspace recommend RUN --target x | 1.5 |" in page
    for result in sorted((ROOT / "docs" / "results").glob("*.md")):  # and no committed page joins lines in a cell
        assert not any(line.startswith("|") and "rank  source" in line for line in result.read_text().splitlines())


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


def test_the_method_formulas_are_typeset_not_shown_as_raw_latex() -> None:
    import markdown
    import yaml

    class _Loader(yaml.SafeLoader):
        """mkdocs.yml's python tags (none today) are not needed to read its extensions."""

    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)
    extensions = [next(iter(item)) if isinstance(item, dict) else item for item in config["markdown_extensions"]]
    options = {next(iter(item)): next(iter(item.values())) for item in config["markdown_extensions"]
               if isinstance(item, dict)}
    assert "pymdownx.arithmatex" in extensions and options["pymdownx.arithmatex"] == {"generic": True}
    scripts = config["extra_javascript"]
    assert any("mathjax" in script for script in scripts if script.startswith("https://"))
    assert all((ROOT / "docs" / script).is_file() for script in scripts if not script.startswith("https://"))
    html = markdown.markdown((ROOT / "docs" / "method.md").read_text(encoding="utf-8"),
                             extensions=extensions, extension_configs=options)
    assert html.count('class="arithmatex"') >= 40  # every formula of the method, inline and displayed
    assert "$A = \\frac" not in html
