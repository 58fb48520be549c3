"""Reproduce a run: its commit and diff in a worktree, its entry point rerun, metrics compared.

:func:`reproduce_run` checks the recorded commit out in a temporary git worktree, applies
the recorded uncommitted diff, reruns the recorded entry point there with this Python, and
compares the new run with the old one. The child writes into this project's ledger (its
``PLINTH_METADATA``/``PLINTH_ARTIFACTS`` are set to this context's absolute values) and
finds the run to link to in :data:`~plinth.versioning.code.REPRODUCE_OF_ENV`: the tracking
code adds ``run(new) —reproduces→ run(old)`` for every run started in such a process::

    result = reproduce_run(ctx, "0190b2c4-...", tolerance=1e-6)
    result.matches, result.metric_diffs, result.env_diff
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.entities import RecordRef, Run
from plinth.errors import NotFoundError, UsageError
from plinth.ids import now_ms
from plinth.versioning.code import REPRODUCE_OF_ENV, SOURCE_DIFF_PATH, SOURCE_UNTRACKED_PATH
from plinth.versioning.comparison import (
    SYSTEM_PREFIX,
    MetricDiff,
    ParamDiff,
    compare_metrics,
    compare_params,
)
from plinth.versioning.env import PackageDiff, capture_environment, diff_environments
from plinth.versioning.process import run_child
from plinth.versioning.worktree import add_worktree, find_repo, remove_worktree

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["MetricDiff", "ParamDiff", "ReproduceResult", "reproduce_run"]

#: The lineage relation from a reproduction to the run it reproduces.
REPRODUCES = "reproduces"


@dataclass(frozen=True)
class ReproduceResult:
    """What ``plinth reproduce`` found. ``matches`` is the verdict (exit 0 or 1)."""

    old_run_id: str
    new_run_id: str | None
    matches: bool
    env_diff: list[PackageDiff] = field(default_factory=list)
    param_diffs: list[ParamDiff] = field(default_factory=list)
    metric_diffs: list[MetricDiff] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The rerun's exit code; None when it was killed for running past the timeout.
    exit_code: int | None = None
    #: The last lines the rerun wrote to stderr, when it failed.
    stderr_tail: str | None = None
    #: Names of the final metrics compared (``system/*`` excluded).
    metrics_compared: list[str] = field(default_factory=list)
    #: The worktree folder, when it was kept (``keep_worktree=True``).
    worktree: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_run_id": self.old_run_id,
            "new_run_id": self.new_run_id,
            "matches": self.matches,
            "exit_code": self.exit_code,
            "env_diff": [d.to_dict() for d in self.env_diff],
            "param_diffs": [d.to_dict() for d in self.param_diffs],
            "metric_diffs": [d.to_dict() for d in self.metric_diffs],
            "metrics_compared": self.metrics_compared,
            "warnings": self.warnings,
            "stderr_tail": self.stderr_tail,
            "worktree": self.worktree,
        }


def reproduce_run(
    ctx: Context,
    run_id: str,
    *,
    tolerance: float = 1e-9,
    keep_worktree: bool = False,
    timeout: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> ReproduceResult:
    """Rerun ``run_id``'s code as it was and compare the new run with it.

    Metrics match when ``|a - b| <= tolerance * max(|a|, |b|)`` (equal NaNs match); params
    must be equal strings. ``echo`` receives each line the rerun prints. Raises UsageError
    when the run has no git commit or no entry point to rerun.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise UsageError(f"tolerance must be a number >= 0, got {tolerance!r}", field="tolerance")
    old = ctx.ledger.runs.get_run(run_id)
    source = old.source or {}
    commit = source.get("git_commit")
    if not commit:
        raise UsageError(
            f"run {old.id} has no git commit recorded, so its code cannot be recreated",
            hint="start runs from inside a git repository with at least one commit "
            "to make them reproducible",
            field="run_id",
        )
    command, kind = _check_entry_point(old, source.get("entry_point"))
    warnings: list[str] = []
    env_child = _child_environment(ctx, old.id, warnings)
    candidates = [Path(str(source["repo_root"]))] if source.get("repo_root") else []
    candidates += [Path.cwd(), ctx.settings.root.resolve()]
    repo = find_repo(str(commit), candidates)
    if source.get("repo_root") and Path(str(source["repo_root"])).resolve() != repo.resolve():
        warnings.append(f"the recorded repository {source['repo_root']} moved; using {repo}")

    env_diff = _env_diff(ctx, old, warnings)
    diff = _artifact_bytes(ctx, old.id, SOURCE_DIFF_PATH)
    untracked = _artifact_bytes(ctx, old.id, SOURCE_UNTRACKED_PATH)
    if source.get("git_dirty") and diff is None and untracked is None:
        warnings.append(
            f"the run's tree was dirty but it has no '{SOURCE_DIFF_PATH}' artifact: "
            "uncommitted changes are missing from the rerun"
        )
    if untracked:
        names = untracked.decode("utf-8", "replace").splitlines()
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        warnings.append(
            f"{len(names)} untracked file(s) existed when the run started and their content "
            f"was not recorded, so they are missing from the rerun: {shown}"
        )

    tree = add_worktree(repo, str(commit), diff)
    try:
        cwd = tree.path / str(source.get("cwd_rel") or ".")
        cwd.mkdir(parents=True, exist_ok=True)
        if (tree.path / ".gitmodules").is_file():
            warnings.append("git submodules are not checked out in the reproduction worktree")
        argv = _command_line(command, kind, tree.path, cwd, env_child, warnings)
        started = now_ms()
        exit_code, tail = run_child(argv, cwd, env_child, timeout, echo)
        if exit_code is None:
            warnings.append(f"the rerun was killed after running past the {timeout} s timeout")
        kept = tree.path if keep_worktree else None
        return _compare(ctx, old, started, exit_code, tail, tolerance, env_diff, warnings, kept)
    finally:
        if not keep_worktree:
            remove_worktree(tree)


