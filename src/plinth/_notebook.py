"""HTML fragments that plinth's records show in Jupyter (``_repr_html_``).

A notebook renders what ``_repr_html_`` returns inside its own page, so the text a teammate
wrote (a run name, a param, a column) must never become markup there. Every value goes
through :func:`html.escape`; the only markup is built here, from constants and numbers:
tables and inline SVG, no ``<script>``, no event handlers, no external URLs::

    card("run train-7", [("status", "finished")], section("params", kv_table(params)))

Fragments built by this module are :class:`Html`; anything else given to it is escaped.
Standard library only, so that every layer (the plain records of ``plinth.entities``
included) can build its view from its fields, without I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape

__all__ = [
    "MAX_ROWS",
    "Html",
    "bars",
    "card",
    "cell",
    "kv_table",
    "section",
    "sparkline",
    "status",
    "table",
    "timestamp",
]

#: Rows shown per table; the rest are counted in a last row (a run may have 10k params).
MAX_ROWS = 50
#: Characters shown of one value; longer text is cut with an ellipsis.
MAX_TEXT = 200
_BOX = "font-family:sans-serif;font-size:13px;margin:4px 0"
_TABLE = "border-collapse:collapse;margin:2px 0 8px 0"
_TD = "border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top"
_TH = f"{_TD};font-weight:600;background:#f4f4f4"
_GOOD, _BAD, _REF, _CUR = "#1a7f37", "#cf222e", "#8c8c8c", "#0969da"


class Html(str):
    """Markup built by this module from constants and numbers: inserted as is."""

    __slots__ = ()


def cell(value: object) -> Html:
    """``value`` as escaped text: floats in 6 significant digits, None as a dash, long text
    cut; an :class:`Html` fragment as is."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("&mdash;")
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "\u2026"
    return Html(escape(text, quote=True))


def timestamp(ms: int | None) -> str | None:
    """Epoch milliseconds as ``2026-12-07 22:19:26 UTC``; None stays None."""
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def status(ok: bool, good: str, bad: str) -> Html:
    """A coloured word: ``good`` in green when ``ok``, else ``bad`` in red."""
    colour, word = (_GOOD, good) if ok else (_BAD, bad)
    return Html(f'<span style="color:{colour};font-weight:600">{cell(word)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Html:
    """A table of escaped cells, at most :data:`MAX_ROWS` rows (the rest counted)."""
    head = "".join(f'<th style="{_TH}">{cell(h)}</th>' for h in headers)
    body: list[str] = []
    hidden = 0
    for row in rows:
        if len(body) == MAX_ROWS:
            hidden += 1
            continue
        body.append("<tr>" + "".join(f'<td style="{_TD}">{cell(v)}</td>' for v in row) + "</tr>")
    if hidden:
        body.append(
            f'<tr><td style="{_TD}" colspan="{len(headers)}"><em>&hellip; {hidden} more '
            "rows</em></td></tr>"
        )
    return Html(
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
    )


def kv_table(values: Mapping[str, object], headers: Sequence[str] = ("key", "value")) -> Html:
    """A two-column table of ``values``, sorted by key."""
    return table(headers, sorted(values.items(), key=lambda item: str(item[0])))


def section(title: str, body: Html, count: int | None = None) -> Html:
    """A titled part of a card; ``count`` (shown beside the title) of 0 shows ``none``."""
    label = cell(title) if count is None else Html(f"{cell(title)} ({count})")
    inner = body if count != 0 else Html('<div style="color:#777">none</div>')
    return Html(f'<div style="margin-top:6px"><strong>{label}</strong>{inner}</div>')


def card(title: str, facts: Iterable[tuple[str, object]], *sections: Html) -> Html:
    """The whole view of one record: a title, a facts table without header, sections."""
    rows = "".join(
        f'<tr><th style="{_TH}">{cell(k)}</th><td style="{_TD}">{cell(v)}</td></tr>'
        for k, v in facts
    )
    return Html(
        f'<div style="{_BOX}"><div style="font-size:14px;font-weight:600">{cell(title)}</div>'
        f'<table style="{_TABLE}"><tbody>{rows}</tbody></table>{"".join(sections)}</div>'
    )


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def sparkline(values: Sequence[float], width: int = 120, height: int = 24) -> Html:
    """A tiny inline-SVG line of ``values`` (non-finite values skipped; at most 200 points,
    evenly picked); empty when fewer than two values are finite."""
    points = _finite(values)
    if len(points) > 200:
        points = [points[i * (len(points) - 1) // 199] for i in range(200)]
    if len(points) < 2:
        return Html("")
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 2) / (len(points) - 1)
    coords = " ".join(
        f"{1 + i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}"
        for i, v in enumerate(points)
    )
    return Html(
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><polyline fill="none" stroke="{_CUR}" '
        f'stroke-width="1.5" points="{coords}"/></svg>'
    )


def bars(reference: Sequence[float], current: Sequence[float], height: int = 24) -> Html:
    """Two small inline-SVG histograms side by side per bin: reference grey, current blue
    (shares of rows per bin); empty when there are no bins."""
    ref, cur = _finite(reference), _finite(current)
    if not ref or len(ref) != len(cur):
        return Html("")
    top = max(ref + cur) or 1.0
    width = min(max(len(ref) * 6, 24), 160)
    slot = width / len(ref)
    rects = []
    for i, (a, b) in enumerate(zip(ref, cur, strict=True)):
        for offset, share, colour in ((0.0, a, _REF), (slot / 2, b, _CUR)):
            h = share / top * height
            rects.append(
                f'<rect x="{i * slot + offset:.1f}" y="{height - h:.1f}" '
                f'width="{max(slot / 2 - 0.5, 0.5):.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
    return Html(
        f'<svg width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}">{"".join(rects)}</svg>'
    )
