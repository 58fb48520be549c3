"""``plinth features skew``: the features a deployment served against the training set its
model was trained on; added to the ``features`` group by :mod:`plinth.cli.features`.
A thin layer over :func:`plinth.features.skew.skew`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.monitoring.skew import SkewReport

__all__ = ["COMMANDS", "skew"]


@click.command(
    epilog="Examples:\n\n  plinth features skew delays_features --deployment delays\n\n"
    "  plinth features skew delays_features --deployment delays --window 1d --fail-on-skew\n\n"
    "  plinth features skew delays_features --deployment delays --window '5000 rows' --json"
)
@click.argument("service")
@click.option("--deployment", required=True, help="The deployment whose served features to check.")
@click.option(
    "--window",
    default=None,
    help="The logged predictions to read: a duration (1d, 12h) or a row count ('5000 rows'). "
    "Default: every logged prediction.",
)
@click.option("--columns", help="Compare only these features (comma-separated).")
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="FEATURE=METHOD",
    help="Test FEATURE with METHOD: ks, wasserstein, psi, chisquare, jensenshannon or unseen "
    "(repeatable).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="METHOD=VALUE",
    help="Threshold of METHOD, e.g. wasserstein=0.2 or ks=0.01 (repeatable).",
)
@click.option(
    "--share-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Skew when this share of the features is skewed (0: any feature).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the HTML drift report of the comparison here.",
)
@click.option("--fail-on-skew", is_flag=True, help="Exit 1 when a feature is skewed.")
@json_option
@click.pass_context
def skew(
    click_ctx: click.Context,
    service: str,
    deployment: str,
    window: str | None,
    columns: str | None,
    methods: tuple[str, ...],
    thresholds: tuple[str, ...],
    share_threshold: float,
    html_path: str | None,
    fail_on_skew: bool,
    as_json: bool,
) -> None:
    """Compare the features of SERVICE that a deployment served (its prediction log) with
    the training set its model was trained on (found through lineage), feature by feature,
    with the drift tests of ``plinth monitor drift``."""
    from plinth.cli.monitor import _number, _pairs, _write
    from plinth.context import Context
    from plinth.errors import CheckFailedError
    from plinth.features.skew import skew as compare

    method_map = _pairs(methods, "--method", "FEATURE=METHOD", "delay=psi")
    threshold_map = {
        m: _number(v, m)
        for m, v in _pairs(thresholds, "--threshold", "METHOD=VALUE", "wasserstein=0.2").items()
    }
    wanted = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    with Context.open() as ctx:
        report = compare(
            service,
            deployment=deployment,
            window=window,
            columns=wanted,
            methods=method_map,
            thresholds=threshold_map,
            share_threshold=share_threshold,
            ctx=ctx,
        )
    if html_path is not None:
        _write(report.drift, html_path)
    if as_json:
        echo_json(report.to_dict())
        if fail_on_skew and report.skewed:
            click_ctx.exit(1)
        return
    _print(report, html_path)
    if fail_on_skew and report.skewed:
        raise CheckFailedError(
            f"feature skew: {', '.join(report.skewed_features)} served unlike "
            f"{report.training_set}",
            hint="see the table above; compare the view's source with what the online store "
            "holds (plinth features materialize) and the deployment's service version",
        )


def _print(report: SkewReport, html_path: str | None) -> None:
    from rich.markup import escape

    from plinth.cli import _runs_view as view
    from plinth.cli._drift_view import change_lines, drift_table

    d = report.drift
    table = drift_table(d, label="feature", flag="SKEW")
    out = view.console()
    out.print(table)
    verdict = "[red]feature skew[/]" if report.skewed else "[green]no feature skew[/]"
    out.print(
        f"{escape(report.deployment)} ({escape(report.model)}) vs {escape(report.training_set)} "
        f"(built from {escape(report.trained_service)}): {verdict} — "
        f"{len(report.skewed_features)} of {len(d.columns)} features skewed; "
        f"{d.current_rows:,} served vs {d.reference_rows:,} training rows"
    )
    for line in change_lines(d, where="served in"):
        out.print(line)
    left_out = {**report.not_compared, **d.skipped}
    if left_out:
        shown = "; ".join(f"{name} ({why})" for name, why in left_out.items())
        out.print(f"Not compared: {escape(shown)}")
    if html_path is not None:
        out.print(f"Report: {escape(str(Path(html_path)))}")


#: What :mod:`plinth.cli.features` adds to its group.
COMMANDS: tuple[Any, ...] = (skew,)
