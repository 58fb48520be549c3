"""The :class:`Ledger` facade: one open metadata database and its per-aggregate stores."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import sqlalchemy as sa

from plinth.errors import UsageError
from plinth.ledger._common import Db
from plinth.ledger.artifacts import ArtifactStore
from plinth.ledger.datasets import DatasetStore
from plinth.ledger.deployments import DeploymentStore
from plinth.ledger.engine import create_ledger_engine, redacted_url, translate_errors
from plinth.ledger.environments import EnvironmentStore
from plinth.ledger.features import FeatureStore
from plinth.ledger.gc import GcStore
from plinth.ledger.lineage import LineageStore
from plinth.ledger.migrate import current_revision, ensure_schema
from plinth.ledger.models import ModelStore
from plinth.ledger.monitoring import MonitoringStore
from plinth.ledger.pipelines import PipelineStore
from plinth.ledger.projects import ProjectStore
from plinth.ledger.runs import RunStore
from plinth.ledger.search import SearchStore
from plinth.ledger.validation import ValidationStore

__all__ = ["Ledger"]


class Ledger:
    """An open ledger. Build with :meth:`Ledger.open`; use as a context manager.

    >>> with Ledger.open("sqlite:////tmp/p/plinth.db", user="ada") as ledger:  # doctest: +SKIP
    ...     project = ledger.projects.ensure_project("flights")
    """

    def __init__(
        self, engine: sa.Engine, *, url: str, user: str, migrations_applied: Sequence[str] = ()
    ) -> None:
        self._db = Db(engine, url=redacted_url(url), user=user)
        #: The schema revisions :meth:`open` applied (empty when the schema was current).
        self.migrations_applied: tuple[str, ...] = tuple(migrations_applied)
        self.projects = ProjectStore(self._db)
        self.runs = RunStore(self._db)
        self.search = SearchStore(self._db)
        self.artifacts = ArtifactStore(self._db)
        self.environments = EnvironmentStore(self._db)
        self.lineage = LineageStore(self._db)
        self.datasets = DatasetStore(self._db)
        self.deployments = DeploymentStore(self._db)
        self.validation = ValidationStore(self._db)
        self.models = ModelStore(self._db)
        self.monitoring = MonitoringStore(self._db)
        self.features = FeatureStore(self._db)
        self.pipelines = PipelineStore(self._db)
        self.gc = GcStore(self._db)

    @classmethod
    def open(
        cls, url: str, *, user: str, connect_timeout: float = 5.0, migrate: bool = True
    ) -> Ledger:
        """Connect to the ``metadata`` database and bring its schema up to date.

        Raises ConfigError for a bad URL and LedgerUnavailableError when the database
        cannot be reached.
        """
        if not isinstance(user, str) or not user.strip():
            raise UsageError(f"the ledger needs a user name to record, got {user!r}")
        engine = create_ledger_engine(url, connect_timeout=connect_timeout)
        try:
            applied = ensure_schema(engine) if migrate else []
            ledger = cls(engine, url=url, user=user, migrations_applied=applied)
            if not migrate:
                ledger.ping()
        except BaseException:
            engine.dispose()
            raise
        return ledger

    @property
    def engine(self) -> sa.Engine:
        return self._db.engine

    @property
    def url(self) -> str:
        """The database URL with any password replaced by ``***``."""
        return self._db.url

    @property
    def user(self) -> str:
        """The name recorded as ``created_by`` on every write."""
        return self._db.user

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None if it was never migrated."""
        return current_revision(self._db.engine)

    def ping(self) -> None:
        """Check the database answers; LedgerUnavailableError if it does not."""
        with translate_errors(self._db.url), self._db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection; the ledger cannot be used afterwards."""
        self._db.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r}, user={self.user!r})"
