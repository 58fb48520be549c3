"""``plinth runs``: list, search, show, compare, delete, restore, export tracked runs and
list or download their artifacts.

Every command first ingests the metric journals of dead processes on this machine, so their
points show. Lists and searches run as one SQL query over ``latest_metrics`` (no metric
history is read); ``show`` summarises histories in SQL (min, max, a downsampled sparkline).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Run

STATUSES = ("running", "finished", "failed", "killed", "crashed")
#: Metric columns ``runs list`` adds when no --columns are given.
DEFAULT_METRICS = 4


@click.group(
    epilog='Example: plinth runs list --where "metrics.auc > 0.8 and params.lr = 0.1" '
    "--order-by 'metrics.auc DESC'"
)
def runs() -> None:
    """List, search, inspect, compare, delete and export runs."""


def _open() -> Context:
    from plinth.context import Context
    from plinth.tracking.ingest import recover_journals

    ctx = Context.open()
    try:
        recover_journals(ctx)
    except BaseException:
        ctx.close()
        raise
    return ctx


def _resolve(ctx: Context, run_id: str) -> Run:
    return ctx.reads.runs.get_run(ctx.reads.search.resolve_run_id(run_id))


@runs.command(
    "list",
    epilog="Examples:\n\n  plinth runs list --experiment delays --status finished\n\n"
    "  plinth runs list --where \"metrics.auc > 0.8 and tags.team = 'ml'\" "
    "--order-by 'metrics.auc DESC' --limit 10\n\n"
    "  plinth runs list --columns metrics.auc,params.lr --json",
)
@click.option("--experiment", "experiments", multiple=True, help="Only this experiment (repeat).")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs in this status.")
@click.option("--where", help='Filter, e.g. "metrics.auc > 0.8 and params.lr = 0.1".')
@click.option(
    "--order-by", "order_by", multiple=True, help="Sort key, e.g. 'metrics.auc DESC' (repeat)."
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--columns", multiple=True, help="Extra columns, e.g. metrics.auc,params.lr.")
@click.option("--deleted", "include_deleted", is_flag=True, help="Include deleted runs.")
@json_option
def list_runs(
    experiments: tuple[str, ...],
    status: str | None,
    where: str | None,
    order_by: tuple[str, ...],
    limit: int,
    columns: tuple[str, ...],
    include_deleted: bool,
    as_json: bool,
) -> None:
    """Runs of this project, newest first: filter with --where, sort with --order-by.

    Columns: the keys named by --where and --order-by, then --columns, or else up to four
    metrics the listed runs have. The search language is in docs/ledger.md.
    """
    from plinth.cli import _runs_view as view
    from plinth.ledger.query import named_columns
    from plinth.tracking import search_runs

    named = named_columns(where, order_by, columns)
    with _open() as ctx:
        rows = search_runs(
            where,
            order_by=order_by,
            limit=limit,
            experiment=experiments or None,
            status=status,
            columns=[c.name for c in named],
            include_deleted=include_deleted,
            ctx=ctx,
        )
        latest = {} if columns else ctx.reads.search.latest_metrics_of([r.run.id for r in rows])
    shown = list(named)
    if not columns:
        shown += _common_metrics(latest, exclude={c.key for c in shown if c.kind == "metric"})
    table_rows = []
    for row in rows:
        values: dict[str, dict[str, Any]] = {
            "metric": {**latest.get(row.run.id, {}), **row.metrics},
            "param": row.params,
            "tag": row.tags,
            "attribute": _attributes(row),
        }
        table_rows.append((row, [values[c.kind].get(c.key) for c in shown]))
    if as_json:
        echo_json(
            {
                "columns": [c.name for c in shown],
                "runs": [
                    {
                        **view.run_json(row.run, row.experiment),
                        "values": view.jsonable(
                            dict(zip([c.name for c in shown], cells, strict=True))
                        ),
                    }
                    for row, cells in table_rows
                ],
            }
        )
        return
    # Plain text, not a Rich table: laying out a page of runs in Rich cost ~0.1 s.
    headers = ["id", "name", "experiment", "status", "start", "duration"]
    headers += [c.name for c in shown]
    short = view.short_ids(row.run.id for row, _ in table_rows)
    lines = view.plain_table(
        headers,
        (
            [
                short[row.run.id],
                row.run.name or "",
                row.experiment,
                view.status_text(row.run),
                view.fmt_time(row.run.start_time),
                view.fmt_duration(view.duration_s(row.run)),
                *(view.fmt_value(v) for v in cells),
            ]
            for row, cells in table_rows
        ),
        right=[6 + i for i, c in enumerate(shown) if c.kind == "metric"],
    )
    if table_rows:
        click.echo("\n".join(lines))
    more = " (more with --limit)" if len(rows) == limit else ""
    click.echo(f"{len(rows)} run(s){more}")


def _attributes(row: Any) -> dict[str, Any]:
    """The run attributes the search language names, by that name."""
    run = row.run
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "experiment": row.experiment,
        "experiment_id": run.experiment_id,
        "user": run.created_by,
        "parent_run_id": run.parent_run_id,
    }


def _common_metrics(latest: dict[str, dict[str, float]], exclude: set[str]) -> list[Any]:
    from collections import Counter

    from plinth.ledger.query import Column

    counts = Counter(
        key
        for values in latest.values()
        for key in values
        if not key.startswith("system/") and key not in exclude
    )
    ranked = sorted(counts, key=lambda k: (-counts[k], k))[:DEFAULT_METRICS]
    return [Column("metric", key) for key in sorted(ranked)]


@runs.command(
    epilog="Examples:\n\n  plinth runs show 0190b2c4-5e1f\n\n"
    "  plinth runs show 0190b2c4-5e1f --json"
)
@click.argument("run_id")
@json_option
def show(run_id: str, as_json: bool) -> None:
    """Everything about one run: params, metrics (final, min, max, sparkline), tags, source,
    environment, artifacts and inputs. RUN_ID may be a unique prefix (8+ characters)."""
    from plinth.cli._runs_show import gather, print_run

    with _open() as ctx:
        data = gather(ctx, _resolve(ctx, run_id))
    if as_json:
        echo_json(data)
    else:
        print_run(data)


@runs.command(
    epilog="Examples:\n\n  plinth runs compare 0190b2c4-5e1f 0190b2c5-0a3c\n\n"
    "  plinth runs compare A B C --only-diff --json"
)
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--only-diff", is_flag=True, help="Only the params and metrics that differ.")
@click.option("--system", is_flag=True, help="Include system/ metrics.")
@json_option
def compare(run_ids: tuple[str, ...], only_diff: bool, system: bool, as_json: bool) -> None:
    """Params and final metrics of two or more runs side by side; differences marked '*'."""
    from plinth.cli import _runs_view as view
    from plinth.errors import UsageError

    if len(run_ids) < 2:
        raise UsageError("compare needs at least two runs", hint="plinth runs compare A B")
    with _open() as ctx:
        found = [_resolve(ctx, run_id) for run_id in run_ids]
        names = {e.id: e.name for e in ctx.ledger.projects.list_experiments(ctx.project.id)}
        params = [ctx.ledger.runs.get_params(run.id) for run in found]
        latest = ctx.ledger.search.latest_metrics_of([run.id for run in found])
        metrics = [
            {k: v for k, v in latest[run.id].items() if system or not k.startswith("system/")}
            for run in found
        ]
    sections = {"params": _rows(params, only_diff), "metrics": _rows(metrics, only_diff)}
    if as_json:
        echo_json(
            {
                "runs": [view.run_json(r, names.get(r.experiment_id, "")) for r in found],
                **{
                    name: [
                        {"key": key, "values": view.jsonable(values), "differs": differs}
                        for key, values, differs in rows
                    ]
                    for name, rows in sections.items()
                },
            }
        )
        return
    from rich.table import Table

    short = view.short_ids(run.id for run in found)
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("key")
    for run in found:
        label = short[run.id] + (f"\n{run.name}" if run.name else "")
        table.add_column(label, justify="right")
    for name, rows in sections.items():
        table.add_row("", f"[bold]{name}[/]", *([""] * len(found)))
        for key, values, differs in rows:
            cells = [view.fmt_value(v) for v in values]
            style = "bold yellow" if differs else None
            table.add_row("*" if differs else "", key, *cells, style=style)
    view.console().print(table)


def _rows(per_run: list[dict[str, Any]], only_diff: bool) -> list[tuple[str, list[Any], bool]]:
    keys = sorted({key for values in per_run for key in values})
    rows = []
    for key in keys:
        values = [values.get(key) for values in per_run]
        differs = len({_same(v) for v in values}) > 1
        if differs or not only_diff:
            rows.append((key, values, differs))
    return rows


def _same(value: Any) -> Any:
    """A hashable stand-in under which NaN equals NaN."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


