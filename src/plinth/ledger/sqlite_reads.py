"""The ledger's everyday reads over the standard library's sqlite3, for commands that must
start fast.

``plinth runs list``, ``runs show``, ``models show`` and ``monitor reports`` should answer in
well under 0.3 s, and importing SQLAlchemy alone costs 0.2-0.3 s on a small machine. For an
embedded (SQLite) ledger whose schema is current, :func:`open_sqlite_reads` returns a
:class:`SqliteReads`: the :class:`~plinth.ledger.Ledger`'s stores with the same method
names, signatures and records. Only the common, successful reads run here; everything else —
a method not written here, the search language (``where``, ``order_by``, ``columns``), a
record that is not found, an argument to reject — is handed to the full ledger (opened
lazily through ``full``), so errors, writes and rare queries have one implementation. A test
runs both over one database and compares the answers.
"""

from __future__ import annotations

import builtins
import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from plinth.entities import (
    Artifact,
    Environment,
    Experiment,
    LineageEdge,
    MetricSummary,
    Model,
    ModelVersion,
    MonitorReport,
    Project,
    RecordRef,
    Run,
    RunRow,
)
from plinth.ledger.model_rows import (
    check_model_name,
    model_of,
    model_version_of,
    parse_model_spec,
)
from plinth.ledger.record_rows import (
    MIN_RUN_PREFIX,
    artifact_of,
    check_run_status,
    edge_of,
    environment_of,
    experiment_of,
    from_db_float,
    no_run,
    project_of,
    report_of,
    run_of,
)
from plinth.ledger.sqlite_datasets import (
    SqliteDatasetStore,
    chunks,
    connect_current,
    transaction,
)

if TYPE_CHECKING:
    from plinth.ledger.store import Ledger

__all__ = ["SqliteReads", "open_sqlite_reads"]

_RUN_ID = re.compile(r"[0-9a-f-]+")


def open_sqlite_reads(url: str, *, user: str, full: Callable[[], Ledger]) -> SqliteReads | None:
    """Fast reads of the ``sqlite:////ABSOLUTE/PATH`` ledger ``url`` at the current schema;
    None for any other ledger (use ``full()`` then). ``full`` opens the complete ledger."""
    conn = connect_current(url)
    return None if conn is None else SqliteReads(conn, url=url, user=user, full=full)


def _decoded(row: sqlite3.Row, *json_columns: str) -> dict[str, Any]:
    """``row`` as a dict with its JSON columns parsed (SQLAlchemy's JSON type does that)."""
    found = dict(zip(row.keys(), tuple(row), strict=True))
    for column in json_columns:
        if found[column] is not None:
            found[column] = json.loads(found[column])
    return found


class SqliteReads:
    """The ledger's read methods on one sqlite3 connection (one thread at a time)."""

    def __init__(
        self, conn: sqlite3.Connection, *, url: str, user: str, full: Callable[[], Ledger]
    ) -> None:
        self._conn = conn
        self.url = url
        self.user = user
        self._full = full
        # The dataset commands' own fast store, on the same connection.
        self.datasets = SqliteDatasetStore(conn, url=url, user=user)
        self.projects = _Projects(self)
        self.runs = _Runs(self)
        self.search = _Search(self)
        self.environments = _Environments(self)
        self.artifacts = _Artifacts(self)
        self.lineage = _Lineage(self)
        self.models = _Models(self)
        self.monitoring = _Monitoring(self)
        # ``plinth lineage``'s reads; that module builds on this one's ``_Part``.
        from plinth.ledger.sqlite_lineage_reads import Deployments, Pipelines, Validation

        self.deployments = Deployments(self)
        self.pipelines = Pipelines(self)
        self.validation = Validation(self)

    def __getattr__(self, name: str) -> Any:
        # Stores not read here (features, accounts, ...): the full ledger's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._full(), name)

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction: the queries inside see one snapshot."""
        return transaction(self._conn, self.url)

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteReads({self.url!r}, user={self.user!r})"


class _Part:
    """One store's fast reads; any other method is the full ledger's store's."""

    store: ClassVar[str]

    def __init__(self, reads: SqliteReads) -> None:
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._full_store(), name)

    def _full_store(self) -> Any:
        return getattr(self._reads._full(), self.store)


