"""Strict checks shared by the YAML files plinth reads (deployments, monitors).

Every problem is a :class:`~plinth.errors.UsageError` naming the file (``where``), the key
(``field=``) and, for an unknown key, the closest known one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plinth.errors import UsageError

__all__ = [
    "check_mapping",
    "check_number",
    "duration_seconds",
    "no_unknown",
    "parse_yaml",
    "read_yaml",
    "short_repr",
    "yaml_limit",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(value: Any) -> float:
    """Seconds in ``90``, ``'90s'``, ``'15m'``, ``'1h'``, ``'3d'`` or ``'2w'`` (a bare
    number is seconds); ValueError for anything else or a negative number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(value)
    return float(match[1]) * _UNITS[match[2] or "s"]


def read_yaml(path: str | Path, *, what: str, hint: str) -> tuple[Any, str]:
    """The parsed YAML of ``path`` and its text; a malformed file names line and column."""

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no {what} file {path}", hint=hint, field=what) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc}", field=what) from None
    return parse_yaml(text, where=str(path), what=what, hint=hint), text


def parse_yaml(text: str, *, where: str, what: str, hint: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}{at}: malformed YAML: {problem}", hint=hint, field=what) from None
    except (ValueError, RecursionError) as exc:  # an int of 4,300+ digits; nesting too deep
        raise UsageError(
            f"{where}: unreadable YAML: {yaml_limit(exc)}", hint=hint, field=what
        ) from None


def yaml_limit(exc: ValueError | RecursionError) -> str:
    """What a YAML file that the safe loader parses but Python cannot hold went past."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number with more than 4,300 digits"


def no_unknown(data: Mapping[Any, Any], known: Sequence[str], where: str, prefix: str) -> None:
    """Refuse a key of ``data`` not in ``known``, suggesting the closest known key."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            guess = f" — did you mean '{prefix}{close[0]}'?" if close else ""
            raise UsageError(
                f"{where}: unknown key '{prefix}{key}'{guess}",
                hint=f"known keys here: {', '.join(known)}",
                field=f"{prefix}{key}",
            )


def short_repr(value: Any, limit: int = 40) -> str:
    """A bounded repr for error messages: ``f"{v!r:.40}"`` builds the whole repr first, which
    for a YAML alias bomb (a list of 9 lists of 9 ... shared by reference) never ends."""
    import reprlib

    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict, shown.maxstring = 2, 4, 4, limit
    return shown.repr(value)[:limit]


def check_mapping(value: Any, where: str, key: str, hint: str | None = None) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{where}: '{key}' must be a mapping, got {short_repr(value)}", hint=hint, field=key
        )
    return value


def check_number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where}: '{key}' must be a number, got {short_repr(value)}", field=key)
    return float(value)
