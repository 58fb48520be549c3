"""Pipeline records: pipeline runs, step runs, trigger firings, gate and rollout decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DECISION_KINDS",
    "PIPELINE_STATUSES",
    "STEP_STATUSES",
    "Decision",
    "PipelineRun",
    "StepRun",
    "TriggerFiring",
]

#: A pipeline run is ``running`` until it ends ``succeeded`` or ``failed`` (``resumed``
#: once a later run has taken over from it).
PIPELINE_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "resumed")
#: A step run: ``cached`` reused the outputs of an earlier step run with the same key;
#: ``skipped`` never ran because an upstream step failed or a gate stopped the run.
STEP_STATUSES: tuple[str, ...] = ("running", "succeeded", "cached", "failed", "skipped")
#: What a decision decided: a gate (validation, challenger), a canary, a promotion, a rollback.
DECISION_KINDS: tuple[str, ...] = ("gate", "canary", "promote", "rollback")


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline: what started it (``trigger``, ``reason``), its parameters,
    the digest of its code, and how it ended. ``resumes`` is the failed run it took over."""

    id: str
    project_id: str
    pipeline: str
    status: str
    trigger: str
    reason: str
    params: dict[str, Any]
    code_digest: str
    executor: str
    started_at: int
    ended_at: int | None
    error: str | None
    resumes: str | None
    created_by: str


@dataclass(frozen=True)
class StepRun:
    """One step of a pipeline run. ``outputs`` lists what it produced (each a mapping with
    ``kind`` and a content reference); ``cache_key`` is what a later run with the same code,
    parameters and input contents finds it by; ``run_id`` the tracking run it opened."""

    id: str
    pipeline_run_id: str
    project_id: str
    step: str
    status: str
    cache_key: str | None
    cache_hit: bool
    attempts: int
    started_at: int
    ended_at: int | None
    outputs: list[dict[str, Any]]
    error: str | None
    run_id: str | None
    source_step_run_id: str | None


@dataclass(frozen=True)
class TriggerFiring:
    """A trigger fired once for one event (``event_key``: a cron tick, a dataset version,
    an alert): the unique claim that keeps two agents from running it twice."""

    id: str
    project_id: str
    trigger: str
    event_key: str
    reason: str
    pipeline_run_id: str | None
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Decision:
    """A gate or rollout decision with its evidence (metrics compared, thresholds, counts)."""

    id: str
    project_id: str
    pipeline_run_id: str | None
    kind: str
    subject: str
    outcome: str
    evidence: dict[str, Any]
    created_at: int
    created_by: str