class _Projects(_Part):
    store = "projects"

    def ensure_project(self, name: str) -> Project:
        with self._reads.read() as conn:
            row = conn.execute("SELECT * FROM projects WHERE name = ?", (name,)).fetchone()
        if row is None:  # creating it is a write (and checks the name): the full ledger's
            project: Project = self._full_store().ensure_project(name)
            return project
        return project_of(row)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT * FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
        if row is None:
            found: Experiment = self._full_store().get_experiment(experiment_id)
            return found
        return experiment_of(row)

    def list_experiments(self, project_id: str) -> list[Experiment]:
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM experiments WHERE project_id = ? ORDER BY name", (project_id,)
            ).fetchall()
        return [experiment_of(row) for row in rows]


def _require_run(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
        raise no_run(run_id)


class _Runs(_Part):
    store = "runs"

    def get_run(self, run_id: str) -> Run:
        with self._reads.read() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise no_run(run_id)
        return run_of(_decoded(row, "source"))

    def _pairs(self, table: str, run_id: str) -> dict[str, str]:
        with self._reads.read() as conn:
            # ``table`` is one of this module's two constants, never input.
            found = dict(
                conn.execute(
                    f"SELECT key, value FROM {table} WHERE run_id = ?",  # noqa: S608
                    (run_id,),
                )
            )
            if not found:
                _require_run(conn, run_id)
        return found

    def get_params(self, run_id: str) -> dict[str, str]:
        return self._pairs("params", run_id)

    def get_tags(self, run_id: str) -> dict[str, str]:
        return self._pairs("tags", run_id)

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        with self._reads.read() as conn:
            found = {
                key: from_db_float(value)
                for key, value in conn.execute(
                    "SELECT key, value FROM latest_metrics WHERE run_id = ?", (run_id,)
                )
            }
            if not found:
                _require_run(conn, run_id)
        return found


class _Search(_Part):
    store = "search"

    def search_runs(
        self,
        *,
        project_id: str | None = None,
        experiment_ids: Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        where: str | None = None,
        order_by: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[RunRow]:
        plain = (
            not where
            and not order_by
            and not columns
            and all(
                not isinstance(n, bool) and isinstance(n, int) and n >= low
                for n, low in ((limit, 1), (offset, 0))
            )
        )
        if not plain:  # the search language, or arguments to reject: the full ledger's
            rows: list[RunRow] = self._full_store().search_runs(
                project_id=project_id,
                experiment_ids=experiment_ids,
                status=status,
                where=where,
                order_by=order_by,
                columns=columns,
                limit=limit,
                offset=offset,
                include_deleted=include_deleted,
            )
            return rows
        filters: list[str] = []
        args: list[Any] = []
        if project_id is not None:
            filters.append("e.project_id = ?")
            args.append(project_id)
        if experiment_ids is not None:
            ids = list(experiment_ids)
            filters.append(f"r.experiment_id IN ({', '.join('?' for _ in ids)})" if ids else "0")
            args += ids
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            filters.append(f"r.status IN ({', '.join('?' for _ in wanted)})" if wanted else "0")
            args += [check_run_status(s) for s in wanted]
        if not include_deleted:
            filters.append("r.deleted_at IS NULL")
        # ``filters`` are this method's constants; every value is a bound parameter.
        query = (
            "SELECT r.*, e.name AS experiment_name FROM runs r "  # noqa: S608
            "JOIN experiments e ON e.id = r.experiment_id "
            + (f"WHERE {' AND '.join(filters)} " if filters else "")
            + "ORDER BY r.start_time DESC, r.id DESC LIMIT ? OFFSET ?"
        )
        with self._reads.read() as conn:
            found = conn.execute(query, (*args, limit, offset)).fetchall()
        return [
            RunRow(
                run=run_of(_decoded(row, "source")),
                experiment=row["experiment_name"],
                metrics={},
                params={},
                tags={},
            )
            for row in found
        ]

    def latest_metrics_of(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
        with self._reads.read() as conn:
            for chunk in chunks(list(found)):
                marks = ", ".join("?" for _ in chunk)
                for run_id, key, value in conn.execute(
                    f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})",  # noqa: S608
                    tuple(chunk),
                ):
                    found[run_id][key] = from_db_float(value)
        return found

    def metric_summaries(self, run_id: str) -> list[MetricSummary]:
        query = (
            "SELECT m.key, min(m.value), max(m.value), count(*), lm.value, lm.step "
            "FROM metrics m JOIN latest_metrics lm ON lm.run_id = m.run_id AND lm.key = m.key "
            "WHERE m.run_id = ? GROUP BY m.key, lm.value, lm.step ORDER BY m.key"
        )
        with self._reads.read() as conn:
            return [
                MetricSummary(
                    key=key,
                    last=from_db_float(last),
                    last_step=last_step,
                    min=from_db_float(low),
                    max=from_db_float(high),
                    count=count,
                )
                for key, low, high, count, last, last_step in conn.execute(query, (run_id,))
            ]

    def metric_samples(self, run_id: str, points: int = 50) -> dict[str, list[float]]:
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            samples: dict[str, list[float]] = self._full_store().metric_samples(run_id, points)
            return samples
        query = (
            "SELECT key, avg(value) FROM (SELECT key, value, ntile(?) OVER "
            "(PARTITION BY key ORDER BY step, timestamp, seq) AS bucket "
            "FROM metrics WHERE run_id = ?) GROUP BY key, bucket ORDER BY key, bucket"
        )
        found: dict[str, list[float]] = {}
        with self._reads.read() as conn:
            for key, value in conn.execute(query, (points, run_id)):
                found.setdefault(key, []).append(from_db_float(value))
        return found

    def resolve_run_id(self, text: str) -> str:
        wanted = text.strip().lower()
        if len(wanted) >= MIN_RUN_PREFIX and _RUN_ID.fullmatch(wanted):
            # The prefix holds only [0-9a-f-]: no LIKE wildcard to escape.
            with self._reads.read() as conn:
                found = [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM runs WHERE id LIKE ? ORDER BY id LIMIT 6", (wanted + "%",)
                    )
                ]
            if wanted in found or len(found) == 1:
                return wanted if wanted in found else str(found[0])
        # Too short, not an id, unknown or ambiguous: the full ledger says which.
        resolved: str = self._full_store().resolve_run_id(text)
        return resolved


