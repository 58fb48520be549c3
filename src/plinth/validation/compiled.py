"""What a compiled check is: the SQL it adds to the shared query, how it is judged, and the
outcome it reports. :mod:`plinth.validation.expectations` compiles each check into these."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.validation.suites import SuiteCheck

__all__ = ["DATA", "NEEDS", "Compiled", "Env", "Outcome"]

#: The name the data is registered under in DuckDB.
DATA = "_plinth_data"


@dataclass(frozen=True)
class Outcome:
    """What one check found."""

    success: bool
    observed: Any
    expected: str
    failing_count: int | None = None
    failing_fraction: float | None = None
    message: str | None = None
    #: Failing values, when the check found them itself (else the runner's sample query).
    sample: tuple[Any, ...] = ()


@dataclass
class Compiled:
    """A check as SQL: aggregates for the one shared query, a judge, a sample query."""

    check: SuiteCheck
    aggregates: list[str] = field(default_factory=list)
    #: (values of ``aggregates``, row count) -> Outcome.
    judge: Callable[[Sequence[Any], int], Outcome | None] | None = None
    #: ``SELECT ... AS v FROM ...``: failing values, run (LIMIT n) only if the check failed.
    sample_sql: str | None = None
    #: Checks that need their own query (a join with another table) run this instead.
    run: Callable[[Any, int], Outcome] | None = None
    #: Statements that must bind and run cleanly first (a regex compiles, SQL is valid).
    preflight: list[str] = field(default_factory=list)
    #: Checks answered from the Arrow table itself (no query) run this, in a worker thread
    #: while the shared query runs: for work DuckDB does slowly (strings, distinct counts).
    #: A None from it means "outside the range": the runner recounts as for ``judge``.
    local: Callable[[], Outcome | None] | None = None
    #: When the judge returns None (a range check whose min or max falls outside), these
    #: aggregates run in a second query and ``rejudge`` decides from their values.
    recount: list[str] = field(default_factory=list)
    rejudge: Callable[[Sequence[Any], int], Outcome] | None = None


#: Column families each column check needs (absent: any type).
NEEDS: dict[str, tuple[str, ...]] = {
    "freshness": ("temporal",),
    "between": ("numeric", "temporal"),
    "regex": ("string",),
    "string_length": ("string",),
    "mean_between": ("numeric",),
    "std_between": ("numeric",),
    "quantile_between": ("numeric",),
}


@dataclass(frozen=True)
class Env:
    """What compiling needs to know about the data and the rest of the suite."""

    where: str
    types: Mapping[str, pa.DataType]
    #: Columns some ``required_columns`` check lists: missing ones fail checks, not raise.
    declared: frozenset[str]
    #: Columns whose ``dtype`` check fails on this data: wrong-type checks fail, not raise.
    mistyped: frozenset[str]
    #: Float columns holding NaN (checks read NaN as null there; elsewhere it costs nothing).
    nan_columns: frozenset[str]
    #: Loads the table of an ``in_dataset`` check (dataset ref or path) as pyarrow.
    load_reference: Callable[[SuiteCheck], pa.Table]
    now: float = field(default_factory=time.time)
    #: The data itself, for checks answered without a query (null counts, distinct values).
    table: pa.Table | None = None
