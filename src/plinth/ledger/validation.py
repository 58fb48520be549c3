"""Validation suites (versioned by the digest of their YAML text) and their results.

A suite is saved under a name: the same text again is the same version, a changed text the
next number. A result ties one suite version to its target — a dataset version, or a file
outside the ledger named by its path — with the per-check outcome and the report blob.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from plinth.entities import SuiteVersion, ValidationRecord
from plinth.errors import NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, get_numbered, save_numbered
from plinth.ledger.dataset_rows import check_digest
from plinth.ledger.record_rows import validation_record
from plinth.ledger.tables import validation_results as results_t
from plinth.ledger.tables import validation_suites as suites_t

__all__ = ["ValidationStore"]


class ValidationStore:
    """``ledger.validation``: save and find suite versions, record and list results."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- suites ------------------------------------------------------------------------
    def save_suite(self, project_id: str, name: str, digest: str) -> SuiteVersion:
        """The version of suite ``name`` whose text has ``digest``, numbered if new."""
        check_text(name, "suite name")
        check_digest(digest, "suite digest")
        scope = {"project_id": project_id, "name": name}
        return _suite(save_numbered(self._db, suites_t, scope, digest, f"suite {name!r}"))

    def get_suite(self, project_id: str, name: str, number: int | None = None) -> SuiteVersion:
        """Suite ``name`` at ``number`` (None: the newest version)."""
        scope = {"project_id": project_id, "name": name}
        hint = "suites are saved when plinth validate run uses them"
        row = get_numbered(self._db, suites_t, scope, number, f"suite {name!r}", hint)
        return _suite(row)

    def get_suite_by_id(self, suite_id: str) -> SuiteVersion:
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(suites_t).where(suites_t.c.id == suite_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no validation suite with id {suite_id!r} in the ledger")
        return _suite(row)

    # -- results -----------------------------------------------------------------------
    def record_result(
        self,
        suite: SuiteVersion,
        *,
        target: str,
        dataset_version_id: str | None,
        success: bool,
        error_count: int,
        warning_count: int,
        results: Sequence[Mapping[str, Any]],
        report_digest: str | None,
    ) -> ValidationRecord:
        """Record one run of ``suite`` on ``target``; ``results`` must be JSON-serialisable."""
        check_text(target, "validation target", max_length=4096)
        for what, value in (("error count", error_count), ("warning count", warning_count)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{what} must be an integer >= 0, got {value!r}")
        if report_digest is not None:
            check_digest(report_digest, "report digest")
        row: dict[str, Any] = {
            "id": new_id(),
            "suite_id": suite.id,
            "dataset_version_id": dataset_version_id,
            "target": target,
            "success": bool(success),
            "error_count": error_count,
            "warning_count": warning_count,
            "results": [dict(r) for r in results],
            "report_digest": report_digest,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(results_t.insert().values(**row))
        return validation_record(row, suite)

    def results(
        self,
        *,
        dataset_version_id: str | None = None,
        suite_id: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ValidationRecord]:
        """Results, newest first, for a dataset version and/or a suite version."""
        query = (
            sa.select(
                results_t,
                suites_t.c.name.label("suite_name"),
                suites_t.c.number.label("suite_number"),
            )
            .join(suites_t, suites_t.c.id == results_t.c.suite_id)
            .order_by(results_t.c.created_at.desc(), results_t.c.id.desc())
        )
        if dataset_version_id is not None:
            query = query.where(results_t.c.dataset_version_id == dataset_version_id)
        if suite_id is not None:
            query = query.where(results_t.c.suite_id == suite_id)
        if limit is not None:
            query = query.limit(limit)
        with self._db.read() as conn:
            return [
                validation_record(row, name=row["suite_name"], number=row["suite_number"])
                for row in conn.execute(query).mappings()
            ]


def _suite(m: Mapping[Any, Any]) -> SuiteVersion:
    return SuiteVersion(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        number=m["number"],
        digest=m["digest"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )
