"""The run report: sections, embedded figures, no external request, Markdown twin, missing truth, errors,
atomic writing, determinism, and (headless Chromium) that the figures are actually shown."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from taskspace.errors import TaskspaceError
from taskspace.report import ReportPaths, write_report
from taskspace.report._document import (
    Code,
    FigureBlock,
    Paragraph,
    RenderedFigure,
    Section,
    Table,
    render_html,
    render_markdown,
)

SECTION_ANCHORS = ("provenance", "matrix", "structure", "similarity", "verdict", "recommendations")
NO_TRUTH = "No ground truth was measured for this run"
CHROMIUM_TIMEOUT_S = 180
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cache_env(session_cache):
    """TASKSPACE_CACHE for module-scoped fixtures (the autouse fixture that sets it is per test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASKSPACE_CACHE", str(session_cache))
        yield


@pytest.fixture(scope="module")
def written(digits_run, tmp_path_factory, cache_env) -> tuple[Path, ReportPaths]:
    """A private copy of the digits run and its report, written once for the module's tests."""
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(digits_run, run)
    return run, write_report(run)


@pytest.fixture()
def run_copy(digits_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    return copy


def _html(paths: ReportPaths) -> str:
    return paths.html.read_text(encoding="utf-8")


def _image_sources(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# The page -----------------------------------------------------------------------------------------------


def test_report_has_every_section_in_html_and_markdown(written) -> None:
    run, paths = written
    assert paths.html == run / "report" / "report.html" and paths.markdown == run / "report" / "report.md"
    page, markdown = _html(paths), paths.markdown.read_text(encoding="utf-8")
    titles = re.findall(r'<section id="([^"]+)">\s*<h2>([^<]+)</h2>', page)
    assert [anchor for anchor, _ in titles] == list(SECTION_ANCHORS)
    for number, (_, title) in enumerate(titles, start=1):
        assert title.startswith(f"{number}. ")
        assert f"## {title}" in markdown
    for text in ("kernel_ridge_r2", "frozen_k5", "frozen_all", "cka_linear", "Mantel p", "ARI affinity",
                 "mean Kendall τ [95% CI]", "top-1 regret", "measured best", "measured worst", "Root:", "community 1"):
        assert text in page and text in markdown
    assert NO_TRUTH not in page
    start = page.index('<section id="recommendations">')
    assert "<code>history</code>" in page[start:page.index("</section>", start)]  # as `taskspace recommend` ranks


def test_provenance_names_config_hash_versions_and_checkpoints(written) -> None:
    import json

    run, paths = written
    page = _html(paths)
    record = json.loads((run / "run.json").read_text())
    matrix = json.loads((run / "matrix.json").read_text())["matrices"][0]
    assert record["grid_hash"] in page
    for task_id, digest in matrix["provenance"]["checkpoint_sha256"].items():
        assert task_id in page and digest[:12] in page and digest not in page  # short hashes only
    for key in ("torch_version", "numpy_version", "taskspace_version"):
        assert matrix["provenance"][key] in page
    assert re.search(r"written \(UTC\)</td><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", page)


def test_figures_are_embedded_as_data_uris_and_nothing_is_requested(written) -> None:
    _, paths = written
    page = _html(paths)
    sources = _image_sources(page)
    total = int(re.search(r'data-figures-total="(\d+)"', page).group(1))
    # heatmap, 2 truths, 2 clustermaps, graph, 2 similarity plots, 2 estimate-vs-truth grids
    assert len(sources) == total == len(paths.figures) // 2 == 10
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    for attribute in re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", page):
        assert attribute.startswith(("data:image/png;base64,", "#")), attribute
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert "<link" not in page and "@import" not in page
    assert "content=\"default-src &#x27;none&#x27;;" in page  # the Content-Security-Policy forbids any request


def test_markdown_references_figure_files_that_exist(written) -> None:
    _, paths = written
    markdown = paths.markdown.read_text(encoding="utf-8")
    references = re.findall(r"\]\((figures/[^)]+)\)", markdown)
    pngs = [name for name in references if name.endswith(".png")]
    assert len(pngs) == 10 and len(references) == 20
    for name in references:
        assert (paths.markdown.parent / name).is_file(), name
    for path in paths.figures:
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG_SIGNATURE)
            assert path.with_suffix(".svg").read_bytes().lstrip().startswith(b"<?xml")
    assert "http://" not in markdown and "https://" not in markdown


def test_recommendations_cover_every_target(written) -> None:
    run, paths = written
    from taskspace.runner import Run

    ids = Run.open(run).space.ids
    page = _html(paths)
    section = page[page.index('<section id="recommendations">'):]
    for target in ids:
        assert f"<tr><td>{target}</td><td class=\"number\">1</td>" in section
    assert section.count("<tr><td>") == 3 * len(ids)


def test_report_text_is_deterministic_apart_from_the_timestamp(written, tmp_path, monkeypatch) -> None:
    run, _ = written
    monkeypatch.setattr("taskspace.report._written_at", lambda: "2000-01-01 00:00:00")
    first = write_report(run, out_dir=tmp_path / "first")
    second = write_report(run, out_dir=tmp_path / "second")
    assert first.html.read_bytes() == second.html.read_bytes()
    assert first.markdown.read_bytes() == second.markdown.read_bytes()
    for one, other in zip(first.figures, second.figures):
        assert one.read_bytes() == other.read_bytes(), one.name
    assert "2000-01-01 00:00:00" in first.html.read_text(encoding="utf-8")


# Runs that lack something, and bad input ----------------------------------------------------------------


def test_run_without_ground_truth_still_gets_a_report(run_copy) -> None:
    (run_copy / "truth.csv").unlink()  # evaluation.csv stays behind: it must not be shown without truth
    paths = write_report(run_copy, out_dir=run_copy / "elsewhere")
    page = _html(paths)
    assert paths.html.parent == run_copy / "elsewhere"
    command = f"taskspace truth {run_copy}"
    for anchor in ("matrix", "structure", "similarity", "verdict", "recommendations"):
        start = page.index(f'<section id="{anchor}">')
        section = page[start:page.index("</section>", start)]
        assert NO_TRUTH in section and f"<code>{command}</code>" in section, anchor
    assert "mean Kendall τ [95% CI]" not in page  # no verdict table from a stale evaluation.csv
    assert len(_image_sources(page)) == 5  # heatmap, clustermap, graph, 2 similarity plots
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert f"> **Note:** {NO_TRUTH}" in markdown and f"`{command}`" in markdown


def test_the_report_reads_only_what_the_run_holds(run_copy, monkeypatch) -> None:
    import shutil as files

    files.rmtree(run_copy / "similarity")
    before = sorted(str(path.relative_to(run_copy)) for path in run_copy.rglob("*"))

    def no_forward_passes(*args, **kwargs):
        raise AssertionError("the report ran a network")

    monkeypatch.setattr("taskspace.features.source_outputs", no_forward_passes)
    paths = write_report(run_copy, out_dir=run_copy.parent / "report")
    page = _html(paths)
    start = page.index('<section id="similarity">')
    section = page[start:page.index("</section>", start)]
    assert f"<code>taskspace similarity {run_copy}</code>" in section
    assert sorted(str(path.relative_to(run_copy)) for path in run_copy.rglob("*")) == before


def test_missing_evaluation_is_computed_for_the_verdict(run_copy) -> None:
    (run_copy / "evaluation.csv").unlink()
    page = _html(write_report(run_copy))
    start = page.index('<section id="verdict">')
    verdict = page[start:page.index("</section>", start)]
    assert "computed here with taskspace.baselines.run_verdict" in verdict
    # three estimators, the zoo prior and the history ranker (as `taskspace evaluate` writes), two protocols
    assert verdict.count("<tr><td>") == 5 * 2 and "zoo_prior (baseline)" in verdict
    assert not (run_copy / "evaluation.csv").exists()  # the run is not changed behind the caller's back


@pytest.mark.parametrize("content", [None, "{}", "not json"])
def test_a_folder_that_is_not_a_run_raises_one_line(tmp_path, content) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    if content is not None:
        (folder / "run.json").write_text(content)
    with pytest.raises(TaskspaceError) as error:
        write_report(folder)
    message = _one_line(error)
    assert str(folder) in message and "run.json" in message
    assert not (folder / "report").exists()
    with pytest.raises(TaskspaceError, match="not a folder"):
        write_report(tmp_path / "missing")


def test_an_unknown_estimator_raises_one_line(run_copy) -> None:
    with pytest.raises(TaskspaceError, match="no estimator 'alignmnet'") as error:
        write_report(run_copy, estimator="alignmnet")
    _one_line(error)
    assert not (run_copy / "report").exists()


def test_an_error_midway_leaves_no_report_behind(run_copy, monkeypatch) -> None:
    def failing(*args, **kwargs):
        raise TaskspaceError("recommendation failed on purpose")

    # Recommendations come last: every figure has been made when this fails.
    monkeypatch.setattr("taskspace.report._sections.recommend", failing)
    with pytest.raises(TaskspaceError, match="on purpose"):
        write_report(run_copy)
    leftovers = list((run_copy / "report").rglob("*")) if (run_copy / "report").exists() else []
    assert leftovers == []


def test_text_is_escaped_in_html_and_markdown() -> None:
    hostile = '<script>alert("x")</script> & |pipe|'
    figure = RenderedFigure(name="f", caption=hostile, png=PNG_SIGNATURE + b"\0\0\0\rIHDR" + b"\0\0\0\1" * 2,
                            svg=b"<svg/>", dpi=96)
    sections = [Section(hostile, "s", (Paragraph((hostile, Code(hostile))),
                                       Table((hostile,), ((hostile,), ((hostile, Code("a|b")),))),
                                       FigureBlock(figure)))]
    page = render_html(hostile, sections, footer=hostile)
    assert 'alert("x")' not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; |pipe|" in page
    assert page.count("<script>") == 1  # only the page's own figure check
    markdown = render_markdown(hostile, sections, footer=hostile)
    assert "<script>" not in markdown.replace(f"`{hostile}`", "")
    for line in (line for line in markdown.splitlines() if line.startswith("|")):
        assert line.replace("\\|", "").count("|") == 2, line  # one column: escaped pipes split no cell
    assert "`a\\|b`" in markdown and "\\|pipe\\|" in markdown


# Headless Chromium ----------------------------------------------------------------------------------------


@pytest.fixture()
def chromium() -> str:
    """Debian's chromium; skipped when missing unless TASKSPACE_REQUIRE_CHROMIUM=1."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    if found is not None:
        return found
    message = "no chromium binary found (install Debian's chromium package)"
    if os.environ.get("TASKSPACE_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message + " and TASKSPACE_REQUIRE_CHROMIUM=1 requires it")
    pytest.skip(message)


def _run_chromium(chromium: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
               f"--user-data-dir={profile}", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S} s: {' '.join(command)}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def test_chromium_shows_every_figure(written, chromium, tmp_path) -> None:
    _, paths = written
    url = paths.html.resolve().as_uri()
    dumped = _run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", url)
    dom = dumped.stdout.decode("utf-8")
    body = re.search(r"<body\b[^>]*>", dom)
    assert body is not None, dom[:500]
    shown = re.search(r'data-figures-shown="(\d+)"', body.group(0))
    total = re.search(r'data-figures-total="(\d+)"', body.group(0))
    assert shown is not None, f"the page's load script did not run: {body.group(0)}"
    images = len(re.findall(r"<img\b", dom))
    assert int(shown.group(1)) == int(total.group(1)) == images == 10

    screenshot = tmp_path / "report.png"
    _run_chromium(chromium, tmp_path / "profile", "--window-size=1200,3000", "--virtual-time-budget=5000",
                  f"--screenshot={screenshot}", url)
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(screenshot.read_bytes())).convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (3000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # not a blank, single-colour page
    # The heatmaps' viridis cells are strongly coloured; text, tables and background are grey or near it.
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 80
    assert colourful.mean() > 0.01


def test_a_verdict_older_than_the_truth_is_computed_again_not_shown(run_copy) -> None:
    truth = run_copy / "truth.csv"
    lines = truth.read_text().splitlines()
    protocols = sorted({line.split(",")[2] for line in lines[1:]})
    assert len(protocols) == 2
    truth.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[2] == protocols[0])]) + "\n")
    page = _html(write_report(run_copy))
    start = page.index('<section id="verdict">')
    verdict = page[start:page.index("</section>", start)]
    assert "evaluation.csv is older than its results" in verdict and "taskspace evaluate" in verdict
    assert verdict.count("<tr><td>") == 5  # 3 estimators, prior, history; the one protocol left; no old row
    assert protocols[1] not in verdict.split("<table")[1].split("</table>")[0]