class _Environments(_Part):
    store = "environments"

    def get(self, environment_id: str) -> Environment:
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT * FROM environments WHERE id = ?", (environment_id,)
            ).fetchone()
        if row is None:
            found: Environment = self._full_store().get(environment_id)
            return found
        return environment_of(_decoded(row, "packages", "extra"))


class _Artifacts(_Part):
    store = "artifacts"

    def list(self, owner: RecordRef) -> builtins.list[Artifact]:
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM artifacts WHERE owner_type = ? AND owner_id = ? ORDER BY path",
                (owner.type, owner.id),
            ).fetchall()
        return [artifact_of(row) for row in rows]


class _Lineage(_Part):
    store = "lineage"

    def _edges(self, end: str, ref: RecordRef) -> list[LineageEdge]:
        with self._reads.read() as conn:
            # ``end`` is "src" or "dst", from the two methods below.
            rows = conn.execute(
                f"SELECT * FROM lineage_edges WHERE {end}_type = ? AND {end}_id = ? "  # noqa: S608
                "ORDER BY created_at, id",
                (ref.type, ref.id),
            ).fetchall()
        return [edge_of(row) for row in rows]

    def edges_from(self, ref: RecordRef) -> list[LineageEdge]:
        return self._edges("src", ref)

    def edges_to(self, ref: RecordRef) -> list[LineageEdge]:
        return self._edges("dst", ref)


_VERSION_JSON = ("signature", "metrics", "trusted_digests")


