"""Recording feature definitions: ``plan`` (the diff against the ledger, and the checks),
``apply`` (record each definition version by digest), ``list_definitions``, ``show``.

``plan(defs)`` compares each definition with the newest recorded version of its kind and
name: ``added``, ``changed`` (what changed: features added, removed or retyped, TTL,
source, ...) or ``unchanged``. A change that removes or retypes a feature a registered
model was trained on is ``breaking``: the model is found by lineage (the view's versions ->
training sets saved from them, or runs that read them -> models those runs produced) and
the feature by name in the model's signature. ``apply`` refuses a plan with problems
(nothing is recorded) and a breaking one unless ``allow_breaking=True``.

Objects a definition holds (an ``Entity`` in a view, a view in a service or an on-demand
view) are applied with it. An on-demand view's function is recorded as its file and name
in the project and a digest of its source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.features.checks import Problem, check_batch
from plinth.features.definitions import (
    Definition,
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import FeatureDefinition, Materialization

__all__ = [
    "ApplyResult",
    "Change",
    "Plan",
    "PlanError",
    "apply",
    "list_definitions",
    "plan",
    "show",
]

KINDS = ("entity", "feature_view", "on_demand_view", "feature_service")
DEFINITION_RECORD = "feature_definition"


class PlanError(UsageError):
    """A batch of definitions refused at plan: ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[Problem]):
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        listing = "".join(f"\n  - {p.field}: {p.message}" for p in problems[1:])
        super().__init__(
            f"{first.message}{more}{listing}",
            hint="fix the definitions; nothing was recorded (plinth features plan FILE lists "
            "every problem)",
            field=first.field,
        )
        self.problems = list(problems)

    def to_dict(self) -> dict[str, object]:
        return {"errors": [self._entry(p.field, p.message) for p in self.problems]}


@dataclass(frozen=True)
class Change:
    """One definition against the ledger: ``status`` is added, changed or unchanged;
    ``version`` the newest recorded number (None when added)."""

    definition: Definition
    status: str
    version: int | None = None
    changes: tuple[str, ...] = ()
    breaking: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.definition.kind

    @property
    def name(self) -> str:
        return self.definition.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "digest": self.definition.digest,
            "changes": list(self.changes),
            "breaking": list(self.breaking),
        }


