"""The public functions of ``plinth.datasets``: add, status, diff, checkout, tag, load, save.

A version is a manifest blob plus a ledger record; see the package docstring. Inside a run,
``load`` records that the run used a version and ``save``/``add`` that it produced one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth import refs
from plinth._deprecation import alias, renamed
from plinth.datasets.catalog import Catalog, open_catalog
from plinth.datasets.diffing import DatasetDiff, diff_versions
from plinth.datasets.manifests import FileChanges, Manifest, compare, read_manifest
from plinth.datasets.statcache import StatCache
from plinth.entities import Dataset, DatasetVersion, RecordRef
from plinth.errors import NotFoundError, QuarantinedError, UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.datasets.erasure import ForgetResult
    from plinth.datasets.materialize import CheckoutStats
    from plinth.progress import Progress
    from plinth.validation.results import ValidationResult
    from plinth.validation.suites import Suite

__all__ = [
    "AddResult",
    "CheckoutResult",
    "DatasetDiff",
    "Status",
    "add",
    "checkout",
    "diff",
    "forget",
    "get",
    "list_datasets",
    "load",
    "log",
    "manifest",
    "mask",
    "parse_ref",
    "save",
    "status",
    "tag",
    "versions",
]

#: The lineage record type of a dataset version.
RECORD_TYPE = "dataset_version"


@dataclass(frozen=True)
class AddResult:
    """The version ``add`` made, or the latest one when the content was unchanged."""

    version: DatasetVersion
    created: bool
    #: Files actually read (hashed); the stat cache answered for the others.
    files_read: int
    bytes_read: int
    #: The suite's outcome when ``add`` was given one and made a new version.
    validation: ValidationResult | None = None
    #: Files stored as links by kind (``{"hardlink": 10000}``); the others were copied.
    linked: Mapping[str, int] = field(default_factory=dict)
    #: Why ``link="auto"`` copied files it could not link (None when it did not).
    link_note: str | None = None


@dataclass(frozen=True)
class Status:
    """What differs between a path and the latest version of a dataset."""

    dataset: str
    version: DatasetVersion
    changes: FileChanges
    files_read: int

    @property
    def clean(self) -> bool:
        return self.changes.clean


@dataclass(frozen=True)
class CheckoutResult:
    version: DatasetVersion
    path: Path
    stats: CheckoutStats

    @property
    def dir(self) -> Path:
        """Deprecated: :attr:`path`."""
        from plinth._deprecation import warn

        warn("CheckoutResult.dir", "CheckoutResult.path")
        return self.path


def _context(ctx: Context | None) -> Context:
    from plinth.context import resolve_context

    return resolve_context(ctx)


def _record_lineage(ctx: Context, version: DatasetVersion, relation: str) -> None:
    from plinth.context import run_scope

    scope = run_scope()
    if scope is not None and scope.ctx is ctx:
        ctx.ledger.lineage.add(
            RecordRef("run", scope.run_id), RecordRef(RECORD_TYPE, version.id), relation
        )


@contextmanager
def _session(ctx: Context | None) -> Iterator[tuple[Context, Catalog]]:
    context = _context(ctx)
    with open_catalog(context) as catalog:
        yield context, catalog


def _refuse_erased(catalog: Catalog, version: DatasetVersion) -> None:
    if version.status == "erased":
        from plinth.datasets.erasure import refuse_erased

        refuse_erased(catalog, version)


def _stat_cache(ctx: Context) -> StatCache:
    return StatCache(ctx.settings.data_dir / "cache" / "stat.db")


def _kind(requested: str | None, is_dir: bool, paths: list[str], root: Path) -> str:
    from plinth.tables import check_table_files, table_format

    if requested is None:
        if is_dir:
            return "directory"
        return "table" if table_format(paths[0]) else "file"
    if requested == "table":
        check_table_files(paths, root)
    elif requested == "file" and is_dir:
        raise UsageError(f"{root} is a folder, not a file", hint="use --kind directory")
    elif requested == "directory" and not is_dir:
        raise UsageError(f"{root} is a file, not a folder", hint="use --kind file")
    elif requested not in ("file", "directory"):
        raise UsageError(
            f"unknown dataset kind {requested!r}",
            hint="use file, directory or table",
            field="kind",
        )
    return requested


def add(
    path: str | Path,
    name: str,
    message: str | None = None,
    *,
    kind: str | None = None,
    use_cache: bool = True,
    suite: Suite | str | Path | None = None,
    progress: Progress | None = None,
    link: str | None = None,
    ctx: Context | None = None,
) -> AddResult:
    """Snapshot a file, a folder or a table (Parquet, CSV) as a new version of ``name``.

    Only files the stat cache cannot vouch for are read; each is hashed while it is
    stored. Content identical to the latest version's creates no version: the result
    has ``created=False`` and that version. A new table version is profiled (once, from
    the files on disk) before it is recorded.

    With ``suite`` (a table only), the table is validated before its version is
    published: a version that fails an error-level check is stored but ``quarantined``
    (:func:`load` refuses it unless ``allow_quarantined=True``); ``result.validation``
    holds the outcome, recorded in the ledger with its HTML report.

    ``progress`` (:mod:`plinth.progress`) hears of each file read, then of each column
    profiled and each check answered.

    ``link`` (default: the ``data_link`` setting, ``copy``) stores files as reflinks
    (``"reflink"``) or hard links (``"hardlink"``) instead of copies, or ``"auto"`` (a
    reflink, else a hard link, else a copy); see docs/data.md for the trade-offs. A
    hard-linked file is made read-only.
    """
    from plinth.datasets.snapshot import check_link, take_snapshot
    from plinth.ledger.dataset_rows import check_dataset_name

    check_dataset_name(name)
    if link is not None:
        check_link(link)
    if kind is not None:  # refuse a wrong kind before anything is stored
        from plinth.datasets.snapshot import scan

        root = Path(path).absolute()
        is_dir, entries = scan(root)
        _kind(kind, is_dir, [rel for rel, _, _ in entries], root)
    checks: Suite | None = None
    if suite is not None:  # a bad suite stops the add before anything is stored
        from plinth.validation.suites import Suite as SuiteFile

        checks = suite if isinstance(suite, SuiteFile) else SuiteFile.load(suite)
    with _session(ctx) as (context, catalog):
        try:
            found: Dataset | None = catalog.dataset(name)
        except NotFoundError:
            found = None  # created once the files are stored: a failed add leaves no name
        latest = (
            catalog.store.resolve(found, None) if found is not None and found.versions else None
        )
        parent = read_manifest(context.blobs, latest) if latest is not None else None
        cache = _stat_cache(context) if use_cache else None
        try:
            snap = take_snapshot(
                Path(path),
                cache=cache,
                content=context.blobs,
                stored=parent.digests if parent else (),
                progress=progress,
                link=link or context.settings.data_link,
            )
        finally:
            if cache is not None:
                cache.close()
        is_dir = snap.manifest.kind == "directory"
        chosen = _kind(kind, is_dir, sorted(snap.manifest.files), snap.root)
        if checks is not None and chosen != "table":
            raise UsageError(
                f"--suite validates tables; {snap.root} was added as a {chosen}",
                hint="add Parquet or CSV files (--kind table), or drop --suite",
                field="suite",
            )
        manifest = Manifest(chosen, snap.manifest.files)
        ref = context.blobs.put_bytes(manifest.to_bytes())
        unchanged = (
            latest is not None and latest.manifest_digest == ref.digest and latest.kind == chosen
        )
        rows, schema, profile_digest, checked = None, None, None, None
        if chosen == "table":
            from plinth.tables import table_info

            base = snap.root if is_dir else snap.root.parent
            files = [(p, str(base / p)) for p in manifest.files]
            rows, schema = table_info(files)
            if not unchanged:  # profiled (and validated) once, before it is recorded
                profile_digest, checked = _profile_and_check(context, files, checks, name, progress)
        dataset = found or catalog.store.ensure(catalog.project_id, name)
        version, created = catalog.store.add_version(
            dataset,
            kind=chosen,
            manifest_digest=ref.digest,
            size=manifest.size,
            file_count=len(manifest.files),
            message=message,
            row_count=rows,
            schema=schema,
            new_digests=manifest.digests - (parent.digests if parent else set()),
            status="quarantined" if checked is not None and not checked.success else "published",
            profile_digest=profile_digest,
        )
    validation = None
    if checked is not None and created:
        from plinth.validation.records import publish_result

        assert checks is not None
        validation = publish_result(context, checks, checked, version)
    _record_lineage(context, version, "produced")
    return AddResult(
        version,
        created,
        len(snap.read),
        snap.bytes_read,
        validation,
        linked=dict(snap.linked),
        link_note=snap.link_note,
    )


def _profile_and_check(
    ctx: Context,
    files: list[tuple[str, str]],
    suite: Suite | None,
    name: str,
    progress: Progress | None,
) -> tuple[str, ValidationResult | None]:
    """The digest of the stored profile of a table's files, and the suite's verdict."""
    from plinth.profiles import profile_table
    from plinth.tables import read_files

    table = read_files([path for _, path in sorted(files)])
    found = profile_table(table, progress=progress)
    digest: str = ctx.blobs.put_bytes(found.to_bytes()).digest
    if suite is None:
        return digest, None
    from plinth.datasets.validation import references
    from plinth.validation.runner import check_table

    target = f"{name} (new version)"
    return digest, check_table(
        table, suite, target=target, references=references(ctx=ctx), progress=progress
    )


def _latest_manifest(ctx: Context, catalog: Catalog, dataset: Dataset) -> Manifest | None:
    if not dataset.versions:
        return None
    return read_manifest(ctx.blobs, catalog.store.resolve(dataset, None))


def status(name: str, path: str | Path, *, ctx: Context | None = None) -> Status:
    """What ``path`` holds that the latest version of ``name`` does not, and vice versa.

    Nothing is stored and no version is made; changed files are hashed (the local stat
    cache learns their digests, so the next add does not read them again).
    """
    from plinth.datasets.snapshot import take_snapshot

    with _session(ctx) as (context, catalog):
        version = catalog.resolve(name)
        old = read_manifest(context.blobs, version)
        cache = _stat_cache(context)
        try:
            snap = take_snapshot(Path(path), cache=cache)
        finally:
            cache.close()
    return Status(version.dataset, version, compare(old.files, snap.manifest.files), len(snap.read))


def diff(old_ref: str, new_ref: str, *, ctx: Context | None = None) -> DatasetDiff:
    """Files, and for tables rows and columns, from one version to another."""
    with _session(ctx) as (context, catalog):
        return diff_versions(context.blobs, catalog.resolve(old_ref), catalog.resolve(new_ref))


@renamed(keywords={"dir": "path"})
def checkout(
    ref: str, path: str | Path, *, force: bool = False, ctx: Context | None = None
) -> CheckoutResult:
    """Write the files of a version under the folder ``path``, each verified against its
    digest."""
    from plinth.datasets.materialize import materialize

    with _session(ctx) as (context, catalog):
        version = catalog.resolve(ref)
        _refuse_erased(catalog, version)
        files = read_manifest(context.blobs, version)
        stats = materialize(context.blobs, files, Path(path), force=force)
    return CheckoutResult(version, Path(path), stats)


def tag(ref: str, tag: str, *, force: bool = False, ctx: Context | None = None) -> DatasetVersion:
    """Point ``tag`` at the version ``ref`` names; moving an existing tag needs ``force``."""
    parsed = refs.parse_ref(ref, what="dataset")
    with _session(ctx) as (_, catalog):
        version: DatasetVersion = catalog.store.set_tag(
            catalog.dataset(parsed.name), tag, parsed.spec, move=force
        )
    return version


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Deprecated: :func:`plinth.refs.parse_ref` gives a :class:`plinth.refs.Ref`."""
    from plinth._deprecation import warn

    warn("plinth.datasets.parse_ref", "plinth.refs.parse_ref (it returns a Ref)")
    parsed = refs.parse_ref(ref, what="dataset")
    return parsed.name, None if parsed.spec is None else str(parsed.spec)


