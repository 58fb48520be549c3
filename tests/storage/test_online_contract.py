"""The online store contract on SQLite and Redis, and what is particular to each backend."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plinth.errors import BackendError, ConfigError
from plinth.storage.online import OnlineRow, OnlineStore, open_online_store
from plinth.storage.online_redis import RedisOnlineStore
from plinth.storage.online_sqlite import SqliteOnlineStore
from plinth.testing.online_contract import OnlineStoreContract, redis_unreachable

REDIS_URI = "redis://127.0.0.1:6379/0"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _redis_reachable() -> str | None:
    return redis_unreachable(REDIS_URI)


@pytest.fixture(params=["sqlite", "redis"])
def open_online(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], OnlineStore]]:
    """Opens the same, empty store of each backend, as from the ``online_store`` setting."""
    opened: list[OnlineStore] = []
    if request.param == "sqlite":
        uri, prefix = "sqlite:///.plinth/online.db", None
    else:
        reason = _redis_reachable()
        if reason:
            pytest.skip(reason)
        uri, prefix = REDIS_URI, f"plinth-test-{uuid.uuid4().hex}:"

    def open_store() -> OnlineStore:
        store = open_online_store(uri, root=tmp_path / "project", prefix=prefix)
        opened.append(store)
        return store

    yield open_store
    if prefix is not None:
        import redis

        client = redis.Redis.from_url(REDIS_URI)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    for store in opened:
        store.close()


class TestOnlineStoreContract(OnlineStoreContract):
    pass


# -- SQLite ---------------------------------------------------------------------------------


def test_sqlite_is_the_project_file_owner_only_and_in_wal_mode(tmp_path: Path) -> None:
    with open_online_store("sqlite:///.plinth/online.db", root=tmp_path) as store:
        assert isinstance(store, SqliteOnlineStore)
        store.write("v", [OnlineRow("k", {"x": 1}, T0)], {"x": "int64"})
        path = tmp_path / ".plinth" / "online.db"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        wal = path.with_name("online.db-wal")
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "o.db"
    with open_online_store(f"sqlite:///{target}", root=tmp_path / "p") as store:
        store.write("v", [OnlineRow("k", {"x": 1}, T0)], {"x": "int64"})
    assert target.exists()


def test_sqlite_a_second_connection_sees_the_writes(tmp_path: Path) -> None:
    with open_online_store("sqlite:///o.db", root=tmp_path) as writer:
        writer.write("v", [OnlineRow("k", {"x": 1}, T0)], {"x": "int64"})
        with open_online_store("sqlite:///o.db", root=tmp_path) as reader:
            assert reader.read("v", ["k"], {"x": "int64"}) == {"x": [1]}
            writer.write("v", [OnlineRow("k", {"x": 2}, T0)], {"x": "int64"})
            assert reader.read("v", ["k"], {"x": "int64"}) == {"x": [2]}


def test_sqlite_path_that_cannot_be_created_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the folder should be")
    with pytest.raises(BackendError, match="online store") as info:
        open_online_store("sqlite:///blocker/sub/o.db", root=tmp_path)
    assert info.value.field == "online_store"


# -- the URI --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("memcached://h:1", "unknown scheme 'memcached://'"),
        (".plinth/online.db", "no scheme"),
        ("sqlite://", "no file"),
        ("sqlite:///", "no file"),
    ],
)
def test_bad_online_store_uris_name_the_setting(tmp_path: Path, uri: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        open_online_store(uri, root=tmp_path)
    assert info.value.field == "online_store"


# -- Redis ----------------------------------------------------------------------------------


def test_redis_unreachable_is_a_backend_error_without_the_password() -> None:
    pytest.importorskip("redis")
    store = open_online_store(
        "redis://:hunter22@127.0.0.1:1/0", root=Path("."), connect_timeout=0.5
    )
    assert "hunter22" not in store.describe()
    with pytest.raises(BackendError, match="online store") as info:
        store.check()
    assert info.value.field == "online_store"
    assert "hunter22" not in str(info.value)
    with pytest.raises(BackendError):
        store.read("v", ["k"], {"x": "int64"})
    store.close()


def test_redis_prefix_from_the_uri_keeps_projects_apart() -> None:
    reason = _redis_reachable()
    if reason:
        pytest.skip(reason)
    one, two = (f"plinth-test-{uuid.uuid4().hex}:" for _ in range(2))
    a = open_online_store(f"{REDIS_URI}?prefix={one}", root=Path("."))
    b = open_online_store(f"{REDIS_URI}?prefix={two}", root=Path("."))
    try:
        assert isinstance(a, RedisOnlineStore)
        a.write("v", [OnlineRow("k", {"x": 1}, T0)], {"x": "int64"})
        assert b.read("v", ["k"], {"x": "int64"}) == {"x": [None]}
        b.write("v", [OnlineRow("k", {"x": 2}, T0)], {"x": "int64"})
        b.delete_view("v")
        assert a.read("v", ["k"], {"x": "int64"}) == {"x": [1]}
        assert one in a.describe()
    finally:
        a.delete_view("v")
        a.close()
        b.close()


def test_redis_prefix_with_glob_characters_deletes_only_its_own_view() -> None:
    reason = _redis_reachable()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex
    star = open_online_store(REDIS_URI, root=Path("."), prefix=f"t-{tag}-*:")
    plain = open_online_store(REDIS_URI, root=Path("."), prefix=f"t-{tag}-x:")
    try:
        plain.write("v", [OnlineRow("k", {"x": 1}, T0)], {"x": "int64"})
        star.write("v", [OnlineRow("k", {"x": 2}, T0)], {"x": "int64"})
        star.delete_view("v")
        assert plain.read("v", ["k"], {"x": "int64"}) == {"x": [1]}
        assert star.read("v", ["k"], {"x": "int64"}) == {"x": [None]}
    finally:
        plain.delete_view("v")
        star.close()
        plain.close()


def test_sqlite_write_columns_stores_the_same_bytes_as_write(tmp_path: Path) -> None:
    import math

    import pyarrow as pa

    features = {"x": "float64", "n": "int64", "s": "string", "t": "timestamp"}
    xs = [0.1, math.nan, -math.inf, None, 1e-7]
    columns = {
        "x": pa.array(xs),
        "n": pa.array([1, None, -(2**63), 2**63 - 1, 0]),
        "s": pa.array(["a\u2028", None, '"', "\\", "\U0001f600"]),
        "t": pa.array([T0, None, T0, T0, T0], pa.timestamp("s", "UTC")),
    }
    keys = [pa.array(["k", "k", "l", "m", "n"]), pa.array([1, 1, 2, 3, 4])]
    events = [T0, T0, T0, T0, datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)]
    with open_online_store("sqlite:///o.db", root=tmp_path) as store:
        store.write_columns("cols", keys, columns, events, features)
        rows = [
            OnlineRow(
                (keys[0][i].as_py(), keys[1][i].as_py()),
                {name: column[i].as_py() for name, column in columns.items()},
                events[i],
            )
            for i in range(len(events))
        ]
        store.write("rows", rows, features)
    with sqlite3.connect(tmp_path / "o.db") as conn:
        query = "SELECT key, ts, CAST(vals AS BLOB) FROM online_rows WHERE view = ? ORDER BY key"
        stored = conn.execute(query, ("cols",)).fetchall()
        assert stored == conn.execute(query, ("rows",)).fetchall()
    assert len(stored) == 4
    assert stored[-1][1] == -1  # before the epoch: microseconds are floored