@dataclass(frozen=True)
class Plan:
    """What applying ``definitions`` would record; ``problems`` refuse it."""

    changes: tuple[Change, ...]
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()

    def _with(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    @property
    def added(self) -> list[Change]:
        return self._with("added")

    @property
    def changed(self) -> list[Change]:
        return self._with("changed")

    @property
    def unchanged(self) -> list[Change]:
        return self._with("unchanged")

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def definitions(self) -> list[Definition]:
        return [c.definition for c in self.changes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ApplyResult:
    """The recorded version of each definition (``new``: the ones this apply numbered)."""

    plan: Plan
    records: tuple[FeatureDefinition, ...] = field(default=())

    @property
    def new(self) -> list[FeatureDefinition]:
        fresh = {(c.kind, c.name) for c in self.plan.changes if c.status != "unchanged"}
        return [r for r in self.records if (r.kind, r.name) in fresh]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "recorded": [
                {"kind": r.kind, "name": r.name, "version": r.number, "ref": r.ref, "id": r.id}
                for r in self.records
            ],
        }


# -- gathering ---------------------------------------------------------------------------
def _nested(d: Definition) -> Iterable[Definition]:
    if isinstance(d, FeatureView):
        yield from (e for e in d.entities if isinstance(e, Entity))
    items: Sequence[Any] = ()
    if isinstance(d, OnDemandFeatureView):
        items = d.sources
    elif isinstance(d, FeatureService):
        items = d.selections
    for item in items:
        target = item.view if isinstance(item, FeatureSelection) else item
        if isinstance(target, FeatureView | OnDemandFeatureView):
            yield target
            yield from _nested(target)


def _with_function(od: OnDemandFeatureView, ctx: Context) -> OnDemandFeatureView:
    from plinth.features.on_demand import describe_function, digest_ref

    if callable(od.function):
        ref, digest = describe_function(od.function, root=ctx.settings.root)
        return dataclasses.replace(od, function_ref=ref, code_digest=digest)
    if od.code_digest is None:
        ref = od.function_ref or od.function
        return dataclasses.replace(
            od, code_digest=digest_ref(ref, root=ctx.settings.root, view=od.name)
        )
    return od


def _gather(
    definitions: Iterable[Definition], ctx: Context
) -> tuple[list[Definition], list[Problem], list[str]]:
    """The batch with nested objects added and functions described, each (kind, name)
    once; problems of duplicates and unreadable functions; warnings."""
    out: dict[tuple[str, str], Definition] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    for top in definitions:
        if not isinstance(top, Entity | FeatureView | OnDemandFeatureView | FeatureService):
            raise UsageError(
                f"apply takes feature definitions, not {type(top).__name__}",
                hint="pass Entity, FeatureView, OnDemandFeatureView and FeatureService objects",
                field="definitions",
            )
        for d in (top, *_nested(top)):
            if isinstance(d, OnDemandFeatureView):
                try:
                    d = _with_function(d, ctx)
                except UsageError as exc:
                    problems.append(
                        Problem(d.kind, d.name, f"{d.name}.function", f"{d.name}: {exc.message}")
                    )
                    continue
                if d.function_ref is None:
                    warnings.append(
                        f"on-demand view {d.name!r}: its function is not in a file of the "
                        "project, so reading the view by name will need the function passed in"
                    )
            key = (d.kind, d.name)
            if key in out:
                if out[key].digest != d.digest:
                    problems.append(
                        Problem(
                            d.kind,
                            d.name,
                            f"{d.name}.name",
                            f"{d.kind.replace('_', ' ')} {d.name!r} is defined twice, differently",
                        )
                    )
                continue
            out[key] = d
    views = {n for k, n in out if k == "feature_view"}
    for k, n in out:
        if k == "on_demand_view" and n in views:
            problems.append(
                Problem(k, n, f"{n}.name", f"a feature view and an on-demand view are both {n!r}")
            )
    order = {k: i for i, k in enumerate(KINDS)}
    batch = sorted(out.values(), key=lambda d: order[d.kind])  # stable: file order per kind
    return batch, problems, warnings


# -- diff --------------------------------------------------------------------------------
def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], set[str]]:
    """What changed between two specs, and the features removed or retyped."""
    lines: list[str] = []
    lost: set[str] = set()
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "features" and isinstance(a, dict) and isinstance(b, dict):
            for f in b:
                if f not in a:
                    lines.append(f"feature {f!r} added ({b[f]})")
                elif a[f] != b[f]:
                    lines.append(f"feature {f!r} retyped {a[f]} -> {b[f]}")
                    lost.add(f)
            for f in a:
                if f not in b:
                    lines.append(f"feature {f!r} removed")
                    lost.add(f)
        else:
            lines.append(f"{key}: {_short(a)} -> {_short(b)}")
    return lines, lost


def _models_using(kind: str, name: str, features: set[str], ctx: Context) -> list[tuple[str, str]]:
    """(model version ref, feature) for each registered model version downstream of any
    recorded version of ``kind`` ``name`` that reads one of ``features`` (by signature;
    a model without one is assumed to)."""
    from plinth.entities import RecordRef
    from plinth.errors import NotFoundError

    found: dict[str, Any] = {}
    for rec in ctx.ledger.features.versions(ctx.project.id, kind, name):
        for edge in ctx.ledger.lineage.downstream(RecordRef(DEFINITION_RECORD, rec.id)):
            for ref in (edge.src, edge.dst):
                if ref.type == "model_version" and ref.id not in found:
                    try:
                        found[ref.id] = ctx.ledger.models.get_version_by_id(ref.id)
                    except NotFoundError:
                        continue
    out: list[tuple[str, str]] = []
    for version in found.values():
        inputs = (version.signature or {}).get("inputs")
        if not inputs:
            out.extend((f"{version.ref} (no signature)", f) for f in sorted(features))
            continue
        names = {str(i.get("name")) for i in inputs if isinstance(i, dict)}
        out.extend((version.ref, f) for f in sorted(features) if {f, f"{name}__{f}"} & names)
    return out


