"""Steps: ``@plinth.step`` functions, their options and the reference workers import them by.

A :class:`Step` wraps a function. Called while a ``@plinth.pipeline`` function is being traced
it adds a node to the graph and returns a :class:`StepOutput` placeholder; called anywhere
else it simply calls the function, so a step is still a plain, testable function::

    @plinth.step(retries=2, timeout=60, resources={"cpu": 2})
    def clean(raw: pd.DataFrame) -> pd.DataFrame: ...
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.pipelines.graph import Tracer

__all__ = ["Step", "StepOptions", "StepOutput", "StepRef", "step"]

_RESOURCE_KEYS = ("cpu", "gpu", "memory")

#: The tracer of the ``@pipeline`` function being traced in this thread/task, if any.
TRACER: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "plinth_pipeline_tracer", default=None
)


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: caching, retries (waiting ``retry_delay * 2**n`` before retry n+1),
    a per-attempt ``timeout`` in seconds, and the ``resources`` it asks an executor for."""

    cache: bool = True
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.cache, bool):
            raise UsageError(f"step option cache must be True or False, got {self.cache!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise UsageError(f"step option retries must be an integer >= 0, got {self.retries!r}")
        if not _number(self.retry_delay) or self.retry_delay < 0:
            raise UsageError(
                f"step option retry_delay must be a number of seconds >= 0, got "
                f"{self.retry_delay!r}"
            )
        if self.timeout is not None and (not _number(self.timeout) or self.timeout <= 0):
            raise UsageError(
                f"step option timeout must be a number of seconds > 0 or None, got {self.timeout!r}"
            )
        if not isinstance(self.resources, Mapping):
            raise UsageError("step option resources must be a mapping like {'cpu': 2, 'gpu': 1}")
        memory: object = self.resources.get("memory")
        if isinstance(memory, str):  # "2GB" -> bytes
            object.__setattr__(
                self, "resources", {**self.resources, "memory": memory_bytes(memory)}
            )
        for key, value in self.resources.items():
            if key not in _RESOURCE_KEYS:
                raise UsageError(
                    f"unknown resource {key!r}; known: {', '.join(_RESOURCE_KEYS)}",
                    hint="memory is in bytes, cpu and gpu are counts (fractions allowed)",
                    field="resources",
                )
            if not _number(value) or value < 0:
                raise UsageError(f"resource {key} must be a number >= 0, got {value!r}")

    def retry_wait(self, retry: int) -> float:
        """Seconds to wait before retry ``retry`` (1 for the first retry)."""
        return float(self.retry_delay) * 2.0 ** (retry - 1)


_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def memory_bytes(text: str) -> int:
    """``"2GB"``, ``"512MiB"``, ``"1.5 g"``, ``"4e9"`` as bytes (kB/MB/GB/TB powers of 1000,
    KiB/MiB/GiB/TiB powers of 1024)."""
    import re

    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([kmgt]?)(i?)b?\s*", text, re.I)
    if found is None:
        raise UsageError(
            f"resource memory must be bytes or a size like '2GB' or '512MiB', got {text!r}",
            field="resources",
        )
    number, unit, binary = found.groups()
    scale = 1024 ** ("kmgt".index(unit.lower()) + 1) if binary and unit else _UNITS[unit.lower()]
    return int(float(number) * scale)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class StepRef:
    """How another process finds a step: its module, qualified name and source file."""

    module: str
    qualname: str
    file: str | None

    def resolve(self) -> Step:
        """Import the step (by module name, else from its file) and return it as a Step."""
        module = sys.modules.get(self.module)
        if module is None:
            try:
                module = importlib.import_module(self.module)
            except ImportError:
                if self.file is None:
                    raise UsageError(
                        f"cannot import module {self.module!r} of step {self.qualname}"
                    ) from None
                spec = importlib.util.spec_from_file_location(self.module, self.file)
                if spec is None or spec.loader is None:
                    raise UsageError(f"cannot load {self.file}") from None
                module = importlib.util.module_from_spec(spec)
                sys.modules[self.module] = module
                spec.loader.exec_module(module)
        obj: Any = module
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        return obj if isinstance(obj, Step) else Step(obj)


class StepOutput:
    """A placeholder for a step's return value while a pipeline is traced. Index it
    (``out[0]``, ``out["key"]``) to pass one element of a tuple or mapping downstream."""

    __slots__ = ("item", "node")

    def __init__(self, node: str, item: int | str | None = None) -> None:
        self.node = node
        self.item = item

    def __getitem__(self, item: int | str) -> StepOutput:
        if self.item is not None:
            raise UsageError(f"output {self!r} is already an element; index a step's output once")
        if not isinstance(item, int | str) or isinstance(item, bool):
            raise UsageError(f"index a step output with an int or a str, got {item!r}")
        return StepOutput(self.node, item)

    def __bool__(self) -> bool:
        raise UsageError(
            f"the output of step {self.node!r} is not known while the pipeline is wired",
            hint="a @pipeline function only wires steps; branch inside a step instead",
        )

    def __iter__(self) -> Any:
        raise UsageError(
            f"cannot unpack the output of step {self.node!r} while the pipeline is wired",
            hint="index it instead: out[0], out[1]",
        )

    def __repr__(self) -> str:
        suffix = "" if self.item is None else f"[{self.item!r}]"
        return f"<output of step {self.node}{suffix}>"


class Step:
    """A function that runs as one step of a pipeline (see the module docstring)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        options: StepOptions | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if isinstance(fn, Step):
            fn = fn.fn
        if not callable(fn):
            raise UsageError(f"@plinth.step needs a function, got {fn!r}")
        self.fn: Callable[..., Any] = fn
        self.options = options or StepOptions()
        self.name: str = str(name or getattr(fn, "__name__", "step"))
        functools.update_wrapper(self, fn)
        self._digest: str | None = None

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    @property
    def ref(self) -> StepRef:
        """The reference a worker process imports this step by (module-level steps only)."""
        qualname = str(getattr(self.fn, "__qualname__", self.name))
        if "<locals>" in qualname or "<lambda>" in qualname:
            raise UsageError(
                f"step {self.name!r} is defined inside a function; the process and Ray "
                "executors import steps by name",
                hint="define the step at module level in a .py file",
            )
        try:
            file = inspect.getsourcefile(self.fn)
        except TypeError:
            file = None
        return StepRef(str(getattr(self.fn, "__module__", "__main__")), qualname, file)

    @property
    def code_digest(self) -> str:
        """BLAKE3 of this step's source and of the plinth steps it calls (see cache.py)."""
        if self._digest is None:
            from plinth.pipelines.cache import code_digest

            self._digest = code_digest(self)
        return self._digest

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = TRACER.get()
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add(self, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference, never by value: the worker imports the step.
        return (_resolve_ref, (self.ref,))

    def __repr__(self) -> str:
        return f"<plinth step {self.name}>"


def _resolve_ref(ref: StepRef) -> Step:
    return ref.resolve()


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step; bare (``@plinth.step``) or with options.

    ``cache``: reuse the outputs of an earlier run with the same code, parameters and input
    contents. ``retries``/``retry_delay``: try again after ``retry_delay * 2**n`` seconds.
    ``timeout``: seconds per attempt (in-process, the attempt runs in a thread that is left
    running when it times out: Python cannot kill a thread; the process executor kills
    the worker). ``resources``: ``{"cpu": 2, "gpu": 1, "memory": 4e9}`` (memory in
    bytes or as ``"4GB"``/``"4GiB"``), recorded and asked of the Ray executor. Example::

        @plinth.step(retries=3, retry_delay=0.5)
        def fetch(url: str) -> dict: ...
    """
    options = StepOptions(
        cache=cache,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        resources=dict(resources or {}),
    )
    if fn is not None:
        return Step(fn, options, name=name)

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, options, name=name)

    return wrap
