"""Warm workers for the process executor: what the forkserver imports once, before forking.

The process executor starts its workers from multiprocessing's forkserver (never plain fork:
the runner's process has threads and open SQLite connections). A fresh worker would import
plinth's worker side and each step's libraries on its first step (scikit-learn alone takes
about a second), once per worker and per pipeline run. Instead the forkserver imports them
once when it starts, and every worker forks with them already loaded:

- plinth's worker side (:func:`_import_worker_side`), and
- the installed libraries (under site-packages) the pipeline's steps use
  (:func:`library_modules`): the modules their function bodies import and those their own
  module's globals come from.

Project code (the steps' own modules, anything outside site-packages) is never preloaded:
each worker imports it fresh, as before, so an edited step file is seen by the next run.

The forkserver is process-global and starts once: the libraries of the first process-executor
run of a process are preloaded; later runs needing others import them in their workers, as
without preloading. A forkserver already running (started by plinth or anyone else) is left
as it is, and the modules already set with ``multiprocessing.set_forkserver_preload`` are
kept. The library names reach the forkserver through :data:`ENV`, set only while it starts;
this module, preloaded there, imports each one and ignores any failure: a library that cannot
be imported fails the step that needs it in its worker, as before, never the forkserver.
"""

from __future__ import annotations

import dis
import importlib
import importlib.machinery
import multiprocessing
import os
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.pipelines.steps import Step

__all__ = ["ENV", "library_modules", "mp_context"]

#: The environment variable carrying the libraries to the forkserver (only while it starts).
ENV = "PLINTH_FORKSERVER_PRELOAD"
#: At most this many libraries are preloaded.
MAX_LIBRARIES = 64

_lock = threading.Lock()


def _import_all(names: Iterable[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - the worker meets the same error in its step
            continue


def _import_worker_side() -> None:
    """The plinth modules every worker imports for any step (imported plainly, so that the
    layer contracts see them)."""
    import plinth.context
    import plinth.pipelines.executors
    import plinth.pipelines.outputs
    import plinth.storage.content
    import plinth.storage.local  # noqa: F401


def _in_forkserver() -> None:
    """Run when the forkserver preloads this module: import what :data:`ENV` lists."""
    listed = os.environ.pop(ENV, None)  # popped: the workers and their children never see it
    if listed is not None:
        _import_worker_side()
        _import_all(name for name in listed.split(",") if name)


#: The thread-pool sizes of the native math libraries (BLAS, OpenMP, numexpr), read when they
#: are first imported: set for the forkserver so that N workers do not each start one thread
#: per core (on 2 cores, 2 workers x 2 BLAS threads made each fit ~3x slower).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def mp_context(
    libraries: Iterable[str] = (), *, preload: bool = True, threads: int | None = None
) -> Any:
    """The multiprocessing context workers start from: the forkserver (started here with
    plinth's worker side and ``libraries`` preloaded unless ``preload`` is False or it
    already runs), else spawn where the platform has no forkserver.

    ``threads``: the native math libraries' threads per worker (what joblib's loky does:
    cores // workers), set in the forkserver's environment for each of
    :data:`THREAD_VARIABLES` the user has not set; the parent's environment is unchanged."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    if not preload:
        return ctx
    from multiprocessing import forkserver

    with _lock:
        server = getattr(forkserver, "_forkserver", None)
        if server is not None and getattr(server, "_forkserver_pid", None) is not None:
            return ctx  # already started: its preload cannot change (see the module doc)
        current = list(getattr(server, "_preload_modules", None) or ["__main__"])
        ctx.set_forkserver_preload([*current, *(m for m in [__name__] if m not in current)])
        added = {ENV: ",".join(libraries)}
        if threads is not None:
            added.update(
                {name: str(max(1, threads)) for name in THREAD_VARIABLES if name not in os.environ}
            )
        before = {name: os.environ.get(name) for name in added}
        os.environ.update(added)
        try:
            forkserver.ensure_running()
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return ctx


# -- which libraries the steps use -----------------------------------------------------------


def library_modules(steps: Iterable[Step]) -> list[str]:
    """The installed libraries (modules under site-packages) the ``steps`` use: the modules
    their function bodies import and those their module's functions, classes and modules
    come from. Nothing is imported to find them."""
    names: dict[str, None] = {}
    for step in steps:
        fn = step.fn
        code = getattr(fn, "__code__", None)
        if isinstance(code, types.CodeType):
            names.update(dict.fromkeys(_body_imports(code)))
        module = sys.modules.get(str(getattr(fn, "__module__", "")))
        if module is not None:
            names.update(dict.fromkeys(_global_modules(module)))
    roots = _site_dirs()
    found = [name for name in names if _installed(name, roots)]
    return found[:MAX_LIBRARIES]


def _body_imports(code: types.CodeType) -> Iterator[str]:
    """Absolute imports in ``code`` and the functions nested in it."""
    recent: list[Any] = [None, None]
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME" and recent[-2] == 0 and isinstance(ins.argval, str):
            yield ins.argval  # level 0: absolute (the LOAD_CONST level before the fromlist)
        recent = [*recent[-1:], ins.argval if ins.opname == "LOAD_CONST" else None]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _body_imports(const)


def _global_modules(module: types.ModuleType) -> Iterator[str]:
    for value in list(vars(module).values()):
        if isinstance(value, types.ModuleType):
            yield value.__name__
        elif isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
            name = getattr(value, "__module__", None)
            if isinstance(name, str):
                yield name


def _site_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {str(Path(paths[key]).resolve()) for key in ("purelib", "platlib") if key in paths}
    return tuple(d + os.sep for d in dirs)


def _installed(name: str, roots: tuple[str, ...]) -> bool:
    """Whether ``name``'s top-level package lives under site-packages (found, not imported)."""
    top = name.partition(".")[0]
    if not top or top == "__main__" or name.startswith(__name__):
        return False
    module = sys.modules.get(top)
    where: str | None = None
    if module is not None:
        paths = getattr(module, "__path__", None) or []
        where = getattr(module, "__file__", None) or next(iter(paths), None)
    else:
        try:
            spec = importlib.machinery.PathFinder.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            where = spec.origin or next(iter(spec.submodule_search_locations or []), None)
    if not where:
        return False
    return str(Path(where).resolve()).startswith(roots)


_in_forkserver()
