"""The HTML drift report: one self-contained page (inline CSS and SVG, no scripts, no
external assets), built from the report's binned summaries only — never from rows — so
it stays small at any data size. Every text from the data, and every number, is escaped."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from plinth.guards.html import csp_meta

if TYPE_CHECKING:
    from plinth.monitoring.drift import ColumnDrift, DriftReport

__all__ = ["format_p", "format_stat", "notebook_html", "render_html"]

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#1d2330}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}
h3{font-size:1em;margin:1.2em 0 .2em}
.meta{color:#5b6475;margin-bottom:1.2em}
.badge{display:inline-block;padding:.15em .6em;border-radius:.8em;font-weight:600;color:#fff}
.ok{background:#2f8f4e}.fail{background:#c0392b}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#f4f6f9;font-weight:600}
tr.drifted td{background:#fdf1f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.key{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:-.1em}
svg{display:block;margin:.3em 0 1em}
svg text{font:10px system-ui,sans-serif;fill:#5b6475}
.note{color:#5b6475;font-size:.9em}
"""
_REF, _CUR = "#7f8fa6", "#e67e22"
_W, _H, _LEFT, _TOP, _BOTTOM = 720, 200, 44, 10, 56


def format_stat(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def format_p(value: float | None) -> str:
    if value is None:
        return ""
    return "< 1e-300" if value == 0 else f"{value:.3g}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _row(i: int, c: ColumnDrift) -> str:
    badge = (
        '<span class="badge fail">drift</span>' if c.drifted else '<span class="badge ok">ok</span>'
    )
    rows = (c.reference_count + c.reference_nulls, c.current_count + c.current_nulls)
    missing = " / ".join(
        _share(nulls / total if total else 0.0)
        for nulls, total in zip((c.reference_nulls, c.current_nulls), rows, strict=True)
    )
    cells = [
        (str(i), True),
        (f'<a href="#col-{i}">{escape(c.column)}</a>', False),
        (escape(c.kind), False),
        (escape(c.method), False),
        (escape(format_stat(c.statistic)), True),
        (escape(format_stat(c.threshold)), True),
        (escape(format_p(c.p_value)), True),
        (escape(format_stat(c.score)), True),
        (badge, False),
        (escape(missing) + (" <strong>changed</strong>" if c.null_changed else ""), True),
        (escape(_share(c.unseen_share)), True),
    ]
    tds = "".join(f'<td class="num">{v}</td>' if num else f"<td>{v}</td>" for v, num in cells)
    return f"<tr{' class=drifted' if c.drifted else ''}>{tds}</tr>"


def _chart(c: ColumnDrift) -> str:
    """Grouped bars: the share of each side's rows per bin or category."""
    k = len(c.bins)
    if not k:
        return ""
    top = max([*c.reference_hist, *c.current_hist, 1e-12])
    plot_w, plot_h = _W - _LEFT - 8, _H - _TOP - _BOTTOM
    slot = plot_w / k
    bar = slot * 0.42
    parts = [
        f'<svg width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(c.column)} distributions">',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - 8}" y2="{_TOP + plot_h}" '
        'stroke="#c9ced6"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{escape(f"{top:.0%}")}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, math.ceil(k / 10)) if c.kind == "numeric" else 1
    for j, name in enumerate(c.bins):
        x0 = _LEFT + j * slot + slot * 0.08
        shown = f"{name}: reference {c.reference_hist[j]:.2%}, current {c.current_hist[j]:.2%}"
        for offset, share, colour in (
            (0.0, c.reference_hist[j], _REF),
            (bar, c.current_hist[j], _CUR),
        ):
            h = share / top * plot_h
            parts.append(
                f'<rect x="{x0 + offset:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(shown)}</title></rect>'
            )
        if j % label_every == 0:
            text = name if len(name) <= 14 else name[:13] + "…"
            lx, ly = _LEFT + j * slot + slot / 2, _TOP + plot_h + 12
            parts.append(
                f'<text x="{lx:.1f}" y="{ly}" text-anchor="end" '
                f'transform="rotate(-35 {lx:.1f} {ly})">{escape(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _section(i: int, c: ColumnDrift) -> str:
    verdict = "drifted" if c.drifted else "no drift"
    p = f", p = {format_p(c.p_value)}" if c.p_value is not None else ""
    note = (
        f"{c.method} {format_stat(c.statistic)} (threshold {format_stat(c.threshold)}{p}): "
        f"{verdict}"
    )
    return (
        f'<h3 id="col-{i}">{escape(c.column)} <span class="note">{escape(note)}'
        f"</span></h3>{_chart(c)}"
    )


def _quality(report: DriftReport) -> list[str]:
    """New categories and changed missing shares: their own results, beside drift."""
    body: list[str] = []
    if report.new_categories:
        items = "".join(
            f"<li><code>{escape(col)}</code>: "
            + escape(", ".join(f"{v} ({n:,} rows)" for v, n in found.items()))
            + "</li>"
            for col, found in report.new_categories.items()
        )
        body += [
            "<h2>New categories</h2>",
            '<p class="note">'
            + escape(
                "Categories the reference never had, flagged at any share once one has "
                f"{report.unseen_min_count:,} rows or more."
            )
            + "</p>",
            f"<ul>{items}</ul>",
        ]
    changed = [c for c in report.columns if c.null_changed]
    if changed:
        items = "".join(
            f"<li><code>{escape(c.column)}</code>: "
            + escape(
                f"{_share(c.null_shares[0])} missing in the reference, "
                f"{_share(c.null_shares[1])} now (p = {format_p(c.null_p_value)})"
            )
            + "</li>"
            for c in changed
        )
        body += ["<h2>Missing values changed</h2>", f"<ul>{items}</ul>"]
    return body


def render_html(report: DriftReport) -> str:
    """The report as one HTML page."""
    drifted = [c for c in report.columns if c.drifted]
    badge = (
        '<span class="badge fail">dataset drift</span>'
        if report.drifted
        else '<span class="badge ok">no dataset drift</span>'
    )
    summary = (
        f"{len(drifted)} of {len(report.columns)} columns drifted ({report.share:.0%}); the "
        f"dataset drifts at {report.share_threshold:.0%}. Reference {report.reference_rows:,} "
        f"rows, current {report.current_rows:,} rows."
    )
    head = (
        "<tr><th>#</th><th>column</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>threshold</th><th>p-value (adj.)</th><th>score</th><th>result</th>"
        "<th>missing ref / cur</th>"
        "<th>unseen</th></tr>"
    )
    rows = "".join(_row(i, c) for i, c in enumerate(report.columns, 1))
    charts = "".join(_section(i, c) for i, c in enumerate(report.columns, 1) if c.drifted)
    others = "".join(_section(i, c) for i, c in enumerate(report.columns, 1) if not c.drifted)
    skipped = "".join(
        f"<li><code>{escape(name)}</code>: {escape(reason)}</li>"
        for name, reason in report.skipped.items()
    )
    legend = (
        f'<p><span class="key" style="background:{_REF}"></span>reference'
        f'<span class="key" style="background:{_CUR}"></span>current '
        '<span class="note">(share of each side\'s non-missing rows per bin)</span></p>'
    )
    body = [
        f"<h1>Drift report {badge}</h1>",
        f'<div class="meta">{escape(summary)}</div>',
        f"<table>{head}{rows}</table>",
        '<p class="note">ks and chisquare flag drift when the Benjamini-Hochberg adjusted '
        "p-value is at or below the threshold; the other methods when the statistic reaches "
        "it. The score is statistic / threshold, or threshold / p-value: 1 or more is drift. "
        "The p-value beside a distance is that of the column's KS or chi-squared test, "
        "shown for reading, not deciding; it is blank when a side is an approximate "
        "sketch of more than 1,000 rows.</p>",
    ]
    body += _quality(report)
    if charts:
        body += ["<h2>Drifted columns</h2>", legend, charts]
    if others:
        body += [f"<details><summary>Other columns</summary>{legend}{others}</details>"]
    if skipped:
        body += ["<h2>Not tested</h2>", f"<ul>{skipped}</ul>"]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{csp_meta()}'
        "<title>plinth drift report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def notebook_html(report: DriftReport) -> str:
    """The report as tables in Jupyter (``_repr_html_``): the verdict, one row per column
    (drifted first) with a small histogram of both sides, the columns not tested; every
    value escaped, inline SVG only, no scripts."""
    from plinth import _notebook as nb

    drifted = len(report.drifted_columns)
    facts: list[tuple[str, object]] = [
        ("result", nb.status(not report.drifted, "no dataset drift", "dataset drift")),
        (
            "drifted columns",
            f"{drifted} of {len(report.columns)} ({report.share:.0%}); "
            f"the dataset drifts at {report.share_threshold:.0%}",
        ),
        ("rows", f"reference {report.reference_rows:,}, current {report.current_rows:,}"),
        ("new categories", ", ".join(report.new_categories) or None),
        ("missing share changed", ", ".join(report.null_changes) or None),
    ]
    rows = [
        (
            c.column,
            c.kind,
            c.method,
            format_stat(c.statistic),
            c.threshold,
            format_p(c.p_value) or None,
            f"{c.score:.3g}",
            nb.status(not c.drifted, "ok", "drift"),
            " / ".join(_share(share) for share in c.null_shares),
            nb.bars(c.reference_hist, c.current_hist) or None,
        )
        for c in report.columns
    ]
    headers = (
        "column",
        "kind",
        "method",
        "statistic",
        "threshold",
        "p-value (adj.)",
        "score",
        "result",
        "missing ref / cur",
        "reference | current",
    )
    sections = [nb.section("columns", nb.table(headers, rows), len(rows))]
    if report.skipped:
        skipped = nb.kv_table(report.skipped, ("column", "why not tested"))
        sections.append(nb.section("not tested", skipped, len(report.skipped)))
    return nb.card("drift report", facts, *sections)
