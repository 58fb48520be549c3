"""The accounts store (users, tokens, sessions, projects, roles, audit): one contract,
run on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("argon2")

from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ledger.accounts import AccountStore
from plinth.ledger.tables_server import audit_log, sessions, tokens, users

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"


def _pg_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """An accounts database URL (and its schema), fresh for each test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}", None
        return
    schema = f"t_{uuid.uuid4().hex}"
    yield _pg_url(schema), schema
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store(url: tuple[str, str | None]) -> Iterator[AccountStore]:
    opened = AccountStore.open(url[0], schema=url[1])
    yield opened
    opened.close()


def _dump(store: AccountStore) -> str:
    """Every stored value of every accounts table, as one text."""
    with store.engine.connect() as conn:
        rows = [
            str(tuple(row))
            for table in (users, tokens, sessions, audit_log)
            for row in conn.execute(sa.select(table))
        ]
    return "\n".join(rows)


def _expire(store: AccountStore, table: sa.Table, **where: str) -> None:
    with store.engine.begin() as conn:
        condition = sa.and_(*(table.c[k] == v for k, v in where.items()))
        conn.execute(table.update().where(condition).values(expires_at=1))


def test_users_are_added_listed_and_disabled(store: AccountStore) -> None:
    store.add_user("ada", by="root", server_admin=True)
    store.add_user("bob", by="ada", password=PASSWORD)
    assert [u.name for u in store.list_users()] == ["ada", "bob"]
    bob = store.get_user("bob")
    assert (bob.server_admin, bob.disabled, bob.has_password, bob.created_by) == (
        False,
        False,
        True,
        "ada",
    )
    assert store.has_admin()
    with pytest.raises(ConflictError, match="already exists"):
        store.add_user("bob", by="ada")
    with pytest.raises(UsageError, match="invalid user name"):
        store.add_user("../etc", by="ada")
    store.set_disabled("bob", True)
    assert store.get_user("bob").disabled
    with pytest.raises(NotFoundError):
        store.set_disabled("nobody", True)


def test_passwords_are_argon2_hashes_checked_for_enabled_users(store: AccountStore) -> None:
    store.add_user("bob", by="root", password=PASSWORD)
    dump = _dump(store)
    assert PASSWORD not in dump
    assert "$argon2id$" in dump
    assert store.check_password("bob", PASSWORD)
    assert not store.check_password("bob", PASSWORD + "x")
    assert not store.check_password("nobody", PASSWORD)
    with pytest.raises(UsageError, match="too short"):
        store.set_password("bob", "short")
    store.set_password("bob", "another long one")
    assert not store.check_password("bob", PASSWORD)
    assert store.check_password("bob", "another long one")
    store.set_disabled("bob", True)
    assert not store.check_password("bob", "another long one")


def test_tokens_keep_only_a_hash_and_stop_when_expired_revoked_or_disabled(
    store: AccountStore,
) -> None:
    store.add_user("bob", by="root")
    token, info = store.create_token("bob", by="root", projects=["flights"], scopes=["gate"])
    prefix, token_id, secret = token.split("_", 2)
    assert (prefix, token_id) == ("plt", info.id)
    assert len(secret) >= 40
    assert secret not in _dump(store)
    credential = store.check_token(token)
    assert credential is not None
    assert (credential.user, credential.projects, credential.scopes, credential.token_id) == (
        "bob",
        frozenset({"flights"}),
        frozenset({"gate"}),
        info.id,
    )
    assert store.get_token(info.id).last_used_at is not None
    assert store.check_token(f"plt_{token_id}_{'A' * len(secret)}") is None
    assert store.check_token("plt_nothex_x") is None
    assert store.check_token(token + "x") is None

    _expire(store, tokens, id=info.id)
    assert store.check_token(token) is None

    second, info2 = store.create_token("bob", by="root", expires_in_s=3600)
    assert info2.projects is None
    assert store.check_token(second) is not None
    store.set_disabled("bob", True)
    assert store.check_token(second) is None
    store.set_disabled("bob", False)
    store.revoke_token(info2.id)
    assert store.check_token(second) is None
    assert store.get_token(info2.id).revoked_at is not None
    with pytest.raises(NotFoundError):
        store.revoke_token("0" * 16)
    with pytest.raises(UsageError, match="scope"):
        store.create_token("bob", by="root", scopes=["Not A Scope"])
    with pytest.raises(NotFoundError):
        store.create_token("nobody", by="root")


