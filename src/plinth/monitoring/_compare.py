"""One column's comparison: pick the method, compute the statistic, bin both sides for
the chart. :func:`plinth.monitoring.drift.drift` judges the results together."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.monitoring.drift import ColumnDrift

if TYPE_CHECKING:
    from plinth.monitoring._sides import CategoricalSide, ComparisonSource, NumericSide

__all__ = ["compare"]

#: Up to this many rows on the smaller side, the defaults are statistical tests.
SMALL_SAMPLE = 1000
#: Numeric columns with at most this many distinct reference values are categories.
DISCRETE_MAX = 5
#: A string column with more distinct values than this share of its rows is an id.
ID_SHARE = 0.5
CHART_BINS = 30
CHART_CATEGORIES = 20
#: Methods that read a numeric column's values as categories.
CATEGORY_METHODS = ("chisquare", "jensenshannon", "unseen")
#: Names that say "identifier": id, order_id, orderId, uuid, row_key ...
ID_NAME = re.compile(r"(?:^|[_\W])(?:id|uuid|guid|key)$|[a-z0-9]Id$|^(?:id|uuid|guid)[_\W]", re.I)
#: A column named like an id is one when at least this share of its values is distinct.
ID_NAME_SHARE = 0.9
#: New categories listed per column (the most frequent): a summary, never the rows.
NEW_CATEGORIES_SHOWN = 20


def compare(
    name: str,
    ref: ComparisonSource,
    cur: ComparisonSource,
    method: str | None,
    limits: dict[str, float],
    unseen_min_count: int = 3,
) -> ColumnDrift | str:
    """The column's result, or why it is skipped."""
    kinds = ref.kind(name), cur.kind(name)
    if "empty" in kinds:
        return _empty(kinds[0] == "empty", ref, cur)
    if "temporal" in kinds:
        return "temporal column: compare features derived from it instead"
    if "other" in kinds:
        side = ref if kinds[0] == "other" else cur
        return f"unsupported type {side.type_name(name)} in the {side.label} data"
    if kinds[0] != kinds[1]:
        return (
            f"types differ: {ref.type_name(name)} in the reference, "
            f"{cur.type_name(name)} in the current data"
        )
    if kinds[0] == "categorical":
        if method in ("ks", "wasserstein"):
            raise UsageError(
                f"method {method!r} needs a numeric column; {name!r} is categorical",
                hint="use chisquare, jensenshannon, psi or unseen",
                field="methods",
            )
        a, b = ref.categorical(name), cur.categorical(name)
        if a.n == 0 or b.n == 0:
            return _empty(a.n == 0, ref, cur)
        if a.distinct > max(ID_SHARE * a.n, 20):
            return f"id-like: {a.distinct:,} distinct values in {int(a.n):,} reference rows"
        if _named_id(name, a.distinct, a.n):
            return _id_name(name, a.distinct, a.n)
        return _categorical(name, a, b, method, limits, unseen_min_count)
    x, y = ref.numeric(name), cur.numeric(name)
    if x is None or y is None:
        return _empty(x is None, ref, cur)
    if x.consecutive_ids():
        return f"id-like: {int(x.n):,} consecutive distinct integers in the reference"
    if x.integer and _named_id(name, x.distinct, x.n):
        return _id_name(name, x.distinct, x.n)
    if method in ("chisquare", "unseen") and not (x.exact and y.exact):
        raise _need_exact(method, name, "a profile keeps only a sketch of it")
    if method in CATEGORY_METHODS or (method in (None, "psi") and x.distinct <= DISCRETE_MAX):
        cats = x.categories(), y.categories()
        return _categorical(name, *cats, method, limits, unseen_min_count)
    return _numeric(name, x, y, method, limits)


def _named_id(name: str, distinct: int, n: float) -> bool:
    """Named like an id, and nearly every value distinct: a sampled or shuffled key."""
    return n >= 20 and distinct >= ID_NAME_SHARE * n and bool(ID_NAME.search(name))


