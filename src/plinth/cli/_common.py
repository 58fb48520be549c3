"""Helpers shared by the CLI commands: options, JSON output, durations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from plinth.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def parse_duration(text: str, *, option: str) -> float:
    """Seconds in '90', '90s', '15m', '1h', '7d' or '2w'."""
    from plinth.specfile import duration_seconds

    try:
        return duration_seconds(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a duration",
            hint="write a number with an optional unit s, m, h, d or w, e.g. 1h or 30m",
            field=option,
        ) from None


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def safe_markup(text: str) -> str:
    """``text`` from a record, safe inside Rich markup on a terminal: control characters and
    bidirectional overrides shown escaped (:func:`plinth.guards.terminal.printable`), then
    Rich's own markup escaped, so ``[link=…]`` or ``[/bold]`` stay text."""
    from rich.markup import escape

    from plinth.guards.terminal import printable

    return escape(printable(str(text)))
