"""The Ray executor (``executor: ray`` or ``ray://HOST:PORT``): each step attempt is one Ray
task asking for the step's ``resources``.

Which cluster: an already initialised Ray session is used as it is (so a program can call
``ray.init(runtime_env=...)`` itself first); otherwise ``ray://HOST:PORT`` from the executor
name, else the ``ray_address`` setting (``auto``, ``ray://HOST:PORT``), else a local cluster
started in this process on first use (no dashboard) and left up until the process exits.

Resources map onto Ray's task options:

==========  ============  ===================================================
``cpu``     ``num_cpus``  CPUs (fractions allowed); Ray's default is 1
``gpu``     ``num_gpus``  GPUs (fractions allowed); default 0
``memory``  ``memory``    bytes, or a size like ``"2GB"``/``"512MiB"``
==========  ============  ===================================================

A step asking for more than any live node of the cluster has fails at once with the
numbers, rather than waiting forever for resources that never come. The step function
travels by reference (its module and name, as with the process executor): the workers
import it, so it must be importable there (the same files on one machine; the project's
code in the cluster's image or ``runtime_env`` elsewhere). Inputs and outputs pass through
the content-addressed artifact store, which the workers must reach: a folder they see (one
machine, or a shared file system) or S3 — never ``memory://``. A step runs in the driver's
working directory when the worker sees it. ``timeout`` counts from submission (time queued
for resources included); a task past it is cancelled with ``ray.cancel(force=True)``,
which kills its worker. Ray does not retry tasks itself: the runner's ``retries`` do.

Ray is imported here only, and only when this executor is chosen (the ``ray`` extra).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.pipelines.executors import Executor, StepCall, StepOutcome, _one_line, _timed_out
from plinth.pipelines.outputs import MEMORY

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["RayExecutor", "ray_options"]

#: plinth resource name -> (Ray task option, Ray node resource).
_RESOURCES = {
    "cpu": ("num_cpus", "CPU"),
    "gpu": ("num_gpus", "GPU"),
    "memory": ("memory", "memory"),
}

_TASK: list[Any] = []


def ray_options(resources: dict[str, float]) -> dict[str, Any]:
    """Ray task options for a step's ``resources`` (see the module docstring)."""
    options: dict[str, Any] = {}
    for key, value in resources.items():
        option, _ = _RESOURCES[key]
        options[option] = int(value) if key == "memory" else float(value)
    return options


def _connect(address: str | None) -> Any:
    from plinth._extras import require

    ray = require("ray", feature="the ray pipeline executor (executor: ray)", field="executor")
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            logging_level="warning",
            log_to_driver=False,
        )
    return ray


def _ray_step(call: StepCall, cwd: str, digest: str) -> StepOutcome:
    """The body of each Ray task: one attempt, run in the worker, values never sent back.
    ``digest``: the step's code digest on the driver; a worker that imported an older
    version of the step's file (workers outlive pipeline runs) imports it again."""
    from plinth.context import set_current
    from plinth.pipelines.executors import _worker_context, run_call

    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    if call.step.code_digest != digest:
        ref = call.step.ref
        sys.modules.pop(ref.module, None)
        call.step = ref.resolve()
        if call.step.code_digest != digest:
            where = ref.file or ref.module
            return StepOutcome(
                None,
                f"UsageError: the Ray worker imports other code for step {call.node!r} "
                f"({where}) than the driver runs; the workers must see the same project code",
                [],
                0.0,
            )
    ctx = _worker_context(call.settings)
    set_current(ctx)  # a worker serves many pipeline runs, maybe of several projects
    outcome = run_call(call, ctx=ctx)
    outcome.value, outcome.has_value = None, False
    return outcome


def _task(ray: Any) -> Any:
    """The remote function, made once per process (Ray exports it to each new session).
    Ray retries nothing: the runner's ``retries`` do."""
    if not _TASK:
        _TASK.append(ray.remote(max_retries=0, retry_exceptions=False)(_ray_step))
    return _TASK[0]


class RayExecutor(Executor):
    """Steps as Ray tasks with their resources, outputs through the artifact store."""

    in_memory = False

    def __init__(self, name: str, ctx: Context) -> None:
        if name != "ray" and not name.startswith("ray://"):
            raise UsageError(
                f"not a Ray executor: {name!r}", hint="use ray or ray://HOST:PORT", field="executor"
            )
        if ctx.settings.artifacts.lower().startswith("memory://"):
            raise UsageError(
                f"the {name} executor passes step inputs and outputs through the artifact "
                "store, and memory:// is not visible to Ray workers",
                hint="use a folder (on a file system the workers share) or s3:// artifact "
                "store, or executor: local",
                field="artifacts",
            )
        self.name = name
        address = name if name.startswith("ray://") else ctx.settings.ray_address
        self._ray = _connect(address or None)
        self._remote = _task(self._ray)
        self._nodes = [
            dict(node.get("Resources") or {}) for node in self._ray.nodes() if node.get("Alive")
        ]
        cpus = sum(node.get("CPU", 0.0) for node in self._nodes)
        self.parallelism = max(1, int(cpus))
        self._cwd = os.getcwd()
        self._tasks: dict[tuple[tuple[str, Any], ...], Any] = {}

    def submit(self, call: StepCall, *, ctx: Context | None = None) -> cf.Future[StepOutcome]:
        if call.values:
            raise UsageError(
                f"step {call.node!r} gets a value kept in memory ({MEMORY}); the Ray "
                "executor passes values through the artifact store only",
                hint="return tables, arrays, JSON values, Paths or records from steps",
            )
        call.step.ref  # noqa: B018 - raises early for steps a worker cannot import
        options = ray_options(call.resources)
        self._check_feasible(call, options)
        started = time.perf_counter()
        key = tuple(sorted(options.items()))
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = self._remote.options(**options)
        ref = task.remote(call, self._cwd, call.step.code_digest)
        return self._bridge(call, ref, started)

    def _check_feasible(self, call: StepCall, options: dict[str, Any]) -> None:
        wanted = {_RESOURCES[k][1]: float(v) for k, v in call.resources.items() if v > 0}
        wanted.setdefault("CPU", float(options.get("num_cpus", 1.0)))
        if any(all(node.get(k, 0.0) >= v for k, v in wanted.items()) for node in self._nodes):
            return
        largest = {k: max((node.get(k, 0.0) for node in self._nodes), default=0.0) for k in wanted}
        raise UsageError(
            f"step {call.node!r} asks the Ray cluster for {_show(wanted)}: no live node "
            f"has that much (the most one node has: {_show(largest)})",
            hint="lower the step's resources, or add a node that has them to the cluster",
            field="resources",
        )

    def _bridge(self, call: StepCall, ref: Any, started: float) -> cf.Future[StepOutcome]:
        """A future for the task's outcome that never raises: Ray's errors and a timeout
        become failed outcomes (the task is cancelled, its worker killed)."""
        future: cf.Future[StepOutcome] = cf.Future()
        lock = threading.Lock()

        def settle(outcome: StepOutcome) -> None:
            with lock:
                if not future.done():
                    future.set_result(outcome)

        def finished(done: cf.Future[StepOutcome]) -> None:
            try:
                outcome = done.result()
            except BaseException as exc:  # the task broke: worker died, cancelled, unpicklable
                cause = getattr(exc, "cause", None)
                outcome = StepOutcome(
                    None,
                    _one_line(cause if isinstance(cause, BaseException) else exc),
                    [],
                    time.perf_counter() - started,
                    detail=str(exc)[-4000:],
                )
            settle(outcome)

        ref.future().add_done_callback(finished)
        if call.timeout is not None:
            ray = self._ray

            def expire() -> None:
                if future.done():
                    return
                ray.cancel(ref, force=True)
                elapsed = time.perf_counter() - started
                settle(_timed_out(call, elapsed, "its Ray task was cancelled, its worker killed"))

            timer = threading.Timer(call.timeout, expire)
            timer.daemon = True
            timer.start()
            future.add_done_callback(lambda _: timer.cancel())
        return future


def _show(resources: dict[str, float]) -> str:
    def one(key: str, value: float) -> str:
        if key == "memory":
            return f"{value / 1e9:.3g} GB memory"
        return f"{value:g} {key}"

    return ", ".join(one(k, v) for k, v in sorted(resources.items()))
