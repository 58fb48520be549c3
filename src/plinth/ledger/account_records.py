"""The records of the team server's accounts store, and the rules for names and roles.

Plain frozen dataclasses (what :class:`plinth.ledger.accounts.AccountStore` returns) and the
row converters that build them; no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from plinth.errors import UsageError

__all__ = [
    "MIN_PASSWORD",
    "TOKEN_PREFIX",
    "AuditEntry",
    "Credential",
    "Membership",
    "NewSession",
    "Role",
    "TokenInfo",
    "User",
    "check_role",
    "check_user_name",
    "sha256",
    "token_record",
    "user_record",
]

Role = Literal["read", "write", "admin"]
_ROLES: tuple[Role, ...] = ("read", "write", "admin")
TOKEN_PREFIX = "plt_"  # noqa: S105 - the marker every token starts with
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    name: str
    server_admin: bool
    disabled: bool
    has_password: bool
    created_at: int
    created_by: str


@dataclass(frozen=True)
class TokenInfo:
    """A token's record; the secret itself is shown once, at creation, and never again."""

    id: str
    user: str
    #: None: every project the user may access.
    projects: tuple[str, ...] | None
    scopes: tuple[str, ...]
    note: str
    created_at: int
    created_by: str
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None


@dataclass(frozen=True)
class Credential:
    """What a valid token or session says about its holder."""

    user: str
    server_admin: bool
    projects: frozenset[str] | None
    scopes: frozenset[str]
    token_id: str | None
    csrf: str | None


@dataclass(frozen=True)
class NewSession:
    """A session just created: ``id`` goes in the cookie and is not kept anywhere else."""

    id: str
    csrf: str
    expires_at: int


@dataclass(frozen=True)
class Membership:
    user: str
    project: str
    role: Role


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: int
    user: str | None
    project: str | None
    action: str
    target: str
    status: str
    detail: dict[str, Any] | None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER.fullmatch(name):
        raise UsageError(
            f"invalid user name {str(name)[:80]!r}",
            hint="use 1-64 letters, digits and '._@-', starting with a letter or digit",
            field="user",
        )
    return name


def check_role(role: str) -> Role:
    if role not in _ROLES:
        raise UsageError(f"unknown role {role!r}", hint="use read, write or admin", field="role")
    return role


def user_record(row: sa.RowMapping) -> User:
    return User(
        name=row["name"],
        server_admin=bool(row["server_admin"]),
        disabled=bool(row["disabled"]),
        has_password=row["password_hash"] is not None,
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def token_record(row: sa.RowMapping) -> TokenInfo:
    projects = row["projects"]
    return TokenInfo(
        id=row["id"],
        user=row["user_name"],
        projects=None if projects is None else tuple(projects),
        scopes=tuple(row["scopes"] or ()),
        note=row["note"] or "",
        created_at=row["created_at"],
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )
