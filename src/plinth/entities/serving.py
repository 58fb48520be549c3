"""Serving records: versioned deployment specs and the prediction log's batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DeploymentVersion", "PredictionBatch"]


@dataclass(frozen=True)
class DeploymentVersion:
    """One version of a named deployment spec; ``digest`` is the blob of its YAML text."""

    id: str
    project_id: str
    name: str
    number: int
    digest: str
    spec: dict[str, Any]
    created_at: int
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class PredictionBatch:
    """A Parquet blob of logged predictions of one deployment version.

    Rows are sorted by request id (UUIDv7, time-sortable): ``first_request_id`` and
    ``last_request_id`` bound them, ``start_ms``/``end_ms`` their request times.
    ``dropped`` counts requests the log dropped (memory bound) since the previous batch.
    """

    id: str
    deployment_id: str
    start_ms: int
    end_ms: int
    rows: int
    digest: str
    model_versions: tuple[str, ...]
    first_request_id: str
    last_request_id: str
    dropped: int
    created_at: int
    created_by: str
    #: The blob of the batch's profile, once a monitor has computed it.
    profile_digest: str | None = None
