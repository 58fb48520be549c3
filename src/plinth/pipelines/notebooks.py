"""Running a notebook: parameters injected, executed with nbclient, kept as artifacts.

:func:`run_notebook` runs a project notebook once; :func:`plinth.pipelines.notebook_step.
notebook_step` makes one a pipeline step that calls it::

    result = run_notebook("reports/analysis.ipynb", {"month": 1, "threshold": 0.2})

Each run copies the notebook, adds a code cell assigning the parameters right after the cell
tagged ``parameters`` (papermill's convention; at the top when there is none), executes it
in a fresh kernel whose working directory is the notebook's folder, and stores the executed
notebook and its HTML rendering as artifacts of the step run (``notebook.ipynb``,
``notebook.html``). A cell that raises fails the step, naming the cell and the error.

Parameters are written as Python literals of JSON values only (``None``, ``bool``, ``int``,
finite ``float``, ``str``, lists and string-keyed dicts of them, exact types): nothing else
can reach the kernel's code. The notebook is found under the project root (no ``..``, no
absolute path, no symlink out) and its content is the step's code digest, so editing the
notebook misses the cache. The executed notebook and the page are redacted like a command
line (values of secret environment variables, URL passwords) before they are stored.

A notebook hands values to later steps with :func:`output` (``values`` in the result).
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import CheckFailedError, UsageError
from plinth.guards.paths import safe_join

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import RecordRef

__all__ = [
    "EXECUTED_PATH",
    "HTML_PATH",
    "OUTPUT_MEDIA_TYPE",
    "NotebookResult",
    "check_params",
    "inject_parameters",
    "notebook_file",
    "output",
    "render_html",
    "run_notebook",
]

#: Artifact of the step run (or run) holding the executed notebook.
EXECUTED_PATH = "notebook.ipynb"
#: Artifact holding the executed notebook rendered as one self-contained HTML page.
HTML_PATH = "notebook.html"
#: The display media type :func:`output` writes and :func:`run_notebook` collects.
OUTPUT_MEDIA_TYPE = "application/vnd.plinth.output+json"
#: Tags of the cell plinth adds (papermill's name, so tools that know it show it as such).
INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
#: Bump when what a notebook step runs changes for the same notebook (the cache key).
RUNNER_VERSION = 1
_FEATURE = "running a notebook as a step"


@dataclass(frozen=True)
class NotebookResult:
    """A notebook run: its project path, content digests and the values it gave with
    :func:`output`. ``executed``/``html`` are the digests of the stored artifacts."""

    notebook: str
    digest: str
    executed: str
    html: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "digest": self.digest,
            "executed": self.executed,
            "html": self.html,
            "values": self.values,
        }


def output(name: str, value: Any) -> None:
    """Inside a notebook run as a step: hand ``value`` (JSON) to the pipeline as ``name``."""
    from plinth._extras import require

    check_params({name: value}, what="output")
    ipython = require("IPython.display", feature="plinth.pipelines.notebooks.output")
    ipython.display({OUTPUT_MEDIA_TYPE: {"name": name, "value": value}}, raw=True)


def check_params(params: Mapping[str, Any], *, what: str = "parameter") -> dict[str, Any]:
    """``params`` as a dict, or UsageError naming the first that is not a plain JSON value
    under an identifier. Exact types only: a ``str`` subclass could rewrite its ``repr``."""
    import keyword

    if not isinstance(params, Mapping):
        raise UsageError(f"notebook {what}s must be a mapping, got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(
                f"notebook {what} name {name!r} is not a Python identifier",
                hint="use names like threshold or month_start",
                field=str(name),
            )
        problem = _not_json(value)
        if problem:
            raise UsageError(
                f"notebook {what} {name!r} is not a JSON value: {problem}",
                hint="pass None, bools, numbers, strings, lists and dicts of them; a dataset "
                "or model as its reference string (e.g. 'flights@3')",
                field=name,
            )
    return dict(params)


def _not_json(value: Any, depth: int = 0) -> str | None:
    if depth > 64:
        return "it is nested more than 64 levels deep"
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return None
    if kind is float:
        return None if math.isfinite(value) else f"{value!r} is not finite"
    if kind is list:
        return next((p for v in value if (p := _not_json(v, depth + 1))), None)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"dict key {key!r} is not a string"
            problem = _not_json(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{kind.__name__} is not one of None, bool, int, float, str, list, dict"


def inject_parameters(nb: Any, params: Mapping[str, Any]) -> Any:
    """A copy of notebook ``nb`` with a cell assigning ``params`` after the ``parameters``
    cell (at the top without one; none without params), replacing an earlier injection's."""
    from plinth._extras import require

    v4 = require("nbformat.v4", feature=_FEATURE, extra="notebooks")
    values = check_params(params)
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    if not values:
        nb.cells = cells
        return nb
    lines = ["# Parameters injected by plinth"]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    cell = v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    at = next(
        (i + 1 for i, c in enumerate(cells) if PARAMETERS_TAG in c.metadata.get("tags", [])),
        0,
    )
    cells.insert(at, cell)
    nb.cells = cells
    return nb


