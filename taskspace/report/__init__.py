"""One report of a run: a self-contained HTML page and its Markdown twin.

::

    paths = write_report("runs/demo")          # runs/demo/report/report.html, report.md, figures/*.png|svg

Sections: the run and its provenance; the transferability matrix of one estimator and the ground-truth
matrices; the structure of the task space (clustered matrices, task graph, communities, arborescence,
recovery of the known task groups); module similarity and whether it predicts transfer; the verdict on
each estimator; and the recommended sources for every target. A zoo run (``taskspace matrix RUN --zoo``)
and an imported run get theirs: the zoo's networks and layers (or the imported files), the verdict
beside the target-blind baselines, the depth profiles, the module to reuse for every target, the
modules' similarity (a zoo run) and the structure of its matrix (clustered, its graph and communities).
A run without ground truth still gets a
report, whose sections that need it say so and name the command that measures it.

The HTML embeds every figure as a base64 PNG data URI, styles itself inline and forbids any request by
its Content-Security-Policy, so it can be mailed or archived as one file. Everything is computed and
rendered in memory first; only then are the files written, each atomically (figures, then the Markdown,
then the HTML), so an error on the way leaves no report behind and ``report.html`` is written last.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass
from pathlib import Path

from taskspace._version import __version__
from taskspace.io import ensure_writable_dir, write_bytes, write_text
from taskspace.report._document import (
    FIGURES_FOLDER,
    FigureBlock,
    RenderedFigure,
    render_html,
    render_markdown,
)

__all__ = ["ReportPaths", "write_report"]



@dataclass(frozen=True)
class ReportPaths:
    """The files of a written report.

    Attributes:
        html: the self-contained page.
        markdown: the Markdown twin, referencing ``figures/<name>.png`` beside it.
        figures: every figure file (a PNG and an SVG per figure), in report order.
    """

    html: Path
    markdown: Path
    figures: tuple[Path, ...]


def write_report(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    estimator: str | None = None,
    data_root: str | None = None,
) -> ReportPaths:
    """Write the report of the run in ``run_dir`` as ``report.html``, ``report.md`` and ``figures/``.

    The report reads only what the run holds (it runs no network): a part the run lacks, such as
    the ground truth or the module similarity, is replaced by a note naming the command that computes it.

    Args:
        run_dir: a run folder made by ``taskspace matrix`` (its zoo trained and matrix scored).
        out_dir: where to write the report; default ``<run_dir>/report``.
        estimator: the estimator the report is shown by; default ``logme`` when the run has
            it, else the one with the best mean Kendall τ in ``evaluation.csv``, else the run's first.
        data_root: data folder of the run's dataset (default: ``$TASKSPACE_DATA``).

    Returns:
        The paths of the written files.

    Raises:
        TaskspaceError: ``run_dir`` is not a run or has no matrix, ``estimator`` is not in the run, the
            output folder cannot be written, or a result of the run is damaged; one line with the fix.
    """
    # Imported here: they pull in matplotlib and torch, which `import taskspace.report` should not pay for.
    from taskspace.report._inputs import load_run_inputs
    from taskspace.report._sections import build_sections, report_title
    from taskspace.runner import Run
    from taskspace.runner.record import open_any_run

    written_at = _written_at()
    run = open_any_run(run_dir, data_root=data_root)
    if isinstance(run, Run):
        inputs = load_run_inputs(run, estimator=estimator)
        sections = build_sections(inputs, written_at=written_at)
        title = report_title(inputs)
    else:
        from taskspace.report._zoo import zoo_report_title, zoo_sections

        sections = zoo_sections(run, estimator=estimator, written_at=written_at)
        title = zoo_report_title(run)
    folder = ensure_writable_dir(Path(out_dir) if out_dir is not None else run.path("report"), what="report folder")
    footer = f"Written by taskspace {__version__} on {written_at} UTC."
    page = render_html(title, sections, footer=footer)
    markdown = render_markdown(title, sections, footer=footer)
    figures = [block.figure for section in sections for block in section.blocks if isinstance(block, FigureBlock)]
    run_folder, report_folder = run.folder.resolve(), folder.resolve()
    inside_run = report_folder == run_folder or run_folder in report_folder.parents
    with run.writing() if inside_run else contextlib.nullcontext():
        return _write_files(folder, page=page, markdown=markdown, figures=figures)


def _written_at() -> str:
    """The time the report is written, UTC to the second (the only text that differs between two writes)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _write_files(folder: Path, *, page: str, markdown: str, figures: list[RenderedFigure]) -> ReportPaths:
    """Write the figures, then the Markdown, then the HTML, each atomically."""
    figure_paths = []
    for figure in figures:
        for suffix, data in (("png", figure.png), ("svg", figure.svg)):
            path = folder / FIGURES_FOLDER / f"{figure.name}.{suffix}"
            write_bytes(path, data)
            figure_paths.append(path)
    markdown_path, html_path = folder / "report.md", folder / "report.html"
    write_text(markdown_path, markdown)
    write_text(html_path, page)
    return ReportPaths(html=html_path, markdown=markdown_path, figures=tuple(figure_paths))
