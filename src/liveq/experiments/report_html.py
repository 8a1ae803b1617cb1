"""One self-contained HTML page: inline CSS, figures as base64 PNG, no script, no link out.

The page must open offline and be mailed as one file, so nothing in it names a network
address: every figure is a `data:image/png;base64,...` URI and every text is escaped. The
same PNGs are also written beside the page, in `<stem>_files/`, for slides and papers.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; color: #1f4e79; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #eef3f8; } td.text, th:first-child { text-align: left; }
figure { margin: .8em 0; } figcaption { font-size: .85em; color: #555; }
img { max-width: 100%; border: 1px solid #ddd; }
p.note { font-size: .88em; color: #444; } .warn { color: #b00020; font-weight: 600; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


@dataclass
class Figure:
    """One PNG of the report: its file name in the figures folder and a caption."""

    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """A heading, its HTML body (already escaped) and its figures, drawn after the body."""

    title: str
    body: str
    figures: list[Figure] = field(default_factory=list)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def paragraph(text: str, css: str = "note") -> str:
    return f'<p class="{css}">{esc(text)}</p>'


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; every cell escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    """A table cell: numbers (and intervals) right-aligned, words left-aligned."""
    text = str(value)
    numeric = bool(text) and (text[0].isdigit() or text[0] in "+-.[")
    return f"<td>{esc(text)}</td>" if numeric else f'<td class="text">{esc(text)}</td>'


def interval(entry: dict[str, float] | None, digits: int = 3) -> str:
    """`mean [low, high]` of a `{mean, ci_low, ci_high}` entry ("-" when missing)."""
    if not entry or entry.get("mean") is None:
        return "-"
    mean, low, high = entry["mean"], entry.get("ci_low"), entry.get("ci_high")
    if low is None or high is None or low == high:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure><img alt="{esc(fig.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(fig.caption)}</figcaption></figure>")


def page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The whole HTML document."""
    parts = [f"<h1>{esc(title)}</h1>", intro]
    for s in sections:
        parts.append(f"<h2>{esc(s.title)}</h2>")
        parts.append(s.body)
        parts += [_figure_html(f) for f in s.figures]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def figures_dir(out: Path) -> Path:
    """Where the PNGs go: `report.html` -> `report_files/`."""
    return out.with_name(f"{out.stem}_files")


def write(out: Path, title: str, intro: str, sections: Sequence[Section]) -> list[Path]:
    """Write the page to `out` and every figure to `figures_dir(out)`; the PNG paths."""
    folder = figures_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for s in sections:
        for f in s.figures:
            path = folder / f.name
            path.write_bytes(f.png)
            written.append(path)
    out.write_text(page(title, intro, sections), encoding="utf-8")
    return written
