"""Reproduce a run: its commit and diff in a worktree, its entry point rerun, metrics compared.

A run's entry point is a record someone else may have written, so nothing runs without
consent: :func:`plan_reproduction` works out and checks what will run (argv, folder, commit,
diff, environment) and :func:`reproduce_run` runs a plan only with ``yes=True`` or a
``confirm`` callback that approves it. It checks the recorded commit out in a temporary git
worktree, applies the recorded uncommitted diff, reruns the entry point there with this
Python and a scrubbed environment, and compares the new run with the old one. The child
writes into this project's ledger (its ``PLINTH_METADATA``/``PLINTH_ARTIFACTS`` are set to
this context's absolute values) and finds the run to link to in
:data:`~plinth.versioning.code.REPRODUCE_OF_ENV`: the tracking code adds
``run(new) —reproduces→ run(old)`` for every run started in such a process::

    plan = plan_reproduction("0190b2c4-...", ctx=ctx)
    print("\n".join(plan.describe()))
    result = reproduce_run(plan, yes=True, tolerance=1e-6, ctx=ctx)
    result.matches, result.metric_diffs, result.env_diff
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth._deprecation import renamed
from plinth.context import resolve_context
from plinth.entities import RecordRef, Run
from plinth.errors import UsageError
from plinth.ids import now_ms
from plinth.versioning.comparison import (
    SYSTEM_PREFIX,
    MetricDiff,
    ParamDiff,
    compare_metrics,
    compare_params,
)
from plinth.versioning.env import PackageDiff, capture_environment, diff_environments
from plinth.versioning.process import run_child
from plinth.versioning.reproduce_plan import ReproducePlan, plan_reproduction, resolve_in_tree
from plinth.versioning.worktree import add_worktree, remove_worktree

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "MetricDiff",
    "ParamDiff",
    "ReproducePlan",
    "ReproduceResult",
    "plan_reproduction",
    "reproduce_run",
]

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


@renamed(positional_ctx=True)
def reproduce_run(
    run: str | ReproducePlan,
    *,
    yes: bool = False,
    confirm: Callable[[ReproducePlan], bool] | None = None,
    allow_command: bool = False,
    pass_env: Iterable[str] = (),
    tolerance: float = 1e-9,
    keep_worktree: bool = False,
    timeout: float | None = None,
    echo: Callable[[str], None] | None = None,
    ctx: Context | None = None,
) -> ReproduceResult:
    """Rerun a run's code as it was (``run``: its id or a plan) and compare the new run with it.

    Runs only with consent: ``yes=True`` (after showing :func:`plan_reproduction`'s plan) or a
    ``confirm`` that returns True for the plan; otherwise UsageError and nothing runs. A raw
    command entry point also needs ``allow_command`` (given here or to the plan). Metrics match
    when ``|a - b| <= tolerance * max(|a|, |b|)`` (equal NaNs match); params must be equal
    strings. ``echo`` receives each line the rerun prints.
    """
    ctx = resolve_context(ctx)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise UsageError(f"tolerance must be a number >= 0, got {tolerance!r}", field="tolerance")
    if isinstance(run, ReproducePlan):
        plan = run
    else:
        plan = plan_reproduction(run, allow_command=allow_command, pass_env=pass_env, ctx=ctx)
    refused = plan.refused
    if refused and not allow_command:
        raise UsageError(
            refused,
            hint="read the command in the plan; pass --allow-command (allow_command=True) "
            "only if you trust whoever recorded the run",
            field="allow_command",
        )
    if not yes and not (confirm is not None and confirm(plan)):
        what = "which needs consent" if confirm is None else "and the plan was declined"
        raise UsageError(
            f"reproducing run {plan.run_id} runs its recorded code on this machine, "
            f"{what}; nothing ran",
            hint="show plan_reproduction(run_id).describe() and call "
            "reproduce_run(plan, yes=True) (on the command line: --yes)",
            field="yes",
        )
    old = ctx.ledger.runs.get_run(plan.run_id)
    warnings = list(plan.warnings)
    env_diff = _env_diff(ctx, old, warnings)
    tree = add_worktree(Path(plan.repo), plan.commit, plan.diff)
    try:
        cwd, env = resolve_in_tree(plan, tree.path)
        if (tree.path / ".gitmodules").is_file():
            warnings.append("git submodules are not checked out in the reproduction worktree")
        started = now_ms()
        exit_code, tail = run_child(list(plan.argv), cwd, env, timeout, echo)
        if exit_code is None:
            warnings.append(f"the rerun was killed after running past the {timeout} s timeout")
        kept = tree.path if keep_worktree else None
        return _compare(ctx, old, started, exit_code, tail, tolerance, env_diff, warnings, kept)
    finally:
        if not keep_worktree:
            remove_worktree(tree)


def _env_diff(ctx: Context, old: Run, warnings: list[str]) -> list[PackageDiff]:
    if old.environment_id is None:
        warnings.append("the run has no environment recorded; packages were not compared")
        return []
    recorded = ctx.ledger.environments.get(old.environment_id)
    current = capture_environment()
    if ".".join(recorded.python.split(".")[:2]) != ".".join(current.python.split(".")[:2]):
        warnings.append(f"the run used Python {recorded.python}; this is Python {current.python}")
    return diff_environments(recorded.packages, current.packages)


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
