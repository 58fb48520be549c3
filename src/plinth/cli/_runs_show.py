"""``plinth runs show`` and ``plinth runs export``: gather one run from the ledger, print it."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from plinth.cli import _runs_view as view
from plinth.cli._common import human_bytes

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Run

#: Points per metric in a sparkline (bucket means computed in SQL).
SPARK_POINTS = 40


def _experiment_name(ctx: Context, run: Run) -> str:
    return ctx.ledger.projects.get_experiment(run.experiment_id).name


def _common(ctx: Context, run: Run) -> dict[str, Any]:
    """The run with params, tags, source, environment, artifacts and inputs (no metrics)."""
    from plinth.entities import RecordRef

    ledger = ctx.ledger
    ref = RecordRef("run", run.id)
    env = ledger.environments.get(run.environment_id) if run.environment_id else None
    return {
        **view.run_json(run, _experiment_name(ctx, run)),
        "error": run.error,
        "host": run.host,
        "pid": run.pid,
        "parent_run_id": run.parent_run_id,
        "params": ledger.runs.get_params(run.id),
        "tags": ledger.runs.get_tags(run.id),
        "source": run.source,
        "environment": None
        if env is None
        else {
            "id": env.id,
            "digest": env.digest,
            "python": env.python,
            "platform": env.platform,
            "packages": len(env.packages),
        },
        "artifacts": [
            {"path": a.path, "size": a.size, "digest": a.digest, "media_type": a.media_type}
            for a in ledger.artifacts.list(ref)
        ],
        "inputs": [str(e.dst) for e in ledger.lineage.edges_from(ref) if e.relation == "used"],
        "datasets": _dataset_versions(ctx, ref),
    }


def _dataset_versions(ctx: Context, ref: Any) -> list[dict[str, Any]]:
    """The dataset versions the run used or produced, as ``NAME@N`` references."""
    from plinth.errors import NotFoundError

    out = []
    for edge in ctx.ledger.lineage.edges_from(ref):
        if edge.dst.type == "dataset_version" and edge.relation in ("used", "produced"):
            try:
                name = ctx.ledger.datasets.get_version_by_id(edge.dst.id).ref
            except NotFoundError:  # an edge to a record this ledger does not hold
                name = None
            out.append({"relation": edge.relation, "ref": name, "id": edge.dst.id})
    return out


def gather(ctx: Context, run: Run) -> dict[str, Any]:
    """What ``runs show`` prints, as JSON-ready data; metric histories stay in the database."""
    samples = ctx.ledger.search.metric_samples(run.id, SPARK_POINTS)
    data = _common(ctx, run)
    data["metrics"] = [
        {
            "key": s.key,
            "last": s.last,
            "last_step": s.last_step,
            "min": s.min,
            "max": s.max,
            "count": s.count,
            "samples": samples.get(s.key, []),
        }
        for s in ctx.ledger.search.metric_summaries(run.id)
    ]
    return view.jsonable(data)  # type: ignore[no-any-return]


def _for_terminal(value: Any) -> Any:
    """``value`` with every string shown safely: no terminal escapes, no Rich markup.

    Any ledger writer can set a run's name, params, tags or artifact paths, and every string
    here is printed as Rich markup (in a table cell or an f-string)."""
    from rich.markup import escape

    from plinth.guards.terminal import printable

    if isinstance(value, str):
        return escape(printable(value))
    if isinstance(value, dict):
        return {_for_terminal(k): _for_terminal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_terminal(v) for v in value]
    return value


def print_run(data: dict[str, Any]) -> None:
    from rich.table import Table

    data = _for_terminal(data)
    out = view.console()
    title = f"run {data['id']}" + (f"  {data['name']}" if data["name"] else "")
    out.print(f"[bold]{title}[/]")
    status = data["status"] + (" (deleted)" if data["deleted_at"] is not None else "")
    facts = [
        ("experiment", data["experiment"]),
        ("status", status + (f": {data['error']}" if data["error"] else "")),
        ("start", view.fmt_time(data["start_time"])),
        ("end", view.fmt_time(data["end_time"])),
        ("duration", view.fmt_duration(data["duration_s"])),
        ("user", data["created_by"]),
        ("host", f"{data['host']} (pid {data['pid']})" if data["host"] else ""),
        ("parent", data["parent_run_id"] or ""),
    ]
    _print_pairs(out, [(k, v) for k, v in facts if v])

    _section(out, "params", sorted(data["params"].items()))
    if data["metrics"]:
        out.print("\n[bold]metrics[/]")
        table = Table(box=None, pad_edge=False)
        for header in ("key", "last", "step", "min", "max", "points", "history"):
            table.add_column(header, justify="left" if header in ("key", "history") else "right")
        for m in data["metrics"]:
            samples = [float("nan") if v is None else float(v) for v in m["samples"]]
            table.add_row(
                m["key"],
                _num(m["last"]),
                str(m["last_step"]),
                _num(m["min"]),
                _num(m["max"]),
                str(m["count"]),
                view.sparkline(samples),
            )
        out.print(table)
    _section(out, "tags", sorted(data["tags"].items()))

    source = data["source"] or {}
    dirty = source.get("git_dirty")
    _section(
        out,
        "source",
        [
            ("commit", source.get("git_commit") or "(not in a git repository)"),
            ("branch", source.get("git_branch") or ""),
            ("remote", source.get("git_remote") or ""),
            ("dirty", "" if dirty is None else ("yes" if dirty else "no")),
            ("entry point", view.entry_point_text(source.get("entry_point"))),
            ("cwd", source.get("cwd") or ""),
        ],
    )
    env = data["environment"]
    if env:
        _section(
            out,
            "environment",
            [
                ("python", env["python"]),
                ("platform", env["platform"]),
                ("digest", env["digest"]),
                ("packages", str(env["packages"])),
            ],
        )
    _section(
        out,
        "artifacts",
        [(a["path"], human_bytes(a["size"])) for a in data["artifacts"]],
    )
    _section(out, "inputs", [(ref, "") for ref in data["inputs"]])
    _section(
        out,
        "datasets",
        [(d["relation"], d["ref"] or f"dataset_version:{d['id']}") for d in data["datasets"]],
    )


def _num(value: Any) -> str:
    return "nan" if value is None else view.fmt_value(value)


def _section(out: Any, title: str, pairs: list[tuple[str, str]]) -> None:
    pairs = [(k, v) for k, v in pairs if v != "" or title == "inputs"]
    if pairs:
        out.print(f"\n[bold]{title}[/]")
        _print_pairs(out, pairs)


def _print_pairs(out: Any, pairs: list[tuple[str, Any]]) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    for key, value in pairs:
        table.add_row(str(key), str(value))
    out.print(table)


def export_json(ctx: Context, run: Run) -> str:
    """The whole run: what ``show`` reports plus every metric's full history."""
    data = _common(ctx, run)
    histories: dict[str, dict[str, list[Any]]] = {}
    for p in ctx.ledger.search.metric_points(run.id):
        h = histories.setdefault(p.key, {"steps": [], "timestamps": [], "values": []})
        h["steps"].append(p.step)
        h["timestamps"].append(p.timestamp)
        h["values"].append(p.value)
    data["metrics"] = histories
    return json.dumps(view.jsonable(data), indent=2) + "\n"


def export_csv(ctx: Context, run: Run) -> str:
    """One row per metric point: key, step, timestamp, value (``nan``, ``inf`` as written)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "step", "timestamp", "value"])
    for p in ctx.ledger.search.metric_points(run.id):
        writer.writerow([p.key, p.step, p.timestamp, repr(p.value)])
    return buffer.getvalue()
