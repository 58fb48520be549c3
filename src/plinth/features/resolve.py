"""A feature service resolved to what reading it needs: the view versions, their join
keys and the selected features, compiled once (no definition parsing per read).

``resolve_service("delays", ctx=ctx)`` reads the service and its views from the ledger
(the newest versions); a :class:`FeatureService` object is used as given, its views by
object or, when named, from the ledger. Each resolved view carries its ledger record when
the same definition (same digest) has been applied, so lineage can name the exact version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import (
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    from_spec,
)
from plinth.refs import parse_ref

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import FeatureDefinition

__all__ = ["ResolvedOnDemand", "ResolvedService", "ResolvedView", "resolve_service"]


@dataclass(frozen=True)
class ResolvedView:
    """One view as a service reads it. ``features`` are the selected ones, in order;
    ``hidden`` ones are read only as inputs of on-demand views."""

    view: FeatureView
    record: FeatureDefinition | None
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    hidden: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def read(self) -> tuple[str, ...]:
        """Every feature read from the view: the selected ones, then the hidden ones."""
        return self.features + self.hidden

    @property
    def types(self) -> dict[str, str]:
        return {f: self.view.features[f] for f in self.read}


@dataclass(frozen=True)
class ResolvedOnDemand:
    """One on-demand view as a service reads it."""

    view: OnDemandFeatureView
    record: FeatureDefinition | None
    features: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.view.name


@dataclass(frozen=True)
class ResolvedService:
    """A service compiled for reading: views (in service order), on-demand views, the
    entity join keys and request fields a caller must send, and the output columns."""

    name: str
    record: FeatureDefinition | None
    views: tuple[ResolvedView, ...]
    on_demand: tuple[ResolvedOnDemand, ...]

    @property
    def join_keys(self) -> tuple[str, ...]:
        """Every join key of every view, in first-seen order."""
        out: list[str] = []
        for v in self.views:
            out.extend(k for k in v.join_keys if k not in out)
        return tuple(out)

    @property
    def request_fields(self) -> dict[str, str]:
        """Request fields the on-demand views need: name -> type."""
        out: dict[str, str] = {}
        for od in self.on_demand:
            out.update(od.view.request)
        return out

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The output feature columns, in service order."""
        names: list[str] = []
        for v in self.views:
            names.extend(v.features)
        for od in self.on_demand:
            names.extend(od.features)
        return tuple(names)

    @property
    def feature_types(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for v in self.views:
            out.update({f: v.view.features[f] for f in v.features})
        for od in self.on_demand:
            out.update({f: od.view.features[f] for f in od.features})
        return out

    def lineage_records(self) -> list[FeatureDefinition]:
        """The recorded definition versions this service reads (service, views, on-demand)."""
        recs = [self.record] + [v.record for v in self.views] + [o.record for o in self.on_demand]
        return [r for r in recs if r is not None]


def _project_id(ctx: Context) -> str:
    return ctx.project.id


def _recorded(ctx: Context, kind: str, name: str, digest: str) -> FeatureDefinition | None:
    """The ledger version of ``kind`` ``name`` with this digest, if it was applied."""
    for rec in reversed(ctx.ledger.features.versions(_project_id(ctx), kind, name)):
        if rec.digest == digest:
            return rec
    return None


def _from_ledger(ctx: Context, kind: str, text: str, field: str) -> tuple[Any, FeatureDefinition]:
    ref = parse_ref(text, what=kind.replace("_", " "), field=field)
    if ref.label is not None:
        raise UsageError(
            f"{field}: feature definitions are named NAME or NAME@N, not {text!r}", field=field
        )
    rec = ctx.ledger.features.get_definition(_project_id(ctx), kind, ref.name, ref.version)
    return from_spec(kind, rec.name, rec.spec), rec


def resolve_service(
    service: str | FeatureService,
    *,
    ctx: Context,
    extra: Mapping[str, FeatureView | OnDemandFeatureView | Entity] | None = None,
) -> ResolvedService:
    """``service`` (a name, ``NAME@N`` or an object) compiled for reading.

    ``extra`` supplies definitions by name that are not (yet) in the ledger. A view or
    entity named but found nowhere is a :class:`NotFoundError` naming it.
    """
    given = dict(extra or {})
    svc_record: FeatureDefinition | None
    if isinstance(service, str):
        obj, svc_record = _from_ledger(ctx, "feature_service", service, "service")
        svc: FeatureService = obj
    else:
        svc, svc_record = service, _recorded(ctx, "feature_service", service.name, service.digest)

    def view_of(sel: FeatureSelection | str) -> FeatureView | OnDemandFeatureView:
        if isinstance(sel, FeatureSelection) and not isinstance(sel.view, str):
            return sel.view
        name = sel if isinstance(sel, str) else sel.view_name
        if name in given and isinstance(given[name], FeatureView | OnDemandFeatureView):
            return given[name]  # type: ignore[return-value]
        pid = _project_id(ctx)
        for kind in ("feature_view", "on_demand_view"):
            rec = ctx.ledger.features.find_definition(pid, kind, name)
            if rec is not None:
                found = from_spec(kind, rec.name, rec.spec)
                assert isinstance(found, FeatureView | OnDemandFeatureView)
                return found
        raise NotFoundError(
            f"service {svc.name!r} reads view {name!r}, which is not in this project",
            hint="apply the view's definition first (plinth features apply FILE)",
            field="features",
        )

    def keys_of(view: FeatureView) -> tuple[str, ...]:
        keys: list[str] = []
        for ent in view.entities:
            if isinstance(ent, str):
                if ent in given and isinstance(given[ent], Entity):
                    ent = given[ent]  # type: ignore[assignment]
                else:
                    rec = ctx.ledger.features.find_definition(_project_id(ctx), "entity", ent)
                    if rec is None:
                        raise NotFoundError(
                            f"view {view.name!r} is keyed by entity {ent!r}, which is not in "
                            "this project",
                            hint="apply the entity's definition (plinth features apply FILE)",
                            field="entities",
                        )
                    ent = from_spec("entity", rec.name, rec.spec)  # type: ignore[assignment]
            assert isinstance(ent, Entity)
            keys.extend(k for k in ent.join_keys if k not in keys)
        return tuple(keys)

    views: dict[str, tuple[FeatureView, list[str], list[str]]] = {}
    ods: list[tuple[OnDemandFeatureView, tuple[str, ...]]] = []

    def want(view: FeatureView, names: tuple[str, ...] | None, hidden: bool) -> None:
        entry = views.setdefault(view.name, (view, [], []))
        for f in names if names is not None else tuple(view.features):
            if f not in view.features:
                raise UsageError(
                    f"service {svc.name!r} selects {f!r}, which view {view.name!r} lacks",
                    hint=f"its features: {', '.join(view.features)}",
                    field="features",
                )
            if hidden:
                if f not in entry[1] and f not in entry[2]:
                    entry[2].append(f)
            elif f not in entry[1]:
                if f in entry[2]:
                    entry[2].remove(f)
                entry[1].append(f)

    for sel in svc.selections:
        target = view_of(sel)
        if isinstance(target, OnDemandFeatureView):
            names = sel.features if sel.features is not None else tuple(target.features)
            for f in names:
                if f not in target.features:
                    raise UsageError(
                        f"service {svc.name!r} selects {f!r}, which view {target.name!r} lacks",
                        field="features",
                    )
            ods.append((target, tuple(names)))
        else:
            want(target, sel.features, hidden=False)
    for od, _ in ods:
        for src in od.sources:
            inner = view_of(src if isinstance(src, FeatureSelection | str) else src.name)
            if not isinstance(inner, FeatureView):
                raise UsageError(
                    f"on-demand view {od.name!r} reads {inner.name!r}, another on-demand view",
                    hint="on-demand views read feature views and request fields only",
                    field="sources",
                )
            sub = src.features if isinstance(src, FeatureSelection) else None
            want(inner, sub, hidden=True)

    resolved = tuple(
        ResolvedView(
            view=v,
            record=_recorded(ctx, "feature_view", v.name, v.digest),
            join_keys=keys_of(v),
            features=tuple(sel),
            hidden=tuple(hid),
        )
        for v, sel, hid in views.values()
    )
    on_demand = tuple(
        ResolvedOnDemand(od, _recorded(ctx, "on_demand_view", od.name, od.digest), names)
        for od, names in ods
    )
    owners: dict[str, str] = {}
    for owner, feats in [(v.name, v.features) for v in resolved] + [
        (o.name, o.features) for o in on_demand
    ]:
        for f in feats:
            if f in owners:
                raise UsageError(
                    f"service {svc.name!r} reads feature {f!r} from both {owners[f]!r} and "
                    f"{owner!r}",
                    hint="select one of them (view[['...']]) or rename a feature",
                    field="features",
                )
            owners[f] = owner
    return ResolvedService(svc.name, svc_record, resolved, on_demand)


OnDemandFunction = Callable[[Any], Any]
