"""Forgetting rows: the one audited exception to immutable dataset versions.

``plinth.datasets.forget("users", "user_id = 42", "erasure request")`` evaluates the DuckDB
predicate over every table version that is not erased yet (each file blob once), then:

1. writes a new version of the latest table without the matching rows (message
   ``erasure: <message>``), as :func:`plinth.datasets.save` does;
2. in one ledger transaction, marks every version that held matching rows ``erased``,
   stops keeping the file blobs only erased versions list, and records who erased what
   and why (:class:`~plinth.entities.Erasure`);
3. deletes those blobs through :mod:`plinth.gc` (logged as a gc event); if it is
   interrupted, ``plinth gc`` finishes the job.

Nothing is written before every version was evaluated, so bad SQL or a predicate that
matches nothing leaves the dataset as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from plinth.context import Context
    from plinth.datasets.catalog import Catalog
    from plinth.datasets.manifests import Manifest
    from plinth.entities import DatasetVersion, Erasure

__all__ = ["ForgetResult", "forget", "matching_rows", "refuse_erased"]

_WHERE_HINT = (
    'write a DuckDB SQL boolean expression over the table\'s columns, e.g. --where "user_id = 42"'
)


@dataclass(frozen=True)
class ForgetResult:
    """What :func:`forget` did."""

    #: The version written without the rows; None when only older versions held them.
    version: DatasetVersion | None
    #: Rows the new version lacks compared with the latest one.
    rows_removed: int
    #: The versions now ``erased`` (the latest one among them when it held rows).
    erased: list[DatasetVersion]
    erasure: Erasure
    #: File blobs deleted from the artifact store, and their bytes.
    blobs_deleted: int
    bytes_deleted: int
    #: Released blobs still referenced by another record (another dataset, an artifact).
    blobs_still_referenced: int


def matching_rows(table: pa.Table, where: str, ref: str) -> np.ndarray:
    """A boolean mask of the rows of ``table`` for which ``where`` is true (NULL: false).

    ``where`` must be one SQL expression (:func:`plinth.guards.sql.check_expression`); it
    runs in the SQL sandbox, without file or network access.
    """
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from plinth.guards.sql import check_expression, cursor, error_detail

    condition = check_expression(where, field="where", what="--where", hint=_WHERE_HINT)
    con = cursor()
    try:
        con.register("forget_rows", table)
        relation = con.sql(f"SELECT {condition} AS hit FROM forget_rows")  # noqa: S608
        kind = str(relation.types[0])
        if kind != "BOOLEAN":
            raise UsageError(
                f"--where {where!r} is a {kind} expression on {ref}, not a condition",
                hint=_WHERE_HINT,
                field="where",
            )
        hit = pa.table(relation).column(0)
    except duckdb.Error as exc:
        raise UsageError(
            f"cannot evaluate --where {where!r} on {ref}: {error_detail(exc)}",
            hint=_WHERE_HINT,
            field="where",
        ) from None
    finally:
        con.close()
    mask: np.ndarray = np.asarray(
        pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool
    )
    return mask


def refuse_erased(catalog: Catalog, version: DatasetVersion) -> None:
    """:class:`NotFoundError` naming when, by whom and why, if ``version`` was erased."""
    if version.status != "erased":
        return
    erasures = catalog.store.erasures(catalog.dataset(version.dataset))
    erasure = next((e for e in reversed(erasures) if version.number in e.erased_numbers), None)
    if erasure is None:
        raise NotFoundError(f"{version.ref} was erased", hint="load a later version")
    when = datetime.fromtimestamp(erasure.created_at / 1000).strftime("%Y-%m-%d")
    later = (
        f"{version.dataset}@{erasure.new_number}"
        if erasure.new_number is not None
        else f"{version.dataset}@latest"
    )
    raise NotFoundError(
        f"{version.ref} was erased on {when} by {erasure.created_by}: {erasure.message}",
        hint=f"its rows matching {erasure.predicate!r} were removed; use {later}",
    )


def _file_table(ctx: Context, path: str, digest: str, size: int, ref: str) -> pa.Table:
    from plinth.datasets.manifests import Manifest, read_table

    return read_table(ctx.blobs, Manifest("table", {path: (digest, size)}), f"{ref} ({path})")


def _check_text(where: str, message: str) -> None:
    for name, value, flag in (("where", where, "--where"), ("message", message, "-m")):
        if not isinstance(value, str) or not value.strip():
            raise UsageError(
                f"forget needs a non-empty {name} ({flag})",
                hint='say which rows to remove (--where "user_id = 42") and why (-m)',
                field=name,
            )
    from plinth.guards.sql import check_expression

    # Before any version is read: text that is not one expression never reaches a table.
    check_expression(where, field="where", what="--where", hint=_WHERE_HINT)


def forget(name: str, where: str, message: str, *, ctx: Context | None = None) -> ForgetResult:
    """Remove the rows of dataset ``name`` matching ``where`` from its history.

    See the module docstring for the steps. :class:`UsageError` for SQL DuckDB cannot
    evaluate, :class:`NotFoundError` when no version holds a matching row: either way
    nothing is written.
    """
    import pyarrow as pa

    from plinth.datasets.api import _session, save
    from plinth.datasets.manifests import read_manifest

    _check_text(where, message)
    with _session(ctx) as (context, catalog):
        dataset = catalog.dataset(name)
        versions: list[DatasetVersion] = catalog.store.list_versions(dataset)
        if not versions:
            raise NotFoundError(f"dataset {name!r} has no versions yet")
        latest = versions[0]
        refuse_erased(catalog, latest)
        if latest.kind != "table":
            raise UsageError(
                f"{latest.ref} is a {latest.kind}, not a table: forget removes rows of tables",
                field="name",
            )
        manifests = {v.number: read_manifest(context.blobs, v) for v in versions}
        hits: dict[str, int] = {}  # file digest -> matching rows (each blob read once)
        kept_parts: list[pa.Table] = []
        for version in versions:
            if version.status == "erased" or version.kind != "table":
                continue
            for path, (digest, size) in sorted(manifests[version.number].files.items()):
                if digest in hits and version is not latest:
                    continue
                table = _file_table(context, path, digest, size, version.ref)
                rows = matching_rows(table, where, version.ref)
                hits[digest] = int(rows.sum())
                if version is latest:
                    kept_parts.append(table.filter(pa.array(~rows)))
        holding = [
            v
            for v in versions
            if v.status != "erased"
            and v.kind == "table"
            and any(hits.get(d, 0) for d, _ in manifests[v.number].files.values())
        ]
        if not holding:
            checked = sorted(v.number for v in versions if v.status != "erased")
            raise NotFoundError(
                f"no rows of {name} match --where {where!r} "
                f"(checked version{'s' if len(checked) > 1 else ''} "
                f"{', '.join(map(str, checked))}); nothing was written",
                hint="check the column names and values: the expression is DuckDB SQL over "
                "the table's columns, and NULL counts as no match",
                field="where",
            )
    rows_removed = sum(hits.get(d, 0) for d, _ in manifests[latest.number].files.values())
    new: DatasetVersion | None = None
    if rows_removed:
        kept = pa.concat_tables(kept_parts) if len(kept_parts) > 1 else kept_parts[0]
        new = save(kept, name, f"erasure: {message}", ctx=context).version
        if latest.status == "quarantined" and new.status != "quarantined":
            # Fewer rows of data that failed its suite have not passed it: still quarantined.
            with _session(context) as (_, catalog):
                catalog.store.set_status([new.id], "quarantined")
            new = replace(new, status="quarantined")
        manifests[new.number] = read_manifest(context.blobs, new)
    erased_numbers = {v.number for v in holding}
    released = _released(manifests, versions, erased_numbers)
    with _session(context) as (_, catalog):
        erasure: Erasure = catalog.store.record_erasure(
            catalog.dataset(name),
            predicate=where,
            message=message,
            rows_removed=rows_removed,
            new_number=None if new is None else new.number,
            erased_numbers=sorted(erased_numbers),
            released_digests=sorted(released),
        )
        erased = [catalog.store.resolve(catalog.dataset(name), n) for n in sorted(erased_numbers)]
    sizes = {d: s for m in manifests.values() for d, s in m.files.values() if d in released}
    for digest in set(erasure.released_blobs) - set(sizes):  # profiles and reports
        if context.blobs.exists(digest):
            sizes[digest] = len(context.blobs.read_bytes(digest))
    deleted, still = _delete_released(context, sizes)
    return ForgetResult(
        version=new,
        rows_removed=rows_removed,
        erased=erased,
        erasure=erasure,
        blobs_deleted=len(deleted),
        bytes_deleted=sum(sizes[d] for d in deleted),
        blobs_still_referenced=still,
    )


def _released(
    manifests: dict[int, Manifest], versions: list[DatasetVersion], erased: set[int]
) -> set[str]:
    """File blobs of the versions erased now that no version left published lists."""
    before = {v.number for v in versions if v.status == "erased"}  # released back then
    doomed: set[str] = set()
    keep: set[str] = set()
    for number, manifest in manifests.items():
        if number in erased:
            doomed.update(manifest.digests)
        elif number not in before:
            keep.update(manifest.digests)
    return doomed - keep


def _delete_released(ctx: Context, sizes: dict[str, int]) -> tuple[list[str], int]:
    """Delete the released blobs no record references any more; the deleted digests and
    how many are still referenced."""
    from plinth.gc import GcPlan, collect_garbage

    if not sizes:
        return [], 0
    referenced = ctx.ledger.gc.referenced_digests()
    doomed = sorted(d for d in sizes if d not in referenced)
    present = {d for d in doomed if ctx.blobs.exists(d)}
    plan = GcPlan(
        digests=[d for d in doomed if d in present],
        bytes=sum(sizes[d] for d in present),
        blobs_total=len(sizes),
        kept_young=0,
        sizes={d: sizes[d] for d in present},
    )
    if plan.count:
        event = collect_garbage(ctx, plan)
        return list(event.digests), len(sizes) - len(doomed)
    return [], len(sizes) - len(doomed)
