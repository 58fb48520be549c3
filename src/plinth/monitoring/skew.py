"""Training/serving skew: the feature values a deployment served against the training set
its model was trained on, compared with the drift tests.

::

    report = feature_skew(ctx, "delays", "delays_features", window=Window(seconds=86400))
    report.skewed, report.skewed_features, report.drift.columns[0]

The served side is the deployment's prediction log over the window: the service's features
are columns of it (a deployment with ``features: {service: NAME}`` logs the looked-up
values; a model that takes them as inputs logs them too). The training side is found
through the ledger alone: deployment -> the model version it serves -> the run that trained
it -> the dataset versions that run used or produced -> the one saved from this service
(``feature_definition —derived_from→ dataset_version``, written by
``plinth.features.get_training_set(..., save_as=NAME)``). Monitoring sits below the feature
store, so the service's features are read from its recorded definition, not from
``plinth.features``. Both sides are read as rows (only the feature columns), so p-values are
exact, and compared by :func:`plinth.monitoring.drift` with its methods and thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion, FeatureDefinition, PredictionBatch
    from plinth.monitoring.drift import DriftReport
    from plinth.monitoring.spec import Window

__all__ = [
    "DEFAULT_SHARE",
    "SkewReport",
    "TrainingReference",
    "feature_skew",
    "service_of",
    "skew_check",
    "training_reference",
]

#: The lineage record type of a feature-definition version, and the relation from it to a
#: training set saved from it (the names plinth.features.training writes).
DEFINITION_RECORD = "feature_definition"
DERIVED_FROM = "derived_from"
#: One skewed feature is skew: the share of skewed features that counts (0: any).
DEFAULT_SHARE = 0.0
_SEPARATOR = "__"
_DATASET = "dataset_version"


@dataclass(frozen=True)
class TrainingReference:
    """The training set a deployment's model was trained on, for one feature service.

    ``columns`` maps each of the service's features to its column in the training set
    (``feature``, or ``view__feature`` when it was built with ``full_names=True``);
    ``missing`` names the features the training set lacks, with the reason.
    """

    model: str
    run_id: str
    version: DatasetVersion
    service: FeatureDefinition
    columns: dict[str, str]
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SkewReport:
    """The served features of ``deployment`` against its model's training set.

    ``drift`` holds one result per compared feature; ``skewed`` is its verdict (by default
    any skewed feature). ``not_compared`` names each feature left out, with the reason.
    """

    service: str
    deployment: str
    model: str
    training_set: str
    trained_service: str
    rows: int
    start_ms: int | None
    end_ms: int | None
    drift: DriftReport
    not_compared: dict[str, str] = field(default_factory=dict)

    @property
    def skewed(self) -> bool:
        return self.drift.drifted

    @property
    def skewed_features(self) -> list[str]:
        return self.drift.drifted_columns

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: who was compared with what, and the drift report's fields."""
        return {
            "service": self.service,
            "deployment": self.deployment,
            "model": self.model,
            "training_set": self.training_set,
            "trained_service": self.trained_service,
            "window": {"start_ms": self.start_ms, "end_ms": self.end_ms, "rows": self.rows},
            "skewed": self.skewed,
            "skewed_features": self.skewed_features,
            "share_threshold": self.drift.share_threshold,
            **self.drift.to_dict(),
            "not_compared": dict(self.not_compared),
        }


def service_of(ctx: Context, deployment: str) -> str | None:
    """The feature service a deployment's spec names (``features: {service: NAME}``)."""
    spec = ctx.ledger.deployments.get(ctx.project.id, deployment).spec
    features = spec.get("features")
    if isinstance(features, Mapping) and isinstance(features.get("service"), str):
        return str(features["service"])
    return None


def _service_name(service: str) -> str:
    from plinth.refs import parse_ref

    ref = parse_ref(service, what="feature service", field="service")
    if ref.label is not None:
        raise UsageError(
            f"a feature service is NAME or NAME@N, not {service!r}",
            hint="name the service the model was trained on, e.g. delays_features",
            field="service",
        )
    return ref.name


