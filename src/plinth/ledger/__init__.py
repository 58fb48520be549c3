"""The ledger: plinth's metadata store (SQLAlchemy Core tables, Alembic migrations).

Owns every table of the metadata database, its migrations, and one small store per
aggregate, reached from an open :class:`Ledger`::

    Ledger ── projects      ProjectStore      projects, experiments
           ├─ runs          RunStore          runs, params, tags, metrics (+ latest_metrics)
           ├─ search        SearchStore       run search language, metric summaries
           ├─ artifacts     ArtifactStore     (owner record, path) -> blob digest
           ├─ environments  EnvironmentStore  Python environments by digest
           ├─ lineage       LineageStore      src —relation→ dst edges, up/downstream walks
           ├─ datasets      DatasetStore      datasets, numbered versions, tags, their blobs
           ├─ validation    ValidationStore   suite versions, validation results
           ├─ models        ModelStore        models, numbered versions, aliases (CAS), audit
           └─ gc            GcStore           referenced digests, gc events

Only :mod:`plinth.entities` records cross this package's boundary. It may import
sqlalchemy, alembic, :mod:`plinth.errors`, :mod:`plinth.ids`, :mod:`plinth.entities`,
:mod:`plinth.refs`, :func:`plinth.settings.redact` and :mod:`plinth.guards`; nothing above
the core (not even :mod:`plinth.context`).
``import plinth`` does not import it (it pulls in SQLAlchemy). The package's names load on
first access, so that :mod:`plinth.ledger.sqlite_datasets`,
:mod:`plinth.ledger.sqlite_deployments` (``plinth serve``'s deployment record) and
:mod:`plinth.ledger.sqlite_reads` (the standard library's sqlite3 only, for commands that
must start fast; ``Context.reads``) can be imported without SQLAlchemy.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.ledger.engine import create_ledger_engine, redacted_url
    from plinth.ledger.migrate import ensure_schema, head_revision
    from plinth.ledger.store import Ledger
    from plinth.ledger.tables import BLOB_REFERENCES

_LAZY = {
    "BLOB_REFERENCES": "plinth.ledger.tables",
    "Ledger": "plinth.ledger.store",
    "create_ledger_engine": "plinth.ledger.engine",
    "ensure_schema": "plinth.ledger.migrate",
    "head_revision": "plinth.ledger.migrate",
    "redacted_url": "plinth.ledger.engine",
}

__all__ = [
    "BLOB_REFERENCES",
    "Ledger",
    "create_ledger_engine",
    "ensure_schema",
    "head_revision",
    "redacted_url",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
