"""An executed notebook as one self-contained HTML page: no script, nothing loaded.

Notebook text and outputs are someone's data, so every cell source and text output is
escaped; ``text/html`` and JavaScript outputs are never pasted in (their ``text/plain``
form is shown instead); PNG, JPEG and GIF outputs become ``data:`` images after their
base64 is checked; SVG is shown as text (it can carry script). The page carries the
policy of :mod:`plinth.guards.html`, so even a missed escape cannot run or load anything.
"""

from __future__ import annotations

import base64
import binascii
import re
from html import escape
from typing import Any

from plinth.guards.html import csp_meta

__all__ = ["notebook_html"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IMAGES = ("image/png", "image/jpeg", "image/gif")
#: The largest image output shown inline, in base64 characters.
_MAX_IMAGE = 8 * 1024 * 1024

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#1d2330;max-width:72em}
h1{font-size:1.3em;margin:0 0 1em}
.cell{margin:0 0 1em;display:grid;grid-template-columns:5em 1fr;gap:0 .6em}
.prompt{color:#5b6475;font:12px ui-monospace,Menlo,Consolas,monospace;text-align:right;
padding-top:.45em}
pre{margin:0;padding:.45em .6em;white-space:pre-wrap;word-break:break-word;
font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
.src pre{background:#f4f6f9;border:1px solid #e3e6eb;border-radius:3px}
.md pre{font-family:inherit;font-size:14px}
.out pre{background:#fff}
.err pre{background:#fdf1f0;color:#8a1c12}
.stderr pre{background:#fdf7ec}
.injected pre{border-color:#c9821a}
img{max-width:100%}
"""


def notebook_html(nb: Any, *, title: str) -> str:
    """The page for notebook ``nb`` (an nbformat v4 node or plain dict), titled ``title``."""
    cells = "\n".join(_cell(cell) for cell in nb.get("cells", []))
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8">{csp_meta()}'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{cells}\n</body></html>\n"
    )


def _text(value: Any) -> str:
    """nbformat multiline strings may be a list of lines."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _cell(cell: Any) -> str:
    kind = cell.get("cell_type")
    source = escape(_text(cell.get("source")))
    if kind == "markdown":
        return f'<div class="cell md"><div class="prompt"></div><pre>{source}</pre></div>'
    if kind != "code":
        return f'<div class="cell raw"><div class="prompt"></div><pre>{source}</pre></div>'
    count = cell.get("execution_count")
    prompt = f"In [{count if isinstance(count, int) else ' '}]:"
    tags = cell.get("metadata", {}).get("tags", [])
    extra = " injected" if "injected-parameters" in tags else ""
    parts = [
        f'<div class="cell src{extra}"><div class="prompt">{escape(prompt)}</div>'
        f"<pre>{source}</pre></div>"
    ]
    parts.extend(_output(out) for out in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def _output(out: Any) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        css = "stderr" if out.get("name") == "stderr" else "out"
        return _box(css, f"<pre>{escape(_ANSI.sub('', _text(out.get('text'))))}</pre>")
    if kind == "error":
        trace = "\n".join(_ANSI.sub("", str(line)) for line in out.get("traceback", []))
        text = trace or f"{out.get('ename')}: {out.get('evalue')}"
        return _box("err", f"<pre>{escape(text)}</pre>")
    if kind in ("execute_result", "display_data"):
        data = out.get("data", {})
        for media in _IMAGES:
            image = _image(media, data.get(media))
            if image:
                return _box("out", image)
        text = data.get("text/plain")
        if text is None:
            return ""
        return _box("out", f"<pre>{escape(_ANSI.sub('', _text(text)))}</pre>")
    return ""


def _image(media: str, payload: Any) -> str | None:
    encoded = "".join(_text(payload).split())
    if not encoded or len(encoded) > _MAX_IMAGE:
        return None
    try:
        base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return f'<img alt="output" src="data:{media};base64,{encoded}">'


def _box(css: str, body: str) -> str:
    return f'<div class="cell {css}"><div class="prompt"></div>{body}</div>'
