"""The profile records, their canonical JSON and their merge."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from plinth.errors import IntegrityError, UsageError

FORMAT = "plinth.profile"
FORMAT_VERSION = 1
#: Quantiles every numeric and temporal column reports.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Up to this many distinct values a column keeps every value (and its count): its
#: distinct count, and merges of such profiles, stay exact.
EXACT_MAX = 1000
#: Beyond EXACT_MAX a column keeps the counts of its ``FREQ_FACTOR * top_k`` most frequent
#: values for merging.
FREQ_FACTOR = 10
KLL_K = 200
KINDS = ("numeric", "boolean", "categorical", "temporal", "other")


@dataclass(frozen=True)
class MergeState:
    """What a column keeps only so that profiles merge; not meant to be read directly.

    ``values`` holds every distinct value when there are at most EXACT_MAX of them (as
    str with its count for categorical/boolean columns, as float with its count for
    numeric/temporal ones), else the most frequent ones and ``exact`` is False; ``hll``
    is then the HyperLogLog registers of every value.
    """

    m2: float = 0.0
    kll: bytes | None = None
    hll: bytes | None = None
    values: dict[str, int] = field(default_factory=dict)
    exact: bool = True
    len_total: int = 0


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column; see the package docstring for what each field means."""

    name: str
    type: str
    kind: str
    count: int
    null_count: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[float, float] = field(default_factory=dict)
    histogram: tuple[list[float], list[int]] | None = None
    top_values: dict[str, int] = field(default_factory=dict)
    other_count: int = 0
    distinct: int = 0
    distinct_exact: bool = True
    str_len: dict[str, float] | None = None
    state: MergeState = field(default_factory=MergeState, repr=False)

    @property
    def null_fraction(self) -> float:
        """Nulls over rows (0.0 for an empty column)."""
        rows = self.count + self.null_count
        return self.null_count / rows if rows else 0.0

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        from plinth.profiles._merge import merge_columns

        return merge_columns(self, other)


@dataclass(frozen=True)
class TableProfile:
    """Row count, schema and one :class:`ColumnProfile` per column (in schema order)."""

    row_count: int
    columns: dict[str, ColumnProfile]
    schema: list[dict[str, str]]
    top_k: int = 20
    bins: int = 20

    def merge(self, other: TableProfile) -> TableProfile:
        """The profile of the union of both tables' rows."""
        from plinth.profiles._merge import merge_tables

        return merge_tables(self, other)

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys); sketches as base64."""
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "row_count": self.row_count,
            "top_k": self.top_k,
            "bins": self.bins,
            "schema": self.schema,
            "columns": [_column_json(c) for c in self.columns.values()],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "a profile") -> TableProfile:
        """Parse :meth:`to_bytes` output; :class:`IntegrityError` says what is wrong."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(
                f"{where} is not valid JSON: {exc}", hint="recompute it: plinth data profile"
            ) from None
        return _Reader(where).table(doc)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _column_json(c: ColumnProfile) -> dict[str, Any]:
    s = c.state
    return {
        "name": c.name,
        "type": c.type,
        "kind": c.kind,
        "count": c.count,
        "null_count": c.null_count,
        "min": c.min,
        "max": c.max,
        "mean": c.mean,
        "std": c.std,
        "quantiles": {repr(q): v for q, v in c.quantiles.items()},
        "histogram": None
        if c.histogram is None
        else {"edges": c.histogram[0], "counts": c.histogram[1]},
        "top_values": c.top_values,
        "other_count": c.other_count,
        "distinct": c.distinct,
        "distinct_exact": c.distinct_exact,
        "str_len": c.str_len,
        "state": {
            "m2": s.m2,
            "kll": _b64(s.kll),
            "hll": _b64(s.hll),
            "values": s.values,
            "exact": s.exact,
            "len_total": s.len_total,
        },
    }


