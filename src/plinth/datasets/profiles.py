"""Profiles of table versions: computed once by :mod:`plinth.profiles`, stored as a blob,
recorded on the version in the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.profiles import TableProfile
    from plinth.progress import Progress

__all__ = ["profile", "profile_version", "store_profile"]


def profile(
    ref: str | DatasetVersion, *, progress: Progress | None = None, ctx: Context | None = None
) -> TableProfile:
    """The stored profile of a table version (``flights@3``), computed the first time
    (``progress``, :mod:`plinth.progress`, then hears of each column profiled).

    Example::

        p = plinth.datasets.profile("flights@3")
        p.columns["delay"].quantiles[0.5]
    """
    from plinth.datasets.api import _context, get

    context = _context(ctx)
    version = get(ref, ctx=context) if isinstance(ref, str) else ref
    return profile_version(version, ctx=context, progress=progress)


def profile_version(
    version: DatasetVersion, *, ctx: Context, progress: Progress | None = None
) -> TableProfile:
    """The stored profile of ``version``; computed (and stored) the first time."""
    from plinth.profiles import TableProfile, profile_table

    if version.kind != "table":
        raise UsageError(
            f"{version.ref} is a {version.kind}, not a table: only tables have profiles",
            field="ref",
        )
    if version.profile_digest is not None:
        data = ctx.blobs.read_bytes(version.profile_digest)
        return TableProfile.from_bytes(data, where=f"the profile of {version.ref}")
    from plinth.datasets.manifests import read_manifest, read_table

    table = read_table(ctx.blobs, read_manifest(ctx.blobs, version), version.ref)
    found = profile_table(table, progress=progress)
    store_profile(ctx, version, found)
    return found


def store_profile(ctx: Context, version: DatasetVersion, profile: TableProfile) -> str:
    """Store ``profile`` as a blob and record it on ``version``; returns its digest."""
    from plinth.datasets.catalog import open_catalog

    digest: str = ctx.blobs.put_bytes(profile.to_bytes()).digest
    with open_catalog(ctx) as catalog:
        catalog.store.set_profile(version.id, digest)
    return digest
