"""The sqlite3 deployment store (:mod:`plinth.ledger.sqlite_deployments`) saves exactly what
the SQLAlchemy store saves, over one database: the same rows, numbers and errors."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plinth.errors import PlinthError
from plinth.ledger import Ledger
from plinth.ledger.sqlite_deployments import SqliteDeploymentStore, open_sqlite_deployments

from .conftest import sqlite_url

SPEC = {"name": "web", "model": "m@champion", "logging": {"sample": 0.5}, "limits": {"a": [1]}}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(sqlite_url(tmp_path), user="tester") as opened:
        yield opened


def _fast(ledger: Ledger, user: str = "tester") -> SqliteDeploymentStore:
    store = open_sqlite_deployments(ledger.url, user=user)
    assert store is not None
    return store


def _raw(ledger: Ledger, name: str) -> list[tuple[Any, ...]]:
    """The stored rows of deployment ``name`` as SQLite holds them (types included)."""
    path = ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT number, digest, spec, typeof(created_at), created_by FROM deployments "
            "WHERE name = ? ORDER BY number",
            (name,),
        ).fetchall()


def test_saves_like_the_sqlalchemy_store(ledger: Ledger) -> None:
    project = ledger.projects.ensure_project("p")
    fast = _fast(ledger)
    try:
        # the same text is the same version, whichever store wrote it first
        written = ledger.deployments.save(project.id, "web", "a" * 64, SPEC)
        assert fast.save(project.id, "web", "a" * 64, SPEC) == written
        again = fast.save(project.id, "web", "b" * 64, {**SPEC, "model": "m@2"})
        assert again.number == 2
        assert ledger.deployments.save(project.id, "web", "b" * 64, {}) == again
        assert ledger.deployments.get(project.id, "web") == again
        assert ledger.deployments.get_by_id(again.id) == again
        assert again.spec == {**SPEC, "model": "m@2"}
        assert (again.created_by, again.digest) == ("tester", "b" * 64)
        assert again.project_id == project.id
        # a third text after both: numbered on from what either wrote
        assert ledger.deployments.save(project.id, "web", "c" * 64, SPEC).number == 3
        assert fast.save(project.id, "web", "d" * 64, SPEC).number == 4
        # each name numbers its own versions
        assert fast.save(project.id, "api", "a" * 64, SPEC).number == 1
        # the stored row is the same, column by column, as the SQLAlchemy store's
        ledger.deployments.save(project.id, "by-full", "e" * 64, SPEC)
        fast.save(project.id, "by-fast", "e" * 64, SPEC)
        assert _raw(ledger, "by-fast") == _raw(ledger, "by-full")
        assert _raw(ledger, "by-fast")[0][3] == "integer"  # created_at in epoch ms
    finally:
        fast.close()


BAD: list[tuple[str, Callable[[Any, str], Any]]] = [
    ("empty name", lambda store, p: store.save(p, " ", "a" * 64, SPEC)),
    ("name not text", lambda store, p: store.save(p, 7, "a" * 64, SPEC)),
    ("name too long", lambda store, p: store.save(p, "n" * 256, "a" * 64, SPEC)),
    ("digest not hex", lambda store, p: store.save(p, "web", "A" * 64, SPEC)),
    ("digest short", lambda store, p: store.save(p, "web", "a" * 63, SPEC)),
    ("spec not a mapping", lambda store, p: store.save(p, "web", "a" * 64, ["x"])),
]


@pytest.mark.parametrize(("case", "call"), BAD, ids=[case for case, _ in BAD])
def test_rejects_what_the_sqlalchemy_store_rejects(
    ledger: Ledger, case: str, call: Callable[[Any, str], Any]
) -> None:
    project = ledger.projects.ensure_project("p")
    fast = _fast(ledger)
    try:
        with pytest.raises(PlinthError) as from_full:
            call(ledger.deployments, project.id)
        with pytest.raises(PlinthError) as from_fast:
            call(fast, project.id)
    finally:
        fast.close()
    assert type(from_fast.value) is type(from_full.value)
    assert from_fast.value.message == from_full.value.message
    assert _raw(ledger, "web") == []


def test_savers_in_parallel_get_one_row_per_text(ledger: Ledger) -> None:
    project = ledger.projects.ensure_project("p")
    found: list[tuple[int, str]] = []
    digests = [c * 64 for c in "0123456789abcdef"] * 2  # each text saved twice
    together = threading.Barrier(len(digests))

    def save(digest: str) -> None:
        store = _fast(ledger)
        try:
            together.wait(timeout=30)
            version = store.save(project.id, "web", digest, SPEC)
            found.append((version.number, version.digest))
        finally:
            store.close()

    threads = [threading.Thread(target=save, args=(d,)) for d in digests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == len(digests)
    numbers = {digest: number for number, digest in found}
    assert sorted(set(found)) == sorted((n, d) for d, n in numbers.items())  # one per text
    assert sorted(numbers.values()) == list(range(1, 17))  # consecutive, none lost


BATCH: dict[str, Any] = {
    "start_ms": 1000,
    "end_ms": 2000,
    "rows": 3,
    "digest": "f" * 64,
    "model_versions": ["m@2", "m@1", "m@2"],
    "first_request_id": "0190a",
    "last_request_id": "0190b",
    "dropped": 4,
}


def _raw_batches(ledger: Ledger) -> list[tuple[Any, ...]]:
    path = ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT deployment_id, start_ms, end_ms, rows, digest, model_versions, "
            "first_request_id, last_request_id, dropped, typeof(created_at), created_by, "
            "profile_digest FROM prediction_batches ORDER BY created_at, id"
        ).fetchall()


def test_records_batches_like_the_sqlalchemy_store(ledger: Ledger) -> None:
    project = ledger.projects.ensure_project("p")
    version = ledger.deployments.save(project.id, "web", "a" * 64, SPEC)
    fast = _fast(ledger)
    try:
        by_full = ledger.deployments.record_batch(version, **BATCH)
        by_fast = fast.record_batch(version, **BATCH)
    finally:
        fast.close()
    assert by_fast.model_versions == ("m@1", "m@2")
    assert by_fast != by_full  # two batches: their own ids
    assert {**vars(by_fast), "id": "", "created_at": 0} == {
        **vars(by_full),
        "id": "",
        "created_at": 0,
    }
    first, second = _raw_batches(ledger)
    assert first == second
    assert ledger.deployments.find_batch("0190a") in (by_full, by_fast)
    assert by_fast in ledger.deployments.batches(version.id)


BAD_BATCHES: list[tuple[str, dict[str, Any]]] = [
    ("digest", {"digest": "x"}),
    ("rows negative", {"rows": -1}),
    ("rows bool", {"rows": True}),
    ("rows zero", {"rows": 0}),
    ("dropped", {"dropped": 1.5}),
    ("ends before it starts", {"end_ms": 999}),
    ("ids out of order", {"last_request_id": "0190"}),
]


@pytest.mark.parametrize(("case", "change"), BAD_BATCHES, ids=[c for c, _ in BAD_BATCHES])
def test_rejects_the_batches_the_sqlalchemy_store_rejects(
    ledger: Ledger, case: str, change: dict[str, Any]
) -> None:
    project = ledger.projects.ensure_project("p")
    version = ledger.deployments.save(project.id, "web", "a" * 64, SPEC)
    fast = _fast(ledger)
    try:
        with pytest.raises(PlinthError) as from_full:
            ledger.deployments.record_batch(version, **{**BATCH, **change})
        with pytest.raises(PlinthError) as from_fast:
            fast.record_batch(version, **{**BATCH, **change})
    finally:
        fast.close()
    assert type(from_fast.value) is type(from_full.value)
    assert from_fast.value.message == from_full.value.message
    assert _raw_batches(ledger) == []


def test_only_a_current_embedded_ledger_gets_the_store(tmp_path: Path) -> None:
    assert open_sqlite_deployments("sqlite:///relative.db", user="u") is None
    assert open_sqlite_deployments(f"sqlite:///{tmp_path}/missing.db", user="u") is None
    assert open_sqlite_deployments("postgresql+psycopg://u@h/db", user="u") is None
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001_initial')")
    assert open_sqlite_deployments(f"sqlite:///{old}", user="u") is None
