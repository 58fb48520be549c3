"""Online features at the serving edge: a request sends entity keys, the server adds the
feature values.

A deployment's ``features: {service: NAME}`` names a feature service. At start-up
:meth:`OnlineFeatures.open` resolves it (``NAME`` or ``NAME@N``), opens the online store
and compiles the :class:`~plinth.features.online.OnlineReader` once; :meth:`bind` then
checks each served model's signature against what the service provides and builds the
request decoder for it (join keys, request fields of on-demand views, and the model inputs
the service does not provide, which the request sends itself)::

    features = OnlineFeatures.open(spec, ctx, metrics.registry)  # at start-up
    features.bind(served)               # per model version; UsageError if it cannot be fed
    decoded, extra, types = await features.decode(served, doc)   # on each request

Lookups of concurrent requests share one multi-get per view (a :class:`Batcher` of its own,
on the event loop's thread while reads are quick). A feature a request's entity lacks
(never written, or older than the view's TTL) is null: the row is predicted with it when the
signature takes a null there (a float or string input), else the request answers 422 naming
the entity and the feature.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import RequestError, UsageError
from plinth.serving.batcher import Batcher, Item
from plinth.serving.decode import _CHECKS, Decoded, Decoder, Problem

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from plinth.context import Context
    from plinth.features.online import OnlineReader
    from plinth.features.resolve import ResolvedService
    from plinth.serving.served import ServedModel
    from plinth.serving.spec import DeploymentSpec

__all__ = ["FEATURE_METRIC_NAMES", "FeatureBinding", "OnlineFeatures"]

#: The metrics a deployment with ``features:`` adds to ``/metrics``.
FEATURE_METRIC_NAMES = ("plinth_feature_lookup_seconds", "plinth_feature_missing_total")

#: The Arrow type (alias) a feature type is logged as and decoded from a request as.
_ARROW = {"float64": "double", "int64": "int64", "string": "string", "bool": "bool"}
#: Which feature types can feed a signature input of each group (see decode._group).
_FEEDS = {
    "number": ("float64", "int64"),
    "integer": ("int64",),
    "boolean": ("bool",),
    "string": ("string",),
}
_LOOKUP_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
#: Lookups slower than this on average move to a worker thread (a remote Redis).
_INLINE_S = 0.002


class FeatureBinding:
    """How requests for one served model are decoded and completed with features."""

    def __init__(self, owner: OnlineFeatures, served: ServedModel, passthrough: Any) -> None:
        reader = owner.reader
        inputs = dict(served.decoder.dtypes)
        groups = served.decoder.groups
        name = served.name
        self.served = served
        self.keys = reader.join_keys
        self.request_fields = dict(reader.request_fields)
        features = reader.feature_types
        pass_names = {p[0] for p in passthrough}
        for field in (*self.keys, *self.request_fields):
            if field in pass_names:
                raise UsageError(
                    f"pass-through field {field!r} is a join key or request field of feature "
                    f"service {reader.service.name!r}",
                    hint="remove it from the deployment's passthrough list",
                    field=f"passthrough.{field}",
                )
        if served.signature.is_tensor:
            raise UsageError(
                f"{name} takes one tensor; online features feed named inputs",
                hint="serve a model with named columns, or drop features: from the deployment",
                field="features",
            )
        #: Model inputs filled from the service, and the ones the request sends itself.
        self.from_features = [n for n in inputs if n in features]
        for n in self.from_features:
            group, kind = groups[n], features[n]
            if group in _FEEDS and kind not in _FEEDS[group]:
                raise UsageError(
                    f"{name} takes {n!r} as {inputs[n]}, but feature service "
                    f"{reader.service.name!r} gives it as {kind} (view {owner.view_of[n]!r})",
                    hint="cast the feature in its view's definition, or log the model with "
                    "the feature's type",
                    field=f"features.{n}",
                )
        if not self.from_features:
            raise UsageError(
                f"feature service {reader.service.name!r} provides none of the inputs of "
                f"{name} ({', '.join(inputs)}); its features: {', '.join(features) or '-'}",
                hint="name the service the model was trained on (features: {service: NAME})",
                field="features.service",
            )
        self.direct = [n for n in inputs if n not in features]
        # what a request carries: keys, then request fields, then inputs it sends itself
        wanted: dict[str, str] = {k: inputs.get(k, "key") for k in self.keys}
        for f, kind in self.request_fields.items():
            wanted.setdefault(f, inputs.get(f, _ARROW.get(kind, kind)))
        for n in self.direct:
            wanted.setdefault(n, inputs[n])
        self.decoder = Decoder(
            list(wanted.items()), max_rows=served.decoder.max_rows, passthrough=passthrough
        )
        self.names = served.decoder.names
        # inputs that refuse a null (integers, booleans): a missing feature there is a 422;
        # the store's values are already of the feature's type, so nothing else is checked
        self.strict = [n for n in self.from_features if _CHECKS[groups[n]](None) is not None]
        self.owner = owner
        # logged beside the model's inputs: keys, request fields, the service's other features
        self.logged = [n for n in (*wanted, *features) if n not in inputs]
        self.log_types = dict(served.log_types)
        for f in self.logged:
            alias = _ARROW.get(features.get(f) or self.request_fields.get(f) or "")
            if alias is not None:
                self.log_types[f] = alias

    def complete(
        self, columns: dict[str, list[Any]], looked: dict[str, list[Any]], form: str
    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """The model's columns (signature order) and the extra logged columns; a
        RequestError naming each row whose entity lacks a feature its input needs."""
        problems: list[Problem] = []
        for n in self.strict:
            values = looked[n]
            if None not in values:
                continue
            view = self.owner.view_of[n]
            for i in (i for i, v in enumerate(values) if v is None):
                problems.append(
                    Problem(
                        _where(form, n, i),
                        f"no value of feature {n!r} (view {view!r}) for "
                        f"{self.owner.entity(view, columns, i)}: never written or older than "
                        f"the view's TTL, and input {n} ({self.served.decoder.dtypes[n]}) "
                        "takes no null",
                    )
                )
                if len(problems) >= 50:
                    raise RequestError.naming(problems)
        if problems:
            raise RequestError.naming(problems)
        model = {n: looked[n] if n in looked else columns[n] for n in self.names}
        extra = {n: looked[n] if n in looked else columns[n] for n in self.logged}
        return model, extra

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` says about the features of this model."""
        owner = self.owner
        reader = owner.reader
        types = reader.feature_types
        return {
            "service": reader.service.name,
            "version": owner.version,
            "store": owner.store_name,
            "features": [
                {
                    "name": f,
                    "type": types[f],
                    "view": owner.view_of[f],
                    "model_input": f in self.from_features,
                }
                for f in reader.feature_names
            ],
            "request": {
                "keys": list(self.keys),
                "request_fields": dict(self.request_fields),
                "inputs": {n: self.served.decoder.dtypes[n] for n in self.direct},
            },
        }


