"""The scale benchmark's numbers: growth exponents, tables, plots and its RESULTS.md section.

A step's growth exponent between two sizes is log(t2 / t1) / log(N2 / N1): 1 for time
proportional to N, 0 for time that does not grow. Above ``WORSE_THAN_LINEAR`` a step is
flagged. Whole-process steps carry a fixed start-up (~0.3-0.5 s), so their exponent at small
sizes understates the growth of the work itself; the per-unit column shows it too.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import human_seconds, markdown_table, section_head

WORSE_THAN_LINEAR = 1.15
FAMILY_TITLES = {
    "runs": "runs in one project",
    "files": "files in one dataset",
    "rows": "rows of a table",
    "entities": "feature store entities",
}


@dataclass
class Point:
    n: int
    time_s: float  # median of the samples
    samples_s: list[float]
    peak_rss_mb: float | None  # the highest of the samples' peaks
    unit: int | None  # what the time is per (N, or the k runs created); None: per query


@dataclass
class Step:
    family: str
    label: str
    per: str
    points: list[Point] = field(default_factory=list)

    def add(self, n: int, times: list[float], peaks: list[float | None], unit: int | None) -> None:
        known = [p for p in peaks if p is not None]
        self.points.append(
            Point(n, statistics.median(times), times, max(known) if known else None, unit)
        )

    def time_growth(self) -> list[float | None]:
        """Growth exponent of time from the previous size (None at the first)."""
        return _growth([(p.n, p.time_s) for p in self.points])

    def rss_growth(self) -> list[float | None]:
        return _growth([(p.n, p.peak_rss_mb) for p in self.points])

    def overall_growth(self) -> float | None:
        """Growth exponent of time from the first size to the last."""
        first, last = self.points[0], self.points[-1]
        return _growth([(first.n, first.time_s), (last.n, last.time_s)])[-1]

    def worse_than_linear(self) -> bool:
        exponents = [*self.time_growth(), *self.rss_growth()]
        return any(e is not None and e > WORSE_THAN_LINEAR for e in exponents)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time_growth"] = self.time_growth()
        out["rss_growth"] = self.rss_growth()
        out["overall_growth"] = self.overall_growth()
        out["worse_than_linear"] = self.worse_than_linear()
        return out


def _growth(points: list[tuple[int, float | None]]) -> list[float | None]:
    out: list[float | None] = [None]
    for (n1, v1), (n2, v2) in itertools.pairwise(points):
        if v1 is None or v2 is None or v1 <= 0 or v2 <= 0:
            out.append(None)
        else:
            out.append(math.log(v2 / v1) / math.log(n2 / n1))
    return out


def flagged(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.worse_than_linear()]


def _exponent(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.2f}"
    return f"**{text}**" if value > WORSE_THAN_LINEAR else text


def _per_unit(point: Point, per: str) -> str:
    if point.unit is None:
        return "—"
    us = point.time_s / point.unit * 1e6
    if us < 1:
        return f"{us * 1000:.0f} ns/{per}"
    return f"{us:.1f} µs/{per}" if us < 1000 else f"{us / 1000:,.1f} ms/{per}"


def _mb(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MB"


def tables(steps: list[Step]) -> dict[str, str]:
    """One markdown table per family: every step at every size."""
    out: dict[str, str] = {}
    headers = ["Step", "N", "Time", "Per unit", "Time growth", "Peak RSS", "RSS growth"]
    for family in dict.fromkeys(s.family for s in steps):
        rows = []
        for step in (s for s in steps if s.family == family):
            for point, tg, rg in zip(step.points, step.time_growth(), step.rss_growth(),
                                     strict=True):  # fmt: skip
                rows.append([step.label, f"{point.n:,}", human_seconds(point.time_s),
                             _per_unit(point, step.per), _exponent(tg),
                             _mb(point.peak_rss_mb), _exponent(rg)])  # fmt: skip
        out[family] = f"### {family}: {FAMILY_TITLES[family]}\n\n" + markdown_table(headers, rows)
    return out


def plot_family(family: str, steps: list[Step], path: Path) -> None:
    """Log-log time against N (a dashed linear reference through each step's first point)
    and peak RSS against N, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, step in enumerate(steps):
        color = f"C{i}"
        ns = [p.n for p in step.points]
        left.plot(ns, [p.time_s for p in step.points], "o-", color=color, label=step.label)
        first = step.points[0]
        left.plot(ns, [first.time_s * n / first.n for n in ns], "--", color=color, alpha=0.45)
        rss = [(p.n, p.peak_rss_mb) for p in step.points if p.peak_rss_mb is not None]
        if rss:
            right.plot(*zip(*rss, strict=True), "o-", color=color, label=step.label)
    left.set(xscale="log", yscale="log", xlabel=f"N ({FAMILY_TITLES[family]})",
             ylabel="time (s)", title="Time (dashed: linear from the first size)")  # fmt: skip
    right.set(xscale="log", ylim=(0, None), xlabel=f"N ({FAMILY_TITLES[family]})",
              ylabel="peak RSS of the process (MB)", title="Peak RSS")  # fmt: skip
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(f"plinth at scale: {FAMILY_TITLES[family]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_section(report: dict[str, Any], rendered: dict[str, str]) -> str:
    p = report["versions"]["plinth"]
    tools = [f"plinth {p['plinth']} (pyarrow {p['pyarrow']}, numpy {p['numpy']}, "
             f"DuckDB {p['duckdb']}, blake3 {p['blake3']})"]  # fmt: skip
    lines = [
        *section_head("Scale curves: time and memory at 1x, 10x, 100x", report, tools),
        "- Each step a fresh process with plinth's interpreter; time: the step itself for "
        "library calls (imports and reading inputs excluded, except drift, which reads both "
        "Parquet files as `monitoring.py` does), the whole process for CLI commands; peak RSS: "
        "the process's own `VmHWM`, imports included. Median of up to "
        f"{report['reps']} processes for steps that change nothing (stopping after 20 s); "
        "adds and inserts once.",
        "- Growth: log(t2/t1) / log(N2/N1) from the previous size: 1 linear, 0 flat; "
        f"above {WORSE_THAN_LINEAR} in bold (worse than linear). Whole-process steps include "
        "a fixed start-up, so their growth at small N understates the work's.",
        "- Run creation per run: the bulk insert that builds each ledger (setup, per run) "
        "and 200 runs through the API on top of it; the queries are per query.",
    ]
    worse = [
        f"{s['family']}: {s['label']} (time growth "
        + ", ".join(_exponent(g) for g in s["time_growth"][1:])
        + f"; RSS growth {', '.join(_exponent(g) for g in s['rss_growth'][1:])}; "
        + f"time, first to last size: {_exponent(s['overall_growth'])})"
        for s in report["steps"]
        if s["worse_than_linear"]
    ]
    lines.append(
        "- Worse than linear: "
        + ("; ".join(worse) if worse else "nothing")
        + '. What causes it (profiles): benchmarks/README.md, "Scale curves".'
    )
    for family, table in rendered.items():
        lines += ["", table]
        if family in report["plot_links"]:
            link = report["plot_links"][family]
            lines += ["", f"![{family}: time and peak RSS against N]({link})"]
    return "\n".join(lines)
