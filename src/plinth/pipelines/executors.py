"""Executors: where one attempt of a step runs. The runner owns the graph, the ledger, the
cache and retries; an executor only runs :class:`StepCall` s and hands back
:class:`StepOutcome` s through futures.

- :class:`InProcessExecutor` (``local``, the default): in the calling thread, values passed
  in memory; with a timeout, the attempt runs in a worker thread the runner stops waiting
  for (Python cannot kill a thread: a timed-out attempt keeps running in the background).
- :class:`ProcessExecutor` (``process``): a ``concurrent.futures.ProcessPoolExecutor``
  running independent branches in parallel. Steps are pickled by reference (module and
  name, never by value) and imported in the worker; inputs and outputs go through the
  content-addressed store (``ctx.blobs``). A step with a timeout runs in its own process,
  killed when the timeout passes. Workers fork from a forkserver that has plinth's worker
  side and the steps' installed libraries imported already (preload.py).

A new executor (Ray: ``executors_ray.py``) subclasses :class:`Executor`: ``submit`` returns
a ``concurrent.futures.Future`` (``submit(call, *, ctx=None)``), may override ``prepare(steps)``
(called once before the first submit, to warm workers), and the remote side calls
:func:`run_call` — which opens a context from ``call.settings`` when none is given — and
clears ``value``/``has_value`` (values never travel between processes).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import multiprocessing
import os
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.pipelines.outputs import MEMORY, load_outputs, store_outputs

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.pipelines.steps import Step
    from plinth.settings import Settings

__all__ = [
    "EXECUTORS",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "StepCall",
    "StepContext",
    "StepOutcome",
    "current_step",
    "open_executor",
    "retryable",
    "run_call",
]

#: Executor names the ``executor`` setting and ``--executor`` accept (plus ``ray://HOST:PORT``).
EXECUTORS = ("local", "process", "ray")


@dataclass(frozen=True)
class StepInput:
    """An upstream output to load: its output entries and the element taken (``out[0]``)."""

    entries: list[dict[str, Any]]
    item: int | str | None = None


@dataclass
class StepCall:
    """One attempt of one step: everything an executor needs, picklable (the step by
    reference). ``values`` holds in-memory inputs (in-process executors only); ``inputs``
    the stored upstream outputs a remote worker loads from the blob store."""

    node: str
    step: Step
    args: dict[str, Any]
    inputs: dict[str, StepInput]
    settings: Settings
    pipeline_run_id: str
    step_run_id: str
    attempt: int = 1
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def timeout(self) -> float | None:
        return self.step.options.timeout

    @property
    def resources(self) -> dict[str, float]:
        return dict(self.step.options.resources)


@dataclass
class StepOutcome:
    """How an attempt ended: ``outputs`` (entries, see outputs.py) or ``error`` (one line;
    ``detail`` the traceback), the runs it started, and its duration in seconds.
    ``value`` is the return value itself, kept only by in-process executors.
    ``retryable`` is False for errors another attempt cannot fix (:func:`retryable`)."""

    outputs: list[dict[str, Any]] | None
    error: str | None
    run_ids: list[str]
    duration: float
    detail: str | None = None
    value: Any = None
    has_value: bool = False
    retryable: bool = True


@dataclass(frozen=True)
class StepContext:
    """What a running step can ask about itself: :func:`current_step`."""

    ctx: Context
    pipeline_run_id: str
    step_run_id: str
    step: str
    attempt: int


_STEP: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "plinth_step", default=None
)


def current_step() -> StepContext | None:
    """The step running in this thread (its context, pipeline run, step run), or None.

    Library steps (gates, rollouts) use it to record decisions on the pipeline run::

        here = plinth.pipelines.current_step()
        ctx = here.ctx if here else plinth.current()
    """
    return _STEP.get()


def retryable(exc: BaseException) -> bool:
    """Whether another attempt of a step that raised ``exc`` may succeed: not for bad
    input (:class:`~plinth.errors.UsageError`) nor a gate's decision
    (:class:`~plinth.errors.GateFailedError`, already recorded: a retry would record it
    again), which the same inputs reproduce."""
    from plinth.errors import GateFailedError

    return not isinstance(exc, UsageError | GateFailedError)


def run_call(call: StepCall, *, ctx: Context | None = None) -> StepOutcome:
    """Run one attempt: load the inputs, call the function, store the outputs.

    Never raises for a failing step: the error comes back in the outcome.
    """
    from plinth.context import watch_runs

    started = time.perf_counter()
    if ctx is None:
        ctx = _worker_context(call.settings)
    with watch_runs() as runs:
        token = _STEP.set(
            StepContext(ctx, call.pipeline_run_id, call.step_run_id, call.node, call.attempt)
        )
        try:
            kwargs = dict(call.args)
            kwargs.update(call.values)
            for name, spec in call.inputs.items():
                if name not in call.values:
                    value = load_outputs(spec.entries, ctx)
                    kwargs[name] = value if spec.item is None else value[spec.item]
            value = call.step.fn(**kwargs)
            outputs = store_outputs(value, ctx.blobs)
        except Exception as exc:  # a step's failure is data for the runner, not a crash
            return StepOutcome(
                None,
                _one_line(exc),
                list(runs),
                time.perf_counter() - started,
                detail="".join(traceback.format_exception(exc)[-20:]),
                retryable=retryable(exc),
            )
        finally:
            _STEP.reset(token)
    return StepOutcome(
        outputs, None, list(runs), time.perf_counter() - started, value=value, has_value=True
    )


def _one_line(exc: BaseException) -> str:
    from plinth.errors import PlinthError

    text = exc.one_line() if isinstance(exc, PlinthError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 2000 else text[:1999] + "…"


class Executor(ABC):
    """Runs step attempts. ``in_memory`` executors may pass values between steps without
    storing them; others get every input through the blob store."""

    name: str = "executor"
    in_memory: bool = False
    #: Steps that may run at the same time (the runner submits at most this many).
    parallelism: int = 1

    @abstractmethod
    def submit(self, call: StepCall, *, ctx: Context | None = None) -> cf.Future[StepOutcome]:
        """Start ``call`` (``ctx``: the runner's context, for executors that run steps in
        this process); the future resolves to its outcome (never to an exception)."""

    def prepare(self, steps: Sequence[Step]) -> None:  # noqa: B027 - optional
        """Get ready to run ``steps`` (the runner calls it once, before the first submit):
        e.g. warm workers with the steps' libraries. Optional: the default does nothing."""

    def close(self) -> None:  # noqa: B027 - optional: most executors hold nothing
        """Release workers (called once per pipeline run)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _done(outcome: StepOutcome) -> cf.Future[StepOutcome]:
    future: cf.Future[StepOutcome] = cf.Future()
    future.set_result(outcome)
    return future


def _timed_out(call: StepCall, seconds: float, note: str) -> StepOutcome:
    return StepOutcome(
        None,
        f"TimeoutError: step {call.node!r} did not finish within {call.timeout:g} s ({note})",
        [],
        seconds,
    )


class InProcessExecutor(Executor):
    """Steps in this process, one at a time, values in memory (the default, ``local``)."""

    name = "local"
    in_memory = True

    def submit(self, call: StepCall, *, ctx: Context | None = None) -> cf.Future[StepOutcome]:
        if call.timeout is None:
            return _done(run_call(call, ctx=ctx))
        box: list[StepOutcome] = []
        copy = contextvars.copy_context()
        worker = threading.Thread(
            target=lambda: box.append(copy.run(run_call, call, ctx=ctx)),
            name=f"plinth-step-{call.node}",
            daemon=True,
        )
        started = time.perf_counter()
        worker.start()
        worker.join(call.timeout)
        if box:
            return _done(box[0])
        return _done(
            _timed_out(
                call,
                time.perf_counter() - started,
                "the attempt's thread cannot be killed and is left running",
            )
        )


_worker_ctx: dict[str, Context] = {}


def _worker_context(settings: Settings) -> Context:
    """The context of a worker process, opened once per settings and made current."""
    from plinth.context import Context, set_current

    key = repr(settings)
    ctx = _worker_ctx.get(key)
    if ctx is None:
        ctx = _worker_ctx[key] = Context(settings)
        set_current(ctx)
    return ctx


def _remote(call: StepCall) -> StepOutcome:
    outcome = run_call(call)
    outcome.value, outcome.has_value = None, False
    return outcome


def _isolated(call: StepCall, conn: Any) -> None:  # pragma: no cover - runs in a child
    try:
        conn.send(_remote(call))
    finally:
        conn.close()


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(Executor):
    """Independent steps in parallel in a local process pool (``process``).

    ``preload`` (default True): workers fork from a forkserver that imported plinth's worker
    side and the installed libraries of the steps given to :meth:`prepare` (preload.py);
    False leaves the forkserver as it is (each worker imports on its first step)."""

    name = "process"
    in_memory = False

    def __init__(self, max_workers: int | None = None, *, preload: bool = True) -> None:
        self.parallelism = max_workers or max(1, min(os.cpu_count() or 1, 8))
        self.preload = preload
        self._libraries: list[str] = []
        self._pool: cf.ProcessPoolExecutor | None = None

    def prepare(self, steps: Sequence[Step]) -> None:
        if self.preload:
            from plinth.pipelines.preload import library_modules

            self._libraries = library_modules(steps)

    def _context(self) -> Any:
        if not self.preload:
            return _mp_context()
        from plinth.pipelines.preload import mp_context

        threads = max(1, (os.cpu_count() or 1) // self.parallelism)
        return mp_context(self._libraries, threads=threads)

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.parallelism, mp_context=self._context())
        return self._pool

    def submit(self, call: StepCall, *, ctx: Context | None = None) -> cf.Future[StepOutcome]:
        if call.values:
            raise UsageError(
                f"step {call.node!r} gets a value kept in memory ({MEMORY}); the process "
                "executor passes values through the artifact store only",
                hint="return tables, arrays, JSON values, Paths or records from steps",
            )
        call.step.ref  # noqa: B018 - raises early for steps a worker cannot import
        if call.timeout is None:
            return self._get_pool().submit(_remote, call)
        return self._isolated(call)

    def _isolated(self, call: StepCall) -> cf.Future[StepOutcome]:
        future: cf.Future[StepOutcome] = cf.Future()
        mp = self._context()
        receive, send = mp.Pipe(duplex=False)
        child = mp.Process(target=_isolated, args=(call, send), daemon=True)
        started = time.perf_counter()
        child.start()
        send.close()

        def watch() -> None:
            assert call.timeout is not None
            if receive.poll(call.timeout):
                try:
                    future.set_result(receive.recv())
                except EOFError:
                    future.set_result(StepOutcome(None, "the step's worker process died", [], 0.0))
                child.join()
                return
            child.kill()
            child.join()
            future.set_result(
                _timed_out(call, time.perf_counter() - started, "its worker process was killed")
            )

        threading.Thread(target=watch, daemon=True).start()
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def open_executor(name: str | None, ctx: Context) -> Executor:
    """The executor named ``name`` (default: the ``executor`` setting)."""
    name = name or ctx.settings.executor or "local"
    if name == "local":
        return InProcessExecutor()
    if name == "process":
        return ProcessExecutor()
    if name == "ray" or name.startswith("ray://"):
        try:
            import importlib

            executors_ray = importlib.import_module("plinth.pipelines.executors_ray")
        except ImportError as exc:
            raise UsageError(
                f"the Ray executor is not available: {exc}",
                hint="pip install 'plinth[ray]'",
                field="executor",
            ) from None
        executor: Executor = executors_ray.RayExecutor(name, ctx)
        return executor
    raise UsageError(
        f"unknown executor {name!r}",
        hint="use local, process, ray or ray://HOST:PORT",
        field="executor",
    )
