"""Tracked runs: ``plinth.start_run`` and the handle it returns.

A run is a ledger record plus, while it is active in this process, a metric journal and its
ingest thread, an optional system-metrics sampler and the reproducibility capture made once
at start (code, environment). ``log_metric`` only appends to the journal; params, tags and
artifacts are written to the ledger at once, because their errors (a changed param value, a
bad path) must reach the caller.

Example::

    with plinth.start_run(experiment="delays", params={"lr": 0.1}) as run:
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1))
        run.log_dict({"features": ["distance"]}, "config/features.json")
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth._deprecation import renamed
from plinth.context import Context, enter_run, leave_run, outer_step_run, resolve_context
from plinth.entities import RecordRef, Run
from plinth.errors import BackendError, UsageError
from plinth.guards.secrets import redact_params
from plinth.ids import now_ms
from plinth.tracking import artifacts as _artifacts
from plinth.tracking.ingest import (
    Ingester,
    journal_dir,
    journal_points,
    recover_journals,
    write_end_marker,
)
from plinth.tracking.journal import SLOT_BITS, JournalWriter, parse_journal_name

if TYPE_CHECKING:
    from plinth.entities import Artifact, ModelVersion
    from plinth.registry.flavors.signature import Signature
    from plinth.tracking.capture import CapturedContext
    from plinth.tracking.system import SystemMetricsSampler

__all__ = ["ActiveRun", "active_run", "start_run"]

log = logging.getLogger("plinth.tracking")


class RunTerminated(SystemExit):
    """Raised in the main thread on SIGTERM while a run is active, so the run ends ``killed``."""


_stack: list[ActiveRun] = []
_stack_lock = threading.RLock()
_previous_sigterm: Any = None
_uncaught: list[BaseException] = []


def active_run() -> ActiveRun | None:
    """The innermost run started in this process and not yet ended."""
    with _stack_lock:
        return _stack[-1] if _stack else None


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise RunTerminated(128 + signum)


def _install_handlers() -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    if _previous_sigterm is None:
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _restore_handlers() -> None:
    global _previous_sigterm
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    _uncaught.append(exc)
    _original_excepthook(exc_type, exc, tb)


_original_excepthook = sys.excepthook


@atexit.register
def _end_runs_at_exit() -> None:
    """Runs left open when the interpreter exits end ``finished`` (``failed`` if it raised)."""
    while True:
        run = active_run()
        if run is None:
            return
        if _uncaught:
            exc = _uncaught[-1]
            run.end("failed", error=f"{type(exc).__name__}: {exc}")
        else:
            run.end("finished")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:4000]


class ActiveRun:
    """A run being recorded by this process. Use as a context manager, or call :meth:`end`."""

    def __init__(
        self,
        ctx: Context,
        run: Run,
        *,
        slot: int,
        system_metrics: bool,
        capture: CapturedContext | None = None,
    ):
        self._ctx = ctx
        self.info = run
        self.id = run.id
        self._steps: dict[str, int] = {}
        self._ended = False
        self._end_lock = threading.Lock()
        self._capture = capture
        self._source_warned = False
        self._journal = JournalWriter(journal_dir(ctx), run.id, slot)
        self._ingester = Ingester(
            lambda: ctx.ledger,
            self._journal,
            job=self._store_source if capture is not None else None,
        )
        # Started once there is work for them: a short run never starts a thread.
        self._ingester.start_soon()
        self._sampler: SystemMetricsSampler | None = None
        if system_metrics:
            from plinth.tracking.system import SystemMetricsSampler

            self._sampler = SystemMetricsSampler(self, ctx.settings.system_metrics_interval)
            self._sampler.start_soon()

    # -- metrics -------------------------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> int:
        """Record one value; returns at once (the point is journaled, the ledger follows).

        ``step`` defaults to one more than this key's last step in this process (0 first).
        ``timestamp`` is in epoch milliseconds (default: now). Returns the point's ``seq``.
        """
        if step is None:
            step = self._steps.get(key, -1) + 1
        elif type(step) is not int:
            step = _as_step(key, step)
        self._steps[key] = step
        if type(value) is not float:
            value = _as_value(key, value)
        ts = time.time_ns() // 1_000_000 if timestamp is None else int(timestamp)
        return self._journal.append(key, value, step, ts)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record several values at one step (and one timestamp)."""
        ts = time.time_ns() // 1_000_000 if timestamp is None else int(timestamp)
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every point logged so far is in the ledger; False on timeout."""
        return self._ingester.flush(
            self._ctx.settings.flush_timeout if timeout is None else timeout
        )

    # -- params and tags -----------------------------------------------------------------
    def log_param(self, key: str, value: object) -> None:
        """Record a param. Params are immutable: another value for the key is an error."""
        self._ctx.ledger.runs.log_params(self.id, redact_params({key: value}))

    def log_params(self, params: Mapping[str, object]) -> None:
        self._ctx.ledger.runs.log_params(self.id, redact_params(params))

    def set_tag(self, key: str, value: object) -> None:
        self._ctx.ledger.runs.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self._ctx.ledger.runs.set_tags(self.id, tags)

    # -- artifacts -----------------------------------------------------------------------
    def log_artifact(
        self, path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Store a file under ``artifact_path/<file name>`` (or its name)."""
        return _artifacts.log_file(self._ctx, self._ref, Path(path), artifact_path)

    @renamed(keywords={"directory": "path"})
    def log_artifacts(
        self, path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file under the folder ``path``, keeping relative paths."""
        return _artifacts.log_dir(self._ctx, self._ref, Path(path), artifact_path)

    def log_text(self, text: str, path: str) -> Artifact:
        return _artifacts.log_bytes(self._ctx, self._ref, text.encode("utf-8"), path)

    def log_bytes(self, data: bytes, path: str) -> Artifact:
        return _artifacts.log_bytes(self._ctx, self._ref, data, path)

    def log_dict(self, obj: Any, path: str) -> Artifact:
        """Store ``obj`` as JSON, or as YAML when ``path`` ends in .yaml/.yml."""
        return _artifacts.log_dict(self._ctx, self._ref, obj, path)

    def log_figure(self, figure: Any, path: str) -> Artifact:
        """Store a matplotlib figure as PNG."""
        return _artifacts.log_figure(self._ctx, self._ref, figure, path)

    def log_predictions(
        self,
        y_true: Any,
        y_pred: Any,
        *,
        ids: Any = None,
        scores: Any = None,
        name: str = "holdout",
    ) -> dict[str, Any]:
        """Store holdout predictions as Parquet plus a summary (:mod:`plinth.tracking.extras`)."""
        from plinth.tracking.extras import log_predictions

        return log_predictions(self, y_true, y_pred, ids=ids, scores=scores, name=name)

    def log_weights(self, model: Any, stage: str = "final") -> dict[str, Any]:
        """Store a model's weights with per-array statistics (:mod:`plinth.tracking.extras`)."""
        from plinth.tracking.extras import log_weights

        return log_weights(self, model, stage=stage)

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        signature: Signature | Mapping[str, Any] | None = None,
        flavor: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Save and register a model version (:func:`plinth.registry.model_files.log_model`)."""
        from plinth.registry.model_files import log_model

        return log_model(
            self,
            model,
            name,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            description=description,
        )

    @property
    def context(self) -> Context:
        return self._ctx

    @property
    def _ref(self) -> RecordRef:
        return RecordRef("run", self.id)

    # -- lifecycle -----------------------------------------------------------------------
    def _store_source(self) -> bool:
        """In the ingest thread: store the whole source once git has answered; True when
        done (or when ``end()`` takes it over, in its closing transaction)."""
        capture = self._capture
        assert capture is not None
        source = capture.source()
        if self._ended or not capture.claim():
            return True
        try:
            self._ctx.ledger.runs.set_source(self.id, source)
            capture.store_artifacts(self._ctx, self.id)
        except Exception as exc:
            capture.release()
            if not self._source_warned:  # once: the ingest thread warns about the outage
                self._source_warned = True
                log.warning("plinth: could not store the source of run %s yet: %s", self.id, exc)
            return False
        return True

    def end(self, status: str = "finished", *, error: str | None = None) -> None:
        """End the run: stop sampling, store the journal's last points and the status.

        Bounded in time: when the ledger cannot be reached within ``flush_timeout`` (plus the
        connection timeout), the points and the status stay in the journal on disk and the
        next plinth call on this machine stores them.
        """
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        if self._sampler is not None:
            self._sampler.stop()
        end_time = now_ms()
        closed = False
        source = None
        # The ingest thread stops; this thread stores the rest and the status at once.
        if self._ingester.halt(self._ctx.settings.flush_timeout):
            if self._capture is not None and self._capture.claim():
                source = self._capture.source()
            done, target = self._ingester.ingested, self._journal.count
            try:
                self._finish(
                    status,
                    points=journal_points(self._journal, done, target),
                    error=error,
                    end_time=end_time,
                    source=source,
                )
                closed = True
            except Exception as exc:
                log.warning("plinth: could not record the end of run %s: %s", self.id, exc)
        if closed and source is not None and self._capture is not None:
            try:
                self._capture.store_artifacts(self._ctx, self.id)
            except Exception as exc:
                log.warning("plinth: could not store the diff of run %s: %s", self.id, exc)
        if not closed:
            write_end_marker(self._journal, status, error, end_time, source)
            log.warning(
                "plinth: the end of run %s and %d metric points are not in the ledger yet; "
                "they stay in %s and the next plinth call on this machine stores them",
                self.id,
                self._journal.count - self._ingester.ingested,
                self._journal.path,
            )
        self._journal.close(remove=closed)
        with _stack_lock:
            if self in _stack:
                _stack.remove(self)
                leave_run(self.id)
            if not _stack:
                _restore_handlers()

    def _finish(self, status: str, **values: Any) -> None:
        """``runs.finish``, tried again while the ledger is unreachable (a team server or a
        database restarting) for up to ``flush_timeout`` seconds: when it is back in time,
        the end stores every point; otherwise the caller leaves them in the journal."""
        deadline = time.monotonic() + self._ctx.settings.flush_timeout
        pause = 0.25
        while True:
            try:
                self._ctx.ledger.runs.finish(self.id, status, **values)
                return
            except BackendError:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt | RunTerminated):
            self.end("killed", error=_error_text(exc) if str(exc) else type(exc).__name__)
        else:
            self.end("failed", error=_error_text(exc))

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.info.name!r})"

    def _repr_html_(self) -> str:
        """The run as recorded so far, as tables in Jupyter: the points logged until now are
        flushed first (waiting a second at most), then the run is read from the ledger."""
        from plinth.tracking.notebook import run_html
        from plinth.tracking.reading import get_run

        if not self._ended:
            self.flush(1.0)
        title = "run" if self._ended else "active run"
        return run_html(get_run(self.id, ctx=self._ctx), title=title)


def _as_step(key: str, step: object) -> int:
    """``step`` as an int: ints and integral numbers (numpy ints, 3.0) are accepted."""
    import operator

    if not isinstance(step, bool):
        try:
            return operator.index(step)  # type: ignore[arg-type]
        except TypeError:
            if isinstance(step, float) and step.is_integer():
                return int(step)
    raise UsageError(f"step of metric {key!r} must be an integer, got {step!r}", field="step")


def _as_value(key: str, value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(
            f"value of metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}",
            hint="log numbers; use log_text or log_dict for other data",
            field="value",
        ) from None


def _next_slot(ctx: Context, run_id: str) -> int:
    """A writer slot no other journal of this run used (a run resumed in a new process)."""
    max_seq = ctx.ledger.runs.max_seq(run_id)
    used = max_seq >> SLOT_BITS if max_seq >= 0 else -1
    try:
        for entry in os.scandir(journal_dir(ctx)):
            parsed = parse_journal_name(entry.name)
            if parsed and parsed[0] == run_id:
                used = max(used, parsed[1])
    except FileNotFoundError:
        pass
    return used + 1


def _with_seed(params: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """``params`` plus the seed :func:`plinth.seed_everything` set before the run, if any."""
    from plinth.tracking.seeding import pending_seed

    seed = pending_seed()
    merged = params if seed is None else {**(params or {}), "seed": seed}
    # Secrets never reach the shared ledger (plinth.guards.secrets).
    return None if merged is None else redact_params(merged)


def _store_capture_now(ctx: Context, run_id: str, captured: CapturedContext) -> bool:
    """Store the diff and untracked-file list of a run created with its whole source; False
    (the run's ingest thread retries) when that fails."""
    if not captured.claim():
        return True
    try:
        captured.store_artifacts(ctx, run_id)
    except Exception as exc:
        captured.release()
        log.warning("plinth: could not store the source of run %s yet: %s", run_id, exc)
        return False
    return True


def _activate(
    ctx: Context,
    run: Run,
    slot: int,
    system_metrics: bool | None,
    resumed: tuple[Mapping[str, object] | None, Mapping[str, object] | None] | None = None,
    capture: CapturedContext | None = None,
) -> ActiveRun:
    """The live handle of a run the ledger has; ``resumed`` holds the (params, tags) to add."""
    ledger = ctx.ledger
    if resumed is not None:
        params, tags = resumed
        if tags:
            ledger.runs.set_tags(run.id, tags)
        params = _with_seed(params)
        if params:
            ledger.runs.log_params(run.id, params)
    use_sampler = ctx.settings.system_metrics if system_metrics is None else system_metrics
    return ActiveRun(ctx, run, slot=slot, system_metrics=use_sampler, capture=capture)


@renamed(keywords={"context": "ctx"})
def start_run(
    experiment: str = "default",
    *,
    name: str | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
    run_id: str | None = None,
    parent: ActiveRun | str | None = None,
    nested: bool = True,
    system_metrics: bool | None = None,
    entry_point: Mapping[str, Any] | None = None,
    ctx: Context | None = None,
) -> ActiveRun:
    """Start (or with ``run_id``, resume) a run and make it the active one.

    Inside another active run the new run is its child unless ``nested=False``.
    Code, argv and environment are captured once here. ``entry_point`` overrides the
    detected one (see :func:`plinth.versioning.code.module_entry_point`).
    """
    ctx = resolve_context(ctx)
    recover_journals(ctx)
    ledger = ctx.ledger
    parent_id: str | None
    if isinstance(parent, ActiveRun):
        parent_id = parent.id
    elif parent is not None:
        parent_id = parent
    else:
        outer = active_run()
        parent_id = outer.id if (outer is not None and nested) else None

    if run_id is not None:
        run = ledger.runs.get_run(run_id)
        if run.status != "running":
            run = ledger.runs.set_status(run_id, "running")
        slot = _next_slot(ctx, run_id)
    else:
        from plinth.tracking.capture import capture_run_context
        from plinth.versioning.code import reproduce_of

        captured = capture_run_context(ctx, entry_point)
        # When git answered already (this process's last status still holds), the run is
        # created with its whole source; otherwise with what is known, completed later.
        source = captured.source() if captured.ready else captured.initial_source
        exp = ledger.projects.ensure_experiment(ctx.project.id, experiment)
        reproduces = reproduce_of()
        if reproduces:
            tags = {**(tags or {}), "plinth.reproduces": reproduces}
        run = ledger.runs.create_run(
            exp.id,
            name=name,
            parent_run_id=parent_id,
            source=source,
            environment_id=captured.environment_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            tags=tags,
            params=_with_seed(params),
        )
        slot = 0
    try:
        if run_id is None:
            if reproduces:
                ledger.lineage.add(
                    RecordRef("run", run.id), RecordRef("run", reproduces), "reproduces"
                )
            step_run = outer_step_run()
            if step_run:  # started in a process a pipeline step opened (a notebook kernel)
                ledger.lineage.add(RecordRef("step_run", step_run), RecordRef("run", run.id), "ran")
            pending: CapturedContext | None = captured
            if captured.ready and _store_capture_now(ctx, run.id, captured):
                pending = None
            active = _activate(ctx, run, slot, system_metrics, capture=pending)
        else:
            active = _activate(ctx, run, slot, system_metrics, resumed=(params, tags))
    except BaseException as exc:
        # Never leave a half-started run 'running': record why it could not start.
        try:
            ledger.runs.set_status(run.id, "failed", error=f"could not start: {_error_text(exc)}")
        except Exception as inner:  # the ledger itself is the problem
            log.warning("plinth: could not mark run %s failed: %s", run.id, inner)
        raise
    with _stack_lock:
        _stack.append(active)
        enter_run(active.id, ctx)
        _install_handlers()
        if sys.excepthook is not _excepthook:
            sys.excepthook = _excepthook
    return active
