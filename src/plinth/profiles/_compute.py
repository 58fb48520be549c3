"""Profiling a pyarrow Table: vectorised statistics per column, columns in a thread pool.

A numeric column is sorted once (numpy releases the GIL while it sorts, so columns
overlap on several cores); the sorted copy then answers what would otherwise be a pass
each: the KLL sketch is fed in order (its compactions sort almost nothing), distinct
values are the places where neighbours differ (exact counts and HyperLogLog over the
distinct values only), and histogram bins are found by binary search of the bin function.
Mean and variance are summed over the column in its own order, so they are the values a
plain pass gives.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.profiles._model import (
    EXACT_MAX,
    FREQ_FACTOR,
    KLL_K,
    QUANTILES,
    ColumnProfile,
    MergeState,
    TableProfile,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from plinth.progress import Progress

#: Tables with fewer rows are profiled in this thread: a pool costs more than it saves.
_PARALLEL_ROWS = 50_000


def profile_table(
    data: Any, *, top_k: int = 20, bins: int = 20, progress: Progress | None = None
) -> TableProfile:
    """The profile of a pyarrow Table or a pandas/polars DataFrame; ``progress``
    (:mod:`plinth.progress`) hears of each column profiled."""
    from plinth.progress import reporter
    from plinth.tables import to_arrow

    if top_k < 1 or bins < 1:
        raise UsageError(
            "top_k and bins must be at least 1", field="top_k" if top_k < 1 else "bins"
        )
    table = to_arrow(data, refuse="cannot profile a {type}")
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"cannot profile a table with two columns named {dup!r}", field="data")

    done = reporter(progress)
    done.start(len(names), "columns", label="profiling")
    columns = []
    try:
        workers = min(len(names), os.cpu_count() or 1, 8)
        if workers <= 1 or table.num_rows < _PARALLEL_ROWS:
            for i, name in enumerate(names):
                columns.append(profile_column(name, table.column(i), top_k=top_k, bins=bins))
                done.advance()
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="plinth-profile") as pool:
                futures = [
                    pool.submit(profile_column, name, table.column(i), top_k=top_k, bins=bins)
                    for i, name in enumerate(names)
                ]
                for future in futures:
                    columns.append(future.result())
                    done.advance()
    finally:
        done.finish()
    return TableProfile(
        row_count=table.num_rows,
        columns={c.name: c for c in columns},
        schema=[{"name": f.name, "type": str(f.type)} for f in table.schema],
        top_k=top_k,
        bins=bins,
    )


def profile_file(path: str | Path) -> TableProfile:
    """The profile of a Parquet or CSV file or folder (read by :func:`plinth.tables.read_path`)."""
    from plinth.tables import read_path

    return profile_table(read_path(path))


def kind_of(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "temporal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "categorical"
    return "other"


def profile_column(name: str, col: pa.ChunkedArray, *, top_k: int, bins: int) -> ColumnProfile:
    kind = kind_of(col.type)
    base = ColumnProfile(name, str(col.type), kind, len(col) - col.null_count, col.null_count)
    if kind in ("numeric", "temporal"):
        return _numeric(base, col, bins)
    if kind in ("categorical", "boolean"):
        return _categorical(base, col, top_k)
    return replace(base, distinct_exact=False)


def _numeric(base: ColumnProfile, col: pa.ChunkedArray, bins: int) -> ColumnProfile:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    temporal = base.kind == "temporal"
    chunks = [c.drop_null() if c.null_count else c for c in col.chunks]
    if temporal:
        parts = [c.to_numpy(zero_copy_only=False).view(np.int64) for c in chunks]
    elif pa.types.is_decimal(col.type):
        parts = [c.cast(pa.float64()).to_numpy() for c in chunks]
    else:
        parts = [c.to_numpy(zero_copy_only=False) for c in chunks]
    if not parts:
        x = np.zeros(0)
    elif len(parts) == 1:  # no concatenation (a copy) for a single chunk
        x = parts[0].astype(np.float64, copy=False)
    else:
        x = np.concatenate(parts).astype(np.float64, copy=False)
    if not temporal:
        nan = np.isnan(x)
        if nan.any():  # NaN counts as a missing value, as pandas has it
            x = x[~nan]
    count = len(x)
    null_count = len(col) - count
    if count == 0:
        return ColumnProfile(base.name, base.type, base.kind, 0, null_count)
    lo, hi = float(x.min()), float(x.max())
    mean = float(x.mean())
    # One scratch array serves m2 and then the sorted copy: on some VMs touching fresh
    # memory costs more than the arithmetic (benchmarks/RESULTS.md), so fewer is faster.
    if math.isfinite(mean):
        work = np.subtract(x, mean)
        np.square(work, out=work)
        m2 = float(work.sum())
    else:
        work, m2 = np.empty_like(x), math.nan
    np.copyto(work, x)
    work.sort()  # mean and m2 above were summed in the column's own order
    ordered = work
    # numpy's vectorised sort may turn -0.0 into 0.0; the exact counts keep both apart.
    negative_zeros = int(np.count_nonzero((x == 0.0) & np.signbit(x))) if lo <= 0.0 <= hi else 0
    import datasketches

    kll = datasketches.kll_doubles_sketch(KLL_K)
    kll.update(ordered)
    values, exact, hll = _numeric_distinct(ordered, negative_zeros)
    if temporal:
        found = pc.min_max(col)
        shown_lo: float | str | None = iso(found["min"])
        shown_hi: float | str | None = iso(found["max"])
    else:
        shown_lo, shown_hi = lo, hi
    return ColumnProfile(
        name=base.name,
        type=base.type,
        kind=base.kind,
        count=count,
        null_count=null_count,
        min=shown_lo,
        max=shown_hi,
        mean=mean,
        std=math.sqrt(m2 / count) if math.isfinite(m2) else None,
        quantiles=kll_quantiles(kll),
        histogram=sorted_histogram(ordered, lo, hi, bins) if math.isfinite(hi - lo) else None,
        distinct=len(values) if exact else round(_estimate(hll)),
        distinct_exact=exact,
        state=MergeState(
            m2=m2, kll=kll.serialize(), hll=hll, values=values if exact else {}, exact=exact
        ),
    )


def _numeric_distinct(
    ordered: np.ndarray, negative_zeros: int
) -> tuple[dict[str, int], bool, bytes | None]:
    """Exact value counts when there are few distinct values, else HLL registers; from
    the sorted, NaN-free values, ``negative_zeros`` of them -0.0.

    0.0 and -0.0 are one value for the HLL (its hash does not tell them apart) but two
    for the exact counts, as Arrow's ``value_counts`` has it.
    """
    import numpy as np

    from plinth.profiles import _hll

    starts = np.empty(len(ordered), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    count = int(np.count_nonzero(starts))
    if count <= EXACT_MAX:
        first = np.flatnonzero(starts)
        counts = np.diff(np.append(first, len(ordered)))
        values = {repr(float(v)): int(n) for v, n in zip(ordered[first], counts, strict=True)}
        zero = values.pop("0.0", None) if "0.0" in values else values.pop("-0.0", None)
        if zero is not None:  # the run of zeros: split by sign
            if negative_zeros:
                values["-0.0"] = negative_zeros
            if zero - negative_zeros:
                values["0.0"] = zero - negative_zeros
        if len(values) <= EXACT_MAX:
            return values, True, None
    distinct = ordered if count == len(ordered) else ordered[starts]
    return {}, False, _hll.registers(_hll.hash_floats(distinct)).tobytes()


def _estimate(hll: bytes | None) -> float:
    import numpy as np

    from plinth.profiles import _hll

    return 0.0 if hll is None else _hll.estimate(np.frombuffer(hll, np.uint8))


def histogram(x: np.ndarray, lo: float, hi: float, bins: int) -> tuple[list[float], list[int]]:
    """``bins`` equal-width bins over [lo, hi] (the last one closed), as numpy's."""
    import numpy as np

    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    index = ((x - lo) * (bins / (hi - lo))).astype(np.intp)
    np.clip(index, 0, bins - 1, out=index)
    counts = np.bincount(index, minlength=bins)
    return [float(e) for e in edges], [int(n) for n in counts]


