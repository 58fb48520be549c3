"""The HTML report of a validation: one self-contained page (inline CSS, no scripts, no
external assets, a strict Content-Security-Policy), every value from the data escaped."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from plinth.guards.html import csp_meta
from plinth.validation.results import jsonable

if TYPE_CHECKING:
    from plinth.validation.results import CheckResult, ValidationResult

__all__ = [
    "format_fraction",
    "format_observed",
    "format_value",
    "notebook_html",
    "render_html",
]

#: Checks whose observed value is a share of rows, printed like the failing share.
_SHARE_CHECKS = frozenset({"max_null_fraction"})

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#1d2330}
h1{font-size:1.4em;margin:0 0 .2em}
.meta{color:#5b6475;margin-bottom:1.2em}
.badge{display:inline-block;padding:.15em .6em;border-radius:.8em;font-weight:600;color:#fff}
.ok{background:#2f8f4e}.fail{background:#c0392b}.warn{background:#c9821a}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#f4f6f9;font-weight:600}
tr.failed td{background:#fdf1f0}tr.warned td{background:#fdf7ec}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
"""


def format_value(value: Any, limit: int = 80) -> str:
    """A short one-line text for an observed value or a sample."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(jsonable(value), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_fraction(fraction: float | None) -> str:
    """A share of rows as a percentage, always: ``0.07%``, ``0.0083%`` (two significant
    digits below 0.01%), never ``8.3e-05`` beside ``0.07%``."""
    import math

    if fraction is None:
        return ""
    if fraction == 0:
        return "0%"
    if fraction >= 0.0001:
        return f"{fraction:.2%}"
    digits = 1 - math.floor(math.log10(fraction * 100))
    return f"{fraction * 100:.{digits}f}%"


def format_observed(r: CheckResult, limit: int = 80) -> str:
    """The observed value of ``r`` and why it failed; shares as :func:`format_fraction`."""
    if r.check in _SHARE_CHECKS and isinstance(r.observed, (int, float)):
        observed = format_fraction(float(r.observed))
    else:
        observed = format_value(r.observed, limit)
    if r.message:
        observed = f"{observed} ({r.message})" if observed else r.message
    return observed


def _row(r: CheckResult) -> str:
    if r.success:
        cls, badge = "", '<span class="badge ok">pass</span>'
    elif r.severity == "warning":
        cls, badge = ' class="warned"', '<span class="badge warn">warning</span>'
    else:
        cls, badge = ' class="failed"', '<span class="badge fail">fail</span>'
    observed = format_observed(r, 120)
    sample = ", ".join(format_value(v, 60) for v in r.sample)
    cells = [
        str(r.index + 1),
        escape(r.name),
        escape(r.column or ""),
        badge,
        f"<code>{escape(observed)}</code>",
        f"<code>{escape(r.expected)}</code>",
        escape(format_fraction(r.failing_fraction)),
        f"<code>{escape(sample)}</code>",
    ]
    tds = "".join(
        f'<td class="num">{c}</td>' if i in (0, 6) else f"<td>{c}</td>" for i, c in enumerate(cells)
    )
    return f"<tr{cls}>{tds}</tr>"


def render_html(result: ValidationResult) -> str:
    """The report page of ``result``."""
    status = (
        '<span class="badge ok">passed</span>'
        if result.success
        else '<span class="badge fail">failed</span>'
    )
    summary = (
        f"{len(result.results)} checks, {len(result.errors)} errors, "
        f"{len(result.warnings)} warnings"
    )
    headers = "".join(
        f"<th>{h}</th>"
        for h in ("#", "check", "column", "result", "observed", "expected", "failing", "sample")
    )
    rows = "\n".join(_row(r) for r in result.results)
    version = (
        f" · dataset version {escape(result.dataset_version)}" if result.dataset_version else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{csp_meta()}
<title>Validation: {escape(result.suite)} on {escape(result.target)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Validation of {escape(result.target)} {status}</h1>
<div class="meta">suite <b>{escape(result.suite)}</b> ({escape(result.suite_digest[:12])}){version}
 · {result.row_count:,} rows, {result.column_count} columns · {escape(summary)}
 · checked {escape(result.checked_at)} in {result.elapsed_s:.3f} s</div>
<table><thead><tr>{headers}</tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def notebook_html(result: ValidationResult) -> str:
    """The result as tables in Jupyter (``_repr_html_``): the verdict, then every check,
    failed ones first, each value escaped; no page, no scripts."""
    from plinth import _notebook as nb

    facts: list[tuple[str, object]] = [
        ("result", nb.status(result.success, "passed", "failed")),
        ("suite", result.suite_version or result.suite),
        ("target", result.target),
        ("dataset version", result.dataset_version),
        ("rows", result.row_count),
        ("columns", result.column_count),
        (
            "checks",
            f"{len(result.results)}: {len(result.errors)} errors, {len(result.warnings)} warnings",
        ),
        ("checked", result.checked_at),
    ]
    ordered = sorted(result.results, key=lambda r: (r.success, r.index))
    rows = [
        (
            r.index + 1,
            r.name,
            r.column,
            nb.status(r.success, "pass", "warning" if r.severity == "warning" else "fail"),
            format_observed(r, 120),
            r.expected,
            format_fraction(r.failing_fraction) or None,
            ", ".join(format_value(v, 60) for v in r.sample) or None,
        )
        for r in ordered
    ]
    headers = ("#", "check", "column", "result", "observed", "expected", "failing", "sample")
    checks = nb.section("checks", nb.table(headers, rows), len(rows))
    return nb.card(f"validation of {result.target}", facts, checks)