class OnlineFeatures:
    """A deployment's feature service, compiled once; see the module docstring."""

    def __init__(
        self,
        reader: OnlineReader,
        *,
        version: int | None,
        registry: CollectorRegistry,
        deployment: str,
        max_rows: int,
    ) -> None:
        from prometheus_client import Counter, Histogram

        self.reader = reader
        self.version = version
        self.store_name = reader.store.describe()
        service: ResolvedService = reader.service
        self.view_of: dict[str, str] = {}
        self.view_keys: dict[str, tuple[str, ...]] = {}
        for v in service.views:
            self.view_keys[v.name] = v.join_keys
            self.view_of.update(dict.fromkeys(v.features, v.name))
        for od in service.on_demand:
            self.view_of.update(dict.fromkeys(od.features, od.name))
        self.lookup_seconds = Histogram(
            "plinth_feature_lookup_seconds",
            "Online feature lookups: seconds per lookup (one multi-get per view).",
            ["deployment", "service"],
            buckets=_LOOKUP_BUCKETS,
            registry=registry,
        ).labels(deployment, service.name)
        missing = Counter(
            "plinth_feature_missing_total",
            "Looked-up feature values that were missing (no entry, or older than the TTL).",
            ["deployment", "feature", "view"],
            registry=registry,
        )
        self.missing = {
            f: missing.labels(deployment, f, self.view_of[f]) for f in reader.feature_names
        }
        self._bound: weakref.WeakKeyDictionary[ServedModel, FeatureBinding] = (
            weakref.WeakKeyDictionary()
        )
        self._passthrough: Sequence[Any] = ()
        self.batcher = Batcher(
            self._lookup,
            max_rows=max_rows,
            wait_s=0.0,
            arriving=lambda: 0,
            inline_s=_INLINE_S,
        )

    @classmethod
    def open(
        cls, spec: DeploymentSpec, ctx: Context | None, registry: CollectorRegistry
    ) -> OnlineFeatures:
        """Resolve ``spec.features``' service, open the online store and compile the reader
        (does I/O: at start-up, off the request path)."""
        assert spec.features is not None
        if ctx is None:
            raise UsageError(
                "a deployment with features: needs a project (its feature definitions and "
                "online store)",
                hint="create the app with ctx=Context.open()",
                field="features",
            )
        from plinth.features.online import OnlineReader
        from plinth.features.resolve import resolve_service

        resolved = resolve_service(spec.features.service, ctx=ctx)
        reader = OnlineReader(
            resolved, ctx.online_store, ctx=ctx, trust_code=spec.features.trust_code
        )
        version = resolved.record.number if resolved.record is not None else None
        out = cls(
            reader,
            version=version,
            registry=registry,
            deployment=spec.name,
            max_rows=spec.max_rows,
        )
        out._passthrough = spec.passthrough_fields
        return out

    def bind(self, served: ServedModel) -> FeatureBinding:
        """Check ``served``'s inputs against the service and keep how to serve it."""
        binding = FeatureBinding(self, served, self._passthrough)
        self._bound[served] = binding
        return binding

    def binding(self, served: ServedModel) -> FeatureBinding:
        return self._bound[served]

    def entity(self, view: str, columns: dict[str, list[Any]], row: int) -> str:
        """``tailnum='N123'``: the entity of ``row`` for ``view`` (an on-demand view: all keys)."""
        keys = self.view_keys.get(view, self.reader.join_keys)
        return ", ".join(f"{k}={columns[k][row]!r}" for k in keys)

    async def decode(
        self, served: ServedModel, doc: Any
    ) -> tuple[Decoded, dict[str, list[Any]], dict[str, str]]:
        """One request: (the model's columns as a Decoded, the extra logged columns, the
        log's column types). RequestError for a bad field or a missing feature."""
        binding = self._bound[served]
        try:
            decoded = binding.decoder.decode_request(doc)
        except RequestError as exc:
            raise self._explained(exc) from None
        columns, rows = decoded.columns, decoded.rows
        form = "records" if "records" in doc else "columns"
        wanted = {k: columns[k] for k in binding.keys}
        for f in binding.request_fields:
            wanted[f] = columns[f]
        looked = await self.batcher.submit(wanted, rows)
        merged = dict(zip(self.reader.feature_names, looked, strict=True))
        model, extra = binding.complete(columns, merged, form)
        return Decoded(model, rows, decoded.passthrough, decoded.echo), extra, binding.log_types

    def _explained(self, error: RequestError) -> RequestError:
        """``error`` with a feature sent in a request explained (it is looked up)."""
        problems = list(error.problems)
        if not any(field and field.rsplit(".", 1)[-1] in self.view_of for field, _ in problems):
            return error
        service = self.reader.service.name
        return RequestError.naming(
            [
                (
                    field,
                    f"a feature of service {service!r}, looked up by the server: send "
                    f"the entity keys ({', '.join(self.reader.join_keys)}), not the value",
                )
                if field and field.rsplit(".", 1)[-1] in self.view_of
                else (field, message)
                for field, message in problems
            ]
        )

    def _lookup(self, items: Sequence[Item]) -> list[list[Any]]:
        """One read of every queued request's entities: per item, one list per feature."""
        reader = self.reader
        if len(items) == 1:
            given = items[0].columns
        else:
            given = {
                name: [v for item in items for v in item.columns[name]] for name in items[0].columns
            }
        request = {f: given[f] for f in reader.request_fields} or None
        start = time.perf_counter()
        out, missing = reader.read_with_stats({k: given[k] for k in reader.join_keys}, request)
        self.lookup_seconds.observe(time.perf_counter() - start)
        for f, n in missing.items():
            if n:
                self.missing[f].inc(n)
        names = reader.feature_names
        if len(items) == 1:
            return [[out[f] for f in names]]
        results: list[list[Any]] = []
        at = 0
        for item in items:
            results.append([out[f][at : at + item.rows] for f in names])
            at += item.rows
        return results

    def close(self) -> None:
        self.batcher.close()


def _where(form: str, name: str, row: int) -> str:
    return f"records[{row}].{name}" if form == "records" else f"columns.{name}[{row}]"
