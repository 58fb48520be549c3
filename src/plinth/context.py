"""The Context: resolved settings plus the stores they open, passed explicitly.

Nothing is opened at import time. ``Context.ledger``, ``Context.blobs`` and
``Context.online_store`` open their backend on first use and keep it until
:meth:`Context.close`. The module-level helpers
:func:`init` and :func:`current` keep one "current" context for the convenience API
(``plinth.start_run`` and friends); library code takes a Context argument instead.

Every public function takes ``ctx: Context | None = None`` (keyword-only, last) and passes
it to :func:`resolve_context`: ``None`` means the active run's context if a run is active
in this process (tracking registers it with :func:`enter_run`), else :func:`current`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from plinth.settings import Settings, load_settings

if TYPE_CHECKING:
    from types import TracebackType

    from plinth.entities import Project
    from plinth.ledger import Ledger
    from plinth.ledger.remote import RemoteLedger
    from plinth.ledger.sqlite_reads import SqliteReads
    from plinth.storage import ContentStore
    from plinth.storage.http_blobs import HttpBlobStore
    from plinth.storage.online import OnlineStore

__all__ = [
    "Context",
    "RunScope",
    "current",
    "init",
    "resolve_context",
    "run_scope",
    "watch_runs",
]


def resolve_metadata_url(settings: Settings) -> str:
    """The ``metadata`` URL with a relative SQLite path made absolute from the project root."""
    url = settings.metadata
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix) :]
        path, sep, query = rest.partition("?")
        if path and path != ":memory:":
            return prefix + str(settings.resolve_path(path)) + sep + query
    return url


class Context:
    """Settings and the opened ledger and blob store of one project."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._ledger: Ledger | None = None
        self._blobs: ContentStore | None = None
        self._online: OnlineStore | None = None
        self._project: Project | None = None
        self._reads: SqliteReads | None = None
        #: (process, thread) that opened ``_reads``: a sqlite3 connection is used by its
        #: own thread only, and never across a fork.
        self._reads_owner: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, start: Path | str | None = None, **overrides: Any) -> Context:
        """A context for the project around ``start`` (default: the working directory)."""
        return cls(load_settings(start, overrides=overrides))

    @property
    def user(self) -> str:
        return self.settings.user_name

    @property
    def ledger(self) -> Ledger:
        """The metadata ledger, opened (and migrated if needed) on first use."""
        if self._ledger is None:
            with self._lock:
                if self._ledger is None and self.settings.server:
                    self._ledger = cast("Ledger", self._remote_ledger())
                elif self._ledger is None:
                    from plinth.ledger import Ledger

                    self._ledger = Ledger.open(
                        resolve_metadata_url(self.settings),
                        user=self.user,
                        connect_timeout=self.settings.connect_timeout,
                    )
        return self._ledger

    @property
    def reads(self) -> Ledger:
        """The ledger for reading: on an embedded SQLite ledger at the current schema, the
        everyday reads run on the standard library's sqlite3
        (:mod:`plinth.ledger.sqlite_reads`, the same methods and records), so that
        read-only commands start without importing SQLAlchemy; otherwise :attr:`ledger`.

        Once :attr:`ledger` is open, or from a thread or process (after a fork) other than
        the one that first read, this is :attr:`ledger`.
        """
        import os

        here = (os.getpid(), threading.get_ident())
        if self._ledger is None and self._reads_owner is None and not self.settings.server:
            from plinth.ledger.sqlite_reads import open_sqlite_reads

            with self._lock:
                if self._reads_owner is None:
                    self._reads = open_sqlite_reads(
                        resolve_metadata_url(self.settings), user=self.user, full=self._full
                    )
                    self._reads_owner = here
        if self._ledger is None and self._reads is not None and self._reads_owner == here:
            return cast("Ledger", self._reads)
        return self.ledger

    def _full(self) -> Ledger:
        return self.ledger

    @property
    def blobs(self) -> ContentStore:
        """The content-addressed artifact store, opened on first use."""
        if self._blobs is None:
            with self._lock:
                if self._blobs is None and self.settings.server:
                    from plinth.storage import ContentStore

                    self._blobs = ContentStore(self._remote_blobs())
                elif self._blobs is None:
                    from plinth.storage import ContentStore, open_blob_store

                    store = open_blob_store(
                        self.settings.artifacts,
                        root=self.settings.root,
                        endpoint_url=self.settings.s3_endpoint_url,
                        connect_timeout=self.settings.connect_timeout,
                    )
                    self._blobs = ContentStore(store, fsync=self.settings.blob_fsync)
        return self._blobs

    def _token(self) -> str | None:
        import os

        from plinth.settings import TOKEN_ENV

        return os.environ.get(TOKEN_ENV) or None

    def _remote_ledger(self) -> RemoteLedger:
        from plinth.ledger.remote import RemoteLedger

        assert self.settings.server is not None
        return RemoteLedger(
            self.settings.server,
            project=self.settings.project_name,
            token=self._token(),
            timeout=max(self.settings.connect_timeout, 30.0),
        )

    def _remote_blobs(self) -> HttpBlobStore:
        from plinth.errors import BlobStoreError
        from plinth.guards.team_client import TeamClient
        from plinth.storage.http_blobs import HttpBlobStore

        assert self.settings.server is not None
        client = TeamClient(
            self.settings.server,
            token=self._token(),
            timeout=max(self.settings.connect_timeout, 30.0),
            unavailable=BlobStoreError,
        )
        return HttpBlobStore(client, self.settings.project_name)

    @property
    def online_store(self) -> OnlineStore:
        """The online feature store (the ``online_store`` setting), opened on first use."""
        if self._online is None:
            with self._lock:
                if self._online is None:
                    from plinth.storage.online import open_online_store

                    # Like the ledger's PostgreSQL and the S3 artifacts, the online store is
                    # infrastructure the team configures: not behind the outbound guard.
                    self._online = open_online_store(
                        self.settings.online_store,
                        root=self.settings.root,
                        connect_timeout=self.settings.connect_timeout,
                    )
        return self._online

    @property
    def project(self) -> Project:
        """This project's ledger record, created on first use."""
        if self._project is None:
            self._project = self.reads.projects.ensure_project(self.settings.project_name)
        return self._project

    def close(self) -> None:
        if self._reads is not None:
            import os

            if self._reads_owner == (os.getpid(), threading.get_ident()):
                self._reads.close()
            # else: opened by another thread (a model server's start-up thread), and
            # sqlite3 lets no other thread close it; it is closed when collected.
            self._reads = None
        self._reads_owner = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._blobs is not None:
            self._blobs.close()
            self._blobs = None
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Context(project={self.settings.project_name!r}, root={str(self.settings.root)!r})"


