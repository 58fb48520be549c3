"""Suites: a small YAML file of checks, parsed with every mistake located.

::

    suite: flights
    checks:
      - {check: row_count, min: 1000, max: 100000}
      - {check: between, column: distance, min: 17, max: 4983}
      - {check: sql, name: positive_air_time, condition: "air_time > 0", severity: warning}

:data:`SPECS` says which checks exist and what each accepts. A suite's digest is the BLAKE3
digest of its YAML text (the text is what the ledger stores), so editing a suite makes a new
version and re-saving the same text does not.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.errors import UsageError
from plinth.specfile import duration_seconds, short_repr

__all__ = ["SEVERITIES", "SPECS", "CheckSpec", "Suite", "SuiteCheck", "parse_duration"]

SEVERITIES = ("error", "warning")
#: Keys every check accepts besides its own arguments.
COMMON_KEYS = ("check", "column", "severity")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")


@dataclass(frozen=True)
class CheckSpec:
    """What one kind of check accepts: ``column`` (required/forbidden) and typed arguments."""

    column: bool
    required: Mapping[str, str] = field(default_factory=dict)
    optional: Mapping[str, str] = field(default_factory=dict)
    #: At least one of these arguments must be given.
    one_of: tuple[str, ...] = ()
    help: str = ""


#: Every check, by name. Argument types: int, number, fraction, str, columns, values,
#: duration, timestamp, bound (a number, or a date/timestamp for temporal columns).
SPECS: dict[str, CheckSpec] = {
    "row_count": CheckSpec(
        False, optional={"min": "int", "max": "int"}, one_of=("min", "max"), help="rows in range"
    ),
    "required_columns": CheckSpec(False, {"columns": "columns"}, help="these columns exist"),
    "no_unexpected_columns": CheckSpec(
        False, {"columns": "columns"}, help="no column outside this list"
    ),
    "freshness": CheckSpec(
        True, {"max_age": "duration"}, {"as_of": "timestamp"}, help="newest value is recent"
    ),
    "no_duplicates": CheckSpec(False, {"columns": "columns"}, help="no two rows share this key"),
    "dtype": CheckSpec(True, {"type": "str"}, help="column type family or exact arrow type"),
    "max_null_fraction": CheckSpec(
        True,
        optional={"value": "fraction", "reference_fraction": "fraction", "z": "number"},
        one_of=("value", "reference_fraction"),
        help="share of nulls at most (or near a reference share, sized to the data)",
    ),
    "unique": CheckSpec(True, help="no value appears twice (nulls ignored)"),
    "between": CheckSpec(
        True, optional={"min": "bound", "max": "bound"}, one_of=("min", "max"), help="range"
    ),
    "allowed_values": CheckSpec(True, {"values": "values"}, help="values from a set"),
    "regex": CheckSpec(True, {"pattern": "str"}, help="strings match a pattern (search)"),
    "string_length": CheckSpec(
        True, optional={"min": "int", "max": "int"}, one_of=("min", "max"), help="length range"
    ),
    "mean_between": CheckSpec(
        True,
        optional={
            "min": "number",
            "max": "number",
            "reference_mean": "number",
            "reference_std": "number",
            "z": "number",
        },
        one_of=("min", "max", "reference_mean"),
        help="mean in range (or within z standard errors of a reference mean)",
    ),
    "std_between": CheckSpec(
        True, optional={"min": "number", "max": "number"}, one_of=("min", "max"), help="std"
    ),
    "quantile_between": CheckSpec(
        True,
        {"q": "fraction"},
        {"min": "number", "max": "number"},
        one_of=("min", "max"),
        help="a quantile",
    ),
    "in_dataset": CheckSpec(
        True,
        optional={"dataset": "str", "path": "str", "dataset_column": "str"},
        one_of=("dataset", "path"),
        help="values present in another table's column",
    ),
    "sql": CheckSpec(
        False, {"name": "str", "condition": "str"}, help="rows where the condition is not true fail"
    ),
}

#: Type families the dtype check accepts besides exact arrow type strings.
FAMILIES = ("integer", "float", "numeric", "string", "boolean", "timestamp", "date")


def parse_duration(value: Any) -> float:
    """Seconds in ``90``, ``'90s'``, ``'15m'``, ``'1h'``, ``'3d'`` or ``'2w'`` (else ValueError)."""
    return duration_seconds(value)


def parse_timestamp(value: Any) -> dt.datetime:
    """A datetime from a YAML date/datetime or an ISO string; ValueError if not."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    raise ValueError(value)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _type_error(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of argument type ``kind``, or None when it is."""
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "a whole number >= 0"
    if kind == "number":
        return None if _is_number(value) else "a number"
    if kind == "fraction":
        return None if _is_number(value) and 0 <= value <= 1 else "a number between 0 and 1"
    if kind == "str":
        return None if isinstance(value, str) and value else "a non-empty string"
    if kind == "columns":
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
        return None if ok else "a non-empty list of column names"
    if kind == "values":
        ok = isinstance(value, list) and bool(value) and all(_is_scalar(v) for v in value)
        return None if ok else "a non-empty list of values (strings, numbers or booleans)"
    checks = {"duration": parse_duration, "timestamp": parse_timestamp, "bound": _bound}
    try:
        checks[kind](value)
    except (ValueError, TypeError):
        return {
            "duration": "a duration such as 90s, 15m, 6h, 3d or 2w",
            "timestamp": "an ISO timestamp such as 2024-05-01T00:00:00",
            "bound": "a number, or an ISO date/timestamp for a temporal column",
        }[kind]
    return None


