"""Environments: one row per distinct Python environment, keyed by its digest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import Environment
from plinth.errors import NotFoundError, UsageError
from plinth.guards.environments import check_environment
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, upsert
from plinth.ledger.record_rows import environment_of as _environment
from plinth.ledger.tables import environments

__all__ = ["EnvironmentStore"]


class EnvironmentStore:
    """``ledger.environments``: put once per digest, get by id or digest."""

    def __init__(self, db: Db) -> None:
        self._db = db
        # Environment records are immutable and never deleted: cache them by digest.
        self._by_digest: dict[str, Environment] = {}

    def put(
        self,
        digest: str,
        *,
        python: str,
        platform: str,
        packages: Mapping[str, str],
        extra: Mapping[str, Any],
    ) -> Environment:
        """The environment with ``digest``, stored now if it is new (safe under races).

        UsageError naming the field when any field breaks the packaging grammar
        (:mod:`plinth.guards.environments`); nothing is written then.
        """
        cached = self._by_digest.get(digest)
        if cached is not None:
            return cached
        check_text(digest, "environment digest", max_length=64)
        # A record is read back by teammates and written into their Dockerfiles and
        # requirements: refuse anything outside the packaging grammar before it is stored.
        check_environment(
            digest=digest,
            python=python,
            platform=platform,
            packages=packages,
            extra=extra,
            where="cannot record the environment",
        )
        values = {
            "python": check_text(python, "python version"),
            "platform": check_text(platform, "platform"),
            "packages": {str(k): str(v) for k, v in packages.items()},
            "extra": dict(extra),
        }
        try:
            json.dumps(values["extra"])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"environment extra must be JSON-serialisable: {exc}") from None
        query = sa.select(environments).where(environments.c.digest == digest)
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            with self._db.write() as conn:
                conn.execute(
                    upsert(conn, environments)
                    .values(id=new_id(), digest=digest, **values, **self._db.stamp())
                    .on_conflict_do_nothing()
                )
                row = conn.execute(query).mappings().one()
        env = self._by_digest[digest] = _environment(row)
        return env

    def get(self, environment_id: str) -> Environment:
        """The environment with this id; NotFoundError if there is none."""
        query = sa.select(environments).where(environments.c.id == environment_id)
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no environment with id {environment_id!r} in the ledger")
        return _environment(row)

    def get_by_digest(self, digest: str) -> Environment:
        """The environment with this digest; NotFoundError if there is none."""
        query = sa.select(environments).where(environments.c.digest == digest)
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no environment with digest {digest!r} in the ledger")
        return _environment(row)
