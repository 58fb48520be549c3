"""The ledger of a team server project, over HTTP, with the same attributes as :class:`Ledger`.

With the ``server`` setting (``PLINTH_SERVER``) and a token in ``PLINTH_TOKEN``,
``Context.ledger`` is a :class:`RemoteLedger`: each store attribute is a proxy whose
methods are the store class's own public methods (read from the class, so a new method is
proxied without a line here), sent to ``POST /api/v1/projects/{project}/ledger/{store}/
{method}`` with arguments and results in :mod:`plinth.ledger.wire`. Errors come back as the
same :mod:`plinth.errors` classes, so callers and the CLI behave as with a local ledger::

    ledger = RemoteLedger("https://plinth.example.com", project="flights", token=token)
    run = ledger.runs.get_run(run_id)

The server records the token's user as ``created_by``; what this process calls its user
does not matter. Metric points travel in bounded requests: a long batch is split.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from plinth.errors import UsageError
from plinth.guards.team_client import TeamClient
from plinth.ledger.surface import STORES, MethodSpec, encode_args, method_spec, store_methods
from plinth.ledger.wire import decode

if TYPE_CHECKING:
    from plinth.entities import MetricPoint
    from plinth.ledger.artifacts import ArtifactStore
    from plinth.ledger.datasets import DatasetStore
    from plinth.ledger.deployments import DeploymentStore
    from plinth.ledger.environments import EnvironmentStore
    from plinth.ledger.features import FeatureStore
    from plinth.ledger.gc import GcStore
    from plinth.ledger.lineage import LineageStore
    from plinth.ledger.models import ModelStore
    from plinth.ledger.monitoring import MonitoringStore
    from plinth.ledger.pipelines import PipelineStore
    from plinth.ledger.projects import ProjectStore
    from plinth.ledger.runs import RunStore
    from plinth.ledger.search import SearchStore
    from plinth.ledger.validation import ValidationStore

__all__ = ["POINTS_PER_REQUEST", "RemoteLedger", "project_path"]

#: Metric points per request: about 1 MB of JSON, well under the server's body limit.
POINTS_PER_REQUEST = 10_000


def project_path(project: str) -> str:
    """The API path of a server project (its name is checked by the server)."""
    from urllib.parse import quote

    return f"/api/v1/projects/{quote(project, safe='')}"


class _StoreProxy:
    """Stands in for one store: each public method of its class becomes an HTTP call."""

    def __init__(self, client: TeamClient, project: str, store: str) -> None:
        self._client = client
        self._base = f"{project_path(project)}/ledger/{store}"
        self._store = store
        self._methods = frozenset(store_methods(store))
        self._memo: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(f"ledger store {self._store!r} has no method {name!r}")
        spec = method_spec(self._store, name)
        special = _SPECIAL.get((self._store, name))
        call = (lambda *a, **k: special(self, spec, a, k)) if special else self._caller(spec)
        setattr(self, name, call)  # built once per method
        return call

    def _caller(self, spec: MethodSpec) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._send(spec, encode_args(spec, args, kwargs))

        call.__name__ = spec.name
        return call

    def _send(self, spec: MethodSpec, wire_args: dict[str, Any]) -> Any:
        answer = self._client.call(f"{self._base}/{spec.name}", {"args": wire_args})
        if not isinstance(answer, dict) or "result" not in answer:
            raise UsageError(
                f"the team server {self._client.url} answered {self._store}.{spec.name} "
                "without a result",
                hint="check that PLINTH_SERVER names a plinth server of the same version",
            )
        return decode(answer["result"], spec.returns, "result")

    def __repr__(self) -> str:
        return f"<remote {self._store} store at {self._client.url}>"


def _log_metrics(
    proxy: _StoreProxy, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> int:
    """``runs.log_metrics`` in requests of at most :data:`POINTS_PER_REQUEST` points
    (re-sending a point is harmless: the ledger keeps each ``(run, seq)`` once)."""
    bound = spec.signature.bind(*args, **kwargs)
    points: Sequence[MetricPoint] = builtins.list(bound.arguments["points"])
    stored = 0
    for start in range(0, max(len(points), 1), POINTS_PER_REQUEST):
        chunk = points[start : start + POINTS_PER_REQUEST]
        stored += proxy._send(spec, encode_args(spec, (bound.arguments["run_id"], chunk), {}))
    return stored


def _finish(
    proxy: _StoreProxy, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> int:
    """``runs.finish`` whose points beyond one request go first through ``log_metrics``."""
    bound = spec.signature.bind(*args, **kwargs)
    points: Sequence[MetricPoint] = builtins.list(bound.arguments.get("points", ()))
    stored = 0
    if len(points) > POINTS_PER_REQUEST:
        head, points = points[:-POINTS_PER_REQUEST], points[-POINTS_PER_REQUEST:]
        log = method_spec("runs", "log_metrics")
        stored = _log_metrics(proxy, log, (bound.arguments["run_id"], head), {})
        bound.arguments["points"] = points
    result: int = proxy._send(spec, encode_args(spec, bound.args, bound.kwargs))
    return stored + result


def _remembered(
    proxy: _StoreProxy, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Records that never change once made (experiments, environments), asked for again:
    the same object, as the local stores' caches answer, without a round trip."""
    wire_args = encode_args(spec, args, kwargs)
    key = (spec.name, json.dumps(wire_args, sort_keys=True))
    with proxy._lock:
        found = proxy._memo.get(key)
    if found is None:
        found = proxy._send(spec, wire_args)
        with proxy._lock:
            found = proxy._memo.setdefault(key, found)
    return found