_current: Context | None = None
_current_lock = threading.Lock()


def init(path: Path | str | None = None, **overrides: Any) -> Context:
    """Find plinth.yaml upward from ``path`` (or use the embedded default) and make it current.

    Example::

        ctx = plinth.init()                       # ./plinth.yaml, or .plinth/ here
        ctx = plinth.init(metadata="sqlite:///:memory:", artifacts="memory://t")
    """
    global _current
    ctx = Context.open(path, **overrides)
    with _current_lock:
        old, _current = _current, ctx
    if old is not None:
        old.close()
    return ctx


def set_current(ctx: Context) -> None:
    """Make ``ctx`` the current context (a pipeline worker process adopts its runner's)."""
    global _current
    with _current_lock:
        _current = ctx


def current() -> Context:
    """The context set by :func:`init`, initialising the default one on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Context.open()
        return _current


@dataclass(frozen=True)
class RunScope:
    """The run active in this process and the context it was started with."""

    run_id: str
    ctx: Context


# Kept here, not in tracking, so that every layer can ask without importing tracking.
_runs: list[RunScope] = []
# Runs started while a pipeline step runs are collected here (see watch_runs).
_watched: ContextVar[list[str] | None] = ContextVar("plinth_watched_runs", default=None)

#: Set by a pipeline step in the environment of a process it starts (a notebook's kernel)
#: to its step run id: ``plinth.start_run`` there records ``step_run -ran-> run``. The
#: leading underscore keeps it out of the ``PLINTH_*`` settings.
STEP_RUN_ENV = "_PLINTH_STEP_RUN"


def outer_step_run() -> str | None:
    """The step run id a parent process gave this one (:data:`STEP_RUN_ENV`), if any."""
    import os

    return os.environ.get(STEP_RUN_ENV) or None


def note_runs(run_ids: list[str]) -> None:
    """Count ``run_ids`` (started in another process for the step running here) among the
    runs :func:`watch_runs` collects."""
    started = _watched.get()
    if started is not None:
        started.extend(r for r in run_ids if r not in started)


def enter_run(run_id: str, ctx: Context) -> None:
    """Make ``run_id`` the active run (called by ``plinth.start_run``)."""
    with _current_lock:
        _runs.append(RunScope(run_id, ctx))
    started = _watched.get()
    if started is not None:
        started.append(run_id)


@contextmanager
def watch_runs() -> Iterator[list[str]]:
    """Collect the ids of the runs started in this context (and threads running a copy of
    it) until the block ends: how a pipeline step learns which run it trained."""
    started: list[str] = []
    token = _watched.set(started)
    try:
        yield started
    finally:
        _watched.reset(token)


def leave_run(run_id: str) -> None:
    """The run ``run_id`` ended: the run started before it (if any) is active again."""
    with _current_lock:
        for i in range(len(_runs) - 1, -1, -1):
            if _runs[i].run_id == run_id:
                del _runs[i]
                break


def run_scope() -> RunScope | None:
    """The innermost active run of this process, or None."""
    with _current_lock:
        return _runs[-1] if _runs else None


def resolve_context(ctx: Context | None = None) -> Context:
    """``ctx``, else the active run's context, else the process default (:func:`current`).

    The one rule behind every public function's ``ctx=None``.
    """
    if ctx is not None:
        return ctx
    scope = run_scope()
    return scope.ctx if scope is not None else current()
