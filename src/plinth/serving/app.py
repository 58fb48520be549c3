"""The ASGI app of one deployment: predictions, model description, health and metrics.

::

    app = create_app(DeploymentSpec.load("deployment.yaml"), ctx=ctx)
    # POST /v1/predict  {"records": [{...}]} or {"columns": {...}}
    # GET  /v1/model  /v1/canary  /health  /ready  /metrics  /openapi.json

Models are loaded at start-up (``/ready`` answers 503 until then). A background task reads
each alias every ``serve_alias_poll_seconds`` and swaps in a moved version once it is
loaded. The request path does no disk or database I/O: bodies are parsed with orjson,
checked against the signature, micro-batched into one model call in a worker thread, and
handed to the prediction log (memory only). The other routes and the JSON answers to
Starlette's own errors are in :mod:`plinth.serving.routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from plinth._extras import require
from plinth.errors import (
    ModelFailedError,
    PayloadTooLargeError,
    PlinthError,
    RequestError,
    http_error,
)
from plinth.serving.canary import CanaryStats
from plinth.serving.decode import Decoded, Problem
from plinth.serving.metrics import ServingMetrics
from plinth.serving.routes import HEADERS, JSON, exception_handlers, not_ready, routes
from plinth.serving.served import ModelSlot, ServedModel

if TYPE_CHECKING:
    from collections.abc import Mapping
    from concurrent.futures import ThreadPoolExecutor

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from plinth.context import Context
    from plinth.entities import DeploymentVersion, ModelVersion
    from plinth.serving.edge import EdgeSuite, Failure
    from plinth.serving.features import OnlineFeatures
    from plinth.serving.spec import DeploymentSpec

__all__ = ["Server", "create_app"]

log = logging.getLogger("plinth.serving")


class Server:
    """The state behind one app: the model slots, metrics, prediction log and counters."""

    def __init__(
        self,
        spec: DeploymentSpec,
        *,
        ctx: Context | None,
        models: Mapping[str, Any] | None = None,
        predlog: Any = None,
        log_predictions: bool = True,
        deployment: DeploymentVersion | None = None,
        seed: int | None = None,
        poll_seconds: float | None = None,
        batch_wait_ms: float | None = None,
    ) -> None:
        if ctx is None and models is None:
            raise ValueError("create_app needs ctx (to load models) or models")
        settings = None if ctx is None else ctx.settings
        self.spec = spec
        self.ctx = ctx
        self.deployment = deployment
        self.predlog = predlog
        self._log_predictions = log_predictions and predlog is None
        self.poll_seconds = float(
            poll_seconds
            if poll_seconds is not None
            else (settings.serve_alias_poll_seconds if settings else 5.0)
        )
        wait_ms = (
            batch_wait_ms
            if batch_wait_ms is not None
            else (settings.serve_batch_wait_ms if settings else 2.0)
        )
        self.wait_s = max(0.0, float(wait_ms)) / 1000.0
        self.metrics = ServingMetrics(spec.name, predlog)
        self.variants = CanaryStats()  # per-role counts and latencies: GET /v1/canary
        self.random = random.Random(seed)  # noqa: S311 (traffic split, not secrets)
        self.arriving = 0  # requests being read, not yet queued for a model
        injected = dict(models or {})
        self.primary = self._slot(spec.model, "primary", injected)
        self.canary = (
            None if spec.canary is None else self._slot(spec.canary.model, "canary", injected)
        )
        self.shadow = None if spec.shadow is None else self._slot(spec.shadow, "shadow", injected)
        self.slots = [s for s in (self.primary, self.canary, self.shadow) if s is not None]
        self.ready = False
        self.edge: EdgeSuite | None = None
        self.features: OnlineFeatures | None = None  # opened at start (does I/O)
        if spec.suite is not None:  # a missing or malformed suite stops the server here
            from plinth.serving.edge import EdgeSuite
            from plinth.validation import Suite

            suite = Suite.load(spec.suite_path())
            # compile every row check now (a regex RE2 refuses would fail each request)
            EdgeSuite(suite, [c.column for c in suite.checks if c.column is not None])
        #: The OpenAPI document of the current primary (built on first request).
        self.openapi_cache: tuple[ServedModel, bytes] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._io: ThreadPoolExecutor | None = None

    def _slot(self, ref: str, role: str, injected: Mapping[str, Any]) -> ModelSlot:
        if injected and ref not in injected:
            raise ValueError(f"no injected model for {ref!r}")
        return ModelSlot(
            ref,
            role,
            ctx=self.ctx,
            make=lambda model, name, version, lineage: self._served(
                model, name, role, version, lineage
            ),
            metrics=self.metrics,
            model=injected.get(ref),
        )

    def _served(
        self,
        model: Any,
        name: str,
        role: str,
        version: ModelVersion | None,
        lineage: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> ServedModel:
        served = ServedModel(
            model,
            name,
            role,
            max_rows=self.spec.max_rows,
            wait_s=self.wait_s,
            arriving=lambda: self.arriving,
            metrics=self.metrics,
            version=version,
            lineage=lineage,
            passthrough=self.spec.passthrough_fields,
        )
        if self.features is not None:  # its inputs must all have a source, or it is refused
            self.features.bind(served)
        self.variants.loaded(role, name)
        return served

    def _load_suite(self) -> None:
        """Read the deployment's suite once (no disk I/O per request); log what is skipped."""
        from plinth.validation import Suite

        self.edge = None
        if self.spec.suite is None:
            return
        from plinth.serving.edge import EdgeSuite

        primary = self.primary.current
        fields = [] if primary is None else primary.decoder.names + primary.decoder.pass_names
        self.edge = EdgeSuite(Suite.load(self.spec.suite_path()), fields)
        log.info("plinth: %s (mode %s)", self.edge.summary(), self.spec.mode)

    # -- life cycle (worker threads) ---------------------------------------------------
    def start(self) -> None:
        """Record the deployment version, load every model, start the prediction log."""
        if self.deployment is None and self.ctx is not None:
            from plinth.serving.spec import save_deployment

            self.deployment = save_deployment(self.spec, self.ctx)
        if self.spec.features is not None and self.features is None:
            from plinth.serving.features import OnlineFeatures

            self.features = OnlineFeatures.open(self.spec, self.ctx, self.metrics.registry)
        for slot in self.slots:
            slot.refresh()
        self._load_suite()
        self.refresh_monitors()
        if self._log_predictions and self.ctx is not None and self.deployment is not None:
            from plinth.serving.predlog import PredictionLog

            self.predlog = PredictionLog(self.ctx, self.deployment, sample=self.spec.sample)
            self.predlog.start()
            self.metrics.predlog = self.predlog
        self.ready = True

    def refresh(self) -> bool:
        """Read every alias and swap in moved versions; True if any moved. Does I/O."""
        moved = False
        for slot in self.slots:
            try:
                moved = slot.refresh() or moved
            except Exception as exc:  # keep serving what is loaded; try again next poll
                log.warning("plinth: could not refresh %s: %s", slot.ref, exc)
        self.refresh_monitors()
        return moved

    def refresh_monitors(self) -> None:
        """Set the monitoring gauges from the newest report of each of its monitors."""
        if self.ctx is None:
            return
        from plinth.monitoring.gauges import latest_reports

        try:
            self.metrics.monitors.update(latest_reports(self.ctx, deployment=self.spec.name))
        except Exception as exc:  # gauges are informative; serving never depends on them
            log.warning("plinth: could not read monitor reports: %s", exc)

    async def in_io_thread(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` (start, refresh, close) on this server's one I/O thread: the
        context's sqlite3 reads stay with the thread that opened them, so the alias polls
        read through them too (no SQLAlchemy in a server on an embedded ledger)."""
        if self._io is None:
            from concurrent.futures import ThreadPoolExecutor

            self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plinth-serve-io")
        return await asyncio.get_running_loop().run_in_executor(self._io, work)

    def stop_io_thread(self) -> None:
        if self._io is not None:
            self._io.shutdown(wait=True)
            self._io = None

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.in_io_thread(self.refresh)

    def close(self) -> None:
        if self.predlog is not None and hasattr(self.predlog, "close"):
            self.predlog.close()
            self.metrics.sync_predlog()
        for slot in self.slots:
            if slot.current is not None:
                slot.current.close()
        if self.features is not None:
            self.features.close()

    # -- requests ---------------------------------------------------------------------
    async def predict(self, request: Request) -> Response:
        from starlette.responses import Response

        self.arriving += 1
        queued = False
        started = time.perf_counter()
        served: ServedModel | None = None
        try:
            body = await self._body(request)
            primary = self.primary.current
            if not self.ready or primary is None:
                raise not_ready()
            served = primary
            canary = self.canary
            if canary is not None and canary.current is not None:
                assert self.spec.canary is not None
                if self.random.random() < self.spec.canary.traffic:
                    served = canary.current
            doc = _parse(body)
            decoded, extra, types = await self._decode(served, doc)
            columns, rows, passed, echo = decoded
            self.metrics.rows.observe(rows)
            failures = self._check(doc, columns, passed, rows)
            self.arriving -= 1
            queued = True
            try:
                predictions = await served.batcher.submit(columns, rows)
            except Exception as exc:
                text = str(exc)
                log.warning("plinth: %s failed on a request: %.500s", served.name, text)
                # the model's message may quote a request value of any length: bounded
                shown = text if len(text) <= 200 else text[:197] + "..."
                raise ModelFailedError(
                    f"the model failed: {type(exc).__name__}: {shown}", field="model"
                ) from None
        except Exception as exc:  # the server answers, whatever the input
            if not queued:
                self.arriving -= 1
            if not isinstance(exc, PlinthError):
                log.exception("plinth: internal error on /v1/predict")
            kind = _error_type(exc)
            self.metrics.error(kind)
            if served is not None:
                outcome = "rejected" if kind in ("validation", "too_large") else "error"
                elapsed = time.perf_counter() - started
                self.variants.observe(served.role, served.name, elapsed, outcome)
            return self.error_response(exc)
        import orjson

        from plinth.ids import new_id

        request_id = new_id()
        answer: dict[str, Any] = {
            "predictions": predictions,
            "model_version": served.name,
            "request_id": request_id,
        }
        if echo:
            names = list(passed)
            answer["passthrough"] = (
                [
                    dict(zip(names, values, strict=True))
                    for values in zip(*passed.values(), strict=True)
                ]
                if names
                else [{} for _ in range(rows)]
            )
        logged: dict[str, Any] = columns
        if passed or failures is not None or extra:
            logged = {**columns, **extra, **passed}
            if failures is not None:
                from plinth.serving.edge import EdgeSuite

                logged["input_check_failures"] = EdgeSuite.per_row(failures, rows)
        payload = orjson.dumps(answer)
        self.metrics.response_bytes.observe(len(payload))
        if self.predlog is not None:
            try:
                self.predlog.append(
                    request_id,
                    time.time_ns() // 1_000_000,
                    served.name,
                    logged,
                    predictions,
                    nbytes=len(body),
                    types=types,
                )
            except Exception as exc:  # the log never fails a prediction
                log.warning("plinth: prediction log refused a request: %s", exc)
        if self.shadow is not None and self.shadow.current is not None:
            self._spawn(self._shadow(self.shadow.current, doc))
        self.variants.observe(served.role, served.name, time.perf_counter() - started, "ok")
        headers = {**HEADERS, "X-Request-ID": request_id, "X-Plinth-Variant": served.role}
        return Response(payload, media_type=JSON, headers=headers)

    async def _decode(
        self, served: ServedModel, doc: Any
    ) -> tuple[Decoded, dict[str, list[Any]], dict[str, str] | None]:
        """The model's columns of a request, the extra columns to log (keys and looked-up
        features not given to the model) and the log's column types."""
        if self.features is None:
            return served.decoder.decode_request(doc), {}, getattr(served, "log_types", None)
        return await self.features.decode(served, doc)

    def _check(
        self, doc: Any, columns: dict[str, list[Any]], passed: dict[str, list[Any]], rows: int
    ) -> list[Failure] | None:
        """The suite's failures for this request (None without a suite); in reject mode a
        RequestError naming each failing row and check when an error-level check fails."""
        edge = self.edge
        if edge is None:
            return None
        form = "records" if "records" in doc else "columns"
        failures = edge.check({**columns, **passed}, rows, form, reject=self.spec.mode == "reject")
        if not failures:
            return failures
        self.metrics.input_check_failures(failures)
        return failures

    async def _body(self, request: Request) -> bytes:
        limit = self.spec.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self.metrics.request_bytes.observe(int(declared))
            raise _too_large(int(declared), limit)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                self.metrics.request_bytes.observe(size)
                raise _too_large(size, limit)
            chunks.append(chunk)
        self.metrics.request_bytes.observe(size)
        return b"".join(chunks)

    async def _shadow(self, served: ServedModel, doc: Any) -> None:
        try:
            decoded = (await self._decode(served, doc))[0]
            await served.batcher.submit(decoded.columns, decoded.rows)
        except Exception as exc:  # a shadow never affects anyone; it is counted
            log.info("plinth: shadow %s failed: %s", served.name, exc)
            self.metrics.error("shadow")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def error_response(self, error: BaseException) -> Response:
        status, body = http_error(error)
        return self.json_response(body, status)

    def json_response(self, doc: Any, status: int = 200) -> Response:
        import orjson
        from starlette.responses import Response

        payload = orjson.dumps(doc)
        self.metrics.response_bytes.observe(len(payload))
        return Response(payload, status_code=status, media_type=JSON, headers=HEADERS)


def _parse(body: bytes) -> Any:
    import orjson

    if not body.strip():
        raise RequestError.naming(
            [Problem("body", 'empty body; send {"records": [...]} or {"columns": {...}}')]
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError.naming([Problem("body", f"not valid JSON: {exc}")]) from None


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError.naming(
        [Problem("body", f"{size} bytes is more than this deployment's limit of {limit}")]
    )


def _error_type(error: BaseException) -> str:
    """The ``type`` label of ``plinth_errors_total`` a failed request is counted under."""
    if isinstance(error, PayloadTooLargeError):
        return "too_large"
    if isinstance(error, RequestError):
        return "validation"
    if isinstance(error, ModelFailedError):  # raised only around the model call
        return "model"
    return "internal"


def create_app(
    spec: DeploymentSpec,
    *,
    ctx: Context | None = None,
    models: Mapping[str, Any] | None = None,
    predlog: Any = None,
    log_predictions: bool = True,
    deployment: DeploymentVersion | None = None,
    seed: int | None = None,
    poll_seconds: float | None = None,
    batch_wait_ms: float | None = None,
) -> Starlette:
    """The Starlette app serving ``spec``; ``app.state.server`` is its :class:`Server`.

    ``models`` maps the spec's references (``"m@champion"``) to loaded models, for tests;
    otherwise they are loaded from the registry of ``ctx`` at start-up. ``predlog`` is a
    prediction log to append to; by default one is started for the deployment version
    (``log_predictions=False``: none).
    """
    for module in ("starlette", "orjson"):  # the request path uses both
        require(module, feature="the serving app (plinth.serving.create_app)")
    from starlette.applications import Starlette

    server = Server(
        spec,
        ctx=ctx,
        models=models,
        predlog=predlog,
        log_predictions=log_predictions,
        deployment=deployment,
        seed=seed,
        poll_seconds=poll_seconds,
        batch_wait_ms=batch_wait_ms,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.in_io_thread(server.start)
        poller = asyncio.create_task(server.poll_forever())
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await server.in_io_thread(server.close)
            server.stop_io_thread()

    app = Starlette(
        routes=routes(server),
        lifespan=lifespan,
        exception_handlers=exception_handlers(server),
    )
    app.state.server = server
    return app


def app_from_env() -> Starlette:
    """The app for ``uvicorn --factory`` (``plinth serve --workers N``): the spec path and
    project come from ``_PLINTH_SERVE_SPEC`` and the working directory."""
    import os

    from plinth.context import Context
    from plinth.serving.spec import DeploymentSpec

    spec = DeploymentSpec.load(os.environ["_PLINTH_SERVE_SPEC"])
    return create_app(spec, ctx=Context.open())
