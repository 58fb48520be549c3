"""The foundation's records: projects, experiments, runs and what hangs off them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["running", "finished", "failed", "killed", "crashed"]
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "killed", "crashed")


@dataclass(frozen=True)
class RecordRef:
    """A pointer to any ledger record, e.g. ``RecordRef("run", run_id)``; lineage links these."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Experiment:
    id: str
    project_id: str
    name: str
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Run:
    id: str
    experiment_id: str
    name: str | None
    status: str
    start_time: int
    end_time: int | None
    created_by: str
    parent_run_id: str | None = None
    environment_id: str | None = None
    #: Code provenance: git commit, branch, remote, dirty flag, entry point, argv, cwd.
    source: dict[str, Any] = field(default_factory=dict)
    #: Exception type and message when status is ``failed`` or ``crashed``.
    error: str | None = None
    #: Host and process id that owns the run while it is ``running``.
    host: str | None = None
    pid: int | None = None
    #: When the run was soft-deleted (``plinth runs delete``); None while it is listed.
    deleted_at: int | None = None


@dataclass(frozen=True)
class MetricPoint:
    """One logged value. ``seq`` is unique per run and makes re-ingestion idempotent."""

    key: str
    value: float
    step: int
    timestamp: int
    seq: int


@dataclass(frozen=True)
class Artifact:
    """A logical path of a record, pointing at a content-addressed blob."""

    owner: RecordRef
    path: str
    digest: str
    size: int
    media_type: str | None
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Environment:
    """A Python environment, stored once per distinct digest."""

    id: str
    digest: str
    python: str
    platform: str
    packages: dict[str, str]
    extra: dict[str, Any]
    created_at: int
    created_by: str


@dataclass(frozen=True)
class LineageEdge:
    """``src`` —relation→ ``dst``: e.g. run —used→ dataset_version, run —produced→ model_version."""

    src: RecordRef
    dst: RecordRef
    relation: str
    created_at: int
    created_by: str


@dataclass(frozen=True)
class GcEvent:
    """One ``plinth gc --yes``: what was deleted, by whom, when."""

    id: str
    blobs_deleted: int
    bytes_deleted: int
    digests: list[str]
    created_at: int
    created_by: str
