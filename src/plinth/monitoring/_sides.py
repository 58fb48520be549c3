"""One side of a drift comparison: a table or a profile, read column by column into the
forms :mod:`plinth.monitoring._stats` works on.

A numeric column becomes a sorted weighted sample: a table's values (one row each), a
profile's exact value counts (at most 1,000 distinct values, so exact), or the retained
items of its KLL sketch with their weights (approximate, within ``rank_error``). A
categorical or boolean column becomes unique keys with their counts; a profile past
1,000 distinct values keeps only its most frequent ones, the rest in ``other``.
NaN, infinities and nulls are missing values: dropped, and counted in ``nulls``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from plinth.profiles import ColumnProfile, TableProfile

    Floats = npt.NDArray[np.float64]

__all__ = [
    "CategoricalSide",
    "ComparisonSource",
    "NumericSide",
    "ProfileSource",
    "TableSource",
    "source",
]


@dataclass(frozen=True)
class NumericSide:
    """Sorted ``values`` with their ``weights`` (None: one row each) summing to ``n``."""

    values: Floats
    weights: Floats | None
    n: float
    nulls: int
    exact: bool
    integer: bool
    #: The sketch's rank error bound (0 when exact): how far its CDF may be from the data's.
    rank_error: float = 0.0
    #: Known from a profile; computed from the values on first use otherwise.
    known_std: float | None = None
    known_distinct: int | None = None
    known_range: tuple[float, float] | None = None

    def consecutive_ids(self) -> bool:
        """Distinct consecutive integers, like row numbers (within a sketch's error)."""
        if not self.integer or self.n < 100:
            return False
        low, high = self.known_range or (float(self.values[0]), float(self.values[-1]))
        slack = 0.0 if self.exact else 0.05 * self.n  # a merged profile estimates distinct
        return abs(self.distinct - self.n) <= slack and abs(high - low + 1 - self.n) <= slack

    @cached_property
    def std(self) -> float | None:
        """Population standard deviation (a profile's exact one where there is one)."""
        if self.known_std is not None or self.weights is not None:
            return self.known_std
        return float(self.values.std())

    @cached_property
    def distinct(self) -> int:
        if self.known_distinct is not None:
            return self.known_distinct
        import numpy as np

        x = self.values
        return 1 + int(np.count_nonzero(x[1:] != x[:-1])) if len(x) else 0

    def count_le(self, x: Floats) -> Floats:
        """Rows at or below each of ``x``."""
        import numpy as np

        at = np.searchsorted(self.values, x, side="right")
        if self.weights is None:
            return at.astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(self.weights)])
        counted: Floats = cum[at]
        return counted

    def quantile(self, q: Floats) -> Floats:
        """The smallest value whose CDF reaches each of ``q``."""
        import numpy as np

        last = len(self.values) - 1
        if self.weights is None:
            at = np.ceil(np.asarray(q) * self.n).astype(np.intp) - 1
        else:
            at = np.searchsorted(np.cumsum(self.weights), np.asarray(q) * self.n, side="left")
        found: Floats = self.values[np.clip(at, 0, last)]
        return found

    def categories(self) -> CategoricalSide:
        """The distinct values as categories (float keys), with their row counts."""
        import numpy as np
        import pyarrow as pa

        x = self.values
        starts = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
        if self.weights is None:
            counts = np.diff(np.append(starts, len(x))).astype(np.float64)
        else:
            counts = np.add.reduceat(self.weights, starts)
        keys = pa.array(x[starts], pa.float64())
        return CategoricalSide(keys, counts, self.n, 0.0, self.nulls, self.exact, len(starts))


@dataclass(frozen=True)
class CategoricalSide:
    """Unique ``keys`` (str or float) with their ``counts``; ``other`` rows hold values a
    profile did not keep, so ``n`` is ``counts.sum() + other``."""

    keys: pa.Array
    counts: Floats
    n: float
    other: float
    nulls: int
    exact: bool
    distinct: int


class ComparisonSource:
    """What a comparison reads from one side; see :class:`TableSource` and
    :class:`ProfileSource`."""

    label: str
    rows: int
    names: list[str]

    def kind(self, name: str) -> str:
        """numeric, categorical (booleans too), temporal, other, or empty (no values)."""
        raise NotImplementedError

    def type_name(self, name: str) -> str:
        raise NotImplementedError

    def numeric(self, name: str) -> NumericSide | None:
        """The column's values, or None when it has none (or a profile kept none)."""
        raise NotImplementedError

    def categorical(self, name: str) -> CategoricalSide:
        raise NotImplementedError


