"""``plinth nb``: notebooks — a readable cell-level diff of two notebooks or two runs' notebooks."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.versioning.notebook_diff import NotebookDiff


@click.group(epilog="Example: plinth nb diff analysis.ipynb RUN_ID")
def nb() -> None:
    """Notebooks: compare two notebooks, or the notebooks two runs recorded."""


@nb.command(
    epilog="Examples:\n\n  plinth nb diff before.ipynb after.ipynb\n\n"
    "  plinth nb diff 0190c2a1 0190c2f7 --json\n\n"
    "  plinth nb diff report.ipynb STEP_RUN_ID --exit-code"
)
@click.argument("a")
@click.argument("b")
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when the notebooks differ, 0 when they do not (like git diff --exit-code).",
)
@json_option
def diff(a: str, b: str, exit_code: bool, as_json: bool) -> None:
    """Show which cells were added, removed or modified between A and B, with the changes
    to their source and outputs. A and B are .ipynb files or run ids (8+ characters): a run
    started in Jupyter records its notebook, a notebook step its executed notebook."""
    from plinth.versioning.notebook_diff import diff_notebooks, load_notebook

    if _needs_ledger(a) or _needs_ledger(b):
        from plinth.context import Context

        with Context.open() as ctx:
            found = diff_notebooks(load_notebook(a, ctx=ctx), load_notebook(b, ctx=ctx))
    else:
        found = diff_notebooks(load_notebook(a), load_notebook(b))
    if as_json:
        echo_json(found.to_dict())
    elif sys.stdout.isatty():
        _print_rich(found)
    else:
        for line in _lines(found):
            click.echo(line)
    if exit_code and not found.identical:
        click.get_current_context().exit(1)


def _needs_ledger(ref: str) -> bool:
    from pathlib import Path

    path = Path(ref)
    return not (path.suffix == ".ipynb" or path.is_file())


def _lines(found: NotebookDiff) -> list[str]:
    """The diff as plain text; notebook text is made printable (no terminal escapes)."""
    from plinth.guards.terminal import printable

    lines = [f"--- {printable(found.a)}", f"+++ {printable(found.b)}"]
    if found.identical:
        lines.append("no differences")
        return lines
    for cell in found.cells:
        where = {
            "added": f"cell {cell.b} ({cell.cell_type}) added",
            "removed": f"cell {cell.a} ({cell.cell_type}) removed",
            "modified": f"cell {cell.a} -> {cell.b} ({cell.cell_type}) modified"
            if cell.a != cell.b
            else f"cell {cell.a} ({cell.cell_type}) modified",
        }[cell.change]
        lines.append(f"## {where}")
        if cell.source_diff:
            lines.append("  source:")
            lines += [f"    {printable(line)}" for line in cell.source_diff]
        if cell.output_diff:
            lines.append("  outputs:")
            lines += [f"    {printable(line)}" for line in cell.output_diff]
        if cell.metadata_changed:
            lines.append("  metadata changed")
    if found.metadata_changed:
        keys = ", ".join(printable(k) for k in found.metadata_changed)
        lines.append(f"## notebook metadata changed: {keys}")
    counts = found.counts()
    lines.append(
        f"{counts['modified']} modified, {counts['added']} added, {counts['removed']} removed"
    )
    return lines


def _print_rich(found: NotebookDiff) -> None:
    """The same lines, coloured; printed as Text (never markup), so notebook text stays text."""
    from rich.text import Text

    from plinth.cli._runs_view import console

    out = console()
    for line in _lines(found):
        stripped = line.lstrip()
        style = ""
        if line.startswith("##"):
            style = "bold cyan"
        elif line.startswith(("---", "+++")):
            style = "bold"
        elif stripped.startswith("@@"):
            style = "magenta"
        elif stripped.startswith("+"):
            style = "green"
        elif stripped.startswith("-"):
            style = "red"
        out.print(Text(line, style=style), soft_wrap=True)