def run_notebook(
    path: str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    owner: RecordRef | None = None,
    timeout: float | None = 600.0,
    kernel: str | None = None,
    attempt: int = 1,
    ctx: Context | None = None,
) -> NotebookResult:
    """Execute the project notebook ``path`` with ``params``; store the executed notebook and
    its HTML as artifacts of ``owner`` (blobs only when None). A cell that raises is a
    :class:`~plinth.errors.CheckFailedError` naming it; the notebook of a failed ``attempt``
    is stored too, under ``failed/ATTEMPT/`` (artifacts are immutable: a retry of the same
    step run stores its own)."""
    from plinth._extras import require
    from plinth.context import resolve_context

    nbformat = require("nbformat", feature=_FEATURE, extra="notebooks")
    nbclient = require("nbclient", feature=_FEATURE, extra="notebooks")
    ctx = resolve_context(ctx)
    file, shown = notebook_file(ctx, path)
    raw = file.read_bytes()
    nb = inject_parameters(_read(nbformat, raw, shown), params or {})
    name = kernel or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    env = {**os.environ, "JPY_SESSION_NAME": str(file)}
    if owner is not None and owner.type == "step_run":
        from plinth.context import STEP_RUN_ENV

        env[STEP_RUN_ENV] = owner.id  # runs the kernel starts belong to the step run
    with tempfile.TemporaryDirectory(prefix="plinth-kernel-") as private:
        failure = _execute(nbclient, nb, name, timeout, file, env, Path(private), shown)
    executed = _redacted(nbformat.writes(nb)).encode("utf-8")
    page = render_html(nb, title=shown).encode("utf-8")
    stored = [
        (EXECUTED_PATH, ctx.blobs.put_bytes(executed), "application/x-ipynb+json"),
        (HTML_PATH, ctx.blobs.put_bytes(page), "text/html"),
    ]
    if owner is not None:
        prefix = "" if failure is None else f"failed/{attempt}/"
        ctx.ledger.artifacts.record_many(
            owner, [(prefix + p, ref.digest, ref.size, media) for p, ref, media in stored]
        )
    if failure is not None:
        raise failure
    from blake3 import blake3

    return NotebookResult(
        notebook=shown,
        digest=blake3(raw).hexdigest(),
        executed=stored[0][1].digest,
        html=stored[1][1].digest,
        values=_values(nb),
    )


