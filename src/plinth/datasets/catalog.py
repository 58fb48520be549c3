"""Which dataset store a command talks to, and how it resolves a reference (:mod:`plinth.refs`).

An embedded SQLite ledger at the current schema is read and written through the standard
library's sqlite3 (:mod:`plinth.ledger.sqlite_datasets`), so that ``plinth data status``
does not pay ~0.4 s of SQLAlchemy and Alembic imports; every other ledger, or one that
needs migrating, goes through ``ctx.ledger.datasets``. Both honour one contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.refs import parse_ref

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Dataset, DatasetVersion

__all__ = ["Catalog", "open_catalog"]


@dataclass
class Catalog:
    """A dataset store and the id of the project it is used for."""

    store: Any  # DatasetStore or SqliteDatasetStore: the same methods
    project_id: str

    def dataset(self, name: str) -> Dataset:
        dataset: Dataset = self.store.get(self.project_id, name)
        return dataset

    def resolve(self, ref: str, default: str | int | None = None) -> DatasetVersion:
        """The version a reference names (``default`` when it names the latest)."""
        parsed = parse_ref(ref, what="dataset")
        version: DatasetVersion = self.store.resolve(
            self.dataset(parsed.name), default if parsed.is_latest else parsed.spec
        )
        return version


@contextmanager
def open_catalog(ctx: Context) -> Iterator[Catalog]:
    """The fast sqlite3 store when it applies, else the ledger's own."""
    from plinth.context import resolve_metadata_url
    from plinth.ledger.sqlite_datasets import open_sqlite_datasets

    # With a team server the local 'metadata' file is not the project's ledger.
    fast = (
        None
        if ctx.settings.server
        else open_sqlite_datasets(resolve_metadata_url(ctx.settings), user=ctx.user)
    )
    if fast is None:
        yield Catalog(ctx.ledger.datasets, ctx.project.id)
        return
    try:
        yield Catalog(fast, fast.ensure_project(ctx.settings.project_name))
    finally:
        fast.close()
