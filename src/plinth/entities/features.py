"""Feature-store records: definition versions, materializations, pushed batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFINITION_KINDS",
    "FeatureDefinition",
    "FeaturePush",
    "Materialization",
]

#: What a feature-store definition can be, as recorded in the ledger.
DEFINITION_KINDS: tuple[str, ...] = ("entity", "feature_view", "on_demand_view", "feature_service")


@dataclass(frozen=True)
class FeatureDefinition:
    """One version of an entity, view or service: ``spec`` is its canonical form.

    Applying the same definition again returns the same version (same ``digest``); a
    changed one gets the next ``number``.
    """

    id: str
    project_id: str
    kind: str
    name: str
    number: int
    digest: str
    spec: dict[str, Any]
    created_at: int
    created_by: str
    #: Order of the last apply of this version within its (kind, name): the highest is the
    #: current version (not part of equality: re-applying a version raises it).
    applied_seq: int = field(default=0, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class Materialization:
    """Rows of one view version written to the online store for event times in
    ``(start_ms, end_ms]`` (``start_ms`` None: from the beginning)."""

    id: str
    project_id: str
    view: str
    definition_id: str
    start_ms: int | None
    end_ms: int
    rows: int
    store: str
    created_at: int
    created_by: str
    #: What the rows were read from (dataset version ids, Parquet file stamps), sorted.
    sources: list[str] | None = None


@dataclass(frozen=True)
class FeaturePush:
    """Rows pushed to a view: a Parquet blob (``digest``) in the view's offline log."""

    id: str
    project_id: str
    view: str
    definition_id: str
    digest: str
    rows: int
    created_at: int
    created_by: str