def _execute(
    nbclient: Any,
    nb: Any,
    kernel: str,
    timeout: float | None,
    file: Path,
    env: dict[str, str],
    private: Path,
    shown: str,
) -> CheckFailedError | None:
    """Run ``nb`` in a new kernel; the error that fails the step, or None."""
    from plinth._extras import require

    manager = require("jupyter_client.manager", feature=_FEATURE, extra="notebooks")
    specs = require("jupyter_client.kernelspec", feature=_FEATURE, extra="notebooks")
    # Unix sockets in a private folder rather than TCP ports any local user could reach.
    km = manager.AsyncKernelManager(kernel_name=kernel, transport="ipc", ip=str(private / "kernel"))
    km.connection_file = str(private / "kernel.json")
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=None if timeout is None else math.ceil(timeout),
        kernel_name=kernel,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(file.parent)}},
    )
    try:
        _in_own_loop(client, env=env, cwd=str(file.parent))
    except nbclient.exceptions.CellTimeoutError:
        index = _failed_cell(nb)
        return CheckFailedError(
            f"notebook {shown}: cell {index} ran longer than {timeout} s",
            hint="raise the step's timeout, or make the cell faster",
            field=f"cells[{index}]",
        )
    except nbclient.exceptions.CellExecutionError as exc:
        index = _failed_cell(nb)
        return CheckFailedError(
            f"notebook {shown}: cell {index} raised {exc.ename}: {exc.evalue}",
            hint=f"open the stored {EXECUTED_PATH} (or {HTML_PATH}) for the traceback",
            field=f"cells[{index}]",
        )
    except nbclient.exceptions.DeadKernelError as exc:
        return CheckFailedError(f"notebook {shown}: the kernel died: {exc}")
    except specs.NoSuchKernel:
        raise UsageError(
            f"notebook {shown} asks for kernel {kernel!r}, which is not installed",
            hint="install it, or pass kernel='python3' to notebook_step",
            field="kernel",
        ) from None
    return None


def _in_own_loop(client: Any, **kwargs: Any) -> None:
    """``client.execute`` in a thread of its own with an event loop that is closed after:
    this thread may be a kernel's (Jupyter) with a loop already running, or a pipeline
    worker thread that nothing would close a loop for."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def main() -> None:
        # The kernel is stopped at the end even though the manager is ours, not nbclient's.
        await client.async_execute(cleanup_kc=True, **kwargs)

    with ThreadPoolExecutor(1, thread_name_prefix="plinth-notebook") as pool:
        pool.submit(asyncio.run, main()).result()


def notebook_file(ctx: Context, path: str | Path) -> tuple[Path, str]:
    """The notebook ``path`` names under the project root, and its '/' form for messages;
    InvalidPathError for a path that leaves the root, UsageError for a missing file."""
    root = Path(ctx.settings.root).resolve()
    text = Path(path).as_posix() if isinstance(path, Path) else str(path)
    file = safe_join(Path(root), text)
    shown = file.relative_to(root).as_posix()
    if file.suffix != ".ipynb":
        raise UsageError(f"{shown} is not a notebook (.ipynb)", field="notebook")
    if not file.is_file():
        raise UsageError(
            f"notebook {shown} does not exist under {root}",
            hint="name the notebook by its path from the project root",
            field="notebook",
        )
    return file, shown


def _read(nbformat: Any, raw: bytes, shown: str) -> Any:
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises JSON, validation and version errors
        raise UsageError(
            f"{shown} is not a valid notebook: {str(exc).splitlines()[0]}", field="notebook"
        ) from None
    return nb


def _failed_cell(nb: Any) -> int:
    """The index, in the user's notebook (without the injected cell), of the cell that
    stopped the run: the first with an error output, else the last one that started."""
    started = 0
    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return i
        if cell.get("execution_count") is not None or cell.get("outputs"):
            started = i
    return started


def _values(nb: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {}).get(OUTPUT_MEDIA_TYPE)
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                values[data["name"]] = data.get("value")
    return values


def _redacted(text: str) -> str:
    from plinth.guards.secrets import redact_text, secret_env_values

    return redact_text(text, secret_env_values())


def render_html(nb: Any, *, title: str) -> str:
    """The notebook as one self-contained page (see :mod:`plinth.pipelines.notebook_html`)."""
    from plinth.pipelines.notebook_html import notebook_html

    return _redacted(notebook_html(nb, title=title))
