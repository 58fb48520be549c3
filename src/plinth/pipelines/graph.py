"""The pipeline graph: nodes (one call of a step each) wired by their inputs, and the checks
run before anything executes — missing inputs, type hints across edges, cycles.

A ``@pipeline`` function is *traced*: it is called once with its parameters while every step
call records a :class:`Node` and returns a placeholder. The YAML face builds the same graph
from its file (and is where a cycle can be written down).

Type rule (documented in docs/pipelines.md): an edge ``A -> B.param`` is accepted when either
side is unannotated or ``Any``; when ``A``'s return type is the same class as, or a subclass
of, the parameter's type (``int`` is accepted for ``float``); for unions, when every member
``A`` may return is accepted by some member of the parameter's union (``Optional[X]``
accepts ``X`` and ``None``); generics compare their origin (``list[int]`` is a ``list``).
Anything the rule cannot judge (type variables, protocols, strings) is accepted.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from plinth.errors import UsageError
from plinth.pipelines.steps import TRACER, Step, StepOutput

__all__ = ["Graph", "Node", "Tracer", "check_graph", "compatible", "trace"]


@dataclass
class Node:
    """One call of a step: its name in the graph, the step, and its arguments (constants or
    :class:`StepOutput` placeholders naming upstream nodes)."""

    name: str
    step: Step
    args: dict[str, Any]

    @property
    def upstream(self) -> list[str]:
        seen: list[str] = []
        for value in self.args.values():
            if isinstance(value, StepOutput) and value.node not in seen:
                seen.append(value.node)
        return seen


@dataclass
class Graph:
    """A named DAG of nodes in insertion order; :meth:`order` is a topological order."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def order(self) -> list[str]:
        """Nodes in a topological order (stable: insertion order among ready nodes);
        UsageError naming the cycle if there is one."""
        waiting = {name: set(node.upstream) for name, node in self.nodes.items()}
        done: list[str] = []
        placed: set[str] = set()
        while waiting:
            ready = [n for n, deps in waiting.items() if deps <= placed]
            if not ready:
                raise UsageError(
                    f"pipeline {self.name!r} has a cycle: {' -> '.join(_cycle(waiting))}",
                    hint="a step cannot depend, directly or not, on its own output",
                    field="steps",
                )
            for name in ready:
                del waiting[name]
                placed.add(name)
                done.append(name)
        return done

    def downstream(self, names: set[str]) -> set[str]:
        """``names`` and every node that depends on one of them, directly or not."""
        found = set(names)
        for name in self.order():
            if set(self.nodes[name].upstream) & found:
                found.add(name)
        return found

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """``(upstream, downstream, parameter)`` for every wired input."""
        for node in self.nodes.values():
            for param, value in node.args.items():
                if isinstance(value, StepOutput):
                    yield value.node, node.name, param

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.name,
            "steps": [
                {
                    "name": name,
                    "function": f"{node.step.fn.__module__}.{node.step.fn.__qualname__}",
                    "upstream": node.upstream,
                    "cache": node.step.options.cache,
                    "retries": node.step.options.retries,
                    "timeout": node.step.options.timeout,
                    "resources": dict(node.step.options.resources),
                }
                for name, node in ((n, self.nodes[n]) for n in self.order())
            ],
        }

    def mermaid(self) -> str:
        """The graph as a Mermaid flowchart (for docs and pull requests)."""
        lines = ["flowchart TD"]
        for name in self.order():
            lines.append(f'    {_mermaid_id(name)}["{name}"]')
        for up, down, param in self.edges():
            lines.append(f"    {_mermaid_id(up)} -->|{param}| {_mermaid_id(down)}")
        return "\n".join(lines)

    def text(self) -> str:
        """One line per step: ``name <- upstream, ...``, in run order."""
        rows = []
        for name in self.order():
            up = self.nodes[name].upstream
            rows.append(f"{name}" + (f"  <- {', '.join(up)}" if up else ""))
        return "\n".join(rows)


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name) or "step"


def _cycle(waiting: Mapping[str, set[str]]) -> list[str]:
    start = next(iter(waiting))
    path = [start]
    while True:
        nxt = sorted(d for d in waiting[path[-1]] if d in waiting)[0]
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


