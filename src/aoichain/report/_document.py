"""A small document model rendered twice: to Markdown and to self-contained HTML.

A report is a :class:`Document`: a title and a list of blocks (headings,
paragraphs, bullet lists, tables, figures, callouts). The same blocks give
``REPORT.md`` (figures linked as files beside it) and ``report.html`` (figures
embedded as base64 PNG, styles inline, nothing fetched: it opens offline and
can be mailed as one file). Inline text may use ``code`` and **bold**.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BulletList",
    "Callout",
    "Document",
    "FigureBlock",
    "Heading",
    "Paragraph",
    "Table",
    "csv_text",
]

CalloutKind = Literal["holds", "partly", "fails", "not decidable", "info"]


def csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """CSV text (RFC 4180, ``\\n`` line ends) that ``pandas.read_csv`` reads directly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form
    return value


@dataclass(frozen=True)
class Heading:
    """A section heading; ``level`` 2 is a section, 3 a subsection."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline text."""

    text: str


@dataclass(frozen=True)
class BulletList:
    """A bullet list of inline texts."""

    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """A table of already-formatted cells (inline text)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str | None = None


@dataclass(frozen=True)
class FigureBlock:
    """A PNG figure: ``filename`` is where the Markdown finds it, relative to the report."""

    png: bytes
    filename: str
    caption: str


@dataclass(frozen=True)
class Callout:
    """A highlighted box, e.g. a claim and its verdict."""

    kind: CalloutKind
    title: str
    body: Sequence[str] = field(default_factory=tuple)


Block = Heading | Paragraph | BulletList | Table | FigureBlock | Callout


@dataclass(frozen=True)
class Document:
    """A titled sequence of blocks, rendered by :meth:`to_markdown` and :meth:`to_html`."""

    title: str
    blocks: Sequence[Block]

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown; figures are image links to their files."""
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            out.extend(_markdown(block))
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page: inline CSS, figures as base64 data URIs."""
        body = "\n".join(_html(block) for block in self.blocks)
        return _PAGE.format(title=html.escape(self.title), body=body)


_BADGE = {
    "holds": "HOLDS",
    "partly": "PARTLY HOLDS",
    "fails": "FAILS",
    "not decidable": "NOT DECIDABLE",
    "info": "NOTE",
}


def _markdown(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text]
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, BulletList):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Table):
        lines = []
        if block.caption:
            lines += [f"*{block.caption}*", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
        lines.append("|" + "|".join("---" for _ in block.header) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return lines
    if isinstance(block, FigureBlock):
        return [f"![{block.caption}]({block.filename})", "", f"*{block.caption}*"]
    lines = [f"> **{_BADGE[block.kind]}** — {block.title}"]
    for text in block.body:
        lines += [">", f"> {text}"]
    return lines


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape ``text`` for HTML and turn `code` and **bold** into tags."""
    parts = _CODE.split(str(text))
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            out.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 4)
        slug = re.sub(r"[^a-z0-9]+", "-", block.text.lower()).strip("-")
        return f'<h{level} id="{slug}">{_inline(block.text)}</h{level}>'
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, BulletList):
        items = "".join(f"<li>{_inline(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        caption = f"<caption>{_inline(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
        )
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, FigureBlock):
        data = base64.b64encode(block.png).decode("ascii")
        alt = html.escape(block.caption, quote=True)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
        )
    body = "".join(f"<p>{_inline(text)}</p>" for text in block.body)
    return (
        f'<div class="callout {block.kind.replace(" ", "-")}"><p class="title"><span class="badge">'
        f"{_BADGE[block.kind]}</span> {_inline(block.title)}</p>{body}</div>"
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 70rem;
  margin: 2rem auto; padding: 0 1.2rem; line-height: 1.5; color: #1d1d1f; }}
h1 {{ border-bottom: 2px solid #ddd; padding-bottom: .3rem; }}
h2 {{ margin-top: 2.2rem; border-bottom: 1px solid #eee; }}
code {{ background: #f3f3f5; padding: 0 .25rem; border-radius: 3px; font-size: .92em; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }}
caption {{ caption-side: top; text-align: left; font-style: italic; padding-bottom: .3rem; }}
th, td {{ border: 1px solid #d8d8dc; padding: .25rem .55rem; text-align: right; }}
th {{ background: #f6f6f8; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ margin: 1.2rem 0; }}
figure img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ font-size: .9rem; color: #555; }}
.callout {{ border-left: 5px solid #999; background: #fafafa; padding: .4rem .9rem;
  margin: .8rem 0; }}
.callout p {{ margin: .35rem 0; }}
.callout .title {{ font-weight: 600; }}
.badge {{ display: inline-block; font-size: .75rem; padding: .05rem .45rem; border-radius: 3px;
  color: #fff; background: #777; margin-right: .35rem; letter-spacing: .03em; }}
.holds {{ border-color: #1a7f37; }} .holds .badge {{ background: #1a7f37; }}
.partly {{ border-color: #b7791f; }} .partly .badge {{ background: #b7791f; }}
.fails {{ border-color: #c62828; }} .fails .badge {{ background: #c62828; }}
.not-decidable {{ border-color: #6a5acd; }} .not-decidable .badge {{ background: #6a5acd; }}
.info {{ border-color: #3b6fb6; }} .info .badge {{ background: #3b6fb6; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""