def get(ref: str, *, ctx: Context | None = None) -> DatasetVersion:
    """The version a reference names."""
    with _session(ctx) as (_, catalog):
        return catalog.resolve(ref)


def manifest(ref: str, *, ctx: Context | None = None) -> Manifest:
    """The files of the version a reference names."""
    with _session(ctx) as (context, catalog):
        return read_manifest(context.blobs, catalog.resolve(ref))


def versions(
    name: str, *, limit: int | None = None, ctx: Context | None = None
) -> list[DatasetVersion]:
    """The versions of a dataset, newest first."""
    with _session(ctx) as (_, catalog):
        versions: list[DatasetVersion] = catalog.store.list_versions(
            catalog.dataset(name), limit=limit
        )
    return versions


def list_datasets(*, ctx: Context | None = None) -> list[tuple[Dataset, DatasetVersion | None]]:
    """Every dataset of the project with its latest version (None before the first)."""
    with _session(ctx) as (_, catalog):
        latest = catalog.store.latest_versions(catalog.project_id)
        return [(d, latest.get(d.name)) for d in catalog.store.list(catalog.project_id)]


@renamed(keywords={"as_": "to"})
def load(
    name: str,
    version: str | int = "latest",
    to: str = "pandas",
    *,
    allow_quarantined: bool = False,
    ctx: Context | None = None,
) -> Any:
    """A table version as a pandas DataFrame (default), a pyarrow Table or a polars DataFrame.

    ``name`` may carry the version (``flights@3``). Inside a run, records that the run
    used this version. A version quarantined by its suite is refused unless
    ``allow_quarantined``; an erased one always is.
    """
    from plinth.datasets.manifests import read_table
    from plinth.tables import check_as, convert

    check_as(to)  # before anything is read or recorded: an unknown kind, a missing extra
    with _session(ctx) as (context, catalog):
        parsed = refs.parse_ref(name, what="dataset")
        found: DatasetVersion = catalog.store.resolve(
            catalog.dataset(parsed.name), version if parsed.is_latest else parsed.spec
        )
        _refuse_erased(catalog, found)
        if found.status == "quarantined" and not allow_quarantined:
            raise QuarantinedError(
                f"{found.ref} is quarantined: it failed its validation suite when it was added",
                hint=f"see why with: plinth data show {found.ref}; load an earlier version, or "
                "pass allow_quarantined=True to read it anyway",
                field="version",
            )
        if found.kind != "table":
            raise UsageError(
                f"{found.ref} is a {found.kind}, not a table: load reads Parquet and CSV tables",
                hint=f"materialise its files with: plinth data checkout {found.ref} DIR",
            )
        table = read_table(context.blobs, read_manifest(context.blobs, found), found.ref)
    from plinth.context import run_scope

    if run_scope() is not None:  # pii column policies bind training, not exploration
        from plinth.datasets.policy import enforce

        enforce(table, found, context.settings)
    _record_lineage(context, found, "used")
    return convert(table, to)