def test_sessions_carry_csrf_and_end(store: AccountStore) -> None:
    store.add_user("bob", by="root", password=PASSWORD)
    session = store.create_session("bob", ttl_s=60)
    assert session.id not in _dump(store)
    credential = store.check_session(session.id)
    assert credential is not None
    assert (credential.user, credential.csrf, credential.token_id) == ("bob", session.csrf, None)
    store.end_session(session.id)
    assert store.check_session(session.id) is None

    expired = store.create_session("bob", ttl_s=60)
    _expire(store, sessions, user_name="bob")
    assert store.check_session(expired.id) is None

    live = store.create_session("bob", ttl_s=60)
    store.set_password("bob", "a brand new password")
    assert store.check_session(live.id) is None, "a new password ends every session"
    other = store.create_session("bob", ttl_s=60)
    store.set_disabled("bob", True)
    assert store.check_session(other.id) is None


def test_projects_roles_and_server_admins(store: AccountStore) -> None:
    store.add_user("root", by="root", server_admin=True)
    store.add_user("bob", by="root")
    store.add_project("flights", by="root")
    store.add_project("churn", by="root")
    with pytest.raises(ConflictError):
        store.add_project("flights", by="root")
    store.grant("bob", "flights", "read", by="root")
    store.grant("bob", "flights", "write", by="root")  # replaces
    assert store.roles_of("bob", server_admin=False) == {"flights": "write"}
    assert store.roles_of("root", server_admin=True) == {"churn": "admin", "flights": "admin"}
    assert [(m.user, m.project, m.role) for m in store.members("flights")] == [
        ("bob", "flights", "write")
    ]
    with pytest.raises(UsageError, match="unknown role"):
        store.grant("bob", "flights", "owner", by="root")
    with pytest.raises(NotFoundError):
        store.grant("bob", "nope", "read", by="root")
    store.revoke("bob", "flights")
    assert store.roles_of("bob", server_admin=False) == {}
    with pytest.raises(NotFoundError):
        store.revoke("bob", "flights")


def test_audit_is_newest_first_filtered_and_redacted(store: AccountStore) -> None:
    store.audit(user="ada", project="flights", action="a1", target="t1")
    store.audit(user="bob", project="churn", action="a2", target="t2", status="denied")
    store.audit(
        user="ada",
        project=None,
        action="a3",
        target="t3",
        detail={"password": "hunter2-secret", "role": "write"},
    )
    assert [e.action for e in store.audit_log()] == ["a3", "a2", "a1"]
    assert [e.action for e in store.audit_log(project="flights")] == ["a1"]
    assert [e.action for e in store.audit_log(user="bob")] == ["a2"]
    assert store.audit_log(user="bob")[0].status == "denied"
    newest = store.audit_log(limit=1)[0]
    assert newest.detail == {"password": "***", "role": "write"}
    assert "hunter2-secret" not in _dump(store)


def test_two_stores_on_one_database_share_every_state(url: tuple[str, str | None]) -> None:
    """What several replicas need: a session or revocation made by one is seen by another."""
    first = AccountStore.open(url[0], schema=url[1])
    second = AccountStore.open(url[0], schema=url[1])
    try:
        first.add_user("bob", by="root")
        session = first.create_session("bob", ttl_s=60)
        token, info = first.create_token("bob", by="root")
        assert second.check_session(session.id) is not None
        assert second.check_token(token) is not None
        second.revoke_token(info.id)
        assert first.check_token(token) is None
    finally:
        first.close()
        second.close()
