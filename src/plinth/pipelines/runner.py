"""Running a graph: cache lookups, submission to an executor, retries with backoff,
skipping what a failure cuts off, and the ledger records (pipeline run, step runs, output
artifacts, lineage) of it all.

Steps start in topological order as soon as their inputs are ready (independent branches run
in parallel when the executor allows it). A failed step marks everything downstream of it
``skipped``; independent branches still run, so a resume has more to reuse.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from plinth.entities import RecordRef
from plinth.errors import UsageError
from plinth.pipelines.cache import cache_key
from plinth.pipelines.executors import Executor, StepCall, StepInput, StepOutcome, open_executor
from plinth.pipelines.graph import Graph, check_graph
from plinth.pipelines.outputs import MEMORY, is_stored, output_digest
from plinth.pipelines.result import PipelineResult, StepResult
from plinth.pipelines.steps import StepOutput

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import PipelineRun, StepRun

__all__ = ["Event", "run_graph"]

_OK = ("succeeded", "cached")
_BLOB_KINDS = ("table", "array", "json", "file")
_MEDIA = {
    "table": "application/vnd.apache.parquet",
    "array": "application/x-npy",
    "json": "application/json",
}

#: Progress callback: ``("start", step, None)`` and ``("end", step, StepResult)``.
Event = Callable[[str, str, StepResult | None], None]


@dataclass
class _Digest:
    """An upstream output's content digest, standing in for it in a cache key."""

    digest: str | None


def graph_digest(graph: Graph) -> str:
    """BLAKE3 over every step's name and code digest (the pipeline run's code_digest)."""
    hasher = blake3()
    for name in graph.order():
        hasher.update(f"{name}\0{graph.nodes[name].step.code_digest}\0".encode())
    return hasher.hexdigest()


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dict(params), default=str)))


