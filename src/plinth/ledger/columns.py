"""What every ledger table is made of: the shared ``metadata`` (with the constraint naming
convention the migrations use) and the column types. :mod:`plinth.ledger.tables` and the
per-concept table modules (``tables_features``, ``tables_pipelines``) build on it."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["ID", "MS", "NAME", "NAMING_CONVENTION", "REF_ID", "USER", "created_columns", "metadata"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ID = sa.String(36)
#: A record reference's id: wider than a UUID so refs to digests or names fit later.
REF_ID = sa.String(64)
NAME = sa.String(255)
USER = sa.String(255)
MS = sa.BigInteger


def created_columns() -> tuple[sa.Column[int], sa.Column[str]]:
    """``created_at`` and ``created_by``: every table has them."""
    return (
        sa.Column("created_at", MS, nullable=False),
        sa.Column("created_by", USER, nullable=False),
    )
