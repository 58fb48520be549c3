"""What ``plinth reproduce`` will run, worked out and checked before anything runs.

A run's entry point is a record someone else may have written, so :func:`plan_reproduction`
turns it into a :class:`ReproducePlan`: the exact argv, the folder it runs in, the commit, whether
a diff is applied and what the child's environment holds. Paths from the record must stay
inside the recreated worktree (checked here without the tree, and again with
:func:`plinth.guards.paths.safe_join` once it is checked out, symlinks included); the child's
environment is scrubbed of credentials (:func:`plinth.guards.secrets.scrub_environment`).
Nothing runs until someone consents to the plan (``reproduce_run(plan, yes=True)``).
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth._deprecation import renamed
from plinth.context import resolve_context
from plinth.entities import RecordRef, Run
from plinth.errors import InvalidPathError, NotFoundError, UsageError
from plinth.guards.paths import normalize_artifact_path, safe_join
from plinth.guards.secrets import is_redacted, scrub_environment
from plinth.settings import redact
from plinth.versioning.code import REPRODUCE_OF_ENV, SOURCE_DIFF_PATH, SOURCE_UNTRACKED_PATH
from plinth.versioning.worktree import find_repo

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["WORKTREE", "ReproducePlan", "plan_reproduction"]

#: How the plan names the temporary worktree, whose folder is only made once consent is given.
WORKTREE = "<worktree>"
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAMPERED = (
    "a run's entry point must name files inside its repository; the record may have been altered"
)


@dataclass(frozen=True)
class ReproducePlan:
    """Everything a rerun will do; shown to whoever decides, then passed to ``reproduce_run``."""

    run_id: str
    commit: str
    #: The repository the commit is checked out from (a temporary worktree of it).
    repo: str
    #: ``script``, ``module`` or ``command`` (a raw program: needs ``allow_command``).
    kind: str
    #: The exact command line; paths are relative to ``cwd``.
    argv: list[str]
    #: The folder it runs in, relative to the worktree ("." for its root).
    cwd: str
    #: Whether the run's recorded uncommitted diff is applied on top of the commit.
    applies_diff: bool
    #: The script or module root, relative to the worktree (None for commands, installed modules).
    code_path: str | None
    #: Variables reproduce sets for the child, values redacted for display.
    env_set: dict[str, str]
    #: Variables kept although they look like credentials, because ``pass_env`` named them.
    env_passed: list[str]
    #: Variables of this process the child does not get (credentials).
    env_dropped: list[str]
    allow_command: bool
    warnings: list[str] = field(default_factory=list)
    # What the rerun needs but nobody should print: the child's environment and the diff.
    env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    diff: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def refused(self) -> str | None:
        """Why the plan may not run as asked (a raw command without ``allow_command``)."""
        if self.kind == "command" and not self.allow_command:
            return (
                f"run {self.run_id}'s entry point is the raw command "
                f"{shlex.join(self.argv[:1])}, not code from its commit; nothing ran"
            )
        return None

    def describe(self) -> list[str]:
        """The plan as lines of text, for a person to read before consenting."""
        folder = WORKTREE if self.cwd == "." else f"{WORKTREE}/{self.cwd}"
        diff = " plus the run's uncommitted diff" if self.applies_diff else " (no diff applied)"
        lines = [
            f"plinth reproduce will run the code of run {self.run_id} on this machine:",
            f"  commit:      {self.commit}{diff}",
            f"  checked out: in a temporary git worktree ({WORKTREE}) of {self.repo}",
            f"  folder:      {folder}",
            f"  command:     {shlex.join(self.argv)}",
        ]
        if self.kind == "module" and self.code_path is not None:
            root = WORKTREE if self.code_path == "" else f"{WORKTREE}/{self.code_path}"
            lines.append(f"  PYTHONPATH:  {root} first")
        dropped = ", ".join(self.env_dropped) or "none"
        lines.append(f"  environment: this shell's, without credentials (dropped: {dropped})")
        for name, value in self.env_set.items():
            lines.append(f"    set {name}={value}")
        for name in self.env_passed:
            lines.append(f"    passed {name} (--pass-env)")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "commit": self.commit,
            "repo": self.repo,
            "kind": self.kind,
            "argv": self.argv,
            "cwd": self.cwd,
            "applies_diff": self.applies_diff,
            "code_path": self.code_path,
            "env_set": self.env_set,
            "env_passed": self.env_passed,
            "env_dropped": self.env_dropped,
            "allow_command": self.allow_command,
            "warnings": self.warnings,
        }


@renamed(positional_ctx=True)
def plan_reproduction(
    run_id: str,
    *,
    allow_command: bool = False,
    pass_env: Iterable[str] = (),
    ctx: Context | None = None,
) -> ReproducePlan:
    """The plan to rerun ``run_id``; runs nothing and makes no folder.

    Raises UsageError when the run has no commit or entry point to rerun, InvalidPathError when
    its recorded paths leave the repository. ``pass_env`` names variables the child gets even
    though they look like credentials.
    """
    ctx = resolve_context(ctx)
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
    entry, kind = _check_entry_point(old, source.get("entry_point"))
    cwd = _inside(old.id, "working folder", str(source.get("cwd_rel") or "."))
    warnings: list[str] = []
    argv, code_path = _command_line(old.id, entry, kind, cwd, warnings)
    skip = {"script": 2, "module": 3}.get(kind, 1)  # interpreter, script or -m module
    for i, arg in enumerate(argv[skip:], 1):
        if is_redacted(arg):
            warnings.append(
                f"argument {i} ({arg!r}) had a secret redacted when the run was recorded: the "
                "rerun gets '***' in its place; give it the secret another way, e.g. an "
                "environment variable the code reads, passed with --pass-env NAME"
            )
    env, env_set, passed, dropped = _child_environment(ctx, old.id, list(pass_env), warnings)

    candidates = [Path(str(source["repo_root"]))] if source.get("repo_root") else []
    candidates += [Path.cwd(), ctx.settings.root.resolve()]
    repo = find_repo(str(commit), candidates)
    if source.get("repo_root") and Path(str(source["repo_root"])).resolve() != repo.resolve():
        warnings.append(f"the recorded repository {source['repo_root']} moved; using {repo}")
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
    return ReproducePlan(
        run_id=old.id,
        commit=str(commit),
        repo=str(repo),
        kind=kind,
        argv=argv,
        cwd=cwd,
        applies_diff=bool(diff),
        code_path=code_path,
        env_set=env_set,
        env_passed=passed,
        env_dropped=dropped,
        allow_command=allow_command,
        warnings=warnings,
        env=env,
        diff=diff or None,
    )


def resolve_in_tree(plan: ReproducePlan, tree: Path) -> tuple[Path, dict[str, str]]:
    """The checked-out folder to run in and the child's environment, every recorded path
    checked against the real tree (symlinks followed) before anything runs."""
    cwd = _joined(plan, tree, plan.cwd, "working folder")
    env = dict(plan.env)
    if plan.kind == "script" and plan.code_path is not None:
        script = _joined(plan, tree, plan.code_path, "script")
        if not script.is_file():
            raise UsageError(
                f"the run's script {plan.code_path} is not in the recorded commit and diff",
                hint="it was probably an untracked file; commit it so runs can be reproduced",
            )
    elif plan.kind == "module" and plan.code_path is not None:
        root = _joined(plan, tree, plan.code_path, "module root")
        module = plan.argv[2]
        if _module_file(plan, tree, module) is None:
            raise UsageError(
                f"module {module} is not in the recorded commit under "
                f"'{plan.code_path or '.'}', so an installed copy would run instead; nothing ran",
                hint="commit the module, or rerun it yourself if the installed copy is wanted",
            )
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(root.resolve()) + (os.pathsep + path if path else "")
    cwd.mkdir(parents=True, exist_ok=True)
    return cwd, env


def _module_file(plan: ReproducePlan, tree: Path, module: str) -> Path | None:
    """The file ``python -m module`` runs, when it is inside the module root (checked)."""
    base = "/".join(p for p in ((plan.code_path or ""), module.replace(".", "/")) if p)
    for rel in (f"{base}.py", f"{base}/__main__.py"):
        candidate = _joined(plan, tree, rel, "module file")
        if candidate.is_file():
            return candidate
    return None


def _joined(plan: ReproducePlan, tree: Path, rel: str, what: str) -> Path:
    if rel in ("", "."):
        return tree
    try:
        return safe_join(tree, rel)
    except InvalidPathError as exc:
        raise InvalidPathError(
            f"run {plan.run_id}'s recorded {what} {rel!r} cannot be used ({exc.message}); "
            "nothing ran",
            hint=_TAMPERED,
            field="entry_point",
        ) from None


def _inside(run_id: str, what: str, rel: str) -> str:
    """``rel`` normalised, or InvalidPathError when it is absolute or climbs out (no tree yet)."""
    if rel.strip() in ("", "."):
        return "."
    try:
        return normalize_artifact_path(rel)
    except InvalidPathError as exc:
        raise InvalidPathError(
            f"run {run_id}'s recorded {what} {rel!r} cannot be used ({exc.message}); nothing ran",
            hint=_TAMPERED,
            field="entry_point",
        ) from None


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


def _command_line(
    run_id: str, entry: dict[str, Any], kind: str, cwd: str, warnings: list[str]
) -> tuple[list[str], str | None]:
    """The argv (paths relative to ``cwd``) and the worktree path of the code it runs."""
    args = [str(a) for a in entry["args"]]
    if kind == "script":
        script = _inside(run_id, "script path", str(entry["path"]))
        return [sys.executable, posixpath.relpath(script, cwd), *args], script
    if kind == "module":
        module = str(entry["module"])
        if not _MODULE_NAME.fullmatch(module):
            raise UsageError(
                f"run {run_id}'s recorded module {module!r} is not a Python module name",
                hint=_TAMPERED,
                field="entry_point",
            )
        root = entry.get("module_root")
        if root is None:
            warnings.append(
                f"module {module} was not in the repository: the installed version runs, "
                "not the recorded code"
            )
            return [sys.executable, "-m", module, *args], None
        rel = _inside(run_id, "module root", str(root))
        return [sys.executable, "-m", module, *args], "" if rel == "." else rel
    warnings.append(
        f"the run was started by the raw command {args[0]!r}: it runs whatever program that "
        "names on this machine, not the recorded commit, and runs only with --allow-command"
    )
    return args, None


def _child_environment(
    ctx: Context, old_id: str, pass_env: list[str], warnings: list[str]
) -> tuple[dict[str, str], dict[str, str], list[str], list[str]]:
    """The child's environment, what reproduce sets in it, what was passed and dropped."""
    from plinth.context import resolve_metadata_url

    for name in pass_env:
        if not _ENV_NAME.fullmatch(name):
            raise UsageError(f"--pass-env {name!r} is not a variable name", field="pass_env")
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
    here = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env, dropped = scrub_environment(here, pass_env)
    # The child records its run in this ledger: it gets this ledger's URL (with its password,
    # if the URL has one), the artifact store and the project, and nothing else of ours.
    own = {"PLINTH_METADATA": metadata, "PLINTH_ARTIFACTS": artifacts}
    own["PLINTH_PROJECT"] = settings.project_name
    if settings.s3_endpoint_url:
        own["PLINTH_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    own[REPRODUCE_OF_ENV] = old_id
    env.update(own)
    dropped = [name for name in dropped if name not in own]
    passed = sorted(n for n in set(pass_env) if n in here and n not in own)
    for name in sorted(set(pass_env) - set(here)):
        warnings.append(f"--pass-env {name}: it is not set here, so nothing was passed")
    if redact(metadata) != metadata:
        warnings.append(
            "the rerun gets this ledger's URL with its password (PLINTH_METADATA), "
            "so that it can record its run"
        )
    elif metadata.startswith("postgres") and "PGPASSWORD" in dropped:
        warnings.append(
            "PGPASSWORD is not passed: if the ledger needs it, add --pass-env PGPASSWORD"
        )
    aws = [n for n in dropped if n.startswith("AWS_")]
    if artifacts.startswith("s3://") and aws:
        flags = " ".join(f"--pass-env {n}" for n in aws)
        warnings.append(
            f"the artifact store is on S3 and {', '.join(aws)} are not passed: if the rerun "
            f"must write artifacts, add {flags}"
        )
    shown = {k: redact(v) for k, v in own.items()}
    return env, shown, passed, dropped


def _artifact_bytes(ctx: Context, run_id: str, path: str) -> bytes | None:
    try:
        artifact = ctx.ledger.artifacts.get(RecordRef("run", run_id), path)
    except NotFoundError:
        return None
    return ctx.blobs.read_bytes(artifact.digest, size=artifact.size)