class _Run:
    def __init__(
        self,
        graph: Graph,
        ctx: Context,
        executor: Executor,
        prun: PipelineRun,
        forced: set[str],
        reuse: Mapping[str, StepRun],
        on_event: Event | None,
    ) -> None:
        self.graph, self.ctx, self.executor, self.prun = graph, ctx, executor, prun
        self.forced, self.reuse, self.on_event = forced, reuse, on_event
        self.store = ctx.ledger.pipelines
        self.results: dict[str, StepResult] = {}
        self.values: dict[str, Any] = {}
        self.step_runs: dict[str, StepRun] = {}
        self.started: dict[str, float] = {}
        #: Reusable step runs by cache key, looked up in one query for the whole run; a
        #: key missing here is looked up when its step is ready.
        self.cached: dict[str, StepRun] = {}

    # -- inputs and keys ----------------------------------------------------------------
    def _entries(self, out: StepOutput) -> list[dict[str, Any]]:
        entries = self.results[out.node].outputs
        if out.item is not None and entries and "tuple" in entries[0]:
            picked = [e for e in entries if e.get("name") == str(out.item)]
            return picked or entries
        return entries

    def _key(self, name: str) -> str | None:
        node = self.graph.nodes[name]
        args: dict[str, Any] = {}
        for pname, value in node.args.items():
            if isinstance(value, StepOutput):
                entries = self._entries(value)
                digests = [output_digest(e) for e in entries]
                if any(d is None for d in digests):
                    return None
                whole = "|".join(str(d) for d in digests)
                if value.item is not None and len(entries) != 1:
                    whole += f"[{value.item!r}]"
                args[pname] = _Digest(whole)
            else:
                args[pname] = value
        return cache_key(node.step, args, lambda v: v.digest if isinstance(v, _Digest) else None)

    def _call(self, name: str, step_run: StepRun, attempt: int) -> StepCall:
        node = self.graph.nodes[name]
        args, inputs, values = {}, {}, {}
        for pname, value in node.args.items():
            if not isinstance(value, StepOutput):
                args[pname] = value
                continue
            if self.executor.in_memory and value.node in self.values:
                held = self.values[value.node]
                values[pname] = held if value.item is None else held[value.item]
            elif any(e.get("kind") == MEMORY for e in self._entries(value)):
                if not self.executor.in_memory:
                    raise UsageError(
                        f"step {name!r} needs the output of {value.node!r}, which was kept in "
                        f"memory; the {self.executor.name} executor passes values through "
                        "the artifact store only",
                        hint="return tables, arrays, JSON values, Paths or records from steps",
                    )
                values[pname] = self._load(value)
            else:
                inputs[pname] = StepInput(self.results[value.node].outputs, value.item)
        return StepCall(
            name,
            node.step,
            args,
            inputs,
            self.ctx.settings,
            self.prun.id,
            step_run.id,
            attempt,
            values,
        )

    def _load(self, out: StepOutput) -> Any:
        raise UsageError(f"the in-memory output of step {out.node!r} is gone")

    # -- recording ------------------------------------------------------------------------
    def _links(
        self, name: str, outputs: Sequence[dict[str, Any]], run_ids: Sequence[str]
    ) -> list[tuple[RecordRef, str]]:
        """The step run's lineage besides ``pipeline_run —contains→`` it: ``(ref, relation)``."""
        from plinth.entities import DatasetVersion, ModelVersion

        links: list[tuple[RecordRef, str]] = []
        for up in self.graph.nodes[name].upstream:
            upstream_run = self.step_runs.get(up)
            if upstream_run is not None:
                links.append((RecordRef("step_run", upstream_run.id), "used"))
        for value in self.graph.nodes[name].args.values():
            if isinstance(value, DatasetVersion):
                links.append((RecordRef("dataset_version", value.id), "used"))
            elif isinstance(value, ModelVersion):
                links.append((RecordRef("model_version", value.id), "used"))
        for entry in outputs:
            if entry.get("kind") in ("dataset_version", "model_version", "run"):
                links.append((RecordRef(entry["kind"], entry["ref"]), "produced"))
        links.extend((RecordRef("run", run_id), "ran") for run_id in run_ids)
        return links

    @staticmethod
    def _artifacts(outputs: Sequence[dict[str, Any]]) -> list[tuple[str, str, int, str | None]]:
        return [
            (e["path"], e["digest"], int(e.get("size") or 0), _MEDIA.get(e["kind"]))
            for e in outputs
            if e.get("kind") in _BLOB_KINDS and e.get("digest") and e.get("path")
        ]

    def _emit(self, kind: str, name: str, result: StepResult | None = None) -> None:
        if self.on_event is not None:
            self.on_event(kind, name, result)

    def _end(self, result: StepResult) -> None:
        self.results[result.name] = result
        self._emit("end", result.name, result)

    # -- the schedule -----------------------------------------------------------------------
    def _try_cached(self, name: str, key: str | None) -> bool:
        node = self.graph.nodes[name]
        found = self.reuse.get(name)
        if found is not None and (key is None or found.cache_key != key):
            found = None
        if (
            found is None
            and key is not None
            and node.step.options.cache
            and name not in self.forced
        ):
            found = self._find_cached(key)
        if found is None or not is_stored(found.outputs) or name in self.forced:
            return False
        step_run = self.store.record_cached(
            self.prun,
            name,
            cache_key=key,
            source=found,
            links=self._links(name, found.outputs, []),
        )
        self.step_runs[name] = step_run
        self._end(
            StepResult(
                name, "cached", True, 0, 0.0, list(found.outputs), None, step_run, found.run_id
            )
        )
        return True

    def _find_cached(self, key: str) -> StepRun | None:
        found = self.cached.get(key)
        return found if found is not None else self.store.find_cached(self.prun.project_id, key)

    def _skip(self, name: str, why: str) -> None:
        step_run = self.store.record_step(self.prun, name, status="skipped", error=why)
        self.step_runs[name] = step_run
        self._end(StepResult(name, "skipped", error=why, step_run=step_run))

    def _finish(self, name: str, outcome: StepOutcome, attempts: int) -> None:
        step_run = self.step_runs[name]
        duration = time.perf_counter() - self.started[name]
        run_id = outcome.run_ids[0] if outcome.run_ids else None
        if outcome.error is None:
            outputs = outcome.outputs or []
            step_run = self.store.end_step(
                step_run,
                status="succeeded",
                attempts=attempts,
                outputs=outputs,
                run_id=run_id,
                artifacts=self._artifacts(outputs),
                links=self._links(name, outputs, outcome.run_ids),
            )
            if step_run.cache_key is not None:  # now the newest run with its key
                self.cached[step_run.cache_key] = step_run
            if outcome.has_value:
                self.values[name] = outcome.value
            status, error = "succeeded", None
        else:
            outputs = []
            step_run = self.store.end_step(
                step_run,
                status="failed",
                attempts=attempts,
                error=outcome.error,
                run_id=run_id,
                links=self._links(name, outputs, outcome.run_ids),
            )
            status, error = "failed", outcome.error
        self.step_runs[name] = step_run
        self._end(
            StepResult(name, status, False, attempts, duration, outputs, error, step_run, run_id)
        )

    def _submit(self, name: str, attempt: int) -> cf.Future[StepOutcome]:
        call = self._call(name, self.step_runs[name], attempt)
        try:
            return self.executor.submit(call, ctx=self.ctx)
        except Exception as exc:  # a step the executor refuses fails, with the reason
            from plinth.pipelines.executors import _done, _one_line, retryable

            return _done(StepOutcome(None, _one_line(exc), [], 0.0, retryable=retryable(exc)))

    def execute(self) -> None:
        order = self.graph.order()
        pending = list(order)
        running: dict[cf.Future[StepOutcome], tuple[str, int]] = {}
        retries: list[tuple[float, str, int]] = []
        while pending or running or retries:
            for name in list(pending):
                if len(running) + len(retries) >= self.executor.parallelism:
                    break
                ups = self.graph.nodes[name].upstream
                bad = [u for u in ups if u in self.results and not self.results[u].ok]
                if bad:
                    pending.remove(name)
                    self._skip(name, f"upstream step {bad[0]!r} {self.results[bad[0]].status}")
                    continue
                if not all(u in self.results for u in ups):
                    continue
                pending.remove(name)
                try:
                    key = self._key(name)
                    if self._try_cached(name, key):
                        continue
                except Exception as exc:
                    from plinth.pipelines.executors import _one_line

                    self.step_runs[name] = self.store.record_step(self.prun, name, status="running")
                    self.started[name] = time.perf_counter()
                    self._finish(name, StepOutcome(None, _one_line(exc), [], 0.0), 0)
                    continue
                self.step_runs[name] = self.store.record_step(
                    self.prun, name, status="running", cache_key=key
                )
                self.started[name] = time.perf_counter()
                self._emit("start", name)
                running[self._submit(name, 1)] = (name, 1)
            now = time.perf_counter()
            for due in [r for r in retries if r[0] <= now]:
                retries.remove(due)
                running[self._submit(due[1], due[2])] = (due[1], due[2])
            if not running:
                if retries:
                    time.sleep(max(0.0, min(r[0] for r in retries) - time.perf_counter()))
                continue
            wait = None if not retries else max(0.0, min(r[0] for r in retries) - now)
            done, _ = cf.wait(running, timeout=wait, return_when=cf.FIRST_COMPLETED)
            for future in done:
                name, attempt = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the executor broke (a worker died, pickling)
                    from plinth.pipelines.executors import _one_line

                    outcome = StepOutcome(None, _one_line(exc), [], 0.0)
                options = self.graph.nodes[name].step.options
                if outcome.error is not None and outcome.retryable and attempt <= options.retries:
                    at = time.perf_counter() + options.retry_wait(attempt)
                    retries.append((at, name, attempt + 1))
                else:
                    self._finish(name, outcome, attempt)


