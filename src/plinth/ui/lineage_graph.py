"""The lineage of one record as the lineage page shows it: every record named with a label,
its own page and its lineage page, and the edges around it both ways.

The ledger's edges (``run —used→ dataset_version``, ``run —produced→ model_version`` ...)
are walked with :meth:`plinth.ledger.lineage.LineageStore.upstream` and ``downstream``. A
prediction batch has no edges of its own; its page starts from the records it names::

    deployment —logged→ prediction_batch        (the batch's deployment version)
    model_version —served→ prediction_batch     (each model version in the batch)
    prediction_batch —holds→ request            (a request id found in the batch)

so that a request walks back to the model version, its run and the run's dataset versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from plinth.entities import LineageEdge, PredictionBatch, RecordRef
from plinth.errors import NotFoundError, PlinthError
from plinth.ledger.lineage import INPUT_RELATIONS
from plinth.ledger.tables import prediction_batches as t
from plinth.refs import parse_ref
from plinth.ui._records import lineage_url, page

if TYPE_CHECKING:
    from plinth.ledger import Ledger

__all__ = ["Edge", "Graph", "Node", "lineage_graph"]

#: Records described (each costs a query) and edges shown per direction.
NODES_DESCRIBED = 300
EDGES_SHOWN = 500
#: How far the walks go, and how many of a deployment's batches its page lists.
WALK_DEPTH = 10
BATCHES_LINKED = 20


@dataclass(frozen=True)
class Node:
    """A record as a page shows it: a label, its own page (None: none or gone), its lineage."""

    ref: RecordRef
    label: str
    url: str | None
    lineage: str
    #: The ledger does not hold the record (a dangling edge).
    missing: bool = False


@dataclass(frozen=True)
class Edge:
    src: Node
    relation: str
    dst: Node


@dataclass
class Graph:
    """The record, its direct neighbours both ways, and the full walks."""

    node: Node
    parents: list[Node] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    upstream: list[Edge] = field(default_factory=list)
    downstream: list[Edge] = field(default_factory=list)


class _Namer:
    """Labels and page URLs of records, one lookup per record (at most NODES_DESCRIBED)."""

    def __init__(self, ledger: Ledger, project: str, project_id: str | None) -> None:
        self.ledger, self.project, self.project_id = ledger, project, project_id
        self._seen: dict[RecordRef, Node] = {}

    def node(self, ref: RecordRef) -> Node:
        found = self._seen.get(ref)
        if found is None:
            label, url, missing = f"{ref.type} {ref.id}", None, False
            if len(self._seen) < NODES_DESCRIBED:
                try:
                    label, url = self._describe(ref)
                except PlinthError:  # a dangling edge: the record is gone
                    label, missing = f"{ref.type} {ref.id} (not in the ledger)", True
            found = Node(ref, label, url, lineage_url(self.project, ref), missing)
            self._seen[ref] = found
        return found

    def _describe(self, ref: RecordRef) -> tuple[str, str | None]:
        ledger, p, rid = self.ledger, self.project, ref.id
        kind = ref.type
        if kind == "run":
            run = ledger.runs.get_run(rid)
            return f"run {run.name or run.id} ({run.status})", page(p, "runs", rid)
        if kind == "dataset_version":
            dv = ledger.datasets.get_version_by_id(rid)
            return f"dataset {dv.ref}", page(p, "datasets", dv.dataset, dv.number)
        if kind == "model_version":
            mv = ledger.models.get_version_by_id(rid)
            return f"model {mv.ref}", page(p, "models", mv.model) + f"?version={mv.number}"
        if kind == "deployment":
            d = ledger.deployments.get_by_id(rid)
            return f"deployment {d.ref}", page(p, "deployments", d.name)
        if kind == "pipeline_run":
            r = ledger.pipelines.get_run(rid)
            return f"pipeline {r.pipeline} run ({r.status})", page(p, "pipelines", "runs", rid)
        if kind == "step_run":
            for edge in ledger.lineage.edges_to(ref):
                if edge.relation == "contains" and edge.src.type == "pipeline_run":
                    return f"step run {rid}", page(p, "pipelines", "runs", edge.src.id)
            return f"step run {rid}", None
        if kind == "feature_definition":
            fd = ledger.features.get_definition_by_id(rid)
            return f"{fd.kind.replace('_', ' ')} {fd.ref}", page(p, "features")
        if kind == "validation_result":
            for edge in ledger.lineage.edges_from(ref):
                if edge.dst.type == "dataset_version":
                    dv = ledger.datasets.get_version_by_id(edge.dst.id)
                    return f"validation of {dv.ref}", page(p, "datasets", dv.dataset, dv.number)
            return f"validation result {rid}", None
        if kind == "prediction_batch":
            batch = _batch(ledger, rid)
            d = ledger.deployments.get_by_id(batch.deployment_id)
            return f"batch of {d.ref} ({batch.rows} rows)", page(p, "deployments", d.name)
        if kind == "request":
            return f"request {rid}", None
        return f"{kind} {rid}", None


def _batch(ledger: Ledger, batch_id: str) -> PredictionBatch:
    """A prediction batch by its id (the deployment store finds batches by time or request
    id: look up the batch's time range, then read the batches of that range)."""
    query = sa.select(t.c.deployment_id, t.c.start_ms, t.c.end_ms).where(t.c.id == batch_id)
    with ledger.engine.connect() as conn:
        row = conn.execute(query).first()
    found = []
    if row is not None:
        found = ledger.deployments.batches(row.deployment_id, row.start_ms, row.end_ms)
    for batch in found:
        if batch.id == batch_id:
            return batch
    raise NotFoundError(f"no prediction batch with id {batch_id!r} in this project")


def _newest_batches(ledger: Ledger, deployment_id: str) -> list[str]:
    """The ids of the BATCHES_LINKED newest batches of a deployment version."""
    query = (
        sa.select(t.c.id)
        .where(t.c.deployment_id == deployment_id)
        .order_by(t.c.start_ms.desc(), t.c.id.desc())
        .limit(BATCHES_LINKED)
    )
    with ledger.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _model_refs(ledger: Ledger, project_id: str | None, names: tuple[str, ...]) -> list[RecordRef]:
    """The model version records of ``NAME@N`` references (ones that resolve)."""
    out: list[RecordRef] = []
    if project_id is None:
        return out
    for text in names:
        try:
            parsed = parse_ref(text, what="model")
            model = ledger.models.get(project_id, parsed.name)
            out.append(RecordRef("model_version", ledger.models.resolve(model, parsed.spec).id))
        except PlinthError:  # a reference to a model no longer registered
            continue
    return out


def _synthesized(
    ledger: Ledger, project_id: str | None, ref: RecordRef
) -> tuple[list[tuple[RecordRef, str, RecordRef]], list[tuple[RecordRef, str, RecordRef]]]:
    """Upstream and downstream edges the ledger does not store (see the module docstring)."""
    up: list[tuple[RecordRef, str, RecordRef]] = []
    down: list[tuple[RecordRef, str, RecordRef]] = []
    if ref.type == "request":
        batch = ledger.deployments.find_batch(ref.id)
        if batch is None:
            raise NotFoundError(
                f"no logged prediction batch holds request id {ref.id!r}",
                hint="the log keeps a sample of requests; check the id",
            )
        batch_ref = RecordRef("prediction_batch", batch.id)
        up.append((batch_ref, "holds", ref))
        more_up, _ = _synthesized(ledger, project_id, batch_ref)
        up += more_up
    elif ref.type == "prediction_batch":
        batch = _batch(ledger, ref.id)
        up.append((RecordRef("deployment", batch.deployment_id), "logged", ref))
        for model_ref in _model_refs(ledger, project_id, batch.model_versions):
            up.append((model_ref, "served", ref))
    elif ref.type == "deployment":
        ledger.deployments.get_by_id(ref.id)
        for batch_id in _newest_batches(ledger, ref.id):
            down.append((ref, "logged", RecordRef("prediction_batch", batch_id)))
    return up, down


def _neighbours(edges: list[LineageEdge], ref: RecordRef, *, upstream: bool) -> list[RecordRef]:
    """The records one edge of ``ref`` away, up- or downstream: a flow edge into ``ref``
    comes from upstream; an input edge (``used``) points from the consumer to its input,
    so it counts the other way."""
    out = []
    for e in edges:
        from_upstream = e.dst == ref
        if e.relation in INPUT_RELATIONS:
            from_upstream = not from_upstream
        if from_upstream == upstream:
            out.append(e.src if e.dst == ref else e.dst)
    return out


def lineage_graph(ledger: Ledger, project: str, project_id: str | None, ref: RecordRef) -> Graph:
    """The lineage of ``ref``: NotFoundError when the record does not exist."""
    namer = _Namer(ledger, project, project_id)
    up_synth, down_synth = _synthesized(ledger, project_id, ref)
    # The walk starts from the record and from what the synthesized edges lead to.
    up_roots = [ref, *(src for src, _, _ in up_synth)]
    walked_up: list[LineageEdge] = []
    for root in up_roots:
        walked_up += ledger.lineage.upstream(root, max_depth=WALK_DEPTH)
    walked_down = ledger.lineage.downstream(ref, max_depth=WALK_DEPTH)
    direct = [*ledger.lineage.edges_to(ref), *ledger.lineage.edges_from(ref)]
    node = namer.node(ref)
    if node.missing and not direct:
        raise NotFoundError(f"no {ref.type} {ref.id!r} in project {project!r}")
    parents = [src for src, _, dst in up_synth if dst == ref]
    parents += _neighbours(direct, ref, upstream=True)
    children = [dst for _, _, dst in down_synth] + _neighbours(direct, ref, upstream=False)
    graph = Graph(node)
    graph.parents = [namer.node(r) for r in dict.fromkeys(parents)]
    graph.children = [namer.node(r) for r in dict.fromkeys(children)]
    up = [(s, r, d) for s, r, d in up_synth] + [(e.src, e.relation, e.dst) for e in walked_up]
    down = [(s, r, d) for s, r, d in down_synth] + [(e.src, e.relation, e.dst) for e in walked_down]
    graph.upstream = [Edge(namer.node(s), r, namer.node(d)) for s, r, d in _unique(up)]
    graph.downstream = [Edge(namer.node(s), r, namer.node(d)) for s, r, d in _unique(down)]
    return graph


def _unique(
    edges: list[tuple[RecordRef, str, RecordRef]],
) -> list[tuple[RecordRef, str, RecordRef]]:
    return list(dict.fromkeys(edges))[:EDGES_SHOWN]