def save(
    data: Any, name: str, message: str | None = None, *, ctx: Context | None = None
) -> AddResult:
    """Write a DataFrame (pandas, polars) or pyarrow Table as Parquet, then :func:`add` it.

    The file is ``NAME.parquet`` in the version. Inside a run, records that the run
    produced this version.
    """
    from plinth.ledger.dataset_rows import check_dataset_name
    from plinth.tables import to_arrow, write_parquet

    check_dataset_name(name)
    table = to_arrow(data, refuse="cannot save a {type} as a dataset")
    context = _context(ctx)
    import tempfile

    tmp_root = context.settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as folder:
        path = Path(folder) / f"{name}.parquet"
        write_parquet(table, path)
        return add(path, name, message, kind="table", use_cache=False, ctx=context)


def mask(data: Any, columns: list[str], *, salt: str | None = None) -> Any:
    """``data`` with each value of ``columns`` replaced by its hex SHA-256 (salted), which
    the ``pii`` policy accepts; see :func:`plinth.datasets.policy.mask`."""
    from plinth.datasets.policy import mask as mask_columns

    return mask_columns(data, columns, salt=salt)


def forget(name: str, where: str, message: str, *, ctx: Context | None = None) -> ForgetResult:
    """Remove the rows matching the DuckDB predicate ``where`` from every version of
    ``name``: a new version without them, older ones holding them ``erased``, their blobs
    deleted, the erasure audited. See :mod:`plinth.datasets.erasure`."""
    from plinth.datasets.erasure import forget as forget_rows

    return forget_rows(name, where, message, ctx=ctx)


#: Deprecated: :func:`versions` (one verb for "the versions of a record", as ``plinth.models``).
log = alias(versions, "plinth.datasets.log", "plinth.datasets.versions")