def run_graph(
    graph: Graph,
    *,
    ctx: Context,
    force: Collection[str] = (),
    executor: str | Executor | None = None,
    trigger: str = "manual",
    reason: str = "",
    resumes: PipelineRun | None = None,
    alerts: Sequence[Mapping[str, Any]] = (),
    on_event: Event | None = None,
    checked: bool = False,
    target: str | None = None,
) -> PipelineResult:
    """Check ``graph``, run it, record everything; the finished run's result."""
    if not checked:
        check_graph(graph)
    unknown = [f for f in force if f not in graph.nodes]
    if unknown:
        raise UsageError(
            f"cannot force {unknown[0]!r}: pipeline {graph.name!r} has no such step",
            hint=f"its steps: {', '.join(graph.order())}",
            field="force",
        )
    notifiers = _notifiers(alerts, ctx) if alerts else []
    exe = executor if isinstance(executor, Executor) else open_executor(executor, ctx)
    exe.prepare([node.step for node in graph.nodes.values()])  # e.g. warm worker imports
    store = ctx.ledger.pipelines
    # The run this one most likely repeats: its steps' cache keys are looked up in one query.
    earlier = store.runs(ctx.project.id, pipeline=graph.name, limit=1) if resumes is None else []
    prun = store.start_run(
        ctx.project.id,
        graph.name,
        trigger=trigger,
        reason=reason or f"{trigger} run",
        params=_json_params(graph.params),
        code_digest=graph_digest(graph),
        executor=exe.name,
        resumes=resumes.id if resumes is not None else None,
    )
    if target is not None:
        _record_target(ctx, prun, target)
    reuse: dict[str, StepRun] = {}
    before: list[StepRun] = []
    if resumes is not None or earlier:
        before = store.steps(resumes.id if resumes is not None else earlier[0].id)
    if resumes is not None:
        for old in before:
            if old.status in _OK:
                reuse[old.step] = old
        store.finish_run(resumes.id, "resumed")
    state = _Run(graph, ctx, exe, prun, graph.downstream(set(force)), reuse, on_event)
    keys = {old.cache_key for old in before if old.cache_key is not None}
    if keys:
        state.cached = store.find_cached_many(prun.project_id, keys)
    error: str | None = None
    try:
        state.execute()
    except BaseException as exc:
        error = f"the runner stopped: {type(exc).__name__}: {exc}"
        store.finish_run(prun.id, "failed", error=error)
        raise
    finally:
        if not isinstance(executor, Executor):
            exe.close()
    failed = [r for r in state.results.values() if r.status == "failed"]
    if failed:
        error = f"step {failed[0].name!r} failed: {failed[0].error}"
    prun = store.finish_run(prun.id, "failed" if failed else "succeeded", error=error)
    if failed and notifiers:
        _alert(ctx, prun, failed[0], notifiers)
    ordered = {name: state.results[name] for name in graph.order() if name in state.results}
    return PipelineResult(prun, ordered, ctx, state.values)


def _record_target(ctx: Context, prun: PipelineRun, target: str) -> None:
    data = json.dumps({"target": target}, sort_keys=True).encode("utf-8")
    blob = ctx.blobs.put_bytes(data)
    ctx.ledger.artifacts.record(
        RecordRef("pipeline_run", prun.id),
        "pipeline.json",
        blob.digest,
        blob.size,
        "application/json",
    )


def _notifiers(alerts: Sequence[Mapping[str, Any]], ctx: Context) -> list[Any]:
    from plinth.monitoring.routes import notifiers_from_spec

    return notifiers_from_spec(list(alerts), settings=ctx.settings)


def _alert(ctx: Context, prun: PipelineRun, failed: StepResult, notifiers: list[Any]) -> None:
    from plinth.monitoring.alerts import AlertMessage, deliver

    alert = AlertMessage.create(
        f"pipeline:{prun.pipeline}",
        "pipeline_failed",
        severity="critical",
        title=f"pipeline {prun.pipeline} failed at step {failed.name}",
        message=failed.error or "",
        details={"pipeline_run": prun.id, "step": failed.name, "attempts": failed.attempts},
        key=prun.id,
    )
    deliver(prun.project_id, [alert], notifiers, retries=1, ctx=ctx)
