"""A report as plain data (sections of headings, paragraphs, lists, tables, figures) and its two renderings.

The same :class:`Section` list is rendered to one self-contained HTML page (inline CSS, figures as base64
PNG data URIs, a Content-Security-Policy that forbids any request, every text escaped) and to Markdown
that references the figure files written beside it. Both renderings are pure functions of the sections,
so equal sections give byte-equal pages.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Code",
    "Inline",
    "Cell",
    "Paragraph",
    "BulletList",
    "Table",
    "RenderedFigure",
    "FigureBlock",
    "Block",
    "Section",
    "render_html",
    "render_markdown",
    "FIGURES_FOLDER",
]

#: Folder, beside ``report.md``, that holds the figure files the Markdown references.
FIGURES_FOLDER = "figures"


@dataclass(frozen=True)
class Code:
    """Text shown verbatim in a monospace font (a command, an id, a hash)."""

    text: str


#: A run of text: plain (escaped) or code.
Inline = str | Code
#: What a table cell holds: one run of text or several.
Cell = Inline | tuple[Inline, ...]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline parts; ``note`` marks a remark about something missing."""

    parts: tuple[Inline, ...]
    note: bool = False


@dataclass(frozen=True)
class BulletList:
    """An unordered list; each item is a tuple of inline parts."""

    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``numeric`` right-aligns those columns."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"a table row has {len(row)} cells but the header has {len(self.header)}")


@dataclass(frozen=True)
class RenderedFigure:
    """A figure rendered to bytes: ``<name>.png`` (embedded in HTML) and ``<name>.svg`` (written beside).

    Attributes:
        name: file stem, unique within a report (letters, digits, ``-``, ``_``, ``.``).
        caption: what the figure shows.
        png: PNG bytes.
        svg: SVG bytes.
        dpi: resolution the PNG was rendered at (sets its displayed size in HTML).
    """

    name: str
    caption: str
    png: bytes
    svg: bytes
    dpi: float

    @property
    def png_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels, read from the PNG header."""
        width, height = struct.unpack(">II", self.png[16:24])
        return int(width), int(height)


@dataclass(frozen=True)
class FigureBlock:
    """A figure placed in a section."""

    figure: RenderedFigure


Block = Paragraph | BulletList | Table | FigureBlock


@dataclass(frozen=True)
class Section:
    """A numbered section: ``anchor`` is its HTML id (letters, digits and ``-``)."""

    title: str
    anchor: str
    blocks: tuple[Block, ...]


# HTML -------------------------------------------------------------------------------------------------

# No request of any kind may leave the page: only inline styles, the inline script and data: images.
_CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

# On load, the number of images the browser decoded (complete, with a width) is written onto <body>, so
# a headless browser can prove the figures are shown.
_FIGURE_CHECK_SCRIPT = """window.addEventListener("load", function () {
  var shown = 0;
  for (var i = 0; i < document.images.length; i++) {
    var image = document.images[i];
    if (image.complete && image.naturalWidth > 0) { shown++; }
  }
  document.body.setAttribute("data-figures-shown", String(shown));
});"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.5; background: #ffffff; }
h1 { font-size: 1.8rem; border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.4rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.5rem; }
nav ol { columns: 2; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; background: #f6f8fa; padding: .1rem .3rem;
       border-radius: 4px; font-size: .9em; word-break: break-all; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .9rem; }
