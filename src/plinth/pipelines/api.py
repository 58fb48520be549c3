"""The public face: ``@plinth.pipeline``, :func:`run_pipeline`, :func:`resume`,
:func:`load_target`.

A pipeline function wires steps by calling them; calling the decorated function runs the
pipeline and returns its :class:`~plinth.pipelines.result.PipelineResult`::

    @plinth.pipeline(alerts=[{"type": "log", "path": "alerts.log"}])
    def nightly(rows: int = 1000):
        raw = load(rows)
        train(clean(raw))

    result = nightly(rows=50)            # or run_pipeline("flows.py:nightly", {"rows": 50})
    result.steps["clean"].cache_hit
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.pipelines.executors import Executor
    from plinth.pipelines.graph import Graph
    from plinth.pipelines.result import PipelineResult
    from plinth.pipelines.runner import Event

__all__ = ["Pipeline", "load_pipeline", "load_target", "pipeline", "resume", "run_pipeline"]

#: Pipelines defined in this process, by name (how resume finds one without a target).
_DEFINED: dict[str, Pipeline] = {}


class Pipeline:
    """A pipeline function plus its name, triggers (raw mappings, read by the trigger agent)
    and alert routes (monitor route mappings, used when a run fails)."""

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        *,
        name: str | None = None,
        triggers: Sequence[Any] = (),
        alerts: Sequence[Mapping[str, Any]] = (),
        executor: str | None = None,
        graph_factory: Callable[[Mapping[str, Any]], Graph] | None = None,
        target: str | None = None,
    ) -> None:
        if fn is None and graph_factory is None:
            raise UsageError("a pipeline needs a function or a graph")
        self.fn = fn
        self.name: str = str(name or getattr(fn, "__name__", "pipeline"))
        self.triggers = list(triggers)
        self.alerts = [dict(a) for a in alerts]
        self.executor = executor
        self._graph_factory = graph_factory
        self._target = target
        if fn is not None:
            functools.update_wrapper(self, fn)
        _DEFINED[self.name] = self

    @property
    def target(self) -> str | None:
        """``FILE.py:NAME`` or ``module:NAME`` another process can load this pipeline by."""
        if self._target is not None:
            return self._target
        if self.fn is None:
            return None
        qualname = getattr(self.fn, "__qualname__", "")
        if "<locals>" in qualname:
            return None
        try:
            file = inspect.getsourcefile(self.fn)
        except TypeError:
            file = None
        return f"{file}:{self.name}" if file else f"{self.fn.__module__}:{qualname}"

    def parameters(self) -> inspect.Signature | None:
        return inspect.signature(self.fn) if self.fn is not None else None

    def graph(self, params: Mapping[str, Any] | None = None) -> Graph:
        """The checked graph this pipeline builds for ``params`` (nothing runs)."""
        from plinth.pipelines.graph import check_graph, trace

        if self._graph_factory is not None:
            graph = self._graph_factory(dict(params or {}))
        else:
            assert self.fn is not None
            graph = trace(self.name, self.fn, dict(params or {}))
        check_graph(graph)
        return graph

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        force: Collection[str] = (),
        executor: str | Executor | None = None,
        trigger: str = "manual",
        reason: str = "",
        on_event: Event | None = None,
        ctx: Context | None = None,
    ) -> PipelineResult:
        """Run with ``params``; see :func:`run_pipeline`."""
        from plinth.context import resolve_context
        from plinth.pipelines.runner import run_graph

        graph = self.graph(params)
        return run_graph(
            graph,
            ctx=resolve_context(ctx),
            force=tuple(force),
            executor=executor or self.executor,
            trigger=trigger,
            reason=reason,
            alerts=self.alerts,
            on_event=on_event,
            checked=True,
            target=self.target,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineResult:
        signature = self.parameters()
        if args:
            if signature is None:
                raise UsageError(f"pipeline {self.name!r} takes parameters by name only")
            try:
                bound = signature.bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise UsageError(f"pipeline {self.name!r}: {exc}", field="params") from None
            kwargs = dict(bound.arguments)
        return self.run(kwargs)

    def __repr__(self) -> str:
        return f"<plinth pipeline {self.name}>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    triggers: Sequence[Any] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
    executor: str | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    triggers: Sequence[Any] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
    executor: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a pipeline; calling it runs the pipeline.

    ``triggers``: when the agent runs it (see docs/pipelines.md); ``alerts``: alert routes
    (the monitor ``routes:`` syntax, e.g. ``{"type": "log", "path": "alerts.log"}``) told when
    a run fails; ``executor``: local, process or ray (default: the ``executor`` setting).
    """
    if fn is not None:
        return Pipeline(fn, name=name, triggers=triggers, alerts=alerts, executor=executor)

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, triggers=triggers, alerts=alerts, executor=executor)

    return wrap