def training_reference(ctx: Context, deployment: str, service: str) -> TrainingReference:
    """The training set of ``service`` that the model ``deployment`` serves was trained on.

    A :class:`~plinth.errors.NotFoundError` says which link is missing and how to make it.
    """
    from plinth.entities import RecordRef
    from plinth.registry import api

    name = _service_name(service)
    ledger, project = ctx.ledger, ctx.project.id
    if not ledger.features.versions(project, "feature_service", name):
        raise NotFoundError(
            f"no feature service {name!r} in this project",
            hint="list the services with: plinth features list; apply definitions with: "
            "plinth features apply FILE",
            field="service",
        )
    spec = ledger.deployments.get(project, deployment).spec
    model = api.get(str(spec.get("model")), ctx=ctx)
    how = (
        f"build the training set inside the run that trains the model: "
        f"plinth.features.get_training_set(entity_df, {name!r}, save_as='NAME'), then train "
        "on it and log the model in that run (or load a saved one there with "
        "plinth.datasets.load)"
    )
    if model.run_id is None:
        raise NotFoundError(
            f"{model.ref} (served by {deployment}) was not logged from a run, so its "
            "training data is unknown",
            hint=how,
            field="deployment",
        )
    candidates: list[tuple[DatasetVersion, FeatureDefinition, list[FeatureDefinition]]] = []
    others: set[str] = set()
    for edge in ledger.lineage.edges_from(RecordRef("run", model.run_id)):
        if edge.relation not in ("used", "produced") or edge.dst.type != _DATASET:
            continue
        definitions = _definitions_of(ctx, edge.dst.id)
        services = [d for d in definitions if d.kind == "feature_service"]
        match = next((d for d in services if d.name == name), None)
        if match is None:
            others.update(d.name for d in services)
            continue
        try:
            version = ledger.datasets.get_version_by_id(edge.dst.id)
        except NotFoundError:
            continue
        if version.kind == "table" and version.status != "erased":
            candidates.append((version, match, definitions))
    if not candidates:
        also = f"; its run used training sets of {', '.join(sorted(others))}" if others else ""
        raise NotFoundError(
            f"{model.ref} (served by {deployment}) was not trained on a training set of "
            f"feature service {name!r}: no dataset version its run used or produced was "
            f"saved from that service{also}",
            hint=how,
            field="service",
        )
    version, record, definitions = max(candidates, key=lambda c: (c[0].created_at, c[0].id))
    columns, missing = _feature_columns(ctx, record, definitions, version)
    return TrainingReference(model.ref, model.run_id, version, record, columns, missing)


def _definitions_of(ctx: Context, version_id: str) -> list[FeatureDefinition]:
    """The feature-definition versions a dataset version was saved from."""
    from plinth.entities import RecordRef

    out = []
    for edge in ctx.ledger.lineage.edges_to(RecordRef(_DATASET, version_id)):
        if edge.relation != DERIVED_FROM or edge.src.type != DEFINITION_RECORD:
            continue
        try:
            out.append(ctx.ledger.features.get_definition_by_id(edge.src.id))
        except NotFoundError:
            continue
    return out


def _feature_columns(
    ctx: Context,
    service: FeatureDefinition,
    definitions: Sequence[FeatureDefinition],
    version: DatasetVersion,
) -> tuple[dict[str, str], dict[str, str]]:
    """Each feature of ``service`` -> its column in the training set ``version``."""
    schema = _columns_of(ctx, version)
    views = {d.name: d for d in definitions if d.kind in ("feature_view", "on_demand_view")}
    columns: dict[str, str] = {}
    missing: dict[str, str] = {}
    for selection in service.spec.get("features") or []:
        view = str(selection.get("view"))
        wanted = selection.get("features")
        if wanted is None:
            record = views.get(view) or _newest_view(ctx, view)
            wanted = list((record.spec.get("features") or {}) if record else ())
        for feature in (str(f) for f in wanted):
            for column in (feature, f"{view}{_SEPARATOR}{feature}"):
                if column in schema:
                    columns.setdefault(feature, column)
                    break
            else:
                missing[feature] = f"not a column of the training set {version.ref}"
    return columns, missing


def _columns_of(ctx: Context, version: DatasetVersion) -> set[str]:
    if version.schema:
        return {str(c["name"]) for c in version.schema}
    from plinth import datasets

    table = datasets.load(version.ref, to="arrow", allow_quarantined=True, ctx=ctx)
    return set(table.column_names)


def _newest_view(ctx: Context, name: str) -> FeatureDefinition | None:
    for kind in ("feature_view", "on_demand_view"):
        found = ctx.ledger.features.versions(ctx.project.id, kind, name)
        if found:
            return found[-1]
    return None


def _batches(
    ctx: Context, deployment: str, window: Window | None, now_ms: int
) -> list[PredictionBatch]:
    from plinth.monitoring.window import window_batches

    if window is None:
        return ctx.ledger.deployments.batches_of(ctx.project.id, deployment, until_ms=now_ms)
    return window_batches(ctx, deployment, window, now_ms)


def _logged_columns(ctx: Context, batches: Sequence[PredictionBatch]) -> set[str]:
    """The columns any batch of ``batches`` holds (read from the Parquet footers)."""
    import io

    import pyarrow.parquet as pq

    names: set[str] = set()
    for batch in batches:
        names.update(pq.read_schema(io.BytesIO(ctx.blobs.read_bytes(batch.digest))).names)
    return names


def _training_table(ctx: Context, ref: TrainingReference, features: Sequence[str]) -> pa.Table:
    from plinth import datasets

    table = datasets.load(ref.version.ref, to="arrow", allow_quarantined=True, ctx=ctx)
    return table.select([ref.columns[f] for f in features]).rename_columns(list(features))


