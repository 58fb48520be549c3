"""The sqlite3 reads ``plinth lineage ID`` needs beyond :mod:`plinth.ledger.sqlite_reads`:
deployments and their prediction batches, pipeline runs (steps, firings, decisions) and
validation results.

Same contract as that module: the same method names, signatures and records as the
SQLAlchemy stores for the common, successful reads; a record not found, an argument to
reject or a filter not read here goes to the full ledger's store (except a pipeline run not
found: ``lineage`` asks that of every id, so the error is raised here, the same one).
"""

from __future__ import annotations

import builtins
import re
from typing import Any

from plinth.entities import (
    Decision,
    DeploymentVersion,
    PipelineRun,
    PredictionBatch,
    StepRun,
    TriggerFiring,
    ValidationRecord,
)
from plinth.errors import NotFoundError
from plinth.ledger.record_rows import validation_record
from plinth.ledger.sqlite_reads import _decoded, _Part

__all__ = ["Deployments", "Pipelines", "Validation"]

#: A request id the full store would accept (at most 36 characters): a UUID's alphabet.
_REQUEST_ID = re.compile(r"[0-9a-f-]{1,36}")


def _is_count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _deployment(row: Any) -> DeploymentVersion:
    found = _decoded(row, "spec")
    return DeploymentVersion(**{k: found[k] for k in DeploymentVersion.__dataclass_fields__})


def _batch(row: Any) -> PredictionBatch:
    found = _decoded(row, "model_versions")
    found["model_versions"] = tuple(found["model_versions"])
    return PredictionBatch(**{k: found[k] for k in PredictionBatch.__dataclass_fields__})


def _step(row: Any) -> StepRun:
    # As plinth.ledger.step_runs.step_from_row (that module imports SQLAlchemy).
    data = _decoded(row, "outputs")
    data = {k: data[k] for k in StepRun.__dataclass_fields__}
    data["outputs"] = list(data["outputs"] or [])
    data["cache_hit"] = bool(data["cache_hit"])
    return StepRun(**data)


class Deployments(_Part):
    store = "deployments"

    def get_by_id(self, deployment_id: str) -> DeploymentVersion:
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT * FROM deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
        if row is None:
            found: DeploymentVersion = self._full_store().get_by_id(deployment_id)
            return found
        return _deployment(row)

    def find_batch(self, request_id: str) -> PredictionBatch | None:
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            # Rejected (or an odd id, checked): the full store's message.
            other: PredictionBatch | None = self._full_store().find_batch(request_id)
            return other
        with self._reads.read() as conn:
            row = conn.execute(
                "SELECT * FROM prediction_batches "
                "WHERE first_request_id <= ? AND last_request_id >= ? "
                "ORDER BY first_request_id DESC LIMIT 1",
                (request_id, request_id),
            ).fetchone()
        return None if row is None else _batch(row)

    def batches(
        self, deployment_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> builtins.list[PredictionBatch]:
        filters = ["deployment_id = ?"]
        args: list[Any] = [deployment_id]
        if since_ms is not None:
            filters.append("end_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            filters.append("start_ms <= ?")
            args.append(until_ms)
        # ``filters`` are this method's constants; every value is a bound parameter.
        query = (
            f"SELECT * FROM prediction_batches WHERE {' AND '.join(filters)} "  # noqa: S608
            "ORDER BY start_ms, id"
        )
        with self._reads.read() as conn:
            return [_batch(row) for row in conn.execute(query, args).fetchall()]


class Pipelines(_Part):
    store = "pipelines"

    def get_run(self, run_id: str) -> PipelineRun:
        with self._reads.read() as conn:
            row = conn.execute("SELECT * FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            # Raised here, not by the full store: ``plinth lineage`` asks every id it is
            # given (a request id too) whether it is a pipeline run. Same error, tested.
            raise NotFoundError(
                f"no pipeline run {run_id!r} in the ledger",
                hint="plinth pipeline runs lists them",
                field="run",
            )
        data = _decoded(row, "params")
        data["params"] = dict(data["params"] or {})
        return PipelineRun(**{k: data[k] for k in PipelineRun.__dataclass_fields__})

    def steps(self, pipeline_run_id: str) -> builtins.list[StepRun]:
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM step_runs WHERE pipeline_run_id = ? "
                "ORDER BY started_at, created_at, id",
                (pipeline_run_id,),
            ).fetchall()
        return [_step(row) for row in rows]

    def firings(
        self,
        project_id: str,
        *,
        trigger: str | None = None,
        event_keys: Any = None,
        limit: int = 100,
    ) -> builtins.list[TriggerFiring]:
        if trigger is not None or event_keys is not None or not _is_count(limit):
            other: builtins.list[TriggerFiring] = self._full_store().firings(
                project_id, trigger=trigger, event_keys=event_keys, limit=limit
            )
            return other
        with self._reads.read() as conn:
            rows = conn.execute(
                "SELECT * FROM trigger_firings WHERE project_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                (project_id, limit),
            ).fetchall()
        return [TriggerFiring(**_decoded(row)) for row in rows]

    def decisions(
        self,
        project_id: str,
        *,
        subject: str | None = None,
        pipeline_run_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Decision]:
        if not _is_count(limit):
            other: builtins.list[Decision] = self._full_store().decisions(
                project_id, subject=subject, pipeline_run_id=pipeline_run_id, limit=limit
            )
            return other
        filters = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column, value in (("subject", subject), ("pipeline_run_id", pipeline_run_id)):
            if value is not None:
                filters.append(f"{column} = ?")
                args.append(value)
        query = (
            f"SELECT * FROM pipeline_decisions WHERE {' AND '.join(filters)} "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        with self._reads.read() as conn:
            rows = conn.execute(query, (*args, limit)).fetchall()
        return [Decision(**_decoded(row, "evidence")) for row in rows]


class Validation(_Part):
    store = "validation"

    def results(
        self,
        *,
        dataset_version_id: str | None = None,
        suite_id: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ValidationRecord]:
        if limit is not None and not _is_count(limit):
            other: builtins.list[ValidationRecord] = self._full_store().results(
                dataset_version_id=dataset_version_id, suite_id=suite_id, limit=limit
            )
            return other
        filters = ["1"]
        args: list[Any] = []
        for column, value in (("dataset_version_id", dataset_version_id), ("suite_id", suite_id)):
            if value is not None:
                filters.append(f"r.{column} = ?")
                args.append(value)
        query = (
            "SELECT r.*, s.name AS suite_name, s.number AS suite_number "  # noqa: S608
            "FROM validation_results r JOIN validation_suites s ON s.id = r.suite_id "
            f"WHERE {' AND '.join(filters)} ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
        )
        with self._reads.read() as conn:
            rows = conn.execute(query, (*args, -1 if limit is None else limit)).fetchall()
        out = []
        for row in rows:
            m = _decoded(row, "results")
            out.append(validation_record(m, name=m["suite_name"], number=m["suite_number"]))
        return out
