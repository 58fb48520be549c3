"""The per-column drift table that ``monitor drift`` and ``features skew`` print."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from plinth.monitoring.drift import DriftReport

__all__ = ["change_lines", "drift_table"]


def drift_table(report: DriftReport, *, label: str = "column", flag: str = "DRIFT") -> Table:
    """One row per compared column, drifted first: the test, its statistic against the
    threshold, the p-value and score, ``flag`` (or ok), and the change in the null share."""
    from rich.markup import escape
    from rich.table import Table

    from plinth.monitoring.report import format_p, format_stat

    table = Table(box=None, pad_edge=False)
    headers = ("#", label, "kind", "method", "statistic", "threshold", "p-value", "score")
    for header in (*headers, flag.lower(), "missing", "nulls"):
        numeric = header in ("#", "statistic", "threshold", "p-value", "score", "missing")
        table.add_column(header, justify="right" if numeric else "left")
    for i, c in enumerate(report.columns, 1):
        before, after = c.null_shares
        table.add_row(
            str(i),
            escape(c.column),
            c.kind,
            c.method,
            format_stat(c.statistic),
            format_stat(c.threshold),
            format_p(c.p_value),
            f"{c.score:.3g}",
            f"[red]{flag}[/]" if c.drifted else "[green]ok[/]",
            f"{before:.1%}→{after:.1%}",
            "[red]CHANGED[/]" if c.null_changed else "[green]ok[/]",
        )
    return table


def change_lines(report: DriftReport, *, where: str = "in") -> list[str]:
    """Rich-markup lines for what the table cannot show: categories never seen in the
    reference (``New categories {where} COLUMN: ...``) and columns whose null share changed."""
    from rich.markup import escape

    lines = []
    for column, found in report.new_categories.items():
        values = ", ".join(f"{v} ({n:,} rows)" for v, n in found.items())
        lines.append(f"[red]New categories[/] {where} {escape(column)}: {escape(values)}")
    if report.null_changes:
        lines.append(f"[red]Missing share changed[/]: {escape(', '.join(report.null_changes))}")
    return lines