class _Models(_Part):
    store = "models"

    def get(self, project_id: str, name: str) -> Model:
        check_model_name(name)
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT * FROM models WHERE project_id = ? AND name = ?", (project_id, name)
            ).fetchone()
        if row is None:  # the error names the known models: the full ledger's
            model: Model = self._full_store().get(project_id, name)
            return model
        return model_of(row)

    def list(self, project_id: str) -> builtins.list[Model]:
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM models WHERE project_id = ? ORDER BY name", (project_id,)
            ).fetchall()
        return [model_of(row) for row in rows]

    @staticmethod
    def _aliases(conn: sqlite3.Connection, model_id: str) -> dict[int, builtins.list[str]]:
        out: dict[int, list[str]] = {}
        for alias, number in conn.execute(
            "SELECT alias, number FROM model_aliases WHERE model_id = ? ORDER BY alias",
            (model_id,),
        ):
            out.setdefault(number, []).append(alias)
        return out

    def get_version_by_id(self, version_id: str) -> ModelVersion:
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT v.*, m.name AS model_name FROM model_versions v "
                "JOIN models m ON m.id = v.model_id WHERE v.id = ?",
                (version_id,),
            ).fetchone()
            aliases = {} if row is None else self._aliases(conn, row["model_id"])
        if row is None:
            version: ModelVersion = self._full_store().get_version_by_id(version_id)
            return version
        return model_version_of(
            _decoded(row, *_VERSION_JSON),
            row["model_name"],
            tuple(aliases.get(row["number"], [])),
        )

    def list_versions(self, model: Model, limit: int | None = None) -> builtins.list[ModelVersion]:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            versions: builtins.list[ModelVersion] = self._full_store().list_versions(model, limit)
            return versions
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM model_versions WHERE model_id = ? ORDER BY number DESC LIMIT ?",
                (model.id, -1 if limit is None else limit),
            ).fetchall()
            aliases = self._aliases(conn, model.id)
        return [
            model_version_of(
                _decoded(r, *_VERSION_JSON), model.name, tuple(aliases.get(r["number"], []))
            )
            for r in rows
        ]

    def aliases(self, model: Model) -> dict[str, int]:
        with self._reads.read() as conn:
            return dict(
                conn.execute(
                    "SELECT alias, number FROM model_aliases WHERE model_id = ? ORDER BY alias",
                    (model.id,),
                )
            )

    def resolve(self, model: Model, spec: str | int | None = None) -> ModelVersion:
        parsed = parse_model_spec(spec)
        with self._reads.read() as conn:
            count = conn.execute("SELECT versions FROM models WHERE id = ?", (model.id,)).fetchone()
            number: int | None
            if isinstance(parsed, int):
                number = parsed
            elif parsed is None:
                number = None if count is None else count[0] or None
            else:
                row = conn.execute(
                    "SELECT number FROM model_aliases WHERE model_id = ? AND alias = ?",
                    (model.id, parsed),
                ).fetchone()
                number = None if row is None else row[0]
            found = None
            if number is not None and count is not None and number <= count[0]:
                found = conn.execute(
                    "SELECT * FROM model_versions WHERE model_id = ? AND number = ?",
                    (model.id, number),
                ).fetchone()
            aliases = self._aliases(conn, model.id).get(number or 0, [])
        if found is None:  # the error says what the model has: the full ledger's
            version: ModelVersion = self._full_store().resolve(model, spec)
            return version
        return model_version_of(_decoded(found, *_VERSION_JSON), model.name, tuple(aliases))


class _Monitoring(_Part):
    store = "monitoring"

    def reports(
        self,
        project_id: str,
        *,
        monitor: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[MonitorReport]:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            rejected: list[MonitorReport] = self._full_store().reports(
                project_id, monitor=monitor, kind=kind, limit=limit
            )
            return rejected
        filters = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column, value in (("monitor", monitor), ("kind", kind)):
            if value is not None:
                filters.append(f"{column} = ?")
                args.append(value)
        query = (
            f"SELECT * FROM monitor_reports WHERE {' AND '.join(filters)} "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        with self._reads.read() as conn:
            rows = conn.execute(query, (*args, -1 if limit is None else limit)).fetchall()
        return [report_of(_decoded(row, "results", "spec")) for row in rows]