def _load_file(path: Path) -> Any:
    """Import a Python file as a module (named so a worker process can import it too)."""
    resolved = path.resolve()
    tag = hashlib.blake2s(str(resolved).encode(), digest_size=4).hexdigest()
    name = f"plinth_pipeline_{resolved.stem}_{tag}"
    stat = resolved.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__plinth_version__", None) == version:
        return loaded  # unchanged since it was loaded: an edited file is loaded again
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {path} as Python", field="target")
    module = importlib.util.module_from_spec(spec)
    module.__plinth_version__ = version  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_target(target: str | Pipeline, *, root: Path | str | None = None) -> Pipeline:
    """The pipeline a target names: ``FILE.py:NAME`` (the file is imported: you named it),
    ``pipeline.yaml`` (the YAML face), ``module:NAME``, or a :class:`Pipeline`."""
    if isinstance(target, Pipeline):
        return target
    if not isinstance(target, str) or not target.strip():
        raise UsageError(f"a pipeline target must be FILE.py:NAME or FILE.yaml, got {target!r}")
    base = Path(root) if root is not None else Path.cwd()
    if target.endswith((".yaml", ".yml")):
        from plinth.pipelines.yaml_face import load_yaml_pipeline

        loaded: Pipeline = load_yaml_pipeline(Path(target), root=base)
        return loaded
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise UsageError(
            f"pipeline target {target!r} names no pipeline",
            hint="write FILE.py:NAME (e.g. flows.py:nightly) or pipeline.yaml",
            field="target",
        )
    if where.endswith(".py"):
        path = Path(where) if Path(where).is_absolute() else base / where
        if not path.is_file():
            raise NotFoundError(f"no file {where}", hint="give the path of a .py file")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise UsageError(f"cannot import {where!r}: {exc}", field="target") from None
    found = getattr(module, attr, None)
    if found is None:
        names = [k for k, v in vars(module).items() if isinstance(v, Pipeline)]
        raise NotFoundError(
            f"{where} has no {attr!r}",
            hint=f"pipelines there: {', '.join(names) or 'none'}",
            field="target",
        )
    if not isinstance(found, Pipeline):
        if callable(found):
            return Pipeline(found, name=attr, target=target)
        raise UsageError(f"{target} is not a pipeline function", field="target")
    return found


def load_pipeline(target: str | Pipeline, *, ctx: Context | None = None) -> Pipeline:
    """:func:`load_target` with paths taken from the project root of ``ctx``."""
    from plinth.context import resolve_context

    return load_target(target, root=resolve_context(ctx).settings.root)


def run_pipeline(
    target: str | Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    force: Collection[str] = (),
    executor: str | Executor | None = None,
    trigger: str = "manual",
    reason: str = "",
    on_event: Event | None = None,
    ctx: Context | None = None,
) -> PipelineResult:
    """Check and run a pipeline; its result (``.status``, ``.steps``, ``.value(step)``).

    ``force``: steps to rerun even when cached (everything downstream of them reruns too).
    ``executor``: local (default), process, ray or ray://HOST:PORT. ``trigger``/``reason``:
    what started the run, recorded on it. Example::

        run_pipeline("flows.py:nightly", {"rows": 50}, force=["train"])
    """
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    found = load_target(target, root=context.settings.root if isinstance(target, str) else None)
    values = coerce_params(found.fn, params or {})
    return found.run(
        values,
        force=force,
        executor=executor,
        trigger=trigger,
        reason=reason,
        on_event=on_event,
        ctx=context,
    )


