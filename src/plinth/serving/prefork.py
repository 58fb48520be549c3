"""``plinth serve --workers N --preload``: import once, then fork N workers sharing memory.

Without ``--preload`` uvicorn spawns each worker as a fresh interpreter, and every one imports
scikit-learn, pandas, Arrow and the rest again (about 200 MB each, not shared). Here the parent
binds the socket, loads the deployment's models once (which imports everything they need,
without calling them), freezes its objects out of the garbage collector's reach (so that
collections in a worker do not write to, and copy, the pages it shares with the parent), and
forks the workers. Each worker opens its own ledger connection and loads its models again
from the registry (a file read: the imports are done), so ``/ready`` still means that worker's
model is loaded; its threads (batcher, prediction log, alias poller) start in it.

The parent only supervises: SIGINT or SIGTERM is passed to every worker, and when one worker
exits the others are stopped too (a process manager restarts the whole server). Needs
``os.fork`` (Linux, macOS).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.serving.spec import DeploymentSpec

__all__ = ["serve_preloaded"]

log = logging.getLogger("plinth.serving")


def _preload(spec: DeploymentSpec) -> None:
    """Load (never call) every model the deployment serves, and import the web stack."""
    import starlette.applications  # noqa: F401  (imported once, shared by the workers)

    from plinth.context import Context
    from plinth.registry import api

    refs = [spec.model] + ([spec.canary.model] if spec.canary else []) + [spec.shadow or ""]
    with Context.open() as ctx:
        for ref in filter(None, refs):
            api.load(api.get(ref, ctx=ctx), ctx=ctx)


def _worker(spec: DeploymentSpec, config: Any, sock: Any, uvicorn: Any) -> None:
    """The body of one forked worker: its own ledger connection, app and event loop."""
    from plinth.context import Context
    from plinth.serving.app import create_app

    with Context.open() as ctx:  # the parent's objects stay frozen: never collected here
        config.app = create_app(spec, ctx=ctx)
        uvicorn.Server(config).run(sockets=[sock])


def serve_preloaded(spec: DeploymentSpec, *, host: str, port: int, workers: int) -> int:
    """Serve ``spec`` on ``host:port`` with ``workers`` forked processes; the exit status."""
    if not hasattr(os, "fork"):
        raise UsageError(
            "--preload needs os.fork, which this platform lacks",
            hint="leave --preload out: each worker then imports and loads on its own",
            field="preload",
        )
    from plinth._extras import require

    uvicorn = require("uvicorn", feature="plinth serve --preload")
    config = uvicorn.Config(None, host=host, port=port, log_level="warning")
    sock = config.bind_socket()
    _preload(spec)
    gc.freeze()  # objects made so far stay out of collections: their pages stay shared
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            status = 0
            try:
                _worker(spec, config, sock, uvicorn)
            except BaseException:  # the worker's failure is its exit status
                log.exception("plinth: a serving worker failed")
                status = 1
            finally:
                os._exit(status)
        children.append(pid)
    sock.close()
    return _supervise(children)


def _supervise(children: list[int]) -> int:
    """Forward SIGINT/SIGTERM to the workers; when one exits, stop the rest; the first
    non-zero exit status (0 when every worker stopped cleanly)."""

    def forward(signum: int, _frame: Any) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    status = 0
    alive = set(children)
    while alive:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        alive.discard(pid)
        status = status or os.waitstatus_to_exitcode(code)
        if alive:  # one worker gone: stop the others (the server is one unit)
            forward(signal.SIGTERM, None)
    return 0 if status < 0 and -status in (signal.SIGTERM, signal.SIGINT) else abs(status)