class Tracer:
    """Collects the nodes of one traced pipeline call (see :func:`trace`)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepOutput:
        name = step.name
        n = 2
        while name in self.graph.nodes:
            name, n = f"{step.name}_{n}", n + 1
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(
                f"step {name!r} of pipeline {self.graph.name!r}: {exc}",
                hint="pass every parameter the step function needs when the pipeline calls it",
                field=name,
            ) from None
        bound.apply_defaults()
        arguments = _by_name(name, step, bound)
        for value in _leaves(arguments):
            if isinstance(value, StepOutput) and value.node not in self.graph.nodes:
                raise UsageError(f"step {name!r} uses {value!r}, which is not in this pipeline")
        for pname, value in arguments.items():
            if any(isinstance(v, StepOutput) for v in _leaves({"x": value})) and not isinstance(
                value, StepOutput
            ):
                raise UsageError(
                    f"step {name!r}: parameter {pname!r} nests a step output inside a "
                    "container; pass each output as its own parameter",
                    field=name,
                )
        self.graph.nodes[name] = Node(name, step, arguments)
        return StepOutput(name)


def _by_name(name: str, step: Step, bound: inspect.BoundArguments) -> dict[str, Any]:
    """The call's arguments by parameter name, as the step is later called (``fn(**args)``)
    and cached: ``**kwargs`` spread into their own names, so each is wired, hashed and
    recorded on its own; ``*args`` refused when given (positional extras have no name to
    call, wire or cache them by), dropped when empty."""
    args: dict[str, Any] = {}
    for pname, value in bound.arguments.items():
        kind = bound.signature.parameters[pname].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            args.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise UsageError(
                    f"step {name!r} got {len(value)} positional argument(s) for "
                    f"*{pname}; a step's inputs are wired and cached by name",
                    hint=f"give {step.name!r} named parameters (or **kwargs) and pass them "
                    "by keyword",
                    field=name,
                )
        else:
            args[pname] = value
    return args


def _leaves(arguments: Mapping[str, Any]) -> Iterator[Any]:
    for value in arguments.values():
        if isinstance(value, list | tuple | set | frozenset):
            yield from value
        elif isinstance(value, dict):
            yield from value.values()
        else:
            yield value


def trace(name: str, fn: Callable[..., Any], params: Mapping[str, Any]) -> Graph:
    """Call the pipeline function ``fn`` with ``params``, recording the steps it calls."""
    try:
        bound = inspect.signature(fn).bind(**params)
    except TypeError as exc:
        raise UsageError(
            f"pipeline {name!r}: {exc}",
            hint="give every parameter without a default, e.g. --param rows=100",
            field="params",
        ) from None
    bound.apply_defaults()
    graph = Graph(name, params=dict(bound.arguments))
    token = TRACER.set(Tracer(graph))
    try:
        fn(*bound.args, **bound.kwargs)
    finally:
        TRACER.reset(token)
    if not graph.nodes:
        raise UsageError(
            f"pipeline {name!r} calls no step",
            hint="decorate the functions it calls with @plinth.step",
        )
    return graph


def check_graph(graph: Graph) -> None:
    """Every check that must pass before anything runs (UsageError on the first failure)."""
    graph.order()  # cycles
    for node in graph.nodes.values():
        params = node.step.signature.parameters
        for pname, param in params.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if pname not in node.args and param.default is param.empty:
                raise UsageError(
                    f"step {node.name!r} of pipeline {graph.name!r} is missing input {pname!r}",
                    hint=f"wire it from another step or give it as a parameter: {pname}: ...",
                    field=node.name,
                )
        for pname in node.args:
            if pname not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                raise UsageError(
                    f"step {node.name!r} has no parameter {pname!r}",
                    hint=f"its parameters: {', '.join(params) or 'none'}",
                    field=node.name,
                )
        wanted = _hints(node.step.fn)
        for up, down, pname in graph.edges():
            if down != node.name:
                continue
            out = node.args[pname]
            produced = _hints(graph.nodes[up].step.fn).get("return", Any)
            if isinstance(out, StepOutput) and out.item is not None:
                produced = _element(produced, out.item)
            need = wanted.get(pname, Any)
            if not compatible(produced, need):
                raise UsageError(
                    f"step {down!r} parameter {pname!r} wants {_show(need)} but step {up!r} "
                    f"returns {_show(produced)}",
                    hint="fix the annotations, or convert the value in a step between them",
                    field=down,
                )


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: judge nothing
        return {}


def _element(produced: Any, item: int | str) -> Any:
    if typing.get_origin(produced) is tuple and isinstance(item, int):
        members = typing.get_args(produced)
        if len(members) == 2 and members[1] is Ellipsis:
            return members[0]
        if 0 <= item < len(members):
            return members[item]
    return Any


def _show(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not typing.get_args(tp) else repr(tp)


def _members(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def compatible(produced: Any, wanted: Any) -> bool:
    """Whether a value annotated ``produced`` may be passed where ``wanted`` is annotated
    (the rule in the module docstring)."""
    if produced is Any or wanted is Any or produced is inspect.Parameter.empty:
        return True
    if wanted is inspect.Parameter.empty or wanted is object:
        return True
    produced = type(None) if produced is None else produced
    wanted = type(None) if wanted is None else wanted
    many = _members(produced)
    if many is not None:
        return all(compatible(p, wanted) for p in many)
    choices = _members(wanted)
    if choices is not None:
        return any(compatible(produced, w) for w in choices)
    produced = typing.get_origin(produced) or produced
    wanted = typing.get_origin(wanted) or wanted
    if not isinstance(produced, type) or not isinstance(wanted, type):
        return True
    if getattr(wanted, "_is_protocol", False):
        return True
    if wanted is float and produced is int:
        return True
    if wanted is complex and produced in (int, float):
        return True
    try:
        return issubclass(produced, wanted)
    except TypeError:
        return True
