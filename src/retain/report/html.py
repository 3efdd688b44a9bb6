"""A small static HTML page: sections of text, tables and images, no JavaScript."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%;
margin:0.5em 0}pre{background:#f6f6f6;padding:1em;overflow:auto}"""


@dataclass
class Section:
    """A heading with optional text, a table (header + rows) and images (paths relative to
    the report folder)."""

    title: str
    text: str = ""
    header: Sequence[str] = ()
    rows: Sequence[Sequence[object]] = ()
    images: Sequence[str] = field(default_factory=list)
    preformatted: str = ""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_html(path: Path, title: str, sections: Sequence[Section]) -> Path:
    """Write ``index.html``-style page to ``path``."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.rows:
            parts.append(_table(s.header, s.rows))
        if s.preformatted:
            parts.append(f"<pre>{html.escape(s.preformatted)}</pre>")
        parts += [f"<img src='{html.escape(i)}' alt='{html.escape(i)}'>" for i in s.images]
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
