"""``plinth models``: list models, show versions, move aliases (compare-and-swap), cards.

A thin layer over :mod:`plinth.registry.api` (``plinth.models``). REF is ``NAME`` (the
latest version), ``NAME@3`` or ``NAME@champion``. A conflicting alias move exits 2 and
moves nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.entities import AliasMove, ModelVersion
    from plinth.entities.models import Unchecked


@click.group(
    epilog="Example: plinth models show delays@champion && "
    "plinth models alias delays champion 4 --expect 3 --reason 'better rmse'"
)
def models() -> None:
    """Registered models: list, show, alias, rollback, history, card."""


def _when(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _number(n: int | None) -> str:
    return "-" if n is None else f"v{n}"


def move_json(m: AliasMove) -> dict[str, Any]:
    """The fields every ``plinth models ... --json`` prints for an alias move."""
    return {
        "model": m.model,
        "alias": m.alias,
        "from": m.from_number,
        "to": m.to_number,
        "reason": m.reason,
        "created_at": m.created_at,
        "created_by": m.created_by,
    }


def _echo(line: str) -> None:
    """Print one line built from records, terminal escapes shown as ``\\xNN`` (any ledger
    writer can put them in a description, an alias move's reason, a flavor or a param)."""
    from plinth.guards.terminal import printable

    click.echo(printable(line))


def _echo_move(m: AliasMove) -> None:
    what = "deleted" if m.to_number is None else f"-> {_number(m.to_number)}"
    why = f"  ({m.reason})" if m.reason else ""
    _echo(f"{m.model}@{m.alias}: {_number(m.from_number)} {what}{why}")


def _parse_expect(text: str | None) -> int | Unchecked | None:
    from plinth.entities.models import UNCHECKED
    from plinth.errors import UsageError

    if text is None:
        return UNCHECKED
    if text.lower() == "none":
        return None
    digits = text[1:] if text[:1] in "vV" else text
    if not digits.isdecimal() or int(digits) < 1:
        raise UsageError(
            f"--expect {text!r} is not a version",
            hint="pass the version the alias points at now (e.g. 3), or none if it is unset",
            field="expect",
        )
    return int(digits)


@models.command("list", epilog="Example: plinth models list --json")
@json_option
def list_command(as_json: bool) -> None:
    """List the project's models with their version count and aliases."""
    from plinth.context import Context
    from plinth.registry import api

    with Context.open() as ctx:
        rows = [(model, ctx.ledger.models.aliases(model)) for model in api.list_models(ctx=ctx)]
    if as_json:
        echo_json(
            [
                {
                    "name": m.name,
                    "versions": m.versions,
                    "aliases": aliases,
                    "description": m.description,
                    "created_at": m.created_at,
                    "created_by": m.created_by,
                }
                for m, aliases in rows
            ]
        )
        return
    if not rows:
        _echo("No models yet (log one with run.log_model(model, name=...))")
        return
    _echo(f"{'NAME':<24} {'VERSIONS':>8}  ALIASES")
    for m, aliases in rows:
        shown = ", ".join(f"{a}=v{n}" for a, n in aliases.items()) or "-"
        _echo(f"{m.name:<24} {m.versions:>8}  {shown}")


def _echo_version(v: ModelVersion) -> None:
    _echo(f"{v.ref}  ({v.flavor})")
    if v.aliases:
        _echo(f"aliases      {', '.join(v.aliases)}")
    if v.description:
        _echo(f"description  {v.description}")
    _echo(f"run          {v.run_id or '-'}")
    _echo(f"registered   {_when(v.created_at)} by {v.created_by}")
    _echo(f"manifest     {v.manifest_digest}")
    for key, value in sorted((v.metrics or {}).items()):
        _echo(f"  {key} = {value:g}")


@models.command(
    epilog="Examples:\n\n  plinth models show delays\n\n  plinth models show delays@champion --json"
)
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show model REF: its versions (NAME), or one version (NAME@3, NAME@champion)."""
    from plinth.context import Context
    from plinth.refs import parse_ref
    from plinth.registry import api

    parsed = parse_ref(ref, what="model")
    name = parsed.name
    with Context.open() as ctx:
        # ctx.reads: on an embedded ledger these reads skip SQLAlchemy's import (~0.3 s).
        store = ctx.reads.models
        model = store.get(ctx.project.id, name)
        if "@" in ref:  # NAME@latest shows that one version; NAME alone lists them all
            version = store.resolve(model, parsed.spec)
            if as_json:
                echo_json(api.version_dict(version))
            else:
                _echo_version(version)
            return
        versions = store.list_versions(model)
        aliases = store.aliases(model)
        run_ids = [v.run_id for v in versions if v.run_id]
        latest = ctx.reads.search.latest_metrics_of(run_ids) if run_ids else {}
    # a version's metrics: its run's latest, then those logged with the model (bar system/)
    metrics = {
        v.number: {
            k: x
            for k, x in {**latest.get(v.run_id or "", {}), **(v.metrics or {})}.items()
            if not k.startswith("system/")
        }
        for v in versions
    }
    if as_json:
        echo_json(
            {
                "name": name,
                "aliases": aliases,
                "versions": [
                    {**api.version_dict(v), "run_metrics": metrics[v.number]} for v in versions
                ],
            }
        )
        return
    keys = _key_metrics(list(metrics.values()))
    _echo(f"model {name}: {len(versions)} version" + ("" if len(versions) == 1 else "s"))
    for v in versions:
        tags = f"  [{', '.join(v.aliases)}]" if v.aliases else ""
        run = f"  run {v.run_id}" if v.run_id else ""
        shown = "  ".join(f"{k}={metrics[v.number][k]:.4g}" for k in keys if k in metrics[v.number])
        _echo(
            f"  v{v.number:<4} {v.flavor:<10} {_when(v.created_at)}{run}{tags}"
            + (f"  {shown}" if shown else "")
        )


def _key_metrics(per_version: list[dict[str, float]], most: int = 4) -> list[str]:
    """The metrics most versions have (up to ``most``), by name: the columns to compare."""
    from collections import Counter

    counts = Counter(k for metrics in per_version for k in metrics)
    return sorted(sorted(counts, key=lambda k: (-counts[k], k))[:most])


@models.command(
    epilog="Examples:\n\n  plinth models alias delays champion 4\n\n"
    "  plinth models alias delays champion 4 --expect 3 --reason 'better rmse'\n\n"
    "  plinth models alias delays challenger latest --expect none"
)
@click.argument("name")
@click.argument("alias")
@click.argument("version")
@click.option(
    "--expect",
    metavar="V",
    help="Move only if ALIAS points at version V now ('none': only if it is unset); "
    "otherwise exit 2 and move nothing.",
)
@click.option("--reason", help="Why: kept in the audit record.")
@json_option
def alias(
    name: str, alias: str, version: str, expect: str | None, reason: str | None, as_json: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (a number, latest, or another alias)."""
    from plinth.context import Context
    from plinth.registry import api

    expected = _parse_expect(expect)
    with Context.open() as ctx:
        move = api.set_alias(name, alias, version, expected=expected, reason=reason, ctx=ctx)
    if as_json:
        echo_json(move_json(move))
    else:
        _echo_move(move)


@models.command(
    epilog="Example: plinth models rollback delays champion --reason 'p99 latency regression'"
)
@click.argument("name")
@click.argument("alias")
@click.option("--reason", help="Why: kept in the audit record.")
@json_option
def rollback(name: str, alias: str, reason: str | None, as_json: bool) -> None:
    """Move ALIAS of model NAME back to where it pointed before its latest move."""
    from plinth.context import Context
    from plinth.registry import api

    with Context.open() as ctx:
        move = api.rollback(name, alias, reason=reason, ctx=ctx)
    if as_json:
        echo_json(move_json(move))
    else:
        _echo_move(move)


@models.command(
    epilog="Examples:\n\n  plinth models history delays\n\n"
    "  plinth models history delays --alias champion --json"
)
@click.argument("name")
@click.option("--alias", "alias_name", help="Only the moves of this alias.")
@json_option
def history(name: str, alias_name: str | None, as_json: bool) -> None:
    """List the alias moves of model NAME, newest first: who, when, from, to, why."""
    from plinth.context import Context
    from plinth.registry import api

    with Context.open() as ctx:
        moves = api.history(name, alias_name, ctx=ctx)
    if as_json:
        echo_json([move_json(m) for m in moves])
        return
    if not moves:
        _echo(f"No alias moves for model {name} yet")
        return
    for m in moves:
        to = "deleted" if m.to_number is None else _number(m.to_number)
        why = f"  {m.reason}" if m.reason else ""
        _echo(
            f"{_when(m.created_at)}  {m.created_by:<12} {m.alias:<12} "
            f"{_number(m.from_number):>5} -> {to:<7}{why}"
        )


@models.command(
    epilog="Examples:\n\n  plinth models card delays@4\n\n"
    "  plinth models card delays@champion --json"
)
@click.argument("ref")
@json_option
def card(ref: str, as_json: bool) -> None:
    """Print the model card of REF: metrics, params, data versions and their validation,
    code commit, environment and signature."""
    from plinth.context import Context
    from plinth.registry import api

    with Context.open() as ctx:
        info = api.card(ref, ctx=ctx)
    if as_json:
        echo_json(info)
        return
    _echo_card(info)


def _echo_card(info: dict[str, Any]) -> None:
    _echo(f"# {info['ref']}  ({info['flavor']})")
    if info["aliases"]:
        _echo(f"aliases      {', '.join(info['aliases'])}")
    if info["description"]:
        _echo(f"description  {info['description']}")
    _echo(f"registered   {_when(info['created_at'])} by {info['created_by']}")
    run = info["run"]
    _echo(f"run          {run['id'] + ' (' + run['status'] + ')' if run else '-'}")
    _echo(f"code commit  {info['code_commit'] or '-'}")
    env = info["environment"]
    if env and not env.get("missing"):
        _echo(f"environment  Python {env['python']} on {env['platform']} ({env['digest'][:12]})")
    else:
        _echo("environment  -")
    metrics = info["metrics"] or (run["metrics"] if run else {})
    _echo("metrics" + ("" if metrics else "      -"))
    for key, value in sorted(metrics.items()):
        _echo(f"  {key} = {value:g}")
    params = run["params"] if run else {}
    _echo("params" + ("" if params else "       -"))
    for key, value in sorted(params.items()):
        _echo(f"  {key} = {value}")
    _echo("data" + ("" if info["data"] else "         -"))
    for d in info["data"]:
        if d.get("missing"):
            _echo(f"  dataset version {d['id']} (no longer in the ledger)")
            continue
        checks = d["validations"]
        if not checks:
            verdict = "not validated"
        else:
            latest = checks[0]
            verdict = (
                f"{'passed' if latest['success'] else 'FAILED'} suite {latest['suite']} "
                f"v{latest['suite_number']} "
                f"({latest['error_count']} errors, {latest['warning_count']} warnings)"
            )
        _echo(f"  {d['ref']}  {d['status']}  {verdict}")
    signature = info["signature"]
    if signature:
        import json

        _echo("signature")
        for line in json.dumps(signature, indent=2).splitlines():
            _echo(f"  {line}")
    else:
        _echo("signature    -")


@models.command(
    epilog="Examples:\n\n"
    "  plinth models predict delays@champion --input flights.parquet --output preds.parquet\n\n"
    "  plinth models predict delays@4 --input f.parquet --output p.parquet --dataset preds\n\n"
    "  plinth models predict delays@4 --input f.parquet --output p.parquet "
    "--suite serving.yaml --reject"
)
@click.argument("ref")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet file to score.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet file to write: the input's columns plus prediction (and score).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows read, predicted and written at a time (bounds memory).",
)
@click.option("--dataset", help="Also add the output as a new version of this dataset.")
@click.option("--trusted", is_flag=True, help="Allow loading a pickled model (see docs).")
@click.option(
    "--suite",
    "suite_path",
    type=click.Path(dir_okay=False),
    help="Check rows with this suite's row-level checks first (failures counted per check).",
)
@click.option(
    "--reject",
    is_flag=True,
    help="With --suite: do not score failing rows; write them to --rejects and exit 1.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False),
    help="Where rejected rows go (default: OUTPUT with suffix .rejects.parquet).",
)
@json_option
def predict(
    ref: str,
    input_path: str,
    output_path: str,
    chunk_rows: int,
    dataset: str | None,
    trusted: bool,
    suite_path: str | None,
    reject: bool,
    rejects_path: str | None,
    as_json: bool,
) -> None:
    """Score the Parquet file --input with model REF into --output, in chunks."""
    if (reject or rejects_path) and suite_path is None:
        raise click.UsageError("--reject and --rejects need --suite FILE")
    from plinth.cli._progress import progress_bar
    from plinth.context import Context
    from plinth.serving.batch import predict_file

    with progress_bar(as_json) as bar, Context.open() as ctx:
        result = predict_file(
            ref,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            trusted=trusted,
            dataset=dataset,
            suite=suite_path,
            reject=reject,
            rejects_path=rejects_path,
            progress=bar,
            ctx=ctx,
        )
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(f"{result.rows} predictions of {result.model_version} -> {result.output_path}")
        if result.dataset_version:
            click.echo(f"added as dataset version {result.dataset_version}")
        for label, count in sorted(result.check_failures.items()):
            click.echo(f"{count} {'row fails' if count == 1 else 'rows fail'} {label}")
        if result.rejected:
            click.echo(f"{result.rejected} rejected (not scored) -> {result.rejects_path}")
    if result.rejected:
        click.get_current_context().exit(1)
