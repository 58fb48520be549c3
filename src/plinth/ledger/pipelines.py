"""Pipeline records: pipeline runs and their step runs, the step cache (by key), trigger
firings (the claim two agents race for) and gate / rollout decisions.

A pipeline run starts ``running`` and ends once (``finish_run`` is a compare-and-set on the
status). Step runs are written when a step starts and updated when it ends: the end, the
step's artifacts and its lineage in one transaction (a cache hit: the row and its lineage),
so a step costs the ledger two writes, a hit one. A trigger fires for an event only if its
claim is the first: the (project, trigger, event) row is unique, so of two agents claiming
one event exactly one gets the row.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from plinth.entities import (
    DECISION_KINDS,
    Decision,
    PipelineRun,
    RecordRef,
    StepRun,
    TriggerFiring,
)
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import new_id, now_ms
from plinth.ledger._common import Db, check_text, chunks
from plinth.ledger.artifacts import artifact_rows, write_artifacts
from plinth.ledger.lineage import edge_rows, write_edges
from plinth.ledger.step_runs import (
    REUSABLE,
    check_end,
    one_of,
    step_edges,
    step_from_row,
    step_row,
)
from plinth.ledger.tables import pipeline_decisions as decisions_t
from plinth.ledger.tables import pipeline_runs as runs_t
from plinth.ledger.tables import step_runs as steps_t
from plinth.ledger.tables import trigger_firings as firings_t

__all__ = ["PipelineStore"]

_ENDED = ("succeeded", "failed", "resumed")


class PipelineStore:
    """``ledger.pipelines``: pipeline runs, step runs, the step cache, firings, decisions."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- pipeline runs -------------------------------------------------------------------
    def start_run(
        self,
        project_id: str,
        pipeline: str,
        *,
        trigger: str,
        reason: str,
        params: Mapping[str, Any],
        code_digest: str,
        executor: str,
        resumes: str | None = None,
    ) -> PipelineRun:
        """A new ``running`` pipeline run; ``params`` must be JSON-serialisable."""
        check_text(pipeline, "pipeline name")
        check_text(trigger, "trigger", max_length=64)
        check_text(reason, "trigger reason", max_length=10_000)
        check_text(executor, "executor")
        stamp = self._db.stamp()
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "pipeline": pipeline,
            "status": "running",
            "trigger": trigger,
            "reason": reason,
            "params": dict(params),
            "code_digest": code_digest,
            "executor": executor,
            "started_at": stamp["created_at"],
            "ended_at": None,
            "error": None,
            "resumes": resumes,
            **stamp,
        }
        with self._db.write() as conn:
            conn.execute(runs_t.insert().values(**row))
        return _run(row)

    def finish_run(self, run_id: str, status: str, *, error: str | None = None) -> PipelineRun:
        """End a running pipeline run; ConflictError if it has already ended."""
        one_of(status, _ENDED, "pipeline run status")
        with self._db.write() as conn:
            done = conn.execute(
                runs_t.update()
                .where((runs_t.c.id == run_id) & (runs_t.c.status == "running"))
                .values(status=status, ended_at=now_ms(), error=error)
            )
            if done.rowcount != 1:
                now = conn.execute(sa.select(runs_t.c.status).where(runs_t.c.id == run_id))
                current = now.scalar()
                if current is None:
                    raise NotFoundError(f"no pipeline run {run_id!r} in the ledger")
                if not (status == "resumed" and current == "failed"):
                    raise ConflictError(f"pipeline run {run_id} has already ended ({current})")
                conn.execute(runs_t.update().where(runs_t.c.id == run_id).values(status="resumed"))
            row = conn.execute(sa.select(runs_t).where(runs_t.c.id == run_id)).mappings().one()
        return _run(row)

    def get_run(self, run_id: str) -> PipelineRun:
        with self._db.read() as conn:
            row = conn.execute(sa.select(runs_t).where(runs_t.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFoundError(
                f"no pipeline run {run_id!r} in the ledger",
                hint="plinth pipeline runs lists them",
                field="run",
            )
        return _run(row)

    def runs(
        self, project_id: str, *, pipeline: str | None = None, limit: int = 50
    ) -> builtins.list[PipelineRun]:
        """Newest first."""
        query = sa.select(runs_t).where(runs_t.c.project_id == project_id)
        if pipeline is not None:
            query = query.where(runs_t.c.pipeline == pipeline)
        query = query.order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            return [_run(r) for r in conn.execute(query).mappings()]

    # -- step runs -----------------------------------------------------------------------
    def record_step(
        self,
        pipeline_run: PipelineRun,
        step: str,
        *,
        status: str,
        cache_key: str | None = None,
        cache_hit: bool = False,
        attempts: int = 0,
        outputs: Sequence[Mapping[str, Any]] = (),
        error: str | None = None,
        run_id: str | None = None,
        source_step_run_id: str | None = None,
        started_at: int | None = None,
    ) -> StepRun:
        """Write a step run (``running``, or already ended: cached, skipped...)."""
        row = step_row(
            pipeline_run,
            step,
            self._db.stamp(),
            status=status,
            cache_key=cache_key,
            cache_hit=cache_hit,
            attempts=attempts,
            outputs=outputs,
            error=error,
            run_id=run_id,
            source_step_run_id=source_step_run_id,
            started_at=started_at,
        )
        with self._db.write() as conn:
            conn.execute(steps_t.insert().values(**row))
        return step_from_row(row)

    def record_cached(
        self,
        pipeline_run: PipelineRun,
        step: str,
        *,
        cache_key: str | None,
        source: StepRun,
        links: Sequence[tuple[RecordRef, str]] = (),
    ) -> StepRun:
        """Write a ``cached`` step run that reuses ``source`` (a succeeded step run, or a
        cached one: its original is named) and its lineage, in one transaction: the edges
        :meth:`end_step` writes."""
        if not isinstance(source, StepRun) or source.status not in REUSABLE:
            raise UsageError(f"a cached step reuses a succeeded or cached step run, got {source!r}")
        row = step_row(
            pipeline_run,
            step,
            self._db.stamp(),
            status="cached",
            cache_key=cache_key,
            cache_hit=True,
            outputs=source.outputs,
            run_id=source.run_id,
            source_step_run_id=source.source_step_run_id or source.id,
        )
        edges = edge_rows(step_edges(pipeline_run.id, row["id"], links), self._db.stamp())
        with self._db.write() as conn:
            conn.execute(steps_t.insert().values(**row))
            write_edges(conn, edges)
        return step_from_row(row)

    def finish_step(
        self,
        step_run_id: str,
        *,
        status: str,
        attempts: int,
        outputs: Sequence[Mapping[str, Any]] = (),
        error: str | None = None,
        run_id: str | None = None,
    ) -> StepRun:
        """End a running step run (ConflictError if it has ended already)."""
        check_end(status)
        with self._db.write() as conn:
            done = conn.execute(
                steps_t.update()
                .where((steps_t.c.id == step_run_id) & (steps_t.c.status == "running"))
                .values(
                    status=status,
                    attempts=int(attempts),
                    outputs=[dict(o) for o in outputs],
                    error=error,
                    run_id=run_id,
                    ended_at=now_ms(),
                )
            )
            if done.rowcount != 1:
                raise ConflictError(f"step run {step_run_id} is not running")
            row = conn.execute(sa.select(steps_t).where(steps_t.c.id == step_run_id))
            return step_from_row(row.mappings().one())

    def end_step(
        self,
        step_run: StepRun,
        *,
        status: str,
        attempts: int,
        outputs: Sequence[Mapping[str, Any]] = (),
        error: str | None = None,
        run_id: str | None = None,
        artifacts: Sequence[tuple[str, str, int, str | None]] = (),
        links: Sequence[tuple[RecordRef, str]] = (),
    ) -> StepRun:
        """End the running ``step_run`` and record what it made, in one transaction.

        Its ``artifacts`` (``(path, digest, size, media_type)``, owned by the step run) and
        lineage (``pipeline_run —contains→ step_run``, and ``step_run —relation→ ref`` for
        each ``(ref, relation)`` of ``links``) are checked as ``ledger.artifacts`` and
        ``ledger.lineage`` check them; anything wrong, or a step run that has ended
        already (ConflictError), writes nothing. Nothing is read back.
        """
        check_end(status)
        me = RecordRef("step_run", step_run.id)
        stamp = self._db.stamp()
        artifact_rows_ = artifact_rows(me, artifacts, stamp)
        edges = edge_rows(step_edges(step_run.pipeline_run_id, step_run.id, links), stamp)
        values: dict[str, Any] = {
            "status": status,
            "attempts": int(attempts),
            "outputs": [dict(o) for o in outputs],
            "error": error,
            "run_id": run_id,
            "ended_at": now_ms(),
        }
        with self._db.write() as conn:
            done = conn.execute(
                steps_t.update()
                .where((steps_t.c.id == step_run.id) & (steps_t.c.status == "running"))
                .values(**values)
            )
            if done.rowcount != 1:
                raise ConflictError(f"step run {step_run.id} is not running")
            if artifact_rows_:
                write_artifacts(conn, me, artifact_rows_)
            write_edges(conn, edges)
        return dataclasses.replace(step_run, **values)

    def steps(self, pipeline_run_id: str) -> builtins.list[StepRun]:
        """The step runs of a pipeline run, in the order they started."""
        query = (
            sa.select(steps_t)
            .where(steps_t.c.pipeline_run_id == pipeline_run_id)
            .order_by(steps_t.c.started_at, steps_t.c.created_at, steps_t.c.id)
        )
        with self._db.read() as conn:
            return [step_from_row(r) for r in conn.execute(query).mappings()]

    def find_cached(self, project_id: str, cache_key: str) -> StepRun | None:
        """The newest succeeded step run with ``cache_key`` (its outputs can be reused)."""
        query = (
            sa.select(steps_t)
            .where(
                (steps_t.c.project_id == project_id)
                & (steps_t.c.cache_key == cache_key)
                & (steps_t.c.status == "succeeded")
            )
            .order_by(steps_t.c.ended_at.desc(), steps_t.c.id.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else step_from_row(row)

    def find_cached_many(self, project_id: str, cache_keys: Collection[str]) -> dict[str, StepRun]:
        """:meth:`find_cached` for many keys in one query: the keys with a reusable step run,
        each to the newest."""
        found: dict[str, StepRun] = {}
        with self._db.read() as conn:
            for chunk in chunks(sorted(set(cache_keys))):
                query = (
                    sa.select(steps_t)
                    .where(
                        (steps_t.c.project_id == project_id)
                        & steps_t.c.cache_key.in_(chunk)
                        & (steps_t.c.status == "succeeded")
                    )
                    .order_by(steps_t.c.ended_at.desc(), steps_t.c.id.desc())
                )
                for row in conn.execute(query).mappings():
                    found.setdefault(row["cache_key"], step_from_row(row))
        return found

    # -- triggers ------------------------------------------------------------------------
    def claim_firing(
        self, project_id: str, trigger: str, event_key: str, *, reason: str
    ) -> TriggerFiring | None:
        """Claim ``trigger`` for ``event_key``: the firing if this call is the first, None
        if another agent (or an earlier pass) has claimed it."""
        check_text(trigger, "trigger name")
        check_text(event_key, "trigger event")
        check_text(reason, "trigger reason", max_length=10_000)
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "trigger": trigger,
            "event_key": event_key,
            "reason": reason,
            "pipeline_run_id": None,
            **self._db.stamp(),
        }
        try:
            with self._db.write() as conn:
                conn.execute(firings_t.insert().values(**row))
        except (sa_exc.IntegrityError, ConflictError):
            return None
        return TriggerFiring(**row)

    def attach_firing(self, firing_id: str, pipeline_run_id: str) -> None:
        """Name the pipeline run a firing started."""
        with self._db.write() as conn:
            conn.execute(
                firings_t.update()
                .where(firings_t.c.id == firing_id)
                .values(pipeline_run_id=pipeline_run_id)
            )

    def firings(
        self,
        project_id: str,
        *,
        trigger: str | None = None,
        event_keys: Sequence[str] | None = None,
        limit: int = 100,
    ) -> builtins.list[TriggerFiring]:
        """Newest first; ``event_keys``: only the firings for those events."""
        query = sa.select(firings_t).where(firings_t.c.project_id == project_id)
        if trigger is not None:
            query = query.where(firings_t.c.trigger == trigger)
        if event_keys is not None:
            query = query.where(firings_t.c.event_key.in_(builtins.list(event_keys)))
        query = query.order_by(firings_t.c.created_at.desc(), firings_t.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            return [TriggerFiring(**dict(r)) for r in conn.execute(query).mappings()]

    # -- decisions -----------------------------------------------------------------------
    def record_decision(
        self,
        project_id: str,
        *,
        kind: str,
        subject: str,
        outcome: str,
        evidence: Mapping[str, Any],
        pipeline_run_id: str | None = None,
    ) -> Decision:
        """Append a gate or rollout decision; ``evidence`` must be JSON-serialisable."""
        one_of(kind, DECISION_KINDS, "decision kind")
        check_text(subject, "decision subject")
        check_text(outcome, "decision outcome", max_length=32)
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "pipeline_run_id": pipeline_run_id,
            "kind": kind,
            "subject": subject,
            "outcome": outcome,
            "evidence": dict(evidence),
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(decisions_t.insert().values(**row))
        return Decision(**row)

    def decisions(
        self,
        project_id: str,
        *,
        subject: str | None = None,
        pipeline_run_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Decision]:
        """Newest first."""
        query = sa.select(decisions_t).where(decisions_t.c.project_id == project_id)
        if subject is not None:
            query = query.where(decisions_t.c.subject == subject)
        if pipeline_run_id is not None:
            query = query.where(decisions_t.c.pipeline_run_id == pipeline_run_id)
        query = query.order_by(decisions_t.c.created_at.desc(), decisions_t.c.id.desc())
        with self._db.read() as conn:
            return [Decision(**dict(r)) for r in conn.execute(query.limit(limit)).mappings()]


def _run(row: Mapping[Any, Any]) -> PipelineRun:
    data = {k: row[k] for k in PipelineRun.__dataclass_fields__}
    data["params"] = dict(data["params"] or {})
    return PipelineRun(**data)
