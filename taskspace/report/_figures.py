"""Figures of a report rendered to memory: PNG to embed, SVG to write beside the Markdown."""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.figure import Figure

from taskspace.report._document import RenderedFigure

__all__ = ["FIGURE_DPI", "figure_name", "render_figure"]

#: Resolution of the PNGs (the HTML shows them at their physical size, so they stay sharp on HiDPI screens).
FIGURE_DPI = 150

# Fixed so the SVG's element ids, and thus its bytes, are the same on every run (matplotlib's default
# salt is random); no date, for the same reason.
#: The salt of SVG ids, so that two renders of one figure are byte-identical.
_SVG_HASHSALT = "taskspace-report"


def figure_name(*parts: str) -> str:
    """A file stem from ``parts``: each character outside letters, digits, ``_``, ``.`` becomes ``-``."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "-", part).strip("-.") or "x" for part in parts)


def render_figure(figure: Figure, *, name: str, caption: str, dpi: float = FIGURE_DPI) -> RenderedFigure:
    """Render ``figure`` to PNG and SVG bytes (cropped to its content) without touching the disk."""
    png = _render(figure, "png", dpi=dpi, metadata=None)
    with matplotlib.rc_context({"svg.hashsalt": _SVG_HASHSALT}):
        svg = _render(figure, "svg", dpi=dpi, metadata={"Date": None})
    return RenderedFigure(name=name, caption=caption, png=png, svg=svg, dpi=dpi)


def _render(figure: Figure, fmt: str, *, dpi: float, metadata: dict[str, None] | None) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata, facecolor="white")
    return buffer.getvalue()
