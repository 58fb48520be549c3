"""Alembic environment for the ledger: runs on the connection the migrator passes in.

plinth configures Alembic in code (:mod:`plinth.ledger.migrate`); there is no alembic.ini,
no logging setup and no offline mode. The caller owns the transaction and the lock.
"""

from __future__ import annotations

from alembic import context

from plinth.ledger.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run ledger migrations through plinth.ledger.ensure_schema")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
