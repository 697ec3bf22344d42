"""Writing figures to disk: every format rendered in memory, then written atomically."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from taskspace.errors import ConfigError, did_you_mean
from taskspace.io import write_bytes

__all__ = ["save_figure"]

# Without a date in the file, and with a fixed salt for the SVG's element ids (matplotlib draws them at
# random otherwise), the same figure gives the same bytes, run after run.
_SVG_HASHSALT = "taskspace-plot"
_NO_DATE = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "ps": {"CreationDate": None},
            "eps": {"CreationDate": None}}


def save_figure(
    figure: Figure,
    path_stem: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("png", "svg"),
    dpi: float = 150,
    tight: bool = True,
) -> list[Path]:
    """Write ``figure`` once per format as ``<path_stem>.<format>``, each atomically.

    Each file is rendered to memory first and then written through :func:`taskspace.io.write_bytes`
    (temporary file, fsync, rename), so a reader never sees half a figure. The parent folder is
    created. All formats are checked before anything is written.

    Args:
        figure: the figure to save (from any plot of :mod:`taskspace.plotting`).
        path_stem: path without extension, e.g. ``"figures/heatmap"``; the format is appended to the
            name (``"figures/heatmap.png"``), so a dot already in the name is kept.
        formats: file formats matplotlib can write, e.g. ``"png"``, ``"svg"``, ``"pdf"``.
        dpi: resolution of raster formats.
        tight: crop to the drawn content (``bbox_inches="tight"``), so long labels are not cut off.

    Returns:
        The written paths, in the order of ``formats``.

    Raises:
        ConfigError: no format, or a format matplotlib cannot write.
    """
    if not isinstance(figure, Figure):
        raise ConfigError(f"figure must be a matplotlib Figure, got {type(figure).__name__}; pass what a plot returned")
    if isinstance(formats, str):
        formats = (formats,)
    wanted = list(dict.fromkeys(str(fmt).lower().lstrip(".") for fmt in formats))
    if not wanted:
        raise ConfigError("formats is empty; pass e.g. formats=('png', 'svg')")
    supported = FigureCanvasBase.get_supported_filetypes()
    for fmt in wanted:
        if fmt not in supported:
            raise ConfigError(f"unknown figure format '{fmt}'{did_you_mean(fmt, supported)}; "
                              f"choose from {', '.join(sorted(supported))}")
    stem = Path(path_stem)
    if not stem.name:
        raise ConfigError(f"path_stem '{path_stem}' has no file name; pass e.g. 'figures/heatmap'")
    written = []
    for fmt in wanted:
        buffer = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": _SVG_HASHSALT}):
            figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None,
                           metadata=_NO_DATE.get(fmt))
        path = stem.with_name(f"{stem.name}.{fmt}")
        write_bytes(path, buffer.getvalue())
        written.append(path)
    return written
