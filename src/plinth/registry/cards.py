"""A model version's card as ledger records: its run, environment and training data.

:func:`plinth.models.card` turns these records into JSON; the web UI's model page renders
them as they are. Both gather them with :func:`gather_card` from the ledger they hold (a
context's, or a server project's), so the two show the same facts::

    card = gather_card(ledger, version)
    card.run, card.params, card.environment, [d.version for d in card.data]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from plinth.entities import RecordRef
from plinth.errors import NotFoundError

if TYPE_CHECKING:
    from plinth.entities import DatasetVersion, Environment, ModelVersion, Run, ValidationRecord
    from plinth.ledger import Ledger

__all__ = ["ModelCard", "TrainingData", "gather_card"]


class TrainingData(NamedTuple):
    """A dataset version the version's run used, with its validation results (newest first)."""

    #: None: the ledger no longer holds the version (``id`` names it).
    version: DatasetVersion | None
    id: str
    validations: list[ValidationRecord]


@dataclass(frozen=True)
class ModelCard:
    """The records behind a model card. Parts the ledger no longer holds are None (a run or
    environment) or a :class:`TrainingData` without its version."""

    run: Run | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: The version's environment, else its run's; None when neither recorded one.
    environment_id: str | None = None
    environment: Environment | None = None
    data: list[TrainingData] = field(default_factory=list)


def gather_card(
    ledger: Ledger, version: ModelVersion, *, validations: int | None = None
) -> ModelCard:
    """The card of ``version`` read from ``ledger``; ``validations`` caps the results listed
    per dataset version (None: all of them)."""
    run: Run | None = None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    data: list[TrainingData] = []
    environment_id = version.environment_id
    if version.run_id is not None:
        try:
            run = ledger.runs.get_run(version.run_id)
        except NotFoundError:
            run = None
        if run is not None:
            params = ledger.runs.get_params(run.id)
            metrics = ledger.runs.latest_metrics(run.id)
            environment_id = environment_id or run.environment_id
            data = _data_used(ledger, run.id, validations)
    environment: Environment | None = None
    if environment_id is not None:
        try:
            environment = ledger.environments.get(environment_id)
        except NotFoundError:
            environment = None
    return ModelCard(run, params, metrics, environment_id, environment, data)


def _data_used(ledger: Ledger, run_id: str, validations: int | None) -> list[TrainingData]:
    """The dataset versions of the run's ``used`` lineage edges, oldest edge first."""
    out: list[TrainingData] = []
    for edge in ledger.lineage.edges_from(RecordRef("run", run_id)):
        if edge.relation != "used" or edge.dst.type != "dataset_version":
            continue
        try:
            dv = ledger.datasets.get_version_by_id(edge.dst.id)
        except NotFoundError:
            out.append(TrainingData(None, edge.dst.id, []))
            continue
        checks = ledger.validation.results(dataset_version_id=dv.id, limit=validations)
        out.append(TrainingData(dv, dv.id, checks))
    return out
