"""Each server project's own ledger database and blob store, opened lazily and cached.

Projects are physically apart: a SQLite file and an artifacts folder per project under the
server root, or a PostgreSQL schema and an S3 prefix per project. A ledger call made for
project A therefore cannot reach project B's records. Engines and blob stores are cached per
process (thread-safe); nothing is opened at start, only when a project is first used.
"""

from __future__ import annotations

import shutil
import threading
from typing import TYPE_CHECKING

from plinth.api.config import ServerConfig, check_project_name
from plinth.errors import ConflictError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from plinth.ledger import Ledger
    from plinth.storage import ContentStore

__all__ = ["Spaces"]


class Spaces:
    """Thread-safe caches of the projects' ledger engines and blob stores."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._engines: dict[str, sa.Engine] = {}
        self._blobs: dict[str, ContentStore] = {}
        self._lock = threading.Lock()

    def ledger(self, project: str, user: str) -> Ledger:
        """A ledger on ``project``'s cached engine that records ``user`` as the writer."""
        from plinth.ledger import Ledger

        return Ledger(self._engine(project), url=self.config.project_metadata(project), user=user)

    def blobs(self, project: str) -> ContentStore:
        """``project``'s content-addressed blob store."""
        check_project_name(project)
        with self._lock:
            store = self._blobs.get(project)
            if store is None:
                from plinth.storage import ContentStore, open_blob_store

                embedded = self.config.embedded
                root = embedded.root if embedded else self.config.root
                raw = open_blob_store(
                    self.config.project_artifacts(project),
                    root=root,
                    endpoint_url=embedded.s3_endpoint if embedded else self.config.s3_endpoint,
                )
                store = self._blobs[project] = ContentStore(raw)
            return store

    def create(self, project: str) -> None:
        """Create ``project``'s ledger (migrated, with its project record) and blob folder."""
        from plinth.ledger import Ledger

        check_project_name(project)
        if self.config.embedded is not None:
            raise ConflictError(
                "this server serves only the local project; it cannot create others",
                hint="run 'plinth server' for a team server with projects",
            )
        if self.config.metadata is None:
            self._create_sqlite(project)
        else:
            self._create_schema(project)
        if self.config.artifacts is None:
            (self.config.root / "projects" / project / "artifacts").mkdir(
                mode=0o700, parents=True, exist_ok=True
            )
        Ledger(self._engine(project), url="", user="server").projects.ensure_project(project)

    def names(self) -> list[str]:
        """The projects this process has opened (the accounts store lists them all)."""
        with self._lock:
            return sorted(set(self._engines) | set(self._blobs))

    def close(self) -> None:
        """Dispose every cached engine and close every blob store."""
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            for store in self._blobs.values():
                store.close()
            self._engines.clear()
            self._blobs.clear()

    def _engine(self, project: str) -> sa.Engine:
        check_project_name(project)
        with self._lock:
            engine = self._engines.get(project)
            if engine is None:
                from plinth.ledger.engine import create_ledger_engine
                from plinth.ledger.migrate import ensure_schema

                engine = create_ledger_engine(self.config.project_metadata(project))
                try:
                    ensure_schema(engine)  # a no-op when current; upgrades after a release
                except BaseException:
                    engine.dispose()
                    raise
                self._engines[project] = engine
            return engine

    def _create_sqlite(self, project: str) -> None:
        """Copy a migrated, empty template (migrating from scratch costs ~60 ms)."""
        from plinth.ledger.engine import create_ledger_engine
        from plinth.ledger.migrate import ensure_schema

        (self.config.root / "projects").mkdir(mode=0o700, exist_ok=True)
        folder = self.config.root / "projects" / project
        target = folder / "plinth.db"
        if target.exists():
            return
        template = self.config.root / ".template" / "plinth.db"
        with self._lock:
            if not template.exists():
                template.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                engine = create_ledger_engine(f"sqlite:///{template}")
                try:
                    ensure_schema(engine)
                finally:
                    engine.dispose()
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = folder / "plinth.db.partial"
            shutil.copyfile(template, partial)
            partial.chmod(0o600)
            partial.replace(target)

    def _create_schema(self, project: str) -> None:
        import sqlalchemy as sa

        from plinth.ledger.engine import create_ledger_engine

        assert self.config.metadata is not None
        engine = create_ledger_engine(self.config.metadata)
        try:
            with engine.begin() as conn:
                schema = self.config.project_schema(project)
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        finally:
            engine.dispose()
