"""Dataset profiles: column statistics kept as mergeable sketches.

Owns profiling a table (pyarrow, pandas, polars; or a Parquet/CSV file or folder), the
profile's canonical JSON, and merging two batch profiles into the profile of their
union. Profiles take tables, never dataset references: the datasets pillar stores the
profile of each table version (``plinth.datasets.profile("flights@3")``). Validation
inference, drift detection and skew checks read profiles instead of scanning the data
again. May import ``plinth.errors``, ``plinth.tables`` and ``plinth.progress`` only;
pyarrow, numpy and datasketches are imported only when a profile is computed::

    from plinth import profiles
    p = profiles.profile_table(df)                  # TableProfile
    p.columns["delay"].quantiles[0.5], p.columns["carrier"].top_values
    both = profiles.merge_profiles(p_monday, p_tuesday)
    same = profiles.TableProfile.from_bytes(p.to_bytes())

Per column: count and nulls (NaN counts as null), min/max (ISO-8601 text for dates and
timestamps, lexicographic for strings), mean and population std (count/mean/M2, merged
with Chan's parallel formula; booleans: the fraction true), quantiles from a KLL sketch
(``datasketches.kll_doubles_sketch``, k=200, ~1.3 % rank error; its vectorised
``update(ndarray)`` is fed the whole column), an equal-width histogram (exact; after a
merge over a new range, re-binned from the merged KLL's PMF), top values with counts
plus an ``other_count``, string lengths, and the distinct count.

Distinct counts are exact up to 1,000 distinct values: the profile then keeps every value
with its count, so merges of such profiles stay exact. Past that, the count is exact when
profiled but merges estimate it with HyperLogLog (2**12 registers, ~1.6 % error). The
registers are plinth's own (numpy, see ``_hll``), not ``datasketches.hll_sketch``: that
has no array update, and a Python loop over a million values costs 0.2 s a column. Past
1,000 values a profile keeps the 10 * top_k most frequent for merging; a value missing
from one side's table counts 0 there, so merged top values past that size are estimates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth._lazy import lazy_attributes

if TYPE_CHECKING:
    from plinth.profiles._compute import profile_file, profile_table
    from plinth.profiles._model import ColumnProfile, TableProfile

__all__ = [
    "ColumnProfile",
    "TableProfile",
    "merge_profiles",
    "profile_file",
    "profile_table",
]

_LAZY = {
    "ColumnProfile": "plinth.profiles._model",
    "TableProfile": "plinth.profiles._model",
    "profile_table": "plinth.profiles._compute",
    "profile_file": "plinth.profiles._compute",
}


def merge_profiles(a: TableProfile, b: TableProfile) -> TableProfile:
    """The profile of the union of the rows ``a`` and ``b`` were computed from."""
    return a.merge(b)


def _profile_version(ctx: Any, version: Any) -> TableProfile:
    """Deprecated: use ``plinth.datasets.profile(version, ctx=ctx)``."""
    import importlib
    import warnings

    warnings.warn(
        "plinth.profiles.profile_version(ctx, version) is deprecated and will be removed in "
        "the next release: use plinth.datasets.profile(version, ctx=ctx)",
        DeprecationWarning,
        stacklevel=2,
    )
    # Imported by name: the datasets pillar imports this package, never the reverse.
    datasets_profiles = importlib.import_module("plinth.datasets.profiles")
    found: TableProfile = datasets_profiles.profile_version(version, ctx=ctx)
    return found


_getattr, __dir__ = lazy_attributes(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    if name == "profile_version":  # deprecated, kept out of __all__ for one release
        return _profile_version
    return _getattr(name)