_SPECIAL: dict[tuple[str, str], Callable[..., Any]] = {
    ("runs", "log_metrics"): _log_metrics,
    ("runs", "finish"): _finish,
    ("projects", "ensure_experiment"): _remembered,
    ("environments", "put"): _remembered,
}


class RemoteLedger:
    """A team server project's ledger, used like a local :class:`plinth.ledger.Ledger`."""

    def __init__(self, url: str, *, project: str, token: str | None, timeout: float = 30.0) -> None:
        self._client = TeamClient(url, token=token, timeout=timeout)
        self._project = project
        self._info: dict[str, Any] | None = None
        self._info_lock = threading.Lock()
        #: Schema migrations are the server's business: a client never applies any.
        self.migrations_applied: tuple[str, ...] = ()
        proxies = {name: _StoreProxy(self._client, project, name) for name in STORES}
        self.projects = cast("ProjectStore", proxies["projects"])
        self.runs = cast("RunStore", proxies["runs"])
        self.search = cast("SearchStore", proxies["search"])
        self.artifacts = cast("ArtifactStore", proxies["artifacts"])
        self.environments = cast("EnvironmentStore", proxies["environments"])
        self.lineage = cast("LineageStore", proxies["lineage"])
        self.datasets = cast("DatasetStore", proxies["datasets"])
        self.deployments = cast("DeploymentStore", proxies["deployments"])
        self.validation = cast("ValidationStore", proxies["validation"])
        self.models = cast("ModelStore", proxies["models"])
        self.monitoring = cast("MonitoringStore", proxies["monitoring"])
        self.features = cast("FeatureStore", proxies["features"])
        self.pipelines = cast("PipelineStore", proxies["pipelines"])
        self.gc = cast("GcStore", proxies["gc"])

    @property
    def client(self) -> TeamClient:
        """The HTTP client (shared with the project's :class:`HttpBlobStore`)."""
        return self._client

    @property
    def project(self) -> str:
        return self._project

    @property
    def url(self) -> str:
        """The server and project, without credentials."""
        return f"{self._client.url}{project_path(self._project)}"

    def _server_info(self, *, fresh: bool = False) -> dict[str, Any]:
        with self._info_lock:
            if self._info is None or fresh:
                answer = self._client.request("GET", f"{project_path(self._project)}/ledger").json()
                if not isinstance(answer, dict):
                    raise UsageError(f"the team server {self._client.url} sent no ledger info")
                self._info = answer
            return self._info

    @property
    def user(self) -> str:
        """The user the server records as ``created_by``: the token's."""
        return str(self._server_info().get("user") or "")

    def schema_revision(self) -> str | None:
        """The server project's schema revision."""
        revision = self._server_info(fresh=True).get("schema_revision")
        return revision if isinstance(revision, str) else None

    def ping(self) -> None:
        """Check the server answers for this project; LedgerUnavailableError if not."""
        self._server_info(fresh=True)

    def close(self) -> None:
        """Close the connections; the ledger cannot be used afterwards."""
        self._client.close()

    def __enter__(self) -> RemoteLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteLedger({self.url!r})"