def _change(d: Definition, ctx: Context) -> Change:
    rec = ctx.ledger.features.find_definition(ctx.project.id, d.kind, d.name)
    if rec is None:
        return Change(d, "added")
    if rec.digest == d.digest:
        return Change(d, "unchanged", rec.number)
    lines, lost = _diff(rec.spec, d.spec())
    for older in ctx.ledger.features.versions(ctx.project.id, d.kind, d.name):
        if older.digest == d.digest:
            lines.append(
                f"the same spec as version {older.number}: the ledger keeps that number, and "
                f"version {rec.number} stays the newest"
            )
    breaking = []
    if lost and d.kind in ("feature_view", "on_demand_view"):
        for model, feature in _models_using(d.kind, d.name, lost, ctx):
            breaking.append(f"feature {feature!r} is used by model {model}")
    return Change(d, "changed", rec.number, tuple(lines), tuple(breaking))


# -- API ---------------------------------------------------------------------------------
def plan(definitions: Iterable[Definition], *, ctx: Context | None = None) -> Plan:
    """The diff of ``definitions`` against the ledger and every problem found (see the
    module docstring); records nothing."""
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    batch, problems, warnings = _gather(definitions, context)
    problems.extend(check_batch(batch, ctx=context))
    changes = tuple(_change(d, context) for d in batch)
    return Plan(changes, tuple(problems), tuple(warnings))


def apply(
    definitions: Iterable[Definition],
    *,
    allow_breaking: bool = False,
    ctx: Context | None = None,
) -> ApplyResult:
    """Record each definition's version by digest (the same spec again is the same
    version). Nothing is recorded when the plan has a problem (:class:`PlanError`) or a
    breaking change and ``allow_breaking`` is False."""
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    result = plan(definitions, ctx=context)
    if result.problems:
        raise PlanError(result.problems)
    if result.breaking and not allow_breaking:
        first = result.breaking[0]
        raise UsageError(
            f"{first.kind.replace('_', ' ')} {first.name!r}: breaking change: "
            + "; ".join(first.breaking),
            hint="retrain the models first, or apply with allow_breaking=True "
            "(--allow-breaking); nothing was recorded",
            field=f"{first.name}.features",
        )
    records = tuple(
        context.ledger.features.save_definition(
            context.project.id, d.kind, d.name, d.digest, d.spec()
        )
        for d in result.definitions
    )
    return ApplyResult(result, records)


def list_definitions(
    kind: str | None = None, *, ctx: Context | None = None
) -> list[FeatureDefinition]:
    """The newest version of every recorded definition (of ``kind``), by kind then name."""
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    if kind is not None and kind not in KINDS:
        raise UsageError(
            f"unknown definition kind {kind!r}", hint=f"use one of {', '.join(KINDS)}", field="kind"
        )
    return context.ledger.features.latest_definitions(context.project.id, kind)


@dataclass(frozen=True)
class Shown:
    """A definition's versions (oldest first) and, for a view, its materializations."""

    versions: tuple[FeatureDefinition, ...]
    materializations: tuple[Materialization, ...] = ()

    @property
    def latest(self) -> FeatureDefinition:
        return self.versions[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.latest.kind,
            "name": self.latest.name,
            "versions": [
                {
                    "version": v.number,
                    "ref": v.ref,
                    "digest": v.digest,
                    "created_at": v.created_at,
                    "created_by": v.created_by,
                    "spec": v.spec,
                }
                for v in self.versions
            ],
            "materializations": [dataclasses.asdict(m) for m in self.materializations],
        }


def show(name: str, *, kind: str | None = None, ctx: Context | None = None) -> Shown:
    """Every version of the definition ``name`` (of ``kind``; without it, the one kind
    that has this name)."""
    from plinth.context import resolve_context
    from plinth.errors import NotFoundError

    context = resolve_context(ctx)
    pid = context.project.id
    kinds = [kind] if kind is not None else list(KINDS)
    found = [(k, v) for k in kinds if (v := context.ledger.features.versions(pid, k, name))]
    if not found:
        raise NotFoundError(
            f"no feature definition {name!r} in this project",
            hint="plinth features list shows them; plinth features apply FILE records them",
            field="name",
        )
    if len(found) > 1:
        raise UsageError(
            f"{name!r} names a {found[0][0]} and a {found[1][0]}",
            hint="say which with --kind",
            field="kind",
        )
    k, versions = found[0]
    mats = context.ledger.features.materializations(pid, name) if k == "feature_view" else []
    return Shown(tuple(versions), tuple(mats))