@runs.command(
    epilog="Examples:\n\n  plinth runs delete 0190b2c4-5e1f --yes\n\n"
    "  plinth runs restore 0190b2c4-5e1f   (before 'plinth gc --yes' frees its blobs)"
)
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Really delete (without it nothing changes).")
@json_option
def delete(run_ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Soft-delete runs: lists skip them and 'plinth gc' may then free their artifacts.

    'plinth runs restore' brings a run back (its artifacts too, until gc ran).
    """
    from plinth.errors import UsageError

    with _open() as ctx:
        found = [_resolve(ctx, run_id) for run_id in run_ids]
        if not yes:
            listed = ", ".join(f"{r.id} ({r.name})" if r.name else r.id for r in found)
            raise UsageError(
                f"this would delete {len(found)} run(s): {listed}",
                hint="pass --yes to delete them",
                field="yes",
            )
        deleted = [ctx.ledger.runs.delete_run(run.id) for run in found]
    if as_json:
        echo_json({"deleted": [run.id for run in deleted]})
        return
    for run in deleted:
        click.echo(f"Deleted run {run.id}" + (f" ({run.name})" if run.name else ""))
    click.echo(
        "'plinth gc --yes' frees their artifacts' blobs; until then "
        "'plinth runs restore RUN_ID' brings a run back."
    )


@runs.command(
    epilog="Examples:\n\n  plinth runs artifacts 0190b2c4-5e1f\n\n"
    "  plinth runs artifacts 0190b2c4-5e1f model -o ./model\n\n"
    "  plinth runs artifacts 0190b2c4-5e1f -o ./everything"
)
@click.argument("run_id")
@click.argument("path", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download into this folder (by artifact path) instead of listing.",
)
@json_option
def artifacts(run_id: str, path: str | None, output: Path | None, as_json: bool) -> None:
    """List a run's artifacts (path, size, digest), or download them with -o DIR.

    PATH picks one artifact or a folder of them. Downloads are verified against their
    digests. RUN_ID may be a unique prefix (8+ characters)."""
    from plinth.cli import _runs_artifacts

    with _open() as ctx:
        chosen = _runs_artifacts.select(ctx, _resolve(ctx, run_id), path)
        written = None if output is None else _runs_artifacts.download(ctx, chosen, output)
    _runs_artifacts.show(chosen, written, as_json)


@runs.command(epilog="Example: plinth runs restore 0190b2c4-5e1f")
@click.argument("run_id")
@json_option
def restore(run_id: str, as_json: bool) -> None:
    """Undo 'plinth runs delete': the run is listed again. Warns about artifacts whose blobs
    'plinth gc' already freed."""
    from plinth.entities import RecordRef

    with _open() as ctx:
        run = ctx.ledger.runs.restore_run(_resolve(ctx, run_id).id)
        artifacts = ctx.ledger.artifacts.list(RecordRef("run", run.id))
        missing = [a.path for a in artifacts if not ctx.blobs.exists(a.digest)]
    if as_json:
        echo_json({"restored": run.id, "missing_artifacts": missing})
        return
    click.echo(f"Restored run {run.id}" + (f" ({run.name})" if run.name else ""))
    for path in missing:
        click.echo(f"warning: artifact {path!r} is gone ('plinth gc' freed its blob)", err=True)


@runs.command(
    epilog="Examples:\n\n  plinth runs export 0190b2c4-5e1f --format json -o run.json\n\n"
    "  plinth runs export 0190b2c4-5e1f --format csv > metrics.csv"
)
@click.argument("run_id")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def export(run_id: str, fmt: str, output: Path | None) -> None:
    """Write a run as JSON (params, tags, every metric's history, artifacts) or its metric
    points as CSV (key, step, timestamp, value; one row per point)."""
    from plinth.cli._runs_show import export_csv, export_json

    with _open() as ctx:
        run = _resolve(ctx, run_id)
        text = export_json(ctx, run) if fmt == "json" else export_csv(ctx, run)
    if output is None:
        click.echo(text, nl=False)
        return
    from plinth.errors import UsageError

    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}", field="output") from None
    click.echo(f"Wrote {output}", err=True)
