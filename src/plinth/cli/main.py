"""The ``plinth`` command: a lazy group, one module per command group, errors mapped to exit codes.

Exit codes: 0 success, 1 a check failed, 2 usage, input or configuration errors. A
:class:`~plinth.errors.PlinthError` prints one line (``error: ... (hint)``) on stderr and,
with ``--json``, the JSON error shape on stdout; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from plinth._version import __version__

# name -> (module, attribute, one-line help). Modules are imported only when a command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "agent": (
        "plinth.cli.agent",
        "agent",
        "Watch pipelines' triggers (cron, new data, alerts) and run them.",
    ),
    "data": (
        "plinth.cli.data",
        "data",
        "Version datasets: add, status, list, show, log, diff, checkout, tag.",
    ),
    "deploy": (
        "plinth.cli.deploy",
        "deploy",
        "Export a deployment as a Dockerfile plus Kubernetes or compose files.",
    ),
    "demo": ("plinth.cli.demo", "demo", "Run the end-to-end demo on bundled data."),
    "doctor": ("plinth.cli.doctor", "doctor", "Check every configured backend."),
    "env": ("plinth.cli.env", "env", "Show or export the environment a run recorded."),
    "features": (
        "plinth.cli.features",
        "features",
        "The feature store: plan, apply, list, show, materialize, push.",
    ),
    "gc": ("plinth.cli.gc", "gc", "Find and delete blobs no record references."),
    "init": ("plinth.cli.init", "init", "Create plinth.yaml and the embedded stores."),
    "lineage": (
        "plinth.cli.lineage",
        "lineage",
        "Walk from a logged prediction to its model, run, code, environment and data.",
    ),
    "models": (
        "plinth.cli.models",
        "models",
        "Registered models: list, show, alias, rollback, history, card.",
    ),
    "monitor": (
        "plinth.cli.monitor",
        "monitor",
        "Watch models and data for drift: drift, run, watch, labels.",
    ),
    "nb": (
        "plinth.cli.nb",
        "nb",
        "Notebooks: a cell-level diff of two notebooks or two runs' notebooks.",
    ),
    "pipeline": (
        "plinth.cli.pipeline",
        "pipeline",
        "Pipelines of cached steps: run, resume, runs, show, graph.",
    ),
    "reproduce": (
        "plinth.cli.reproduce",
        "reproduce",
        "Rerun a run's recorded code and compare its metrics.",
    ),
    "serve": (
        "plinth.cli.serve",
        "serve",
        "Serve a deployment over HTTP: predict, model, health, metrics.",
    ),
    "runs": ("plinth.cli.runs", "runs", "List, search, show, compare, delete and export runs."),
    "server": (
        "plinth.cli.server",
        "server",
        "The team server: init, start, users, tokens, projects, audit, export.",
    ),
    "triggers": (
        "plinth.cli.triggers",
        "triggers",
        "The triggers pipelines declare: list, with next tick and last firing.",
    ),
    "ui": ("plinth.cli.ui", "ui", "Browse this project in a web browser (local, one person)."),
    "validate": ("plinth.cli.validate", "validate", "Check data against suites: infer, run."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's lazy-loading recipe)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table above, so `plinth --help` imports no command module.
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: plinth init && plinth doctor",
)
@click.version_option(__version__, "--version", prog_name="plinth")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """plinth: versioning, monitoring, testing and automation for ML, in one ledger."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _report(error: Any, as_json: bool) -> None:
    from plinth.errors import PlinthError

    assert isinstance(error, PlinthError)
    click.echo(f"error: {error.one_line()}", err=True)
    if as_json:
        import json

        click.echo(json.dumps(error.to_dict()))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``plinth`` script; returns the exit code."""
    from plinth.errors import PlinthError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        result = cli.main(args=args, prog_name="plinth", standalone_mode=False)
    except PlinthError as error:
        if debug:
            raise
        _report(error, "--json" in args)
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return 2 if isinstance(error, click.UsageError) else error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
