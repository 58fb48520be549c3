"""Profiles of dataset versions: computed once, stored as a blob, recorded in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.profiles._model import TableProfile

__all__ = [
    "profile_file",
    "profile_files",
    "profile_version",
    "read_files",
    "store_profile",
]


def profile_version(ctx: Context, version: DatasetVersion) -> TableProfile:
    """The stored profile of a table version; computed (and stored) the first time."""
    from plinth.profiles._model import TableProfile

    if version.kind != "table":
        raise UsageError(
            f"{version.ref} is a {version.kind}, not a table: only tables have profiles",
            field="ref",
        )
    if version.profile_digest is not None:
        data = ctx.blobs.read_bytes(version.profile_digest)
        return TableProfile.from_bytes(data, where=f"the profile of {version.ref}")
    from plinth.profiles._compute import profile_table
    from plinth.versioning.datasets import _manifest
    from plinth.versioning.tables import read_table

    table = read_table(ctx.blobs, _manifest(ctx, version), version.ref)
    profile = profile_table(table)
    store_profile(ctx, version, profile)
    return profile


def store_profile(ctx: Context, version: DatasetVersion, profile: TableProfile) -> str:
    """Store ``profile`` as a blob and record it on ``version``; returns its digest."""
    from plinth.versioning.catalog import open_catalog

    digest: str = ctx.blobs.put_bytes(profile.to_bytes()).digest
    with open_catalog(ctx) as catalog:
        catalog.store.set_profile(version.id, digest)
    return digest


def profile_files(files: list[tuple[str, str]]) -> TableProfile:
    """The profile of a table's ``(relative, absolute)`` Parquet or CSV files, read in place."""
    from plinth.profiles._compute import profile_table

    return profile_table(read_files(files))


def read_files(files: list[tuple[str, str]]) -> pa.Table:
    """One Arrow table from a table's ``(relative, absolute)`` Parquet or CSV files."""
    import pyarrow as pa

    from plinth.versioning.tables import table_format

    tables = []
    for rel, abs_path in sorted(files):
        try:
            if table_format(rel) == "parquet":
                import pyarrow.parquet as pq

                tables.append(pq.read_table(abs_path))
            else:
                import pyarrow.csv as pcsv

                tables.append(pcsv.read_csv(abs_path))
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"cannot read {rel} as a table: {exc}", field="path") from None
    if not tables:
        raise UsageError("no table files to profile", field="path")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def profile_file(path: str | Path) -> TableProfile:
    """The profile of a Parquet or CSV file (or a folder of them) that is not in the ledger."""
    from plinth.versioning.tables import check_table_files

    root = Path(path)
    if root.is_dir():
        found = sorted(p for p in root.rglob("*") if p.is_file())
        files = [(p.relative_to(root).as_posix(), str(p)) for p in found]
    elif root.is_file():
        files = [(root.name, str(root))]
    else:
        raise UsageError(f"{path} does not exist", field="path")
    check_table_files([rel for rel, _ in files], root)
    return profile_files(files)