def feature_skew(
    ctx: Context,
    deployment: str,
    service: str | None = None,
    *,
    window: Window | None = None,
    now_ms: int | None = None,
    batches: Sequence[PredictionBatch] | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = DEFAULT_SHARE,
    unseen_min_count: int = 3,
    null_share_change: float = 0.01,
) -> SkewReport:
    """Compare the features ``deployment`` served (its prediction log over ``window``;
    None: every logged batch; or the given ``batches``) with the training set of
    ``service`` (default: the service the deployment's spec names) its model was trained
    on. The drift options are :func:`plinth.monitoring.drift`'s."""
    from plinth.ids import now_ms as clock
    from plinth.monitoring.drift import drift
    from plinth.monitoring.window import read_batches

    name = service if service is not None else service_of(ctx, deployment)
    if name is None:
        raise UsageError(
            f"deployment {deployment!r} names no feature service",
            hint="pass the service the model was trained on (plinth features skew SERVICE "
            "--deployment NAME, or checks: {feature_skew: {service: NAME}}), or serve it "
            "with features: {service: NAME}",
            field="service",
        )
    ref = training_reference(ctx, deployment, name)
    picked = list(
        batches if batches is not None else _batches(ctx, deployment, window, now_ms or clock())
    )
    if not picked:
        shown = "" if window is None else f" in the window ({window.describe()})"
        raise UsageError(
            f"deployment {deployment!r} has no logged predictions{shown}",
            hint="serve it with the prediction log on (logging: {sample: 1.0}), or widen "
            "the window",
            field="window",
        )
    logged = _logged_columns(ctx, picked)
    not_compared = dict(ref.missing)
    for feature in ref.columns:
        if feature not in logged:
            not_compared[feature] = f"not in the prediction log of {deployment}"
    features = [f for f in ref.columns if f in logged]
    if columns is not None:
        unknown = [c for c in columns if c not in ref.columns and c not in ref.missing]
        if unknown:
            raise UsageError(
                f"{', '.join(map(repr, unknown))} is not a feature of service {name!r}",
                hint=f"its features are {', '.join([*ref.columns, *ref.missing]) or 'none'}",
                field="columns",
            )
        features = [f for f in features if f in columns]
    if not features:
        raise UsageError(
            f"none of the features of service {name!r} can be compared: "
            + "; ".join(f"{f}: {why}" for f, why in not_compared.items()),
            hint=f"serve {deployment} with features: {{service: {name}}} so that the "
            "looked-up values are logged",
            field="service",
        )
    current = read_batches(ctx, picked, features)
    report = drift(
        _training_table(ctx, ref, features),
        current,
        columns=[f for f in features if f in current.column_names],
        exclude=list(exclude or ()) or None,
        methods=methods,
        thresholds=thresholds,
        share_threshold=share_threshold,
        unseen_min_count=unseen_min_count,
        null_share_change=null_share_change,
    )
    return SkewReport(
        service=_service_name(name),
        deployment=deployment,
        model=ref.model,
        training_set=ref.version.ref,
        trained_service=ref.service.ref,
        rows=current.num_rows,
        start_ms=min(b.start_ms for b in picked),
        end_ms=max(b.end_ms for b in picked),
        drift=report,
        not_compared=not_compared,
    )


def skew_check(
    ctx: Context,
    deployment: str,
    batches: Sequence[PredictionBatch],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """The monitor check ``feature_skew``: one check outcome (``status``, ``summary``...)."""
    if not batches:
        return {"status": "skipped", "summary": "no logged predictions in the window yet"}
    report = feature_skew(
        ctx,
        deployment,
        opts.get("service"),
        batches=batches,
        columns=opts.get("columns"),
        exclude=opts.get("exclude"),
        methods=opts.get("methods"),
        thresholds=opts.get("thresholds"),
        share_threshold=float(opts.get("share", DEFAULT_SHARE)),
        unseen_min_count=int(opts.get("unseen_min_count", 3)),
        null_share_change=float(opts.get("null_share_change", 0.01)),
    )
    d = report.drift
    skewed = report.skewed_features
    summary = (
        f"{len(skewed)} of {len(d.columns)} features of {report.service} skewed against "
        f"{report.training_set} (share {d.share:.2f}, threshold {d.share_threshold:.2f})"
        + (f": {', '.join(skewed)}" if skewed else "")
    )
    for column, values in d.new_categories.items():
        summary += f"; new categories in {column}: " + ", ".join(
            f"{v} ({n})" for v, n in values.items()
        )
    if d.null_changes:
        summary += f"; missing share changed: {', '.join(d.null_changes)}"
    quiet = not (d.drifted or d.new_categories or d.null_changes)
    found = d.to_dict()
    return {
        "status": "ok" if quiet else "alert",
        "summary": summary,
        "service": report.service,
        "training_set": report.training_set,
        "trained_service": report.trained_service,
        "model": report.model,
        "share": d.share,
        "share_threshold": d.share_threshold,
        "drifted_columns": skewed,
        "columns": [c.to_dict() for c in d.columns],
        "new_categories": found["new_categories"],
        "null_shares": found["null_shares"],
        "skipped": d.skipped,
        "not_compared": report.not_compared,
        "report_digest": ctx.blobs.put_bytes(d.to_html().encode("utf-8")).digest,
    }