def resume(
    run_id: str,
    *,
    target: str | Pipeline | None = None,
    executor: str | Executor | None = None,
    on_event: Event | None = None,
    ctx: Context | None = None,
) -> PipelineResult:
    """Rerun a failed pipeline run from where it failed, reusing every step that succeeded.

    The pipeline is ``target``, else the one of that name defined in this process, else
    the file the run recorded it was loaded from (only a file inside the project root).
    The new run records ``resumes=run_id``; the failed run becomes ``resumed``.
    """
    from plinth.context import resolve_context
    from plinth.pipelines.runner import run_graph

    context = resolve_context(ctx)
    old = context.ledger.pipelines.get_run(run_id)
    if old.status != "failed":
        raise UsageError(
            f"pipeline run {run_id} is {old.status}; only a failed run can be resumed",
            hint="plinth pipeline runs shows each run's status",
            field="run",
        )
    if target is not None:
        found = load_target(target, root=context.settings.root)
    elif old.pipeline in _DEFINED:
        found = _DEFINED[old.pipeline]
    elif (recorded := recorded_target(old.id, context)) is not None:
        found = load_target(recorded, root=context.settings.root)
    else:
        raise UsageError(
            f"pipeline {old.pipeline!r} is not loaded in this process",
            hint="name its file: plinth pipeline resume RUN --target FILE.py:NAME",
            field="target",
        )
    if found.name != old.pipeline:
        raise UsageError(
            f"run {run_id} is of pipeline {old.pipeline!r}, not {found.name!r}", field="target"
        )
    params = coerce_params(found.fn, old.params)
    graph = found.graph(params)
    return run_graph(
        graph,
        ctx=context,
        executor=executor or old.executor,
        trigger="resume",
        reason=f"resumes {run_id}",
        resumes=old,
        alerts=found.alerts,
        on_event=on_event,
        checked=True,
        target=found.target,
    )


def recorded_target(run_id: str, ctx: Context) -> str | None:
    """The target a pipeline run recorded (``pipeline.json``), if it is a file inside the
    project root: the recorded text only picks a file of your own project to load."""
    import json

    from plinth.entities import RecordRef
    from plinth.errors import InvalidPathError
    from plinth.guards.paths import safe_join

    try:
        artifact = ctx.ledger.artifacts.get(RecordRef("pipeline_run", run_id), "pipeline.json")
    except NotFoundError:
        return None
    target = json.loads(ctx.blobs.read_bytes(artifact.digest)).get("target")
    if not isinstance(target, str):
        return None
    if target.endswith((".yaml", ".yml")):
        file = target
    else:
        file, sep, _ = target.rpartition(":")
        if not sep or not file.endswith(".py"):
            return None
    root = ctx.settings.root.resolve()
    try:
        relative = Path(file).resolve().relative_to(root)
        safe_join(root, str(relative))
    except (ValueError, InvalidPathError):
        return None
    return target


def coerce_params(fn: Callable[..., Any] | None, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters from text or JSON (``--param k=v``, a recorded run) as the pipeline
    function's annotations ask: int, float, bool, Path; other strings parsed as YAML."""
    if fn is None:
        return {k: _coerce(k, v, None) for k, v in raw.items()}
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params = inspect.signature(fn).parameters
    out: dict[str, Any] = {}
    for key, value in raw.items():
        wanted = hints.get(key)
        if wanted is None and key in params and params[key].annotation is not params[key].empty:
            wanted = params[key].annotation
        out[key] = _coerce(key, value, wanted)
    return out


def _coerce(key: str, value: Any, wanted: Any) -> Any:
    if wanted is Path or wanted == "Path":
        return Path(value) if isinstance(value, str) else value
    if not isinstance(value, str):
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    try:
        if wanted is int or wanted == "int":
            return int(value)
        if wanted is float or wanted == "float":
            return float(value)
        if wanted is bool or wanted == "bool":
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
    except ValueError:
        raise UsageError(
            f"parameter {key}={value!r} is not a valid {getattr(wanted, '__name__', wanted)}",
            field="params",
        ) from None
    if wanted is str or wanted == "str":
        return value
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value