def _kind(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_null(t):
        return "empty"
    if pa.types.is_boolean(t):
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_temporal(t):
        return "temporal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "categorical"
    return "other"


class TableSource(ComparisonSource):
    """A pyarrow Table's columns, exact."""

    def __init__(self, table: pa.Table, label: str):
        names = table.column_names
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise UsageError(
                f"the {label} data has two columns named {dup!r}",
                hint="rename one of them",
                field=label,
            )
        self.table = table
        self.label = label
        self.rows = table.num_rows
        self.names = list(names)

    def kind(self, name: str) -> str:
        return _kind(self.table.schema.field(name).type)

    def type_name(self, name: str) -> str:
        return str(self.table.schema.field(name).type)

    def numeric(self, name: str) -> NumericSide | None:
        import numpy as np
        import pyarrow as pa

        col = self.table.column(name)
        typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if pa.types.is_dictionary(col.type) or pa.types.is_decimal(typ):
            col = col.cast(pa.float64())
        if col.null_count:
            col = col.drop_null()
        x = np.asarray(col.to_numpy(), dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        if not len(x):
            return None
        x = np.sort(x)
        return NumericSide(
            values=x,
            weights=None,
            n=float(len(x)),
            nulls=self.rows - len(x),
            exact=True,
            integer=pa.types.is_integer(typ),
        )

    def categorical(self, name: str) -> CategoricalSide:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        col = self.table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        found = pc.value_counts(col)
        keys, counts = found.field("values"), found.field("counts")
        if keys.null_count:
            keep = pc.is_valid(keys)
            keys, counts = keys.filter(keep), counts.filter(keep)
        n = np.asarray(counts.to_numpy(zero_copy_only=False), dtype=np.float64)
        total = float(n.sum())
        return CategoricalSide(
            keys=keys.cast(pa.string()),
            counts=n,
            n=total,
            other=0.0,
            nulls=self.rows - int(total),
            exact=True,
            distinct=len(keys),
        )


class ProfileSource(ComparisonSource):
    """A stored :class:`~plinth.profiles.TableProfile`: exact counts where it kept them, a
    KLL sketch for numeric columns past 1,000 distinct values."""

    def __init__(self, profile: TableProfile, label: str):
        self.profile = profile
        self.label = label
        self.rows = profile.row_count
        self.names = list(profile.columns)

    def _column(self, name: str) -> ColumnProfile:
        return self.profile.columns[name]

    def kind(self, name: str) -> str:
        c = self._column(name)
        if c.count == 0:
            return "empty"
        return "categorical" if c.kind == "boolean" else c.kind

    def type_name(self, name: str) -> str:
        return self._column(name).type

    def numeric(self, name: str) -> NumericSide | None:
        import numpy as np

        c = self._column(name)
        state = c.state
        if c.count == 0:
            return None
        if state.exact and state.values and sum(state.values.values()) == c.count:
            values = np.array([float(v) for v in state.values], dtype=np.float64)
            weights = np.array(list(state.values.values()), dtype=np.float64)
            exact, rank_error = True, 0.0
        elif state.kll is not None:
            import datasketches

            sketch = datasketches.kll_doubles_sketch.deserialize(state.kll)
            values, weights = _kll_items(sketch)
            exact = False
            # the double-sided bound (PMF/CDF queries, 99 % confidence), ~1.65 % at k=200
            rank_error = float(sketch.normalized_rank_error(True))
        else:
            return None
        finite = np.isfinite(values)
        order = np.argsort(values[finite], kind="stable")
        values, weights = values[finite][order], weights[finite][order]
        if not len(values):
            return None
        std = c.std if c.std is not None and math.isfinite(c.std) else None
        return NumericSide(
            values=values,
            weights=weights,
            n=float(weights.sum()),
            nulls=c.null_count,
            exact=exact,
            integer=c.type.startswith(("int", "uint")),
            rank_error=rank_error,
            known_std=std,
            known_distinct=c.distinct,
            known_range=(float(c.min), float(c.max))
            if isinstance(c.min, int | float) and isinstance(c.max, int | float)
            else None,
        )

    def categorical(self, name: str) -> CategoricalSide:
        import numpy as np
        import pyarrow as pa

        c = self._column(name)
        kept = c.state.values
        counts = np.array(list(kept.values()), dtype=np.float64)
        other = max(0.0, float(c.count) - float(counts.sum()))
        return CategoricalSide(
            keys=pa.array(list(kept), pa.string()),
            counts=counts,
            n=float(counts.sum()) + other,
            other=other,
            nulls=c.null_count,
            exact=c.state.exact and other == 0,
            distinct=c.distinct,
        )


def source(data: Any, label: str) -> ComparisonSource:
    """A :class:`ComparisonSource` over a Table, RecordBatch, pandas/polars DataFrame or
    TableProfile."""
    from plinth.profiles import TableProfile

    if isinstance(data, TableProfile):
        return ProfileSource(data, label)
    from plinth.tables import to_arrow

    table = to_arrow(
        data,
        refuse=f"cannot compare a {{type}} as the {label} data",
        hint="pass a pyarrow Table, a pandas or polars DataFrame, or a plinth TableProfile",
        field=label,
    )
    return TableSource(table, label)


def _kll_items(sketch: Any) -> tuple[Floats, Floats]:
    """The distinct items of a KLL sketch, sorted, with the rows each stands for.

    The weights come from the sketch's own CDF at its items, not from iterating it: after
    some merges, datasketches 5.2's iterator reports weight 1 for items that stand for
    several rows (seen: 375 items, weights summing to 375, for a sketch of 1,500 rows),
    while its rank queries stay right.
    """
    import numpy as np

    values = np.unique(np.array([v for v, _ in sketch], dtype=np.float64))
    values = values[np.isfinite(values)]
    if not len(values):
        return values, values
    cdf = np.asarray(sketch.get_cdf(values.tolist(), True), dtype=np.float64)[: len(values)]
    weights = np.diff(np.concatenate([[0.0], cdf])) * float(sketch.n)
    return values, weights
