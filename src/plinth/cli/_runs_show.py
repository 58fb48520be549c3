"""``plinth runs show`` and ``plinth runs export``: gather one run from the ledger, print it."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import click

from plinth.cli import _runs_view as view
from plinth.cli._common import human_bytes

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Run

#: Points per metric in a sparkline (bucket means computed in SQL).
SPARK_POINTS = 40


def _experiment_name(ctx: Context, run: Run) -> str:
    return ctx.reads.projects.get_experiment(run.experiment_id).name


def _common(ctx: Context, run: Run) -> dict[str, Any]:
    """The run with params, tags, source, environment, artifacts and inputs (no metrics)."""
    from plinth.entities import RecordRef

    ledger = ctx.reads
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
    for edge in ctx.reads.lineage.edges_from(ref):
        if edge.dst.type == "dataset_version" and edge.relation in ("used", "produced"):
            try:
                name = ctx.reads.datasets.get_version_by_id(edge.dst.id).ref
            except NotFoundError:  # an edge to a record this ledger does not hold
                name = None
            out.append({"relation": edge.relation, "ref": name, "id": edge.dst.id})
    return out


def gather(ctx: Context, run: Run) -> dict[str, Any]:
    """What ``runs show`` prints, as JSON-ready data; metric histories stay in the database."""
    samples = ctx.reads.search.metric_samples(run.id, SPARK_POINTS)
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
        for s in ctx.reads.search.metric_summaries(run.id)
    ]
    return view.jsonable(data)  # type: ignore[no-any-return]


def print_run(data: dict[str, Any]) -> None:
    """``data`` (:func:`gather`) as plain text: sections of key/value pairs and a metrics
    table. No Rich: laying it out cost more than the ledger reads. Every cell goes through
    :func:`view.plain_table`, which neutralises terminal escapes (any ledger writer can set
    a run's name, params, tags or artifact paths)."""
    from plinth.guards.terminal import printable

    title = f"run {data['id']}" + (f"  {data['name']}" if data["name"] else "")
    click.echo(click.style(printable(title), bold=True))
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
    _print_pairs([(k, v) for k, v in facts if v])

    _section("params", sorted(data["params"].items()))
    if data["metrics"]:
        click.echo("\n" + click.style("metrics", bold=True))
        rows = []
        for m in data["metrics"]:
            samples = [float("nan") if v is None else float(v) for v in m["samples"]]
            rows.append(
                [
                    m["key"],
                    _num(m["last"]),
                    str(m["last_step"]),
                    _num(m["min"]),
                    _num(m["max"]),
                    str(m["count"]),
                    view.sparkline(samples),
                ]
            )
        headers = ["key", "last", "step", "min", "max", "points", "history"]
        click.echo("\n".join(view.plain_table(headers, rows, right=range(1, 6))))
    _section("tags", sorted(data["tags"].items()))

    source = data["source"] or {}
    dirty = source.get("git_dirty")
    _section(
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
            "environment",
            [
                ("python", env["python"]),
                ("platform", env["platform"]),
                ("digest", env["digest"]),
                ("packages", str(env["packages"])),
            ],
        )
    _section("artifacts", [(a["path"], human_bytes(a["size"])) for a in data["artifacts"]])
    _section("inputs", [(ref, "") for ref in data["inputs"]])
    _section(
        "datasets",
        [(d["relation"], d["ref"] or f"dataset_version:{d['id']}") for d in data["datasets"]],
    )


def _num(value: Any) -> str:
    return "nan" if value is None else view.fmt_value(value)


def _section(title: str, pairs: list[tuple[str, str]]) -> None:
    pairs = [(k, v) for k, v in pairs if v != "" or title == "inputs"]
    if pairs:
        click.echo("\n" + click.style(title, bold=True))
        _print_pairs(pairs)


def _print_pairs(pairs: list[tuple[str, Any]]) -> None:
    # plain_table's first line is its header: here the first pair.
    if pairs:
        lines = view.plain_table(
            [str(k) for k in pairs[0]], ([str(k), str(v)] for k, v in pairs[1:])
        )
        click.echo("\n".join(lines))


def export_json(ctx: Context, run: Run) -> str:
    """The whole run: what ``show`` reports plus every metric's full history."""
    data = _common(ctx, run)
    histories: dict[str, dict[str, list[Any]]] = {}
    for p in ctx.reads.search.metric_points(run.id):
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
    for p in ctx.reads.search.metric_points(run.id):
        writer.writerow([p.key, p.step, p.timestamp, repr(p.value)])
    return buffer.getvalue()
