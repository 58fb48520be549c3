"""A project notebook as a pipeline step: :func:`notebook_step` (running it: notebooks.py).

The step's parameters are the names its ``parameters`` cell assigns, plus those given to
:func:`notebook_step`; each is keyword-only, so the pipeline's graph check catches a
misspelt one before anything runs. A parameter the pipeline does not pass keeps the value
given to :func:`notebook_step`, else the notebook's own (:data:`NotebookDefault.KEEP`)::

    report = notebook_step("reports/monthly.ipynb", params={"month": 1})

    @plinth.pipeline
    def monthly(month: int):
        stats = summarize(month)
        report(month=month, stats=stats)   # an upstream output, if it is JSON

The step's code digest is the notebook file's content, so its cache key changes when the
notebook does. The step returns :meth:`NotebookResult.to_dict`.
"""

from __future__ import annotations

import ast
import enum
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plinth.errors import UsageError
from plinth.pipelines.notebooks import (
    PARAMETERS_TAG,
    RUNNER_VERSION,
    check_params,
    notebook_file,
    run_notebook,
)
from plinth.pipelines.steps import Step, StepOptions

__all__ = ["NotebookDefault", "NotebookStep", "notebook_step"]


class NotebookDefault(enum.Enum):
    """The default of a parameter the pipeline may leave out: the notebook keeps its value."""

    KEEP = "the notebook's own value"


class NotebookStep(Step):
    """A step that runs a project notebook (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        kernel: str | None = None,
        options: StepOptions | None = None,
    ) -> None:
        if not isinstance(path, str) or not path:
            raise UsageError(f"notebook_step needs a notebook path, got {path!r}")
        self.path = Path(path).as_posix()
        self.defaults = check_params(params or {})
        self.kernel = kernel
        super().__init__(
            _NotebookCall(self), options, name=name or _identifier(Path(self.path).stem)
        )

    def _file(self) -> Path:
        from plinth.context import resolve_context

        return notebook_file(resolve_context(None), self.path)[0]

    @property
    def signature(self) -> inspect.Signature:
        """Keyword-only parameters: the ``parameters`` cell's names and the defaults'."""
        names = dict.fromkeys([*_parameter_names(self._file()), *self.defaults])
        return inspect.Signature(
            [
                inspect.Parameter(
                    n, inspect.Parameter.KEYWORD_ONLY, default=self.defaults.get(n, _KEEP)
                )
                for n in names
            ]
        )

    @property
    def code_digest(self) -> str:
        # Read every time: the notebook may be edited between two runs of one process.
        from blake3 import blake3

        hasher = blake3(f"plinth notebook step {RUNNER_VERSION}\0{self.kernel}\0".encode())
        hasher.update(self._file().read_bytes())
        return hasher.hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        # By value: every field is plain data, and the notebook is read where it runs.
        return (_rebuild, (self.path, self.name, self.defaults, self.kernel, self.options))

    def __repr__(self) -> str:
        return f"<plinth notebook step {self.name} ({self.path})>"


_KEEP = NotebookDefault.KEEP


class _NotebookCall:
    """The function of a :class:`NotebookStep`: ``(**params) -> NotebookResult.to_dict()``."""

    def __init__(self, step: NotebookStep) -> None:
        self._step = step
        self.__name__ = self.__qualname__ = _identifier(Path(step.path).stem)
        self.__module__ = __name__
        self.__doc__ = f"Run the notebook {step.path}."

    def __call__(self, **params: Any) -> dict[str, Any]:
        from plinth.entities import RecordRef
        from plinth.pipelines.executors import current_step

        step = self._step
        values = {k: v for k, v in {**step.defaults, **params}.items() if v is not _KEEP}
        here = current_step()  # inside a pipeline: the artifacts belong to the step run
        result = run_notebook(
            step.path,
            values,
            owner=None if here is None else RecordRef("step_run", here.step_run_id),
            timeout=step.options.timeout,
            kernel=step.kernel,
            attempt=1 if here is None else here.attempt,
            ctx=None if here is None else here.ctx,
        )
        if here is not None:  # the runs the kernel started count as the step's own
            from plinth.context import note_runs

            edges = here.ctx.ledger.lineage.edges_from(RecordRef("step_run", here.step_run_id))
            note_runs([e.dst.id for e in edges if e.relation == "ran" and e.dst.type == "run"])
        return result.to_dict()


def _parameter_names(file: Path) -> list[str]:
    """Names assigned at the top level of the notebook's ``parameters`` cell(s)."""
    try:
        nb = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read notebook {file.name}: {exc}", field="notebook") from None
    names: list[str] = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if PARAMETERS_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _rebuild(
    path: str, name: str, defaults: dict[str, Any], kernel: str | None, options: StepOptions
) -> NotebookStep:
    return NotebookStep(path, name=name, params=defaults, kernel=kernel, options=options)


def _identifier(text: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text).strip("_") or "notebook"
    return name if not name[0].isdigit() else f"nb_{name}"


def notebook_step(
    path: str | Path,
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = 600.0,
) -> NotebookStep:
    """A step running the project notebook ``path`` (relative to the project root) with
    ``params`` as defaults. ``timeout``: seconds for each cell and for the attempt.
    ``kernel``: the kernel name (default: the notebook's kernelspec, else python3)."""
    options = StepOptions(cache=cache, retries=retries, retry_delay=retry_delay, timeout=timeout)
    text = path.as_posix() if isinstance(path, Path) else path
    return NotebookStep(text, name=name, params=params, kernel=kernel, options=options)
