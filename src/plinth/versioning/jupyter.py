"""Notebook source capture: a run started inside Jupyter records the notebook itself.

A kernel's ``sys.argv`` (``ipykernel_launcher -f kernel-….json``) says nothing about the
code, so :func:`capture_notebook` looks for the notebook the kernel runs:

1. ``__vsc_ipynb_file__`` in the user namespace (VS Code sets it);
2. ``JPY_SESSION_NAME`` in the environment (Jupyter Server 2 sets it to the notebook's path;
   :func:`plinth.pipelines.notebooks.run_notebook` sets it for the kernels it starts);

and stores its file (as last saved) as the run artifact :data:`NOTEBOOK_SOURCE_PATH`. The cells
this kernel executed (``In[]``, what really ran, in order) are stored as
:data:`NOTEBOOK_HISTORY_PATH` — the whole source when no notebook file is found. Both are
redacted like a command line (secret values from the environment, URL passwords) first.
The run's ``source["notebook"]`` says what was found::

    {"path": "/home/ana/flights/explore.ipynb", "found_by": "JPY_SESSION_NAME",
     "digest": "…", "artifact": "source/notebook.ipynb", "history": "source/history.py",
     "cells": 12}

Outside IPython (``IPython`` not imported) it costs one dictionary look-up and returns None.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.guards.secrets import redact_text, secret_env_values

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "NOTEBOOK_HISTORY_PATH",
    "NOTEBOOK_SOURCE_PATH",
    "NotebookCapture",
    "capture_notebook",
    "save_notebook_source",
]

#: Run artifact holding the notebook file a run was started from.
NOTEBOOK_SOURCE_PATH = "source/notebook.ipynb"
#: Run artifact holding the cells the kernel executed before the run started, in order.
NOTEBOOK_HISTORY_PATH = "source/history.py"
#: A larger notebook file (outputs full of images) is named in the record but not stored.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
#: The environment variable Jupyter Server (2+) sets in a kernel to its notebook's path.
SESSION_ENV = "JPY_SESSION_NAME"


@dataclass(frozen=True)
class NotebookCapture:
    """What :func:`capture_notebook` found: ``info`` (JSON, the run's ``source["notebook"]``),
    the notebook file's bytes and the executed cells as one Python text."""

    info: dict[str, Any]
    notebook: bytes | None
    history: str | None


def capture_notebook(namespace: dict[str, Any] | None = None) -> NotebookCapture | None:
    """The notebook (or the IPython session) this process runs, or None outside IPython.

    ``namespace`` is the user namespace to read (default: the running shell's).
    """
    if "IPython" not in sys.modules:
        return None
    shell = _shell()
    if shell is None and namespace is None:
        return None
    user_ns: dict[str, Any] = namespace if namespace is not None else shell.user_ns
    path, found_by = _notebook_file(user_ns)
    secrets = secret_env_values()
    notebook: bytes | None = None
    info: dict[str, Any] = {"path": None if path is None else str(path), "found_by": found_by}
    if path is not None:
        try:
            size = path.stat().st_size
            if size <= MAX_NOTEBOOK_BYTES:
                raw = path.read_text(encoding="utf-8")
                notebook = redact_text(raw, secrets).encode("utf-8")
            else:
                info["skipped"] = f"larger than {MAX_NOTEBOOK_BYTES} bytes"
        except (OSError, UnicodeDecodeError) as exc:
            info["skipped"] = f"cannot read it: {exc}"
    if notebook is not None:
        from blake3 import blake3

        info["digest"] = blake3(notebook).hexdigest()
        info["artifact"] = NOTEBOOK_SOURCE_PATH
    cells = _history(user_ns)
    history: str | None = None
    if cells:
        history = redact_text(_history_text(cells), secrets)
        info["history"] = NOTEBOOK_HISTORY_PATH
        info["cells"] = len(cells)
    if notebook is None and history is None:
        return None
    return NotebookCapture(info=info, notebook=notebook, history=history)


def save_notebook_source(ctx: Context, run_id: str, capture: NotebookCapture) -> None:
    """Store the capture's notebook and executed cells as the run's source artifacts."""
    from plinth.entities import RecordRef

    owner = RecordRef("run", run_id)
    items: list[tuple[str, str, int, str | None]] = []
    if capture.notebook is not None:
        ref = ctx.blobs.put_bytes(capture.notebook)
        items.append((NOTEBOOK_SOURCE_PATH, ref.digest, ref.size, "application/x-ipynb+json"))
    if capture.history is not None:
        ref = ctx.blobs.put_bytes(capture.history.encode("utf-8"))
        items.append((NOTEBOOK_HISTORY_PATH, ref.digest, ref.size, "text/x-python"))
    if items:
        ctx.ledger.artifacts.record_many(owner, items)


def _shell() -> Any:
    """The running IPython shell, or None (IPython imported but not running)."""
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    return get() if callable(get) else None


def _notebook_file(user_ns: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The notebook file and how it was found; (None, None) when it was not."""
    candidates: list[tuple[object, str]] = [
        (user_ns.get("__vsc_ipynb_file__"), "__vsc_ipynb_file__"),
        (os.environ.get(SESSION_ENV), SESSION_ENV),
    ]
    for value, how in candidates:
        if not isinstance(value, str) or not value.endswith(".ipynb"):
            continue
        path = Path(value)
        if not path.is_absolute():
            path = Path.cwd() / path
        try:
            path = path.resolve()
        except (OSError, RuntimeError):
            continue
        if path.is_file():
            return path, how
    return None, None


def _history(user_ns: dict[str, Any]) -> list[tuple[int, str]]:
    """The cells executed so far (``In[n]``, the running one last), without empty ones."""
    cells = user_ns.get("In")
    if not isinstance(cells, list):
        return []
    return [
        (n, cell) for n, cell in enumerate(cells) if n and isinstance(cell, str) and cell.strip()
    ]


def _history_text(cells: list[tuple[int, str]]) -> str:
    return "".join(f"# In[{n}]\n{cell.rstrip()}\n\n" for n, cell in cells)
