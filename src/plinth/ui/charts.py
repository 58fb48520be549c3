"""Line charts as inline SVG, drawn on the server: axes, ticks, legend, several series.

The page needs no script and loads nothing: a chart is markup in the page, so the strict
CSP holds, and a million-point metric costs what its downsampled buckets cost (see
``SearchStore.metric_series``). Every label is escaped; styling uses SVG presentation
attributes and classes of ``plinth.css`` (inline ``style`` would break the CSP)::

    svg = line_chart("loss", [series_of("run a", buckets)])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from plinth.entities import MetricBucket

__all__ = ["PALETTE", "Series", "line_chart", "nice_ticks", "series_of"]

#: Series colours, in order (colour-blind friendly "Tableau 10").
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 14, 26, 34
_LEGEND_ROW = 16
_Scale = Callable[[float], float]


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are (x, y); a non-finite y breaks the line there. ``band`` holds
    (x, low, high) triples drawn as a faint envelope (the min and max of each bucket)."""

    label: str
    points: Sequence[tuple[float, float]]
    band: Sequence[tuple[float, float, float]] = ()


def series_of(label: str, buckets: Sequence[MetricBucket]) -> Series:
    """A :class:`Series` of downsampled buckets: the latest value of each, its min/max band."""
    band = [
        (float(b.step), b.min, b.max)
        for b in buckets
        if b.count > 1 and math.isfinite(b.min) and math.isfinite(b.max)
    ]
    return Series(label, [(float(b.step), b.last) for b in buckets], band)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering the range."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9 and len(ticks) < 50:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value = first + step * len(ticks)
    return ticks


def _label(value: float) -> str:
    return f"{value:.4g}"


def _bounds(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    width: int = 520,
    height: int = 240,
    x_label: str = "step",
) -> Markup:
    """The SVG of ``series`` on shared axes, titled ``title``, with a legend below the plot.

    Every piece is a ``Markup`` template filled by ``format``, which escapes each value:
    no text reaches the page unescaped.
    """
    legend_height = _LEGEND_ROW * len(series) if len(series) > 1 else 0
    total = height + legend_height
    parts = [
        Markup(
            '<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
            'viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>'
            '<text class="title" x="{}" y="16">{}</text>'
        ).format(width, total, width, total, title, title, _LEFT, title)
    ]
    xs = [x for s in series for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    ys = [y for s in series for _, y in s.points if math.isfinite(y)]
    ys += [v for s in series for _, lo, hi in s.band for v in (lo, hi)]
    if not xs:
        parts.append(
            Markup('<text x="{}" y="{}" text-anchor="middle">no data</text></svg>').format(
                width // 2, height // 2
            )
        )
        return Markup("").join(parts)
    x0, x1 = _bounds(xs)
    y0, y1 = _bounds(ys)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def px(x: float) -> float:
        return round(_LEFT + (x - x0) / (x1 - x0) * plot_w, 1)

    def py(y: float) -> float:
        return round(_TOP + (1 - (y - y0) / (y1 - y0)) * plot_h, 1)

    right, base = width - _RIGHT, height - _BOTTOM
    for tick in nice_ticks(y0, y1):
        parts.append(
            Markup(
                '<line class="gridline" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text x="{}" y="{}" text-anchor="end">{}</text>'
            ).format(_LEFT, right, py(tick), py(tick), _LEFT - 6, py(tick) + 4, _label(tick))
        )
    for tick in nice_ticks(x0, x1):
        parts.append(
            Markup(
                '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text x="{}" y="{}" text-anchor="middle">{}</text>'
            ).format(px(tick), px(tick), base, base + 4, px(tick), base + 16, _label(tick))
        )
    parts.append(
        Markup(
            '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text x="{}" y="{}" text-anchor="middle">{}</text>'
        ).format(
            _LEFT,
            right,
            base,
            base,
            _LEFT,
            _LEFT,
            _TOP,
            base,
            _LEFT + plot_w / 2,
            height - 4,
            x_label,
        )
    )
    for i, item in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.extend(_band(item, colour, px, py))
        parts.extend(_lines(item, colour, px, py))
        if legend_height:
            y = height + _LEGEND_ROW * i + 10
            parts.append(
                Markup(
                    '<rect x="{}" y="{}" width="12" height="3" fill="{}"/>'
                    '<text x="{}" y="{}">{}</text>'
                ).format(_LEFT, y - 8, colour, _LEFT + 18, y, item.label)
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _band(item: Series, colour: str, px: _Scale, py: _Scale) -> list[Markup]:
    if not item.band:
        return []
    upper = " ".join(f"{px(x)},{py(hi)}" for x, _, hi in item.band)
    lower = " ".join(f"{px(x)},{py(lo)}" for x, lo, _ in reversed(item.band))
    return [Markup('<polygon class="band" fill="{}" points="{} {}"/>').format(colour, upper, lower)]


def _lines(item: Series, colour: str, px: _Scale, py: _Scale) -> list[Markup]:
    """A polyline per unbroken run of finite points; a lone point is a dot."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in item.points:
        if math.isfinite(x) and math.isfinite(y):
            runs[-1].append((px(x), py(y)))
        elif runs[-1]:
            runs.append([])
    found: list[Markup] = []
    for run in runs:
        if len(run) == 1:
            (x, y), *_ = run
            found.append(Markup('<circle cx="{}" cy="{}" r="2" fill="{}"/>').format(x, y, colour))
        elif run:
            points = " ".join(f"{x},{y}" for x, y in run)
            found.append(
                Markup(
                    '<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}">'
                    "<title>{}</title></polyline>"
                ).format(colour, points, item.label)
            )
    return found