p.note { border-left: 4px solid #d4a72c; background: #fff8c5; padding: .5rem .8rem; }
footer { margin-top: 3rem; color: #57606a; font-size: .85rem; }
"""


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(parts: Sequence[Inline] | Inline) -> str:
    if isinstance(parts, (str, Code)):
        parts = (parts,)
    return "".join(f"<code>{_escape(part.text)}</code>" if isinstance(part, Code) else _escape(part)
                   for part in parts)


def _html_table(table: Table) -> str:
    numeric = table.numeric or (False,) * len(table.header)
    header = "".join(f"<th>{_escape(cell)}</th>" for cell in table.header)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="number">{_html_inline(cell)}</td>' if is_number else f"<td>{_html_inline(cell)}</td>"
            for cell, is_number in zip(row, numeric, strict=False)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _html_figure(figure: RenderedFigure) -> str:
    width, height = figure.png_size
    # Displayed at its physical size (96 CSS px per inch), shrunk to the page width when larger.
    display_width = max(1, round(width * 96 / figure.dpi))
    display_height = max(1, round(height * 96 / figure.dpi))
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure id="figure-{_escape(figure.name)}">\n'
        f'<img src="data:image/png;base64,{data}" alt="{_escape(figure.caption)}" '
        f'width="{display_width}" height="{display_height}">\n'
        f"<figcaption>{_escape(figure.caption)}</figcaption>\n</figure>"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        inline = _html_inline(block.parts)
        return f'<p class="note">{inline}</p>' if block.note else f"<p>{inline}</p>"
    if isinstance(block, BulletList):
        items = "\n".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<ul>\n{items}\n</ul>"
    if isinstance(block, Table):
        return _html_table(block)
    return _html_figure(block.figure)


def render_html(title: str, sections: Sequence[Section], *, footer: str) -> str:
    """One self-contained HTML page: inline CSS, figures as data URIs, no external request possible.

    ``<body>`` carries ``data-figures-total`` (the number of ``<img>``); an inline script adds
    ``data-figures-shown`` on load, the number of images the browser decoded.
    """
    figure_count = sum(isinstance(block, FigureBlock) for section in sections for block in section.blocks)
    contents = "\n".join(
        f'<li><a href="#{_escape(section.anchor)}">{_escape(section.title)}</a></li>' for section in sections
    )
    body = []
    for section in sections:
        blocks = "\n".join(_html_block(block) for block in section.blocks)
        heading = f'<section id="{_escape(section.anchor)}">\n<h2>{_escape(section.title)}</h2>'
        body.append(f"{heading}\n{blocks}\n</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_escape(_CONTENT_SECURITY_POLICY)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body data-figures-total="{figure_count}">\n'
        f"<h1>{_escape(title)}</h1>\n<nav>\n<ol>\n{contents}\n</ol>\n</nav>\n"
        + "\n".join(body)
        + f"\n<footer>{_escape(footer)}</footer>\n"
        f"<script>\n{_FIGURE_CHECK_SCRIPT}\n</script>\n</body>\n</html>\n"
    )


# Markdown ---------------------------------------------------------------------------------------------


def _markdown_text(text: str) -> str:
    # Entities keep raw HTML out of renderers; a backslash and a pipe would break tables and escapes.
    return html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown_inline(parts: Sequence[Inline] | Inline, *, in_table: bool = False) -> str:
    if isinstance(parts, (str, Code)):
        parts = (parts,)
    rendered = []
    for part in parts:
        if isinstance(part, Code):
            # Inside a table a pipe ends the cell even within backticks (GitHub's rule).
            text = part.text.replace("|", "\\|") if in_table else part.text
            fence = "``" if "`" in text else "`"
            padding = " " if "`" in text else ""
            rendered.append(f"{fence}{padding}{text}{padding}{fence}")
        else:
            rendered.append(_markdown_text(part))
    return "".join(rendered)


def _markdown_table(table: Table) -> str:
    numeric = table.numeric or (False,) * len(table.header)
    lines = [
        "| " + " | ".join(_markdown_text(cell) for cell in table.header) + " |",
        "|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_inline(cell, in_table=True) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _markdown_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        text = _markdown_inline(block.parts)
        return f"> **Note:** {text}" if block.note else text
    if isinstance(block, BulletList):
        return "\n".join(f"- {_markdown_inline(item)}" for item in block.items)
    if isinstance(block, Table):
        return _markdown_table(block)
    figure = block.figure
    caption = _markdown_text(figure.caption)
    return (f"![{caption}]({FIGURES_FOLDER}/{figure.name}.png)\n\n"
            f"*{caption}* ([SVG]({FIGURES_FOLDER}/{figure.name}.svg))")


def render_markdown(title: str, sections: Sequence[Section], *, footer: str) -> str:
    """Markdown of the same sections; figures are ``figures/<name>.png`` (and ``.svg``) beside the file."""
    parts = [f"# {_markdown_text(title)}"]
    for section in sections:
        parts.append(f"## {_markdown_text(section.title)}")
        parts.extend(_markdown_block(block) for block in section.blocks)
    parts.append(f"---\n\n{_markdown_text(footer)}")
    return "\n\n".join(parts) + "\n"
