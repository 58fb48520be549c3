"""Datasets and their versions: numbered in the inserting transaction, tagged, never changed.

A new version's number comes from incrementing ``datasets.versions`` inside the transaction
that inserts it (PostgreSQL locks the row; SQLite holds the write lock), so concurrent
writers get distinct, consecutive numbers. Adding the manifest the latest version already
has creates nothing and returns that version.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from plinth.entities import Dataset, DatasetVersion, Erasure
from plinth.errors import NotFoundError
from plinth.ids import new_id, now_ms
from plinth.ledger._common import Db, chunks, upsert
from plinth.ledger.dataset_rows import (
    check_dataset_name,
    check_digest,
    check_erasure,
    check_new_version,
    check_status,
    check_tag,
    dataset_of,
    erased_is_final,
    erasure_of,
    missing_version,
    parse_spec,
    scrubbed,
    tag_conflict,
    unknown_dataset,
    version_of,
)
from plinth.ledger.tables import (
    dataset_blobs,
    dataset_erasures,
    dataset_tags,
    dataset_versions,
    datasets,
    monitor_reports,
    validation_results,
)

__all__ = ["DatasetStore"]

_V = dataset_versions


def scrub_validations(conn: sa.Connection, version_ids: Sequence[str]) -> builtins.list[str]:
    """Drop the report and failing-value samples of results on erased versions; the
    report digests released."""
    query = sa.select(
        validation_results.c.id, validation_results.c.results, validation_results.c.report_digest
    ).where(validation_results.c.dataset_version_id.in_(version_ids))
    released = []
    for row in builtins.list(conn.execute(query)):
        if row.report_digest:
            released.append(row.report_digest)
        conn.execute(
            validation_results.update()
            .where(validation_results.c.id == row.id)
            .values(report_digest=None, results=scrubbed(row.results))
        )
    return released


def scrub_monitor_reports(
    conn: sa.Connection, project_id: str, refs: Sequence[str]
) -> builtins.list[str]:
    """Drop the HTML of monitor reports whose reference was an erased version, or, for an
    ad-hoc drift report, whose current side was (their charts name top categories); the
    report digests released."""
    t = monitor_reports
    where = (t.c.project_id == project_id) & (
        t.c.reference.in_(refs) | ((t.c.kind == "drift") & t.c.monitor.in_(refs))
    )
    found = [
        r.report_digest
        for r in conn.execute(sa.select(monitor_reports.c.report_digest).where(where))
        if r.report_digest
    ]
    conn.execute(monitor_reports.update().where(where).values(report_digest=None))
    return found


class DatasetStore:
    """``ledger.datasets``: datasets by (project, name), versions by number or tag."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- datasets ----------------------------------------------------------------------
    def ensure(self, project_id: str, name: str) -> Dataset:
        """The dataset ``name`` of a project, created (with no versions) if missing."""
        check_dataset_name(name)
        where = (datasets.c.project_id == project_id) & (datasets.c.name == name)
        with self._db.read() as conn:
            row = conn.execute(sa.select(datasets).where(where)).mappings().first()
        if row is not None:
            return dataset_of(row)
        with self._db.write() as conn:
            conn.execute(
                upsert(conn, datasets)
                .values(
                    id=new_id(), project_id=project_id, name=name, versions=0, **self._db.stamp()
                )
                .on_conflict_do_nothing()
            )
            return dataset_of(conn.execute(sa.select(datasets).where(where)).mappings().one())

    def get(self, project_id: str, name: str) -> Dataset:
        """The dataset ``name`` of a project; NotFoundError naming the known ones."""
        check_dataset_name(name)
        with self._db.read() as conn:
            row = (
                conn.execute(
                    sa.select(datasets).where(
                        (datasets.c.project_id == project_id) & (datasets.c.name == name)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                names = conn.execute(
                    sa.select(datasets.c.name)
                    .where(datasets.c.project_id == project_id)
                    .order_by(datasets.c.name)
                ).scalars()
                raise unknown_dataset(name, list(names))
        return dataset_of(row)

    def list(self, project_id: str) -> builtins.list[Dataset]:
        """The datasets of a project, by name."""
        query = (
            sa.select(datasets).where(datasets.c.project_id == project_id).order_by(datasets.c.name)
        )
        with self._db.read() as conn:
            return [dataset_of(row) for row in conn.execute(query).mappings()]

    # -- versions ----------------------------------------------------------------------
    def add_version(
        self,
        dataset: Dataset,
        *,
        kind: str,
        manifest_digest: str,
        size: int,
        file_count: int,
        message: str | None = None,
        row_count: int | None = None,
        schema: Sequence[dict[str, Any]] | None = None,
        new_digests: Iterable[str] = (),
        status: str = "published",
        profile_digest: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """A new version (numbered here), or the latest one if it has this manifest.

        Returns ``(version, created)``. ``new_digests`` are the file blobs the manifest
        lists that its parent did not: they are recorded so that ``plinth gc`` keeps them.
        ``status`` is ``published`` or ``quarantined`` (stored, but failed its suite).
        """
        check_new_version(
            kind, manifest_digest, size, file_count, row_count, status, profile_digest
        )
        digests = sorted(set(new_digests))
        with self._db.write() as conn:
            if digests:
                created_at = now_ms()
                for chunk in chunks(digests):
                    conn.execute(
                        upsert(conn, dataset_blobs).on_conflict_do_nothing(),
                        [
                            {"dataset_id": dataset.id, "digest": d, "created_at": created_at}
                            for d in chunk
                        ],
                    )
            # FOR UPDATE locks the dataset's row on PostgreSQL until commit; SQLite's write
            # transaction already holds the database's write lock.
            latest_number = conn.execute(
                sa.select(datasets.c.versions).where(datasets.c.id == dataset.id).with_for_update()
            ).scalar_one_or_none()
            if latest_number is None:
                raise NotFoundError(f"no dataset with id {dataset.id!r} in the ledger")
            parent = latest_number or None
            if parent is not None:
                latest = (
                    conn.execute(
                        sa.select(_V).where(
                            (_V.c.dataset_id == dataset.id) & (_V.c.number == parent)
                        )
                    )
                    .mappings()
                    .one()
                )
                if latest["manifest_digest"] == manifest_digest and latest["kind"] == kind:
                    unchanged = dict(latest)
                else:
                    unchanged = None
            else:
                unchanged = None
            if unchanged is None:
                number = latest_number + 1
                conn.execute(
                    datasets.update().where(datasets.c.id == dataset.id).values(versions=number)
                )
                row: dict[str, Any] = {
                    "id": new_id(),
                    "dataset_id": dataset.id,
                    "number": number,
                    "parent_number": parent,
                    "kind": kind,
                    "manifest_digest": manifest_digest,
                    "size": size,
                    "file_count": file_count,
                    "row_count": row_count,
                    "schema": None if schema is None else [dict(c) for c in schema],
                    "message": message,
                    "status": status,
                    "profile_digest": profile_digest,
                    **self._db.stamp(),
                }
                conn.execute(_V.insert().values(**row))
        if unchanged is not None:
            return self._with_tags(dataset.name, unchanged), False
        return version_of(row, dataset.name), True

    def _with_tags(self, name: str, row: Any) -> DatasetVersion:
        return version_of(row, name, tuple(self._tags_of(row["dataset_id"], row["number"])))

    def _tags_of(self, dataset_id: str, number: int) -> builtins.list[str]:
        query = (
            sa.select(dataset_tags.c.tag)
            .where((dataset_tags.c.dataset_id == dataset_id) & (dataset_tags.c.number == number))
            .order_by(dataset_tags.c.tag)
        )
        with self._db.read() as conn:
            return builtins.list(conn.execute(query).scalars())

    def resolve(self, dataset: Dataset, spec: str | int | None = None) -> DatasetVersion:
        """The version named by ``spec``: None or "latest", a number, or a tag."""
        parsed = parse_spec(spec)
        with self._db.read() as conn:
            if parsed is None:
                number: int | None = conn.execute(
                    sa.select(datasets.c.versions).where(datasets.c.id == dataset.id)
                ).scalar_one_or_none()
                number = number or None
            elif isinstance(parsed, str):
                number = conn.execute(
                    sa.select(dataset_tags.c.number).where(
                        (dataset_tags.c.dataset_id == dataset.id) & (dataset_tags.c.tag == parsed)
                    )
                ).scalar_one_or_none()
            else:
                number = parsed
            row = None
            if number is not None:
                row = (
                    conn.execute(
                        sa.select(_V).where(
                            (_V.c.dataset_id == dataset.id) & (_V.c.number == number)
                        )
                    )
                    .mappings()
                    .first()
                )
        if row is None:
            raise missing_version(dataset, parsed)
        return self._with_tags(dataset.name, row)

    def get_version_by_id(self, version_id: str) -> DatasetVersion:
        """A version by its record id (as lineage edges name it)."""
        query = (
            sa.select(_V, datasets.c.name.label("dataset_name"))
            .join(datasets, datasets.c.id == _V.c.dataset_id)
            .where(_V.c.id == version_id)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no dataset version with id {version_id!r} in the ledger")
        return self._with_tags(row["dataset_name"], row)

    def list_versions(
        self, dataset: Dataset, limit: int | None = None
    ) -> builtins.list[DatasetVersion]:
        """The versions of a dataset, newest first, each with its tags."""
        query = sa.select(_V).where(_V.c.dataset_id == dataset.id).order_by(_V.c.number.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._db.read() as conn:
            rows = builtins.list(conn.execute(query).mappings())
            tags = self._all_tags(conn, dataset.id)
        return [version_of(r, dataset.name, tuple(tags.get(r["number"], []))) for r in rows]

    def latest_versions(self, project_id: str) -> dict[str, DatasetVersion]:
        """The latest version of every dataset of a project that has one, by dataset name."""
        query = (
            sa.select(_V, datasets.c.name.label("dataset_name"))
            .join(
                datasets, (datasets.c.id == _V.c.dataset_id) & (datasets.c.versions == _V.c.number)
            )
            .where(datasets.c.project_id == project_id)
        )
        with self._db.read() as conn:
            return {
                row["dataset_name"]: version_of(row, row["dataset_name"])
                for row in conn.execute(query).mappings()
            }

    def set_status(self, version_ids: Sequence[str], status: str) -> None:
        """Mark versions ``published``, ``quarantined`` or ``erased`` (one transaction).

        An erased version stays erased: its rows are gone.
        """
        check_status(status)
        ids = sorted(set(version_ids))
        with self._db.write() as conn:
            for chunk in chunks(ids):
                found = builtins.list(
                    conn.execute(sa.select(_V.c.id, _V.c.status).where(_V.c.id.in_(chunk)))
                )
                missing = set(chunk) - {row.id for row in found}
                if missing:
                    raise NotFoundError(
                        f"no dataset version with id {sorted(missing)[0]!r} in the ledger"
                    )
                if status != "erased" and any(row.status == "erased" for row in found):
                    raise erased_is_final()
                conn.execute(_V.update().where(_V.c.id.in_(chunk)).values(status=status))

    def set_profile(self, version_id: str, digest: str) -> None:
        """Record the blob holding a version's profile."""
        check_digest(digest, "profile digest")
        with self._db.write() as conn:
            done = conn.execute(
                _V.update().where(_V.c.id == version_id).values(profile_digest=digest)
            ).rowcount
        if not done:
            raise NotFoundError(f"no dataset version with id {version_id!r} in the ledger")

    # -- erasures ----------------------------------------------------------------------
    def record_erasure(
        self,
        dataset: Dataset,
        *,
        predicate: str,
        message: str,
        rows_removed: int,
        new_number: int | None,
        erased_numbers: Sequence[int],
        released_digests: Iterable[str] = (),
    ) -> Erasure:
        """Mark ``erased_numbers`` erased, stop keeping ``released_digests`` and record who
        did it and why, all in one transaction.

        ``released_digests`` are file blobs only the erased versions listed: they are no
        longer kept for this dataset, so the next ``plinth gc`` deletes them unless some
        other record still references them.
        """
        check_erasure(predicate, message, rows_removed)
        numbers = sorted({int(n) for n in erased_numbers})
        released = sorted(set(released_digests))
        for digest in released:
            check_digest(digest, "a released blob digest")
        row: dict[str, Any] = {
            "id": new_id(),
            "dataset_id": dataset.id,
            "predicate": predicate,
            "message": message,
            "rows_removed": rows_removed,
            "new_number": new_number,
            "erased_numbers": numbers,
            "released_blobs": released,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            if numbers:
                where = (_V.c.dataset_id == dataset.id) & _V.c.number.in_(numbers)
                found = builtins.list(
                    conn.execute(sa.select(_V.c.id, _V.c.profile_digest).where(where))
                )
                if len(found) != len(numbers):
                    raise missing_version(dataset, max(numbers))
                # Profiles (top values) and validation reports (failing values) of the
                # erased versions may quote the erased rows: they go with them.
                ids = [r.id for r in found]
                released = sorted(
                    {*released, *(r.profile_digest for r in found if r.profile_digest)}
                )
                conn.execute(_V.update().where(where).values(status="erased", profile_digest=None))
                released = sorted({*released, *scrub_validations(conn, ids)})
                refs = [f"{dataset.name}@{n}" for n in numbers]
                released = sorted(
                    {*released, *scrub_monitor_reports(conn, dataset.project_id, refs)}
                )
                row["released_blobs"] = released
            for chunk in chunks(released):
                conn.execute(
                    dataset_blobs.delete().where(
                        (dataset_blobs.c.dataset_id == dataset.id)
                        & dataset_blobs.c.digest.in_(chunk)
                    )
                )
            conn.execute(dataset_erasures.insert().values(**row))
        return erasure_of(row)

    def erasures(self, dataset: Dataset) -> builtins.list[Erasure]:
        """The erasures of a dataset, oldest first."""
        query = (
            sa.select(dataset_erasures)
            .where(dataset_erasures.c.dataset_id == dataset.id)
            .order_by(dataset_erasures.c.created_at, dataset_erasures.c.id)
        )
        with self._db.read() as conn:
            return [erasure_of(row) for row in conn.execute(query).mappings()]

    # -- tags --------------------------------------------------------------------------
    def set_tag(
        self, dataset: Dataset, tag: str, spec: str | int | None, *, move: bool = False
    ) -> DatasetVersion:
        """Point ``tag`` at a version. A tag on another version conflicts unless ``move``."""
        check_tag(tag)
        version = self.resolve(dataset, spec)
        key = (dataset_tags.c.dataset_id == dataset.id) & (dataset_tags.c.tag == tag)
        with self._db.write() as conn:
            current = conn.execute(sa.select(dataset_tags.c.number).where(key)).scalar_one_or_none()
            if current is None:
                conn.execute(
                    dataset_tags.insert().values(
                        dataset_id=dataset.id, tag=tag, number=version.number, **self._db.stamp()
                    )
                )
            elif current != version.number:
                if not move:
                    raise tag_conflict(dataset, tag, current, version.number)
                conn.execute(
                    dataset_tags.update()
                    .where(key)
                    .values(number=version.number, **self._db.stamp())
                )
        return self.resolve(dataset, version.number)

    def tags(self, dataset: Dataset) -> dict[str, int]:
        """Every tag of a dataset and the version number it points at."""
        query = sa.select(dataset_tags.c.tag, dataset_tags.c.number).where(
            dataset_tags.c.dataset_id == dataset.id
        )
        with self._db.read() as conn:
            return {row.tag: row.number for row in conn.execute(query.order_by(dataset_tags.c.tag))}

    def _all_tags(self, conn: sa.Connection, dataset_id: str) -> dict[int, builtins.list[str]]:
        out: dict[int, builtins.list[str]] = {}
        query = (
            sa.select(dataset_tags.c.tag, dataset_tags.c.number)
            .where(dataset_tags.c.dataset_id == dataset_id)
            .order_by(dataset_tags.c.tag)
        )
        for row in conn.execute(query):
            out.setdefault(row.number, []).append(row.tag)
        return out

    def referenced_blobs(self, dataset: Dataset) -> set[str]:
        """The file blobs recorded for a dataset's versions (what gc keeps for it)."""
        query = sa.select(dataset_blobs.c.digest).where(dataset_blobs.c.dataset_id == dataset.id)
        with self._db.read() as conn:
            return set(conn.execute(query).scalars())