def _bound(value: Any) -> Any:
    return value if _is_number(value) else parse_timestamp(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


@dataclass(frozen=True)
class SuiteCheck:
    """One check of a suite: its kind, column, arguments and severity."""

    check: str
    column: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "error"
    #: Position in the suite (0-based) and the line it starts on (1-based), when known.
    index: int = 0
    line: int | None = field(default=None, compare=False)
    #: A YAML comment written after the check by :meth:`Suite.to_yaml` (inference notes).
    comment: str | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """``between`` or, for SQL checks, their name: ``sql positive_air_time``."""
        return f"sql {self.args['name']}" if self.check == "sql" else self.check

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check}
        if self.column is not None:
            out["column"] = self.column
        out.update(self.args)
        if self.severity != "error":
            out["severity"] = self.severity
        return out


def locate(where: str, check: SuiteCheck) -> str:
    """``suite.yaml, check 7 (between, line 12)``: where a message about ``check`` points."""
    line = f", line {check.line}" if check.line else ""
    return f"{where}, check {check.index + 1} ({check.check}{line})"


def suggest(name: str, choices: Sequence[str]) -> str:
    """`` — did you mean 'x'?`` for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def _parse_check(raw: Any, index: int, line: int | None, where: str) -> SuiteCheck:
    head = f"{where}, check {index + 1}" + (f" (line {line})" if line else "")
    if not isinstance(raw, dict):
        raise UsageError(
            f"{head}: a check is a mapping like {{check: unique, column: id}}, "
            f"not {type(raw).__name__}",
            field=f"checks[{index}]",
        )
    kind = raw.get("check")
    if not isinstance(kind, str) or kind not in SPECS:
        text = "has no 'check' key" if kind is None else f"unknown check {kind!r}"
        raise UsageError(
            f"{head}: {text}{suggest(str(kind), list(SPECS)) if kind is not None else ''}",
            hint=f"checks: {', '.join(sorted(SPECS))}; see docs/validation.md",
            field=f"checks[{index}].check",
        )
    spec = SPECS[kind]
    shell = SuiteCheck(kind, index=index, line=line)
    loc = locate(where, shell)

    def fail(key: str, message: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{loc}: {message}", hint=hint, field=f"checks[{index}].{key}")

    allowed = (*COMMON_KEYS, *spec.required, *spec.optional)
    for key in raw:
        if key not in allowed:
            raise fail(
                str(key),
                f"unknown argument {key!r}{suggest(str(key), allowed)}",
                hint=f"{kind} accepts: {', '.join(k for k in allowed if k != 'check')}",
            )
    column = raw.get("column")
    if spec.column and not (isinstance(column, str) and column):
        raise fail("column", f"{kind} needs a 'column' (a column name)")
    if not spec.column and column is not None:
        raise fail("column", f"{kind} is a table check and takes no 'column'")
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise fail("severity", f"severity must be 'error' or 'warning', not {severity!r}")
    for key in spec.required:
        if key not in raw:
            raise fail(key, f"missing argument {key!r}")
    args = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
    for key, value in args.items():
        kind_of = {**spec.required, **spec.optional}[key]
        problem = _type_error(kind_of, value)
        if problem is not None:
            raise fail(key, f"{key!r} must be {problem}, not {short_repr(value, 80)}")
    if spec.one_of and not any(k in args for k in spec.one_of):
        raise fail(spec.one_of[0], f"give at least one of {' or '.join(spec.one_of)}")
    _check_consistency(kind, args, fail)
    return SuiteCheck(kind, column, args, severity, index, line)


def _check_consistency(kind: str, args: dict[str, Any], fail: Any) -> None:
    low, high = args.get("min"), args.get("max")
    comparable = low is not None and high is not None and type(_bound(low)) is type(_bound(high))
    if comparable and isinstance(_bound(low), dt.datetime):
        aware = [_bound(b).tzinfo is not None for b in (low, high)]
        if aware[0] != aware[1]:
            raise fail(
                "min" if not aware[0] else "max",
                f"min {low!r} and max {high!r} must both carry a time zone or both not",
                hint="write both as e.g. 2024-01-01T00:00:00+00:00, or both without an offset",
            )
    if comparable and _bound(low) > _bound(high):
        raise fail("min", f"min {low!r} is greater than max {high!r}")
    _check_tolerance(kind, args, fail)
    if kind == "in_dataset" and "dataset" in args and "path" in args:
        raise fail("path", "give either 'dataset' or 'path', not both")
    if kind == "in_dataset" and "dataset" in args:
        from plinth.refs import parse_ref

        try:  # checked on load, not when the check first runs
            parse_ref(args["dataset"], what="dataset")
        except UsageError as exc:
            raise fail("dataset", exc.message, hint=exc.hint) from None
    if kind == "sql" and not _NAME.fullmatch(args["name"]):
        raise fail("name", f"name {args['name']!r} must be letters, digits, '_', '.', '-'")
    if kind == "dtype":
        wanted = args["type"]
        if wanted not in FAMILIES and not _is_arrow_type(wanted):
            raise fail(
                "type",
                f"unknown type {wanted!r}{suggest(wanted, FAMILIES)}",
                hint=f"use a family ({', '.join(FAMILIES)}) or an arrow type such as int64",
            )


def _check_tolerance(kind: str, args: dict[str, Any], fail: Any) -> None:
    """Size-aware checks (docs/validation.md): a reference replaces fixed bounds."""
    if kind == "mean_between" and "reference_mean" in args:
        fixed = [k for k in ("min", "max") if k in args]
        if fixed:
            raise fail(fixed[0], "give min/max or reference_mean, not both")
        if "reference_std" not in args:
            raise fail("reference_std", "reference_mean needs reference_std (the reference's std)")
    if kind == "max_null_fraction" and "value" in args and "reference_fraction" in args:
        raise fail("reference_fraction", "give either 'value' or 'reference_fraction', not both")
    reference = {"mean_between": "reference_mean", "max_null_fraction": "reference_fraction"}
    if "z" in args and reference.get(kind, "") not in args:
        raise fail("z", f"z only applies with {reference.get(kind, 'a reference')}")
    if "reference_std" in args and "reference_mean" not in args:
        raise fail("reference_std", "reference_std only applies with reference_mean")
    if args.get("reference_std", 0) < 0 or ("z" in args and args["z"] <= 0):
        key = "z" if "z" in args and args["z"] <= 0 else "reference_std"
        raise fail(key, f"{key} must be > 0" if key == "z" else f"{key} must be >= 0")


def _is_arrow_type(text: str) -> bool:
    if "[" in text or "<" in text:  # timestamp[us, tz=UTC], list<item: int64>, ...
        return True
    import pyarrow as pa

    try:
        pa.type_for_alias(text)
    except (ValueError, KeyError):
        return False
    return True


@dataclass(frozen=True)
class Suite:
    """A named list of checks, loaded from YAML or built in Python (``Suite.from_dict``)."""

    name: str
    checks: tuple[SuiteCheck, ...]
    #: The YAML text the suite was read from; None for one built in Python.
    text: str | None = field(default=None, compare=False, repr=False)
    #: Where it came from, for messages (``suite.yaml``), and the folder paths resolve from.
    where: str = field(default="<suite>", compare=False)
    base_dir: Path | None = field(default=None, compare=False, repr=False)
    #: Comment lines :meth:`to_yaml` writes first (inference says what it read).
    header: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        """Read a suite file; every mistake names the file and the check."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"no suite file {path}", field="suite") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read suite file {path}: {exc}", field="suite") from None
        return cls.from_yaml(text, where=str(path), base_dir=path.resolve().parent)

    @classmethod
    def from_yaml(cls, text: str, *, where: str = "<suite>", base_dir: Path | None = None) -> Suite:
        """Parse suite YAML; a malformed file names the line and column."""
        import yaml

        try:
            data = yaml.safe_load(text)
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise UsageError(
                f"{where}{at}: malformed YAML: {problem}",
                hint="a suite is 'suite: NAME' and 'checks:' with a list of mappings",
                field="suite",
            ) from None
        except (ValueError, RecursionError) as exc:  # an int of 4,300+ digits; too deep
            from plinth.specfile import yaml_limit

            raise UsageError(
                f"{where}: unreadable YAML: {yaml_limit(exc)}",
                hint="a suite is 'suite: NAME' and 'checks:' with a list of mappings",
                field="suite",
            ) from None
        lines: list[int | None] = []
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "checks" and hasattr(value, "value"):
                    items = value.value if isinstance(value.value, list) else []
                    lines = [item.start_mark.line + 1 for item in items]
        return cls._from_data(data, where, base_dir, text, lines)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "<suite>") -> Suite:
        """A suite from ``{"suite": NAME, "checks": [{...}, ...]}``, validated like YAML."""
        return cls._from_data(data, where, None, None, [])

    @classmethod
    def _from_data(
        cls,
        data: Any,
        where: str,
        base_dir: Path | None,
        text: str | None,
        lines: list[int | None],
    ) -> Suite:
        hint = "a suite is 'suite: NAME' and 'checks:' with a list of mappings"
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: a suite is a mapping, not {short_repr(data)}", hint=hint)
        unknown = [k for k in data if k not in ("suite", "checks")]
        if unknown:
            raise UsageError(
                f"{where}: unknown key {unknown[0]!r}"
                + suggest(str(unknown[0]), ["suite", "checks"]),
                hint=hint,
                field=str(unknown[0]),
            )
        name = data.get("suite")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(
                f"{where}: 'suite' must be a name (letters, digits, '_', '.', '-'), not {name!r}",
                hint=hint,
                field="suite",
            )
        raw_checks = data.get("checks")
        if not isinstance(raw_checks, list):
            raise UsageError(f"{where}: 'checks' must be a list", hint=hint, field="checks")
        checks = tuple(
            _parse_check(raw, i, lines[i] if i < len(lines) else None, where)
            for i, raw in enumerate(raw_checks)
        )
        return cls(name, checks, text=text, where=where, base_dir=base_dir)

    def to_yaml(self) -> str:
        """The suite as YAML: one flow mapping per check, comments kept from inference."""
        import yaml

        def flow(value: Any) -> str:
            dumped: str = yaml.safe_dump(
                value, default_flow_style=True, sort_keys=False, width=10**9, allow_unicode=True
            )
            return dumped.strip().removesuffix("...").strip()

        out = [f"# {line}".rstrip() for line in self.header]
        out.append(f"suite: {self.name}")
        out.append("checks:")
        for check in self.checks:
            if check.comment:
                out.append(f"  # {check.comment}")
            out.append(f"  - {flow(check.to_dict())}")
        return "\n".join(out) + "\n"

    @property
    def yaml_text(self) -> str:
        """The text that is versioned: as read, or :meth:`to_yaml` for a built suite."""
        return self.text if self.text is not None else self.to_yaml()

    @property
    def digest(self) -> str:
        """BLAKE3 hex digest of :attr:`yaml_text` (the digest of its blob in the store)."""
        from blake3 import blake3

        return blake3(self.yaml_text.encode("utf-8")).hexdigest()
