"""The team server's accounts store: users, API tokens, sessions, projects, roles and audit.

One small store over its own database (SQLite ``<root>/server.db`` or a PostgreSQL schema),
shared by every server replica: nothing that matters lives in process memory.

- Passwords: argon2id hashes (argon2-cffi, the ``server`` extra); never stored or logged.
- Tokens: ``plt_<id>_<secret>``; only sha256(secret) is stored, compared in constant time.
- Sessions: a random id (only its sha256 stored) with a CSRF token and an expiry.

>>> store = AccountStore.open("sqlite:////srv/plinth/server.db")  # doctest: +SKIP
>>> token, info = store.create_token("ada", projects=["flights"], by="root")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa

from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.guards.secrets import redact_params
from plinth.ids import new_id, now_ms
from plinth.ledger._common import Db
from plinth.ledger.account_records import (
    MIN_PASSWORD,
    TOKEN_PREFIX,
    AuditEntry,
    Credential,
    Membership,
    NewSession,
    Role,
    TokenInfo,
    User,
    check_role,
    check_user_name,
    sha256,
    token_record,
    user_record,
)
from plinth.ledger.engine import create_ledger_engine, redacted_url
from plinth.ledger.tables_server import (
    audit_log,
    memberships,
    metadata,
    server_projects,
    sessions,
    tokens,
    users,
)

__all__ = [
    "TOKEN_PREFIX",
    "AccountStore",
    "AuditEntry",
    "Credential",
    "Membership",
    "NewSession",
    "TokenInfo",
    "User",
    "check_user_name",
]

_TOKEN = re.compile(r"plt_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})")
_SCOPE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: last_used_at is written at most this often per token (ms), not on every request.
_TOUCH_EVERY_MS = 60_000


def _hasher() -> Any:
    from plinth._extras import require

    require("argon2", feature="password login", extra="server")
    from argon2 import PasswordHasher

    return PasswordHasher()


class AccountStore:
    """Users, tokens, sessions, projects, memberships and the audit log of one server."""

    def __init__(self, engine: sa.Engine, *, url: str) -> None:
        self._db = Db(engine, url=redacted_url(url), user="server")
        self._dummy_hash: str | None = None

    @classmethod
    def open(cls, url: str, *, schema: str | None = None) -> AccountStore:
        """Connect and create the tables if missing (PostgreSQL: in ``schema``, created too)."""
        engine = create_ledger_engine(url)
        store = cls(engine, url=url)
        try:
            with store._db.write() as conn:
                if conn.dialect.name == "postgresql" and schema:
                    # One creator at a time across replicas; CREATE TABLE is not race-free.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7450114)"))
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                metadata.create_all(conn)
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def engine(self) -> sa.Engine:
        return self._db.engine

    def close(self) -> None:
        self._db.engine.dispose()

    # -- users ---------------------------------------------------------------------------

    def add_user(
        self, name: str, *, by: str, password: str | None = None, server_admin: bool = False
    ) -> User:
        """A new user; ConflictError if the name is taken."""
        check_user_name(name)
        hashed = self._hash(password) if password is not None else None
        with self._db.write() as conn:
            if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
                raise ConflictError(f"user {name!r} already exists", field="user")
            conn.execute(
                users.insert().values(
                    name=name,
                    password_hash=hashed,
                    server_admin=server_admin,
                    disabled=False,
                    created_at=now_ms(),
                    created_by=by,
                )
            )
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        with self._db.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"no user {str(name)[:80]!r}", field="user")
        return user_record(row)

    def list_users(self) -> list[User]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings().all()
        return [user_record(r) for r in rows]

    def has_admin(self) -> bool:
        """Whether a server admin exists (``plinth server init`` ran)."""
        with self._db.read() as conn:
            query = sa.select(users.c.name).where(users.c.server_admin.is_(True)).limit(1)
            return conn.execute(query).first() is not None

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or re-enable) a user; a disabled user's tokens and sessions stop working."""
        with self._db.write() as conn:
            done = conn.execute(
                users.update().where(users.c.name == name).values(disabled=disabled)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no user {str(name)[:80]!r}", field="user")
            if disabled:
                conn.execute(sessions.delete().where(sessions.c.user_name == name))

    def set_password(self, name: str, password: str) -> None:
        """Set a user's password; their browser sessions end."""
        hashed = self._hash(password)
        with self._db.write() as conn:
            done = conn.execute(
                users.update().where(users.c.name == name).values(password_hash=hashed)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no user {str(name)[:80]!r}", field="user")
            conn.execute(sessions.delete().where(sessions.c.user_name == name))

    def check_password(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (an enabled user); as slow for unknown users."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(users.c.password_hash, users.c.disabled).where(users.c.name == name)
            ).first()
        if row is None or row.password_hash is None or row.disabled:
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash(secrets.token_hex(16))
            # Same work as a real check, so timing does not tell users apart.
            with contextlib.suppress(VerificationError):
                hasher.verify(self._dummy_hash, password)
            return False
        try:
            return bool(hasher.verify(row.password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def _hash(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise UsageError(
                f"the password is too short (at least {MIN_PASSWORD} characters)",
                field="password",
            )
        return str(_hasher().hash(password))

    # -- tokens --------------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        *,
        by: str,
        projects: Sequence[str] | None = None,
        scopes: Iterable[str] = (),
        expires_in_s: int | None = None,
        note: str = "",
    ) -> tuple[str, TokenInfo]:
        """A new token for ``user``: ``(plt_<id>_<secret>, info)``; the secret is not kept."""
        self.get_user(user)
        scope_list = sorted(set(scopes))
        for scope in scope_list:
            if not _SCOPE.fullmatch(scope):
                raise UsageError(f"invalid token scope {scope!r}", hint="e.g. gate", field="scope")
        if expires_in_s is not None and expires_in_s <= 0:
            raise UsageError("a token's lifetime must be positive", field="expires")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = now_ms()
        with self._db.write() as conn:
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    user_name=user,
                    secret_sha256=sha256(secret),
                    projects=None if projects is None else sorted(set(projects)),
                    scopes=scope_list,
                    note=note[:200],
                    created_at=now,
                    created_by=by,
                    expires_at=None if expires_in_s is None else now + expires_in_s * 1000,
                )
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", self.get_token(token_id)

    def get_token(self, token_id: str) -> TokenInfo:
        with self._db.read() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.id == token_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no token {str(token_id)[:40]!r}", field="token")
        return token_record(row)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        query = sa.select(tokens).order_by(tokens.c.created_at)
        if user is not None:
            query = query.where(tokens.c.user_name == user)
        with self._db.read() as conn:
            return [token_record(r) for r in conn.execute(query).mappings().all()]

    def revoke_token(self, token_id: str) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                tokens.update()
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
        if done.rowcount == 0:
            self.get_token(token_id)  # NotFoundError when unknown; else already revoked

    def check_token(self, raw: str) -> Credential | None:
        """The credential of a presented token, or None (malformed, unknown, expired,
        revoked, or its user disabled)."""
        match = _TOKEN.fullmatch(raw)
        if match is None:
            return None
        token_id, secret = match.groups()
        now = now_ms()
        with self._db.read() as conn:
            row = (
                conn.execute(
                    sa.select(tokens, users.c.server_admin, users.c.disabled)
                    .join(users, users.c.name == tokens.c.user_name)
                    .where(tokens.c.id == token_id)
                )
                .mappings()
                .first()
            )
        expected = row["secret_sha256"] if row is not None else "0" * 64
        if not hmac.compare_digest(sha256(secret), expected) or row is None:
            return None
        if row["revoked_at"] is not None or row["disabled"]:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= now:
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY_MS:
            with self._db.write() as conn:
                conn.execute(
                    tokens.update().where(tokens.c.id == token_id).values(last_used_at=now)
                )
        projects = row["projects"]
        return Credential(
            user=row["user_name"],
            server_admin=bool(row["server_admin"]),
            projects=None if projects is None else frozenset(projects),
            scopes=frozenset(row["scopes"] or ()),
            token_id=token_id,
            csrf=None,
        )

    # -- sessions ------------------------------------------------------------------------

    def create_session(self, user: str, *, ttl_s: int) -> NewSession:
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = now_ms()
        expires = now + ttl_s * 1000
        with self._db.write() as conn:
            # Expired sessions are swept here, so the table does not grow without bound.
            conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
            conn.execute(
                sessions.insert().values(
                    id_sha256=sha256(session_id),
                    user_name=user,
                    csrf=csrf,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return NewSession(id=session_id, csrf=csrf, expires_at=expires)

    def check_session(self, raw: str) -> Credential | None:
        if not raw or len(raw) > 128:
            return None
        with self._db.read() as conn:
            row = (
                conn.execute(
                    sa.select(sessions, users.c.server_admin, users.c.disabled)
                    .join(users, users.c.name == sessions.c.user_name)
                    .where(sessions.c.id_sha256 == sha256(raw))
                )
                .mappings()
                .first()
            )
        if row is None or row["disabled"] or row["expires_at"] <= now_ms():
            return None
        return Credential(
            user=row["user_name"],
            server_admin=bool(row["server_admin"]),
            projects=None,
            scopes=frozenset(),
            token_id=None,
            csrf=row["csrf"],
        )

    def end_session(self, raw: str) -> None:
        with self._db.write() as conn:
            conn.execute(sessions.delete().where(sessions.c.id_sha256 == sha256(raw)))

    # -- projects and roles --------------------------------------------------------------

    def add_project(self, name: str, *, by: str) -> None:
        with self._db.write() as conn:
            query = sa.select(server_projects.c.name).where(server_projects.c.name == name)
            if conn.execute(query).first():
                raise ConflictError(f"project {name!r} already exists", field="project")
            conn.execute(
                server_projects.insert().values(name=name, created_at=now_ms(), created_by=by)
            )

    def list_projects(self) -> list[str]:
        with self._db.read() as conn:
            query = sa.select(server_projects.c.name).order_by(server_projects.c.name)
            return [r.name for r in conn.execute(query)]

    def project_exists(self, name: str) -> bool:
        with self._db.read() as conn:
            query = sa.select(server_projects.c.name).where(server_projects.c.name == name)
            return conn.execute(query).first() is not None

    def grant(self, user: str, project: str, role: str, *, by: str) -> None:
        """Give ``user`` ``role`` in ``project`` (replacing any role they had)."""
        check_role(role)
        self.get_user(user)
        if not self.project_exists(project):
            raise NotFoundError(f"no project {str(project)[:80]!r}", field="project")
        with self._db.write() as conn:
            conn.execute(
                memberships.delete().where(
                    memberships.c.user_name == user, memberships.c.project == project
                )
            )
            conn.execute(
                memberships.insert().values(
                    user_name=user, project=project, role=role, created_at=now_ms(), created_by=by
                )
            )

    def revoke(self, user: str, project: str) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                memberships.delete().where(
                    memberships.c.user_name == user, memberships.c.project == project
                )
            )
        if done.rowcount == 0:
            raise NotFoundError(f"{user!r} has no role in {project!r}", field="user")

    def members(self, project: str | None = None) -> list[Membership]:
        query = sa.select(memberships).order_by(memberships.c.project, memberships.c.user_name)
        if project is not None:
            query = query.where(memberships.c.project == project)
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Membership(r["user_name"], r["project"], cast(Role, r["role"])) for r in rows]

    def roles_of(self, user: str, *, server_admin: bool) -> dict[str, Role]:
        """``project -> role`` of ``user``; a server admin is admin of every project."""
        if server_admin:
            return dict.fromkeys(self.list_projects(), "admin")
        query = sa.select(memberships.c.project, memberships.c.role).where(
            memberships.c.user_name == user
        )
        with self._db.read() as conn:
            return {r.project: cast(Role, r.role) for r in conn.execute(query)}

    # -- audit ---------------------------------------------------------------------------

    def audit(
        self,
        *,
        user: str | None,
        project: str | None,
        action: str,
        target: str,
        status: str = "ok",
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Append an audit entry; secret-looking keys of ``detail`` are redacted first."""
        clean = redact_params(dict(detail)) if detail else None
        with self._db.write() as conn:
            conn.execute(
                audit_log.insert().values(
                    id=new_id(),
                    at=now_ms(),
                    user_name=user,
                    project=project,
                    action=action[:100],
                    target=target[:300],
                    status=status[:16],
                    detail=clean,
                )
            )

    def audit_log(
        self, *, project: str | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest entries first."""
        query = (
            sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 10_000)))
        )
        if project is not None:
            query = query.where(audit_log.c.project == project)
        if user is not None:
            query = query.where(audit_log.c.user_name == user)
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                r["id"],
                r["at"],
                r["user_name"],
                r["project"],
                r["action"],
                r["target"],
                r["status"],
                r["detail"],
            )
            for r in rows
        ]