def _check_entry_point(run: Run, entry: object) -> tuple[dict[str, Any], str]:
    no_entry = UsageError(
        f"run {run.id} has no entry point that plinth can rerun",
        hint="start the run from a script (python train.py) or a module (python -m pkg.train), "
        "or pass entry_point= when starting it",
        field="run_id",
    )
    if not isinstance(entry, dict) or entry.get("kind") not in ("script", "module", "command"):
        raise no_entry
    args = entry.get("args")
    if not isinstance(args, list):
        raise no_entry
    kind = str(entry["kind"])
    if kind == "script" and not entry.get("path"):
        raise no_entry
    if kind == "module" and not entry.get("module"):
        raise no_entry
    if kind == "command" and (not args or str(args[0]) in ("", "-", "-c", "-m")):
        raise UsageError(
            f"run {run.id} was started from an interactive session or 'python -c', "
            "which plinth cannot rerun",
            hint=no_entry.hint,
            field="run_id",
        )
    return entry, kind


def _child_environment(ctx: Context, old_id: str, warnings: list[str]) -> dict[str, str]:
    """This process's environment, pointed at this project's ledger and blob store."""
    from plinth.context import resolve_metadata_url

    settings = ctx.settings
    metadata = resolve_metadata_url(settings)
    if metadata in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in metadata:
        raise UsageError(
            "plinth reproduce needs a ledger another process can open; "
            f"this one is in memory ({metadata})",
            hint="set 'metadata' to a file or server database",
            field="metadata",
        )
    artifacts = settings.artifacts
    if artifacts.startswith("memory://"):
        warnings.append("artifacts are in memory: the rerun's artifacts are not visible here")
    if "://" not in artifacts:
        artifacts = str(settings.resolve_path(artifacts).resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env.update(
        PLINTH_METADATA=metadata,
        PLINTH_ARTIFACTS=artifacts,
        PLINTH_PROJECT=settings.project_name,
    )
    if settings.s3_endpoint_url:
        env["PLINTH_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    env[REPRODUCE_OF_ENV] = old_id
    return env


def _env_diff(ctx: Context, old: Run, warnings: list[str]) -> list[PackageDiff]:
    if old.environment_id is None:
        warnings.append("the run has no environment recorded; packages were not compared")
        return []
    recorded = ctx.ledger.environments.get(old.environment_id)
    current = capture_environment()
    if ".".join(recorded.python.split(".")[:2]) != ".".join(current.python.split(".")[:2]):
        warnings.append(f"the run used Python {recorded.python}; this is Python {current.python}")
    return diff_environments(recorded.packages, current.packages)


def _artifact_bytes(ctx: Context, run_id: str, path: str) -> bytes | None:
    try:
        artifact = ctx.ledger.artifacts.get(RecordRef("run", run_id), path)
    except NotFoundError:
        return None
    return ctx.blobs.read_bytes(artifact.digest, size=artifact.size)


def _command_line(
    entry: Mapping[str, Any],
    kind: str,
    tree: Path,
    cwd: Path,
    env: dict[str, str],
    warnings: list[str],
) -> list[str]:
    args = [str(a) for a in entry["args"]]
    if kind == "script":
        script = tree / str(entry["path"])
        if not script.is_file():
            raise UsageError(
                f"the run's script {entry['path']} is not in the recorded commit and diff",
                hint="it was probably an untracked file; commit it so runs can be reproduced",
            )
        return [sys.executable, os.path.relpath(script, cwd), *args]
    if kind == "module":
        root = entry.get("module_root")
        if root is None:
            warnings.append(
                f"module {entry['module']} was not in the repository: the installed version "
                "runs, not the recorded code"
            )
        else:
            folder = str((tree / str(root)).resolve())
            path = env.get("PYTHONPATH")
            env["PYTHONPATH"] = folder + (os.pathsep + path if path else "")
        return [sys.executable, "-m", str(entry["module"]), *args]
    warnings.append(
        f"the run was started by the command {args[0]!r}: it runs the installed code, "
        "not the recorded commit"
    )
    return args


def _compare(
    ctx: Context,
    old: Run,
    started: int,
    exit_code: int | None,
    tail: str,
    tolerance: float,
    env_diff: list[PackageDiff],
    warnings: list[str],
    kept: Path | None,
) -> ReproduceResult:
    runs = ctx.ledger.runs
    old_params = runs.get_params(old.id)
    new = _new_run(ctx, old, old_params, started, warnings)
    failed = exit_code != 0
    if failed and exit_code is not None:
        warnings.append(f"the rerun exited with code {exit_code}")
    param_diffs: list[ParamDiff] = []
    metric_diffs: list[MetricDiff] = []
    compared: list[str] = []
    if new is not None:
        if new.status != "finished":
            warnings.append(f"the new run {new.id} ended {new.status}")
            failed = True
        new_params = runs.get_params(new.id)
        param_diffs = compare_params(old_params, new_params)
        old_metrics = runs.latest_metrics(old.id)
        compared, metric_diffs = compare_metrics(
            old_metrics, runs.latest_metrics(new.id), tolerance
        )
        if not any(not k.startswith(SYSTEM_PREFIX) for k in old_metrics):
            warnings.append(f"run {old.id} has no final metrics to compare")
    matches = new is not None and not failed and not param_diffs and not metric_diffs
    return ReproduceResult(
        old_run_id=old.id,
        new_run_id=new.id if new else None,
        matches=matches,
        env_diff=env_diff,
        param_diffs=param_diffs,
        metric_diffs=metric_diffs,
        warnings=warnings,
        exit_code=exit_code,
        stderr_tail=tail if failed and tail else None,
        metrics_compared=compared,
        worktree=str(kept) if kept else None,
    )


def _new_run(
    ctx: Context, old: Run, old_params: dict[str, str], started: int, warnings: list[str]
) -> Run | None:
    """The run the rerun made: linked to ``old`` since ``started``; the best match of several."""
    ids: list[str] = []
    for edge in ctx.ledger.lineage.edges_to(RecordRef("run", old.id)):
        is_rerun = edge.relation == REPRODUCES and edge.src.type == "run"
        if is_rerun and edge.created_at >= started and edge.src.id not in ids:
            ids.append(edge.src.id)
    if not ids:
        warnings.append(
            f"the rerun recorded no run linked to {old.id} (does the code start a run "
            "with plinth.start_run?)"
        )
        return None
    if len(ids) == 1:
        return ctx.ledger.runs.get_run(ids[0])
    scored = []
    for position, run_id in enumerate(ids):
        run = ctx.ledger.runs.get_run(run_id)
        same_params = ctx.ledger.runs.get_params(run_id) == old_params
        scored.append(((run.name == old.name, same_params, -position), run))
    best = max(scored, key=lambda item: item[0])[1]
    warnings.append(f"the rerun made {len(ids)} runs; compared with {best.id} ({best.name})")
    return best
