"""How ``plinth runs`` prints: short ids, times, durations, numbers, sparklines, JSON shapes.

No I/O and no heavy imports here; the commands in :mod:`plinth.cli.runs` fetch, this formats.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plinth.entities import Run

#: A short id is at least this long (the shortest prefix ``runs show`` accepts).
SHORT_ID = 8
_BARS = "▁▂▃▄▅▆▇█"


def console() -> Console:
    """A Rich console on the current stdout; 160 columns wide when it is not a terminal."""
    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return Console(width=width, highlight=False)


def plain_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> list[str]:
    """Lines of a borderless table: a header, then one line per row, columns two spaces
    apart (``right``: the indexes of right-aligned columns). Plain text, so a long list
    costs no Rich import or layout; cells are shown with terminal escapes neutralised
    (:func:`plinth.guards.terminal.printable`), as any ledger writer can set them."""
    from plinth.guards.terminal import printable

    table = [[printable(str(h)) for h in headers]]
    table += [[printable(str(cell)) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    align = set(right)
    return [
        "  ".join(
            cell.rjust(width) if i in align else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """The ids cut to one length (at least :data:`SHORT_ID`) at which they all differ.

    UUIDv7 ids start with their creation time, so runs made close together share long
    prefixes; the cut moves right until it tells them apart.
    """
    unique = sorted(set(ids))
    length = SHORT_ID
    for a, b in itertools.pairwise(unique):
        common = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
        length = max(length, common + 1)
    return {run_id: run_id[:length] for run_id in unique}


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def duration_s(run: Run) -> float | None:
    return None if run.end_time is None else (run.end_time - run.start_time) / 1000


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_value(value: object) -> str:
    """Numbers with 6 significant digits; missing values as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def sparkline(values: Sequence[float]) -> str:
    """``▁▃▆█``-style line of ``values``; NaN and infinities are blanks."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low
    chars = []
    for v in values:
        if not math.isfinite(v):
            chars.append(" ")
        elif span == 0:
            chars.append(_BARS[0])
        else:
            chars.append(_BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))])
    return "".join(chars)


def jsonable(value: Any) -> Any:
    """``value`` with NaN as null and infinities as the strings "Infinity"/"-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def run_json(run: Run, experiment: str) -> dict[str, Any]:
    """The fields every ``plinth runs ... --json`` prints for a run."""
    return {
        "id": run.id,
        "name": run.name,
        "experiment": experiment,
        "experiment_id": run.experiment_id,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_s": duration_s(run),
        "created_by": run.created_by,
        "deleted_at": run.deleted_at,
    }


def status_text(run: Run) -> str:
    return f"{run.status} (deleted)" if run.deleted_at is not None else run.status


def entry_point_text(entry: object) -> str:
    """``python train.py --lr 0.1`` / ``python -m pkg.train`` / the command line."""
    if not isinstance(entry, Mapping):
        return ""
    args = " ".join(str(a) for a in entry.get("args") or [])
    if entry.get("kind") == "script":
        return f"python {entry.get('path')} {args}".rstrip()
    if entry.get("kind") == "module":
        return f"python -m {entry.get('module')} {args}".rstrip()
    return args
