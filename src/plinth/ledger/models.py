"""The model registry's ledger: models, numbered versions, aliases moved by compare-and-swap.

A new version's number comes from incrementing ``models.versions`` inside the transaction
that inserts it (PostgreSQL locks the row; SQLite holds the write lock), so concurrent
registrations get distinct, consecutive numbers. Every alias change locks the model's row
the same way, checks where the alias points (compare-and-swap), and writes the move and its
audit record (``registry_events``) in one transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from plinth.entities.models import UNCHECKED, AliasMove, Model, ModelVersion, Unchecked
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, upsert
from plinth.ledger.model_rows import (
    alias_conflict,
    check_alias,
    check_expected,
    check_model_name,
    check_new_model_version,
    conflict_error,
    metrics_to_db,
    missing_model_version,
    model_of,
    model_version_of,
    move_of,
    parse_model_spec,
    unknown_model,
)
from plinth.ledger.tables import model_aliases, model_versions, models, registry_events

__all__ = ["AliasSpec", "ModelStore"]

_V = model_versions
_A = model_aliases
_E = registry_events

#: One alias move of :meth:`ModelStore.set_aliases`: ``(alias, version)`` moves it wherever
#: it points; ``(alias, version, expected)`` only if it points at ``expected`` (None: unset).
AliasSpec = tuple[str, int | str] | tuple[str, int | str, int | Unchecked | None]


class ModelStore:
    """``ledger.models``: models by (project, name), versions by number or alias."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- models ------------------------------------------------------------------------
    def ensure(self, project_id: str, name: str) -> Model:
        """The model ``name`` of a project, created (with no versions) if missing."""
        check_model_name(name)
        where = (models.c.project_id == project_id) & (models.c.name == name)
        with self._db.read() as conn:
            row = conn.execute(sa.select(models).where(where)).mappings().first()
        if row is not None:
            return model_of(row)
        with self._db.write() as conn:
            conn.execute(
                upsert(conn, models)
                .values(
                    id=new_id(), project_id=project_id, name=name, versions=0, **self._db.stamp()
                )
                .on_conflict_do_nothing()
            )
            return model_of(conn.execute(sa.select(models).where(where)).mappings().one())

    def get(self, project_id: str, name: str) -> Model:
        """The model ``name`` of a project; NotFoundError naming the known ones."""
        check_model_name(name)
        where = (models.c.project_id == project_id) & (models.c.name == name)
        with self._db.read() as conn:
            row = conn.execute(sa.select(models).where(where)).mappings().first()
            if row is None:
                names = conn.execute(
                    sa.select(models.c.name)
                    .where(models.c.project_id == project_id)
                    .order_by(models.c.name)
                ).scalars()
                raise unknown_model(name, builtins.list(names))
        return model_of(row)

    def list(self, project_id: str) -> builtins.list[Model]:
        """The models of a project, by name."""
        query = sa.select(models).where(models.c.project_id == project_id).order_by(models.c.name)
        with self._db.read() as conn:
            return [model_of(row) for row in conn.execute(query).mappings()]

    # -- versions ----------------------------------------------------------------------
    def register(
        self,
        model: Model,
        *,
        flavor: str,
        manifest_digest: str,
        run_id: str | None = None,
        signature: Mapping[str, Any] | None = None,
        environment_id: str | None = None,
        metrics: Mapping[str, float] | None = None,
        trusted_digests: Iterable[str] = (),
        description: str | None = None,
    ) -> ModelVersion:
        """A new version of ``model``, numbered here: always a new one, even for a manifest
        an earlier version has (registering is a decision, not a deduplication)."""
        signature_json, trusted = check_new_model_version(
            flavor=flavor,
            manifest_digest=manifest_digest,
            run_id=run_id,
            environment_id=environment_id,
            signature=signature,
            trusted_digests=trusted_digests,
            description=description,
        )
        stored_metrics = metrics_to_db(metrics)
        with self._db.write() as conn:
            number = self._lock(conn, model) + 1
            conn.execute(models.update().where(models.c.id == model.id).values(versions=number))
            row: dict[str, Any] = {
                "id": new_id(),
                "model_id": model.id,
                "number": number,
                "run_id": run_id,
                "flavor": flavor,
                "manifest_digest": manifest_digest,
                "signature": signature_json,
                "environment_id": environment_id,
                "metrics": stored_metrics,
                "trusted_digests": trusted,
                "description": description,
                **self._db.stamp(),
            }
            conn.execute(_V.insert().values(**row))
        return model_version_of(row, model.name)

    def resolve(self, model: Model, spec: str | int | None = None) -> ModelVersion:
        """The version named by ``spec``: None or "latest", a number ("3", "v3"), or an alias."""
        parsed = parse_model_spec(spec)
        with self._db.read() as conn:
            number = self._number(conn, model, parsed)
            row = (
                conn.execute(
                    sa.select(_V).where((_V.c.model_id == model.id) & (_V.c.number == number))
                )
                .mappings()
                .first()
            )
            if row is None:
                raise missing_model_version(self._fresh(conn, model), parsed)
            aliases = self._aliases(conn, model.id).get(number, [])
        return model_version_of(row, model.name, tuple(aliases))

    def get_version_by_id(self, version_id: str) -> ModelVersion:
        """A version by its record id (as lineage edges name it)."""
        query = (
            sa.select(_V, models.c.name.label("model_name"))
            .join(models, models.c.id == _V.c.model_id)
            .where(_V.c.id == version_id)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                raise NotFoundError(f"no model version with id {version_id!r} in the ledger")
            aliases = self._aliases(conn, row["model_id"]).get(row["number"], [])
        return model_version_of(row, row["model_name"], tuple(aliases))

    def list_versions(self, model: Model, limit: int | None = None) -> builtins.list[ModelVersion]:
        """The versions of a model, newest first, each with its aliases."""
        query = sa.select(_V).where(_V.c.model_id == model.id).order_by(_V.c.number.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._db.read() as conn:
            rows = builtins.list(conn.execute(query).mappings())
            aliases = self._aliases(conn, model.id)
        return [model_version_of(r, model.name, tuple(aliases.get(r["number"], []))) for r in rows]

    # -- aliases -----------------------------------------------------------------------
    def aliases(self, model: Model) -> dict[str, int]:
        """Every alias of a model and the version number it points at, by alias."""
        query = (
            sa.select(_A.c.alias, _A.c.number).where(_A.c.model_id == model.id).order_by(_A.c.alias)
        )
        with self._db.read() as conn:
            return {row.alias: row.number for row in conn.execute(query)}

    def set_alias(
        self,
        model: Model,
        alias: str,
        version: int | str,
        *,
        expected: int | Unchecked | None = UNCHECKED,
        reason: str | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` and record the move.

        With ``expected`` (a version number, or None for "not set") this is a
        compare-and-swap: if the alias points elsewhere, ConflictError names both and
        nothing is written. Pointing an alias where it already points writes nothing and
        returns its latest move.
        """
        return self.set_aliases(model, [(alias, version, expected)], reason=reason)[0]

    def set_aliases(
        self, model: Model, moves: Sequence[AliasSpec], *, reason: str | None = None
    ) -> builtins.list[AliasMove]:
        """Move several aliases in one transaction: all of them, or (on any conflict) none."""
        checked = _check_moves(moves)
        _check_reason(reason)
        with self._db.write() as conn:
            fresh = self._fresh(conn, model, lock=True)
            current = self._current(conn, model.id)
            targets = [(a, self._number(conn, fresh, v), e) for a, v, e in checked]
            conflicts = [
                alias_conflict(fresh, alias, current.get(alias), expected)
                for alias, _, expected in targets
                if not isinstance(expected, Unchecked) and current.get(alias) != expected
            ]
            if conflicts:
                raise conflict_error(conflicts, fresh)
            return [
                self._move(conn, model, alias, current.get(alias), number, reason)
                for alias, number, _ in targets
            ]

    def delete_alias(
        self,
        model: Model,
        alias: str,
        *,
        expected: int | Unchecked | None = UNCHECKED,
        reason: str | None = None,
    ) -> AliasMove:
        """Remove ``alias`` and record it; ``expected`` makes it a compare-and-swap."""
        check_alias(alias, existing=True)
        expected = check_expected(expected)
        _check_reason(reason)
        with self._db.write() as conn:
            fresh = self._fresh(conn, model, lock=True)
            current = self._current(conn, model.id).get(alias)
            if current is None:
                raise missing_model_version(fresh, alias)
            if not isinstance(expected, Unchecked) and current != expected:
                raise conflict_error([alias_conflict(fresh, alias, current, expected)], fresh)
            return self._move(conn, model, alias, current, None, reason)

    def rollback(self, model: Model, alias: str, *, reason: str | None = None) -> AliasMove:
        """Move ``alias`` back to where it pointed before its latest move (undoing a delete
        restores it). Rolling back twice returns it to where it was: a rollback is a move.

        ConflictError when the alias has no earlier target (its latest move first set it).
        """
        check_alias(alias, existing=True)
        _check_reason(reason)
        with self._db.write() as conn:
            fresh = self._fresh(conn, model, lock=True)
            latest = (
                conn.execute(
                    sa.select(_E)
                    .where((_E.c.model_id == model.id) & (_E.c.alias == alias))
                    .order_by(_E.c.created_at.desc(), _E.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if latest is None:
                raise missing_model_version(fresh, alias)
            if latest["from_number"] is None:
                raise ConflictError(
                    f"alias {alias!r} of model {model.name!r} has no earlier version to roll "
                    f"back to: its latest move set it to version {latest['to_number']}",
                    hint=f"move it with: plinth models alias {model.name} {alias} VERSION",
                    field="alias",
                )
            current = self._current(conn, model.id).get(alias)
            return self._move(conn, model, alias, current, latest["from_number"], reason)

    def alias_history(self, model: Model, alias: str | None = None) -> builtins.list[AliasMove]:
        """The alias moves of a model (or of one alias), newest first."""
        where = _E.c.model_id == model.id
        if alias is not None:
            where = where & (_E.c.alias == check_alias(alias, existing=True))
        query = sa.select(_E).where(where).order_by(_E.c.created_at.desc(), _E.c.id.desc())
        with self._db.read() as conn:
            return [move_of(row, model.name) for row in conn.execute(query).mappings()]

    # -- helpers -----------------------------------------------------------------------
    def _lock(self, conn: sa.Connection, model: Model) -> int:
        # FOR UPDATE locks the model's row on PostgreSQL until commit; SQLite's write
        # transaction already holds the database's write lock.
        versions = conn.execute(
            sa.select(models.c.versions).where(models.c.id == model.id).with_for_update()
        ).scalar_one_or_none()
        if versions is None:
            raise NotFoundError(f"no model with id {model.id!r} in the ledger")
        return int(versions)

    def _fresh(self, conn: sa.Connection, model: Model, *, lock: bool = False) -> Model:
        """``model`` as stored now (its version count current); its row locked if ``lock``."""
        query = sa.select(models).where(models.c.id == model.id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no model with id {model.id!r} in the ledger")
        return model_of(row)

    def _number(
        self,
        conn: sa.Connection,
        model: Model,
        spec: int | str | None,
    ) -> int:
        """The version number ``spec`` (parsed) names; NotFoundError if there is none."""
        if isinstance(spec, int):
            number: int | None = spec
        elif spec is None:
            number = (
                conn.execute(
                    sa.select(models.c.versions).where(models.c.id == model.id)
                ).scalar_one_or_none()
                or None
            )
        else:
            number = self._current(conn, model.id).get(spec)
        fresh = self._fresh(conn, model)
        if number is None or number > fresh.versions:
            raise missing_model_version(fresh, spec)
        return number

    def _current(self, conn: sa.Connection, model_id: str) -> dict[str, int]:
        query = sa.select(_A.c.alias, _A.c.number).where(_A.c.model_id == model_id)
        return {row.alias: row.number for row in conn.execute(query)}

    def _aliases(self, conn: sa.Connection, model_id: str) -> dict[int, builtins.list[str]]:
        out: dict[int, builtins.list[str]] = {}
        query = (
            sa.select(_A.c.alias, _A.c.number).where(_A.c.model_id == model_id).order_by(_A.c.alias)
        )
        for row in conn.execute(query):
            out.setdefault(row.number, []).append(row.alias)
        return out

    def _move(
        self,
        conn: sa.Connection,
        model: Model,
        alias: str,
        current: int | None,
        number: int | None,
        reason: str | None,
    ) -> AliasMove:
        """Point ``alias`` at ``number`` (None: delete it) and write the audit record."""
        if current == number:
            latest = (
                conn.execute(
                    sa.select(_E)
                    .where((_E.c.model_id == model.id) & (_E.c.alias == alias))
                    .order_by(_E.c.created_at.desc(), _E.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if latest is not None:
                return move_of(latest, model.name)
        key = (_A.c.model_id == model.id) & (_A.c.alias == alias)
        stamp = self._db.stamp()
        if number is None:
            conn.execute(_A.delete().where(key))
        elif current is None:
            conn.execute(
                _A.insert().values(
                    model_id=model.id,
                    alias=alias,
                    number=number,
                    updated_at=stamp["created_at"],
                    updated_by=stamp["created_by"],
                )
            )
        else:
            conn.execute(
                _A.update()
                .where(key)
                .values(
                    number=number, updated_at=stamp["created_at"], updated_by=stamp["created_by"]
                )
            )
        row: dict[str, Any] = {
            "id": new_id(),
            "model_id": model.id,
            "alias": alias,
            "from_number": current,
            "to_number": number,
            "reason": reason,
            **stamp,
        }
        conn.execute(_E.insert().values(**row))
        return move_of(row, model.name)


def _check_reason(reason: object) -> None:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 4096):
        raise UsageError(
            f"a reason must be a string of at most 4096 characters, got {reason!r:.80}",
            field="reason",
        )


def _check_moves(
    moves: Sequence[AliasSpec],
) -> builtins.list[tuple[str, int | str | None, int | Unchecked | None]]:
    if isinstance(moves, str | bytes) or not isinstance(moves, Sequence) or not moves:
        raise UsageError(
            f"alias moves must be a non-empty list of (alias, version[, expected]), got {moves!r}"
        )
    out: builtins.list[tuple[str, int | str | None, int | Unchecked | None]] = []
    seen: set[str] = set()
    for move in moves:
        if not isinstance(move, tuple) or len(move) not in (2, 3):
            raise UsageError(f"an alias move is (alias, version[, expected]), got {move!r}")
        alias = check_alias(move[0])
        if alias in seen:
            raise UsageError(f"alias {alias!r} is moved twice in one call", field="alias")
        seen.add(alias)
        version = parse_model_spec(move[1])
        if version is None and move[1] is None:
            raise UsageError(
                f"alias {alias!r} needs a version to point at (a number, an alias or latest)",
                field="version",
            )
        expected = check_expected(move[2] if len(move) == 3 else UNCHECKED)
        out.append((alias, version, expected))
    return out