def sorted_histogram(
    ordered: np.ndarray, lo: float, hi: float, bins: int
) -> tuple[list[float], list[int]]:
    """:func:`histogram` of sorted values, by binary search: the same counts.

    The bin of ``v``, ``clip(int((v - lo) * scale), 0, bins - 1)``, never decreases as
    ``v`` grows (IEEE subtraction and multiplication round monotonically), so each bin
    is one run of the sorted values; the bin function is evaluated in float64 exactly as
    :func:`histogram` evaluates it, at about 20 points per bin.
    """
    import numpy as np

    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    scale = bins / (hi - lo)
    low = np.float64(lo)

    def bin_of(v: np.float64) -> int:
        return min(max(int((v - low) * scale), 0), bins - 1)

    n = len(ordered)
    bounds = [0]
    for b in range(1, bins):  # the first index whose bin is at least b
        left, right = bounds[-1], n
        while left < right:
            mid = (left + right) // 2
            if bin_of(ordered[mid]) < b:
                left = mid + 1
            else:
                right = mid
        bounds.append(left)
    bounds.append(n)
    return [float(e) for e in edges], [bounds[i + 1] - bounds[i] for i in range(bins)]


def kll_quantiles(kll: Any) -> dict[float, float]:
    if kll.is_empty():
        return {}
    return {q: float(v) for q, v in zip(QUANTILES, kll.get_quantiles(list(QUANTILES)), strict=True)}


def iso(scalar: pa.Scalar) -> str | None:
    """A date or timestamp scalar as ISO-8601 text (``T`` between date and time)."""
    import pyarrow as pa

    if not scalar.is_valid:
        return None
    text: str = scalar.cast(pa.string()).as_py()
    return text.replace(" ", "T", 1)


def _categorical(base: ColumnProfile, col: pa.ChunkedArray, top_k: int) -> ColumnProfile:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from plinth.profiles import _hll

    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    counts = pc.value_counts(col)
    values, freqs = counts.field("values"), counts.field("counts")
    if values.null_count:
        keep = pc.is_valid(values)
        values, freqs = values.filter(keep), freqs.filter(keep)
    is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    text = values.cast(pa.string())
    n = np.asarray(freqs.to_numpy(), dtype=np.int64)
    count = int(n.sum())
    exact = len(values) <= EXACT_MAX
    keep_n = len(values) if exact else FREQ_FACTOR * top_k
    order = _top_order(text, n, keep_n)
    kept = dict(zip(text.take(pa.array(order)).to_pylist(), n[order].tolist(), strict=True))
    top = dict(list(kept.items())[:top_k])
    str_len = None
    len_total = 0
    lo: float | str | None = None
    hi: float | str | None = None
    mean = std = None
    m2 = 0.0
    if base.kind == "boolean":
        trues = kept.get("true", 0)
        if count:
            lo, hi = (0.0 if trues < count else 1.0), (1.0 if trues else 0.0)
            mean = trues / count
            m2 = count * mean * (1.0 - mean)
            std = math.sqrt(m2 / count)
    elif count:
        found = pc.min_max(values)
        lo, hi = found["min"].as_py(), found["max"].as_py()
        if is_text:
            lengths = pc.utf8_length(values).to_numpy()
            len_total = int((lengths * n).sum())
            str_len = {
                "min": float(lengths.min()),
                "max": float(lengths.max()),
                "mean": len_total / count,
            }
        else:
            lo, hi = str(lo), str(hi)
    hll = None if exact else _hll.registers(_hll.hash_strings(values)).tobytes()
    return ColumnProfile(
        name=base.name,
        type=base.type,
        kind=base.kind,
        count=count,
        null_count=len(col) - count,
        min=lo,
        max=hi,
        mean=mean,
        std=std,
        top_values=top,
        other_count=count - sum(top.values()),
        distinct=len(values),
        distinct_exact=True,
        str_len=str_len,
        state=MergeState(m2=m2, hll=hll, values=kept, exact=exact, len_total=len_total),
    )


def _top_order(text: pa.Array, n: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` most frequent values, by count then value."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    candidates = np.arange(len(n))
    if keep < len(n):
        # ties at the cut are broken by first appearance: O(n), no sort of every value
        cut = np.partition(n, len(n) - keep)[len(n) - keep]
        above = np.flatnonzero(n > cut)
        ties = np.flatnonzero(n == cut)[: keep - len(above)]
        candidates = np.sort(np.concatenate([above, ties]))
    sub = pa.table({"n": pa.array(n[candidates]), "v": text.take(pa.array(candidates))})
    order = pc.sort_indices(sub, sort_keys=[("n", "descending"), ("v", "ascending")])
    picked: np.ndarray = candidates[order.to_numpy()[:keep]]
    return picked
