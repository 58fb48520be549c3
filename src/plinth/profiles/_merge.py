"""Merging profiles: the profile of the union of two batches' rows, without the rows.

Exact: counts, nulls, min/max, mean/std (Chan et al.'s parallel M2), string lengths,
value counts and distinct counts while both sides kept every value (at most
EXACT_MAX). Approximate: quantiles (merged KLL sketches), histograms over a new range
(re-binned from the merged sketch), distinct counts past EXACT_MAX (HyperLogLog), and
value counts past EXACT_MAX: a value missing from one side's kept table counts 0 there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from plinth.errors import UsageError
from plinth.profiles._model import (
    EXACT_MAX,
    FREQ_FACTOR,
    ColumnProfile,
    MergeState,
    TableProfile,
    with_moments,
)


def merge_tables(a: TableProfile, b: TableProfile) -> TableProfile:
    schema = _merged_schema(a, b)
    types = {c["name"]: c["type"] for c in schema}
    return TableProfile(
        row_count=a.row_count + b.row_count,
        columns={
            n: merge_columns(_as(c, types[n]), _as(b.columns[n], types[n]), a.top_k, a.bins)
            for n, c in a.columns.items()
        },
        schema=schema,
        top_k=a.top_k,
        bins=a.bins,
    )


_INTEGERS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
_FLOATS = frozenset({"halffloat", "float", "double"})


def _widened(x: str, y: str) -> str | None:
    """The one type both sides' values fit without loss of meaning, for the widenings a
    batch-by-batch type inference produces: null to the other side's type, an integer or
    a narrower float to double. None for any other pair."""
    if x == y:
        return x
    if x == "null":
        return y
    if y == "null":
        return x
    numeric = _INTEGERS | _FLOATS
    if x in numeric and y in numeric:
        return "double" if (x in _FLOATS or y in _FLOATS) else "int64"
    return None


def _merged_schema(a: TableProfile, b: TableProfile) -> list[dict[str, Any]]:
    theirs = {c["name"]: c["type"] for c in b.schema}
    if [c["name"] for c in a.schema] != [c["name"] for c in b.schema]:
        diffs = [
            f"{c['name']} ({c['type']} vs {theirs.get(c['name'], 'missing')})"
            for c in a.schema
            if theirs.get(c["name"]) != c["type"]
        ] or ["the column order or extra columns"]
        raise UsageError(
            f"cannot merge profiles of different schemas: {', '.join(diffs)}",
            hint="profiles merge only for batches of one table",
        )
    schema: list[dict[str, Any]] = []
    diffs = []
    for c in a.schema:
        other = theirs[c["name"]]
        wide = _widened(c["type"], other)
        if wide is None:
            diffs.append(f"{c['name']} ({c['type']} vs {other})")
        schema.append({**c, "type": wide or c["type"]})
    if diffs:
        raise UsageError(
            f"cannot merge profiles of different schemas: {', '.join(diffs)}",
            hint="profiles merge only for batches of one table",
        )
    return schema


def _as(c: ColumnProfile, type_: str) -> ColumnProfile:
    """``c`` as a column of the (widened) ``type_``: an all-null column takes the other
    side's kind; an integer column's statistics hold as they are for double."""
    if c.type == type_:
        return c
    if c.type == "null":
        kind = "numeric" if type_ in _INTEGERS | _FLOATS else _KINDS.get(type_, c.kind)
        return replace(c, type=type_, kind=kind)
    return replace(c, type=type_)


_KINDS = {"string": "categorical", "large_string": "categorical", "bool": "boolean"}


def merge_columns(
    a: ColumnProfile, b: ColumnProfile, top_k: int = 20, bins: int = 20
) -> ColumnProfile:
    if (a.name, a.type) != (b.name, b.type):
        raise UsageError(f"cannot merge column {a.name} ({a.type}) with {b.name} ({b.type})")
    if b.count == 0:
        return replace(a, null_count=a.null_count + b.null_count)
    if a.count == 0:
        return replace(b, null_count=a.null_count + b.null_count)
    count = a.count + b.count
    merged = ColumnProfile(
        name=a.name,
        type=a.type,
        kind=a.kind,
        count=count,
        null_count=a.null_count + b.null_count,
        min=_pick(min, a.min, b.min),
        max=_pick(max, a.max, b.max),
    )
    if a.kind in ("numeric", "temporal"):
        merged = _merge_numeric(merged, a, b, bins)
    elif a.kind in ("categorical", "boolean"):
        merged = _merge_counts(merged, a, b, top_k)
    else:
        return replace(merged, distinct_exact=False)
    if a.mean is not None and b.mean is not None:
        delta = b.mean - a.mean
        mean = a.mean + delta * b.count / count
        m2 = a.state.m2 + b.state.m2 + delta * delta * a.count * b.count / count
        merged = with_moments(merged, count, mean, m2)
    if a.str_len is not None and b.str_len is not None:
        total = a.state.len_total + b.state.len_total
        merged = replace(
            merged,
            str_len={
                "min": min(a.str_len["min"], b.str_len["min"]),
                "max": max(a.str_len["max"], b.str_len["max"]),
                "mean": total / count,
            },
            state=replace(merged.state, len_total=total),
        )
    return merged


def _pick(fn: Any, x: Any, y: Any) -> Any:
    return x if y is None else y if x is None else fn(x, y)


def _merge_numeric(
    merged: ColumnProfile, a: ColumnProfile, b: ColumnProfile, bins: int
) -> ColumnProfile:
    import datasketches

    from plinth.profiles._compute import kll_quantiles

    kll = datasketches.kll_doubles_sketch.deserialize(a.state.kll)
    kll.merge(datasketches.kll_doubles_sketch.deserialize(b.state.kll))
    values, exact, hll, distinct = _merge_distinct(a, b, keys_are_floats=True)
    hist = None
    if a.histogram is not None and b.histogram is not None:
        if a.histogram[0] == b.histogram[0]:
            hist = (
                a.histogram[0],
                [x + y for x, y in zip(a.histogram[1], b.histogram[1], strict=True)],
            )
        else:
            hist = _rebin(kll, merged.count, bins)
    return replace(
        merged,
        quantiles=kll_quantiles(kll),
        histogram=hist,
        distinct=distinct,
        distinct_exact=exact or (a.state.exact and b.state.exact),
        state=MergeState(kll=kll.serialize(), hll=hll, values=values if exact else {}, exact=exact),
    )


def _rebin(kll: Any, count: int, bins: int) -> tuple[list[float], list[int]]:
    """Equal-width bins over the sketch's min..max, counts from its PMF (summing to count)."""
    import numpy as np

    lo, hi = kll.get_min_value(), kll.get_max_value()
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    pmf = np.asarray(kll.get_pmf(list(edges[1:-1]), True))  # (lo, e1], ..., (e_last, hi]
    raw = pmf * count
    counts = np.floor(raw).astype(np.int64)
    short = count - int(counts.sum())  # largest remainders get the rounding
    if short > 0:
        counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return [float(e) for e in edges], [int(n) for n in counts]