class _Reader:
    """Checks each field of a parsed profile, naming the first bad one."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, what: str) -> IntegrityError:
        return IntegrityError(
            f"{self.where} is malformed: {what}",
            hint="it was not written by this version of plinth or is damaged; recompute it",
        )

    def get(self, doc: dict[str, Any], key: str, types: Any, at: str) -> Any:
        if key not in doc:
            raise self.fail(f"{at}{key!r} is missing")
        value = doc[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise self.fail(f"{at}{key!r} is {type(value).__name__}, not {_names(types)}")
        return value

    def table(self, doc: Any) -> TableProfile:
        if not isinstance(doc, dict):
            raise self.fail(f"expected a JSON object, found {type(doc).__name__}")
        if doc.get("format") != FORMAT:
            raise self.fail(f"'format' is {doc.get('format')!r}, not {FORMAT!r}")
        version = doc.get("version")
        if version != FORMAT_VERSION:
            raise UsageError(
                f"{self.where} has profile format version {version!r}; this plinth reads "
                f"version {FORMAT_VERSION}",
                hint="upgrade plinth, or recompute the profile",
            )
        schema = self.get(doc, "schema", list, "")
        for i, col in enumerate(schema):
            if not isinstance(col, dict) or not all(
                isinstance(col.get(k), str) for k in ("name", "type")
            ):
                raise self.fail(f"schema[{i}] is not a {{'name', 'type'}} object")
        columns = [self.column(c, i) for i, c in enumerate(self.get(doc, "columns", list, ""))]
        if [c.name for c in columns] != [s["name"] for s in schema]:
            raise self.fail("the columns do not match the schema")
        return TableProfile(
            row_count=self.get(doc, "row_count", int, ""),
            columns={c.name: c for c in columns},
            schema=[{"name": s["name"], "type": s["type"]} for s in schema],
            top_k=self.get(doc, "top_k", int, ""),
            bins=self.get(doc, "bins", int, ""),
        )

    def column(self, doc: Any, i: int) -> ColumnProfile:
        if not isinstance(doc, dict):
            raise self.fail(f"columns[{i}] is not an object")
        at = f"columns[{i}]."
        num = (int, float)
        opt_num = (int, float, type(None))
        scalar = (int, float, str, type(None))
        kind = self.get(doc, "kind", str, at)
        if kind not in KINDS:
            raise self.fail(f"{at}'kind' is {kind!r}, not one of {', '.join(KINDS)}")
        hist = self.get(doc, "histogram", (dict, type(None)), at)
        histogram = None
        if hist is not None:
            edges = self.get(hist, "edges", list, at + "histogram.")
            counts = self.get(hist, "counts", list, at + "histogram.")
            if len(edges) != len(counts) + 1:
                raise self.fail(f"{at}histogram has {len(edges)} edges for {len(counts)} bins")
            histogram = ([float(e) for e in edges], [int(n) for n in counts])
        quantiles = self.get(doc, "quantiles", dict, at)
        try:
            parsed_q = {float(q): float(v) for q, v in quantiles.items()}
        except (TypeError, ValueError):
            raise self.fail(f"{at}'quantiles' holds a non-number") from None
        state = self.get(doc, "state", dict, at)
        sat = at + "state."
        str_len = self.get(doc, "str_len", (dict, type(None)), at)
        return ColumnProfile(
            name=self.get(doc, "name", str, at),
            type=self.get(doc, "type", str, at),
            kind=kind,
            count=self.get(doc, "count", int, at),
            null_count=self.get(doc, "null_count", int, at),
            min=self.get(doc, "min", scalar, at),
            max=self.get(doc, "max", scalar, at),
            mean=_float(self.get(doc, "mean", opt_num, at)),
            std=_float(self.get(doc, "std", opt_num, at)),
            quantiles=parsed_q,
            histogram=histogram,
            top_values=self.counts(doc, "top_values", at),
            other_count=self.get(doc, "other_count", int, at),
            distinct=self.get(doc, "distinct", int, at),
            distinct_exact=self.get(doc, "distinct_exact", bool, at),
            str_len=None if str_len is None else {k: float(v) for k, v in str_len.items()},
            state=MergeState(
                m2=float(self.get(state, "m2", num, sat)),
                kll=self.blob(state, "kll", sat),
                hll=self.blob(state, "hll", sat),
                values=self.counts(state, "values", sat),
                exact=self.get(state, "exact", bool, sat),
                len_total=self.get(state, "len_total", int, sat),
            ),
        )

    def counts(self, doc: dict[str, Any], key: str, at: str) -> dict[str, int]:
        """A value -> count map, most frequent first (JSON keys come back sorted by value)."""
        found = self.get(doc, key, dict, at)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in found.values()):
            raise self.fail(f"{at}{key!r} holds a count that is not an integer")
        return rank_counts(found)

    def blob(self, doc: dict[str, Any], key: str, at: str) -> bytes | None:
        text = self.get(doc, key, (str, type(None)), at)
        if text is None:
            return None
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise self.fail(f"{at}{key!r} is not base64") from None


def rank_counts(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` ordered most frequent first, ties by value (deterministic)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _names(types: Any) -> str:
    return " or ".join(
        "null"
        if t is type(None)
        else {"int": "integer", "str": "string"}.get(t.__name__, t.__name__)
        for t in _tuple(types)
    )


def with_moments(c: ColumnProfile, count: int, mean: float | None, m2: float) -> ColumnProfile:
    """``c`` with mean, population std and M2 from count/mean/M2."""
    std = math.sqrt(max(m2, 0.0) / count) if count and mean is not None else None
    return replace(c, mean=mean if count else None, std=std, state=replace(c.state, m2=m2))
