"""How runs show in Jupyter: the HTML behind ``_repr_html_`` of a run, a metric history and
a run comparison.

Built from the objects' fields only (no ledger reads), through :mod:`plinth._notebook`, which
escapes every value and draws with tables and inline SVG, never scripts::

    plinth.get_run(run_id)                  # in a cell: facts, params, metrics, tags, ...
    plinth.compare_runs([a, b])             # params and metrics side by side, differences marked
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth import _notebook as nb

if TYPE_CHECKING:
    from plinth.tracking.comparison import RunComparison
    from plinth.tracking.reading import MetricHistory, RunInfo

__all__ = ["comparison_html", "history_html", "run_html"]

_STATUS_OK = ("running", "finished")


def _duration(start: int, end: int | None) -> str | None:
    if end is None:
        return None
    seconds = max(end - start, 0) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_html(info: RunInfo, *, title: str = "run") -> str:
    """A run's facts and, one section each, its params, latest metrics, tags, source,
    artifacts and inputs."""
    facts: list[tuple[str, object]] = [
        ("id", info.id),
        ("status", nb.status(info.status in _STATUS_OK, info.status, info.status)),
        ("experiment", info.experiment_id),
        ("started", nb.timestamp(info.start_time)),
        ("ended", nb.timestamp(info.end_time)),
        ("duration", _duration(info.start_time, info.end_time)),
    ]
    if info.parent_run_id:
        facts.append(("parent run", info.parent_run_id))
    if info.error:
        facts.append(("error", info.error))
    if info.environment is not None:
        facts.append(("python", info.environment.python))
    artifacts = [(a.path, a.size, a.media_type) for a in info.artifacts]
    inputs = [(ref.type, ref.id) for ref in info.inputs]
    source = {k: v for k, v in info.source.items() if v not in (None, "", {}, [])}
    sections = [
        nb.section("params", nb.kv_table(info.params), len(info.params)),
        nb.section("metrics (latest)", nb.kv_table(info.metrics), len(info.metrics)),
        nb.section("tags", nb.kv_table(info.tags), len(info.tags)),
        nb.section("source", nb.kv_table(source), len(source)),
        nb.section("artifacts", nb.table(("path", "bytes", "type"), artifacts), len(artifacts)),
        nb.section("inputs", nb.table(("record", "id"), inputs), len(inputs)),
    ]
    name = f"{title} {info.name}" if info.name else title
    return nb.card(name, facts, *sections)


def history_html(history: MetricHistory) -> str:
    """One metric's points: count, first, last, min, max and a sparkline over the steps."""
    finite = [v for v in history.values if math.isfinite(v)]
    facts: list[tuple[str, object]] = [
        ("points", len(history)),
        ("steps", f"{history.steps[0]} to {history.steps[-1]}" if len(history) else None),
        ("first", history.values[0] if len(history) else None),
        ("last", history.values[-1] if len(history) else None),
        ("min", min(finite) if finite else None),
        ("max", max(finite) if finite else None),
        ("chart", nb.sparkline(history.values, width=240, height=40) or None),
    ]
    return nb.card(f"metric {history.key}", facts)


def _rows(
    keys: Sequence[str], per_run: Sequence[dict[str, Any]], differing: Sequence[str]
) -> list[list[object]]:
    marked = set(differing)
    return [["*" if key in marked else "", key, *(v.get(key) for v in per_run)] for key in keys]


def comparison_html(comparison: RunComparison) -> str:
    """Params and latest metrics of every run side by side; a row whose values differ is
    marked ``*``. Each run's column is headed by its name (or id) and its status."""
    runs = comparison.runs
    headers = ["", "key", *(f"{r.name or r.id[:13]} ({r.status})" for r in runs)]
    params = _rows(comparison.param_keys, [r.params for r in runs], comparison.differing_params)
    metrics = _rows(comparison.metric_keys, [r.metrics for r in runs], comparison.differing_metrics)
    ids = nb.table(("run", "id", "experiment"), [(r.name, r.id, r.experiment_id) for r in runs])
    differing = sum(1 for row in params if row[0]) + sum(1 for row in metrics if row[0])
    return nb.card(
        f"comparison of {len(runs)} runs",
        [("differing keys", differing)],
        nb.section("runs", ids),
        nb.section("params", nb.table(headers, params), len(params)),
        nb.section("metrics (latest)", nb.table(headers, metrics), len(metrics)),
    )
