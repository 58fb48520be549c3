"""The team server's accounts tables: users, API tokens, sessions, projects, memberships, audit.

They live in a database (or PostgreSQL schema) of their own, apart from every project's
ledger, on their own ``metadata``: :class:`plinth.ledger.accounts.AccountStore` creates them
when it opens (``create_all``), no Alembic revision involved. Timestamps are epoch ms.
Secrets are never stored: a token keeps only the sha256 of its secret, a session the
sha256 of its id, a user the argon2 hash of the password.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "audit_log",
    "memberships",
    "metadata",
    "server_projects",
    "sessions",
    "tokens",
    "users",
]

metadata = sa.MetaData()

_NAME = sa.String(64)
_MS = sa.BigInteger

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("server_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _MS, nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_name", _NAME, sa.ForeignKey("users.name"), nullable=False, index=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    # null: every project of the user; else a JSON list of project names.
    sa.Column("projects", sa.JSON, nullable=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("note", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", _MS, nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
    sa.Column("expires_at", _MS, nullable=True),
    sa.Column("revoked_at", _MS, nullable=True),
    sa.Column("last_used_at", _MS, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("user_name", _NAME, sa.ForeignKey("users.name"), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", _MS, nullable=False),
    sa.Column("expires_at", _MS, nullable=False),
)

server_projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("created_at", _MS, nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("user_name", _NAME, sa.ForeignKey("users.name"), primary_key=True),
    sa.Column("project", _NAME, sa.ForeignKey("projects.name"), primary_key=True),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("created_at", _MS, nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
)

audit_log = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("at", _MS, nullable=False, index=True),
    sa.Column("user_name", _NAME, nullable=True),
    sa.Column("project", _NAME, nullable=True, index=True),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=True),
)