def _id_name(name: str, distinct: int, n: float) -> str:
    return f"id-like: named like an id, {distinct:,} distinct values in {int(n):,} reference rows"


def _empty(reference: bool, ref: ComparisonSource, cur: ComparisonSource) -> str:
    side = ref if reference else cur
    return f"no values in the {side.label} data"


def _small(a_n: float, b_n: float) -> bool:
    return min(a_n, b_n) <= SMALL_SAMPLE


def _need_exact(method: str, name: str, why: str) -> UsageError:
    return UsageError(
        f"method {method!r} needs exact values of column {name!r}, but {why}",
        hint="compare against the data itself, or use a distance: wasserstein, "
        "jensenshannon or psi",
        field="methods",
    )


_SKETCHED = f"a profile keeps only a sketch of it and both sides have over {SMALL_SAMPLE:,} rows"
_TOPPED = "a profile keeps only its most frequent values (it has over 1,000)"


def _numeric(
    name: str, a: NumericSide, b: NumericSide, method: str | None, limits: dict[str, float]
) -> ColumnDrift:
    import numpy as np

    from plinth.monitoring import _stats

    exact = a.exact and b.exact
    ks, w1 = _stats.ks_wasserstein(a.values, a.weights, a.n, b.values, b.weights, b.n)
    raw_p = None
    if exact:
        raw_p = _stats.ks_p_value(ks, a.n, b.n)
    elif _small(a.n, b.n):
        # Against a sketch, only while the test's resolution (a critical D of 0.043 or more)
        # dwarfs the sketch's error, and conservatively: D less that error.
        slack = a.rank_error + b.rank_error
        raw_p = _stats.ks_p_value(max(0.0, ks - slack), a.n, b.n)
    method = method or ("ks" if _small(a.n, b.n) else "wasserstein")
    if method == "ks":
        if raw_p is None:
            raise _need_exact(method, name, _SKETCHED)
        statistic = ks
    elif method == "wasserstein":
        statistic = w1 / a.std if a.std else w1
    else:
        edges = np.unique(a.quantile(np.arange(1, 10) / 10.0))
        statistic = _stats.psi(_binned(a, edges), _binned(b, edges))
    lo = min(a.quantile(np.array([0.005]))[0], b.quantile(np.array([0.005]))[0])
    hi = max(a.quantile(np.array([0.995]))[0], b.quantile(np.array([0.995]))[0])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, CHART_BINS + 1)
    return ColumnDrift(
        column=name,
        kind="numeric",
        method=method,
        statistic=float(statistic),
        threshold=limits[method],
        p_value=raw_p,
        drifted=False,
        raw_p_value=raw_p,
        exact=exact,
        reference_count=int(a.n),
        current_count=int(b.n),
        reference_nulls=a.nulls,
        current_nulls=b.nulls,
        bins=tuple(f"{e:.4g}" for e in edges[:-1]),
        edges=tuple(float(e) for e in edges),
        reference_hist=_shares(_binned(a, edges[1:-1]), a.n),
        current_hist=_shares(_binned(b, edges[1:-1]), b.n),
    )


def _binned(side: NumericSide, edges: Any) -> Any:
    """Rows per bin: at or below the first edge, between edges, above the last."""
    import numpy as np

    return np.diff(np.concatenate([[0.0], side.count_le(edges), [side.n]]))


def _shares(counts: Any, n: float) -> tuple[float, ...]:
    return tuple(round(float(c) / n, 6) for c in counts) if n else ()


def _categorical(
    name: str,
    a: CategoricalSide,
    b: CategoricalSide,
    method: str | None,
    limits: dict[str, float],
    unseen_min_count: int = 3,
) -> ColumnDrift:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from plinth.monitoring import _stats

    at = pc.fill_null(pc.index_in(b.keys, value_set=a.keys), -1).to_numpy()
    seen = at >= 0
    aligned = np.zeros(len(a.keys))
    aligned[at[seen]] = b.counts[seen]
    new = b.counts[~seen]
    labels = pa.concat_arrays([a.keys, b.keys.filter(pa.array(~seen))])
    if a.other:  # the reference kept its frequent values only: new ones may be in "other"
        p = np.append(a.counts, a.other)
        q = np.append(aligned, b.other + new.sum())
        labels = pa.concat_arrays([a.keys, pa.array([None], a.keys.type)])
        unseen = None
    else:
        p = np.concatenate([a.counts, np.zeros(len(new) + 1)])
        q = np.concatenate([aligned, new, [b.other]])
        labels = pa.concat_arrays([labels, pa.array([None], a.keys.type)])
        unseen = float(new.sum()) / b.n if not b.other else None
    exact = a.exact and b.exact
    raw_p = _stats.chisquare_p_value(*_stats.chisquare(p, q)) if exact else None
    method = method or ("chisquare" if exact and _small(a.n, b.n) else "jensenshannon")
    if method == "chisquare":
        if not exact:
            raise _need_exact(method, name, _TOPPED)
        statistic = _stats.chisquare(p, q)[0]
    elif method == "jensenshannon":
        # less what two samples of one distribution would show (many categories, few rows)
        statistic = _stats.jensenshannon(p, q, corrected=True)
    elif method == "psi":
        statistic = _stats.psi(p, q)
    else:
        if unseen is None:
            raise _need_exact(method, name, _TOPPED)
        statistic = unseen
    bins, ref_hist, cur_hist = _top_categories(labels, p, q, a.n, b.n)
    found: tuple[tuple[str, int], ...] | None = None
    if not a.other:  # a topped reference cannot tell new values from dropped ones
        order = np.argsort(-new, kind="stable")[:NEW_CATEGORIES_SHOWN]
        texts = b.keys.filter(pa.array(~seen)).take(pa.array(order, pa.int64())).to_pylist()
        found = tuple((_label(t), int(new[i])) for t, i in zip(texts, order, strict=True))
    return ColumnDrift(
        column=name,
        kind="categorical",
        method=method,
        statistic=float(statistic),
        threshold=limits[method],
        p_value=raw_p,
        drifted=False,
        raw_p_value=raw_p,
        exact=exact,
        reference_count=int(a.n),
        current_count=int(b.n),
        reference_nulls=a.nulls,
        current_nulls=b.nulls,
        unseen_share=unseen,
        new_categories=found,
        new_categories_flagged=found is not None and any(n >= unseen_min_count for _, n in found),
        bins=bins,
        reference_hist=ref_hist,
        current_hist=cur_hist,
    )


def _top_categories(
    labels: Any, p: Any, q: Any, p_n: float, q_n: float
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    """The most frequent categories on either side (at most CHART_CATEGORIES), the rest as
    one "(other)" bin; shares of each side's rows."""
    import numpy as np
    import pyarrow as pa

    share_p, share_q = p / p_n, q / q_n
    named = np.flatnonzero(np.asarray(labels.is_valid()))
    weight = np.maximum(share_p, share_q)[named]
    top = named[np.argsort(-weight, kind="stable")[:CHART_CATEGORIES]]
    rest = np.ones(len(p), dtype=bool)
    rest[top] = False
    texts = labels.take(pa.array(top)).to_pylist()
    names = [_label(t) for t in texts]
    ref_hist = [*share_p[top].tolist(), float(share_p[rest].sum())]
    cur_hist = [*share_q[top].tolist(), float(share_q[rest].sum())]
    if ref_hist[-1] == 0 and cur_hist[-1] == 0:
        ref_hist.pop()
        cur_hist.pop()
    else:
        names.append("(other)")
    return (
        tuple(names),
        tuple(round(v, 6) for v in ref_hist),
        tuple(round(v, 6) for v in cur_hist),
    )


def _label(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"
