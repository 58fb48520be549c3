"""The sqlite3 fast path of the dataset store passes the same contract, over the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plinth.ledger import Ledger, head_revision
from plinth.ledger.migrate import HEAD
from plinth.ledger.sqlite_datasets import SCHEMA_REVISION, open_sqlite_datasets
from plinth.testing.dataset_contract import DatasetStoreContract

from .conftest import sqlite_url


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(sqlite_url(tmp_path), user="tester") as opened:
        yield opened


class TestSqliteDatasetStore(DatasetStoreContract):
    def datasets(self, ledger: Ledger) -> Any:
        store = open_sqlite_datasets(ledger.url, user=ledger.user)
        assert store is not None
        return store


def test_the_fast_path_knows_the_newest_schema() -> None:
    # A new migration must update the fast path's SQL (or it silently falls back).
    assert head_revision() == SCHEMA_REVISION == HEAD


def test_both_stores_read_what_the_other_wrote(ledger: Ledger) -> None:
    fast = open_sqlite_datasets(ledger.url, user=ledger.user)
    assert fast is not None
    project = ledger.projects.ensure_project("p")
    dataset = fast.ensure(project.id, "d")
    schema = [{"name": "x", "type": "double"}]
    v1, _ = fast.add_version(
        dataset,
        kind="table",
        manifest_digest="a" * 64,
        size=3,
        file_count=1,
        row_count=2,
        schema=schema,
        message="fast",
    )
    assert ledger.datasets.resolve(dataset, 1) == v1
    ledger.datasets.add_version(
        dataset, kind="table", manifest_digest="b" * 64, size=4, file_count=1, schema=schema
    )
    ledger.datasets.set_tag(dataset, "gold", 2)
    assert fast.resolve(dataset, "gold") == ledger.datasets.resolve(dataset, 2)
    assert fast.list_versions(dataset) == ledger.datasets.list_versions(dataset)
    assert fast.ensure_project("p") == project.id
    fast.close()


def test_other_databases_get_no_fast_path(tmp_path: Path) -> None:
    assert open_sqlite_datasets("sqlite:///relative.db", user="u") is None
    assert open_sqlite_datasets(f"sqlite:///{tmp_path}/missing.db", user="u") is None
    assert open_sqlite_datasets("postgresql+psycopg://root@127.0.0.1/test", user="u") is None
    (tmp_path / "old.db").write_bytes(b"")
    assert open_sqlite_datasets(f"sqlite:///{tmp_path}/old.db", user="u") is None
