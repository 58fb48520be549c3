"""Column policies: personal-data columns that a run may only load hashed or dropped.

The ``pii`` setting names them per dataset (``pii: {users: [email, phone]}`` in
plinth.yaml). :func:`mask` hashes columns (hex SHA-256, optionally salted, computed by
DuckDB); :func:`enforce` is what ``plinth.datasets.load`` calls inside a run: it fails
while a listed column is present and not every non-null value is such a hash::

    users = plinth.datasets.load("users")                 # outside a run: any columns
    plinth.datasets.save(plinth.datasets.mask(users, ["email"]), "users", "emails hashed")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import PolicyViolationError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.entities import DatasetVersion
    from plinth.settings import Settings

__all__ = ["HASHED", "enforce", "is_masked", "mask", "plain_columns"]

#: What a masked value looks like: 64 lowercase hex characters (SHA-256).
HASHED = "^[0-9a-f]{64}$"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mask(data: Any, columns: Sequence[str], *, salt: str | None = None) -> Any:
    """``data`` (pandas, polars or pyarrow) with each value of ``columns`` replaced by the
    hex SHA-256 of ``salt`` + the value as text; nulls stay null. Returns the same kind.

    The same value and salt always give the same hash, so masked columns still join.
    """
    import pyarrow as pa

    from plinth.guards.sql import cursor
    from plinth.tables import convert, to_arrow

    if isinstance(columns, str):
        columns = [columns]
    table = to_arrow(data, refuse="cannot mask columns of a {type}")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise UsageError(
            f"cannot mask column {missing[0]!r}: the table has no such column",
            hint=f"its columns are {', '.join(table.column_names)}",
            field="columns",
        )
    if not columns:
        return data
    select = ", ".join(f"sha256(? || CAST({_quote(c)} AS VARCHAR)) AS {_quote(c)}" for c in columns)
    # Column names come from stored tables (someone else's): quoted, and run sandboxed.
    con = cursor()
    try:
        con.register("masked_input", table.select(list(columns)))
        hashed = pa.table(
            con.sql(f"SELECT {select} FROM masked_input", params=[salt or ""] * len(columns))  # noqa: S608
        )
    finally:
        con.close()
    for name in columns:
        index = table.column_names.index(name)
        table = table.set_column(index, name, hashed.column(name).cast(pa.string()))
    module = type(data).__module__.split(".")[0]
    return convert(table, {"pandas": "pandas", "polars": "polars"}.get(module, "arrow"))


def is_masked(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every non-null value is a hex SHA-256 (an all-null column counts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count == len(column):
        return True
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    hashed = pc.match_substring_regex(column, HASHED)
    return bool(pc.all(hashed, skip_nulls=True).as_py())


def plain_columns(table: pa.Table, columns: Sequence[str]) -> list[str]:
    """The ``columns`` that ``table`` holds in plain form (present and not masked)."""
    return [c for c in columns if c in table.column_names and not is_masked(table.column(c))]


def enforce(table: pa.Table, version: DatasetVersion, settings: Settings) -> None:
    """:class:`PolicyViolationError` when ``table`` (a load of ``version``) holds a column
    the ``pii`` setting lists for its dataset in plain form."""
    listed = settings.pii.get(version.dataset, ())
    plain = plain_columns(table, listed) if listed else []
    if not plain:
        return
    source = settings.sources.get("pii", "default")
    where = "PLINTH_PII" if source == "env" else "plinth.yaml"
    names = ", ".join(repr(c) for c in plain)
    raise PolicyViolationError(
        f"dataset {version.ref!r} column{'s' if len(plain) > 1 else ''} {names} "
        f"{'are' if len(plain) > 1 else 'is'} listed under pii.{version.dataset} in {where}: "
        f"drop {'them' if len(plain) > 1 else 'it'} or hash {'them' if len(plain) > 1 else 'it'} "
        f"before training (plinth.datasets.mask(df, {list(plain)!r}))",
        field=plain[0],
    )