def _merge_distinct(
    a: ColumnProfile, b: ColumnProfile, *, keys_are_floats: bool
) -> tuple[dict[str, int], bool, bytes | None, int]:
    """Merged value table, whether it is exact, HLL registers and the distinct count."""
    import numpy as np

    from plinth.profiles import _hll

    values = dict(a.state.values)
    for key, n in b.state.values.items():
        values[key] = values.get(key, 0) + n
    if a.state.exact and b.state.exact:
        if len(values) <= EXACT_MAX:
            return values, True, None, len(values)
        distinct = len(values)  # known exactly now; later merges estimate
    else:
        distinct = -1
    regs = np.zeros(_hll.M, np.uint8)
    for side in (a, b):
        if side.state.exact:
            _hll.registers(_key_hashes(list(side.state.values), keys_are_floats), into=regs)
        else:
            np.maximum(regs, np.frombuffer(side.state.hll or bytes(_hll.M), np.uint8), out=regs)
    if distinct < 0:
        distinct = round(_hll.estimate(regs))
    return values, False, regs.tobytes(), distinct


def _key_hashes(keys: list[str], keys_are_floats: bool) -> Any:
    import numpy as np
    import pyarrow as pa

    from plinth.profiles import _hll

    if keys_are_floats:
        return _hll.hash_floats(np.array([float(k) for k in keys], dtype=np.float64))
    return _hll.hash_strings(pa.array(keys, pa.string()))


def _merge_counts(
    merged: ColumnProfile, a: ColumnProfile, b: ColumnProfile, top_k: int
) -> ColumnProfile:
    values, exact, hll, distinct = _merge_distinct(a, b, keys_are_floats=False)
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    if not exact:
        ranked = ranked[: FREQ_FACTOR * top_k]
    top = dict(ranked[:top_k])
    return replace(
        merged,
        top_values=top,
        other_count=merged.count - sum(top.values()),
        distinct=distinct,
        distinct_exact=exact or (a.state.exact and b.state.exact),
        state=MergeState(hll=hll, values=dict(ranked), exact=exact),
    )
