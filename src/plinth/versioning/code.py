"""Code capture: which commit, which uncommitted changes and which command made a run.

:func:`capture_source` asks git (a handful of short subprocess calls) and returns a
:class:`SourceCapture`. Its ``info`` is stored as the run's ``source``; the uncommitted diff
and the list of untracked files go to the run's artifacts :data:`SOURCE_DIFF_PATH` and
:data:`SOURCE_UNTRACKED_PATH` (:func:`save_source`). Outside a git repository, without git,
or in a repository with no commit yet, ``info["git_commit"]`` is None and nothing raises::

    capture = capture_source()
    capture.info["entry_point"]   # {"kind": "script", "path": "train.py", "args": ["--lr", "0.1"]}
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth._deprecation import renamed
from plinth.context import resolve_context
from plinth.guards.secrets import redact_argv
from plinth.versioning import git_state

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "REPRODUCE_OF_ENV",
    "SOURCE_DIFF_PATH",
    "SOURCE_UNTRACKED_PATH",
    "PendingSource",
    "SourceCapture",
    "begin_capture_source",
    "capture_source",
    "git_env",
    "module_entry_point",
    "reproduce_of",
    "run_git",
    "save_source",
    "strip_credentials",
]

#: Run artifact holding ``git diff HEAD --binary`` at the start of the run.
SOURCE_DIFF_PATH = "source/diff.patch"
#: Run artifact listing the untracked files (repo-relative, one per line); not their content.
SOURCE_UNTRACKED_PATH = "source/untracked.txt"
#: Set by ``plinth reproduce`` in the child's environment to the id of the run it reproduces.
#: The leading underscore keeps it out of the ``PLINTH_*`` settings namespace.
REPRODUCE_OF_ENV = "_PLINTH_REPRODUCE_OF"

#: Seconds one git call may take before the capture gives up on it.
GIT_TIMEOUT = 10.0
#: Variables that would point git at another repository than the one around ``cwd``.
_GIT_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")


@dataclass(frozen=True)
class SourceCapture:
    """What :func:`capture_source` found: JSON-safe ``info``, the diff, untracked files."""

    info: dict[str, Any]
    #: ``git diff HEAD --binary`` (staged and unstaged changes), None when there are none.
    diff: bytes | None = None
    #: Untracked, not ignored files, relative to the repository root.
    untracked: list[str] = field(default_factory=list)


def reproduce_of() -> str | None:
    """The run id ``plinth reproduce`` is reproducing in this process, if any."""
    return os.environ.get(REPRODUCE_OF_ENV) or None


def git_env() -> dict[str, str]:
    """The environment for git subprocesses: no prompts, no optional locks, C messages."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARS}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def run_git(args: list[str], cwd: Path, *, timeout: float = GIT_TIMEOUT) -> bytes | None:
    """``git args`` in ``cwd``; its stdout, or None when git is missing, fails or hangs."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            env=git_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


_URL_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^@/]*)@")


def strip_credentials(url: str) -> str:
    """``url`` without any user name or token: ``https://u:t@host/x`` -> ``https://host/x``.

    ssh URLs keep their user name (``ssh://git@host/x``, ``git@host:x``) but lose a password.
    """
    match = _URL_USERINFO.match(url)
    if not match:
        return url
    scheme, user = match["scheme"], match["user"]
    rest = url[match.end() :]
    if scheme.lower() in ("ssh://", "git+ssh://", "ssh+git://"):
        name = user.split(":", 1)[0]
        return f"{scheme}{name}@{rest}" if name else f"{scheme}{rest}"
    return scheme + rest


def capture_source(
    cwd: Path | None = None,
    argv: list[str] | None = None,
    main_module: str | None = None,
) -> SourceCapture:
    """Capture the code state and command line of this process (or of the given ``argv``).

    ``main_module`` is the module run with ``python -m``; when ``argv`` is None it is
    detected from ``sys.modules['__main__'].__spec__``.
    """
    return begin_capture_source(cwd, argv, main_module).result()


class PendingSource:
    """A source capture whose ``git status`` runs in a child process while the caller goes on.

    Made by :func:`begin_capture_source`; :meth:`result` waits for git and finishes the
    capture (once; later calls, from any thread, return the same object). ``base`` holds what
    is known without git: working directory, argv and interpreter. :attr:`ready` is True
    when no git is pending: outside a repository, or when this process's last ``git status``
    of the repository still holds (:mod:`plinth.versioning.git_state`).
    """

    def __init__(
        self,
        here: Path,
        argv: list[str],
        main_module: str | None,
        detected_file: Path | None,
        repo: _RepoCache | None,
        status: subprocess.Popen[bytes] | None,
        *,
        known_status: bytes | None = None,
        started: tuple[float, float] | None = None,
    ) -> None:
        self.base: dict[str, Any] = {"cwd": str(here), "argv": argv, "python": sys.executable}
        self._here, self._argv = here, argv
        self._main_module, self._detected_file = main_module, detected_file
        self._repo, self._status = repo, status
        self._known_status = known_status
        # (wall, monotonic) time git started; set when its answer may be remembered.
        self._started = started
        self._result: SourceCapture | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether :meth:`result` returns without waiting for git."""
        return self._status is None or self._result is not None

    def result(self) -> SourceCapture:
        with self._lock:
            if self._result is None:
                self._result = self._finish()
            return self._result

    def _finish(self) -> SourceCapture:
        info: dict[str, Any] = {"git_commit": None}
        diff: bytes | None = None
        untracked: list[str] = []
        found = None
        status = self._known_status
        if self._repo is not None and self._status is not None:
            status = _wait_git(self._status)
            if status is not None and self._started is not None:
                git_state.remember(self._repo.dirs, status, *self._started)
        if self._repo is not None and status is not None:
            found = _git_info(self._repo, status, info)
        root = found[0] if found else None
        if found is not None:
            with _repos_lock:  # the repository's cached diff is shared by every capture
                diff, untracked = _git_changes(*found, info)
        info["cwd"] = self.base["cwd"]
        if root is not None:
            info["cwd_rel"] = _relative(self._here, root) or "."
        info["argv"] = self._argv
        info["python"] = self.base["python"]
        here, argv, module, file = self._here, self._argv, self._main_module, self._detected_file
        key = (here, root, tuple(argv), module, file, tuple(sys.path))
        repo = self._repo
        entry = None
        if self._known_status is not None and repo is not None:
            with _repos_lock:
                if repo.entry_key == key:
                    # Nothing in the work tree changed since the last capture: nor the script.
                    entry = repo.entry
        if entry is None:
            entry = _entry_point(here, root, argv, module, file)
            if repo is not None:
                with _repos_lock:
                    repo.entry_key, repo.entry = key, entry
        info["entry_point"] = copy.deepcopy(entry)
        return SourceCapture(info=info, diff=diff, untracked=untracked)


def begin_capture_source(
    cwd: Path | None = None,
    argv: list[str] | None = None,
    main_module: str | None = None,
    *,
    git_cache_seconds: float = git_state.DEFAULT_MAX_AGE,
) -> PendingSource:
    """Start :func:`capture_source`: ``git status`` is started, not waited for.

    This process's last ``git status`` of the repository is reused instead when nothing it
    depends on has changed and it is at most ``git_cache_seconds`` old (0: always ask git);
    see :mod:`plinth.versioning.git_state`.
    """
    if cwd is None and os.name == "posix":
        here = Path(os.getcwd())  # the kernel's name for it: symbolic links already resolved
    else:
        here = (cwd or Path.cwd()).resolve()
    detected_file: Path | None = None
    if argv is None:
        argv = list(sys.argv)
        if main_module is None:
            main_module, detected_file = _running_module()
    repo = _repo(here)
    status = None
    known = None
    started = None
    if repo is not None:
        if git_cache_seconds > 0:
            known = git_state.recall(repo.dirs, git_cache_seconds)
        if known is None:
            if git_cache_seconds > 0:
                started = (time.time(), time.monotonic())
            args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"]
            if started is not None:
                # Ignored paths too (a folder once, not its content): git_state must know
                # which paths it need not watch.
                args.append("--ignored=matching")
            status = _start_git(args, repo.root)
    # Redacted before anything else sees it: argv and the entry point go to the shared ledger.
    stored = redact_argv([str(a) for a in argv])
    return PendingSource(
        here,
        stored,
        main_module,
        detected_file,
        repo,
        status,
        known_status=known,
        started=started,
    )


def _start_git(args: list[str], cwd: Path) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )
    except OSError:
        return None


def _wait_git(proc: subprocess.Popen[bytes], timeout: float = GIT_TIMEOUT) -> bytes | None:
    """The output of a git started by :func:`_start_git`; None if it failed or hung."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def module_entry_point(module: str, args: list[str], *, cwd: Path | None = None) -> dict[str, Any]:
    """The entry point ``python -m module args``, with the repo folder that must be on sys.path.

    ``module_root`` is None when the module's file is not inside the repository around
    ``cwd`` (an installed module: reproducing it runs the installed code).
    """
    here = (cwd or Path.cwd()).resolve()
    top = run_git(["rev-parse", "--show-toplevel"], here)
    root = Path(os.fsdecode(top.strip())).resolve() if top else here
    return _module_form(module, _find_module_file(module, here), root, redact_argv(args))


@renamed(positional_ctx=True)
def save_source(run_id: str, capture: SourceCapture, *, ctx: Context | None = None) -> None:
    """Store the capture's diff and untracked-file list as the run's source artifacts.

    ``capture.info`` itself is the run's ``source`` (given to ``ledger.runs.create_run``).
    """
    ctx = resolve_context(ctx)
    from plinth.entities import RecordRef

    owner = RecordRef("run", run_id)
    if capture.diff:
        ref = ctx.blobs.put_bytes(capture.diff)
        ctx.ledger.artifacts.record(owner, SOURCE_DIFF_PATH, ref.digest, ref.size, "text/x-diff")
    if capture.untracked:
        data = "".join(f"{name}\n" for name in capture.untracked).encode("utf-8")
        ref = ctx.blobs.put_bytes(data)
        ctx.ledger.artifacts.record(
            owner, SOURCE_UNTRACKED_PATH, ref.digest, ref.size, "text/plain"
        )


@dataclass
class _RepoCache:
    """What one process learned about a repository, reused while it is still true."""

    root: Path
    config: Path
    dirs: git_state.GitDirs
    config_stamp: tuple[int, int] = (-1, -1)
    remote: str | None = None
    #: The last status output, the stat of each changed path, and the diff they gave.
    status: bytes = b""
    stamps: tuple[tuple[int, int] | None, ...] = ()
    diff: bytes | None = None
    #: The inputs and result of the last entry point detection.
    entry_key: tuple[Any, ...] = ()
    entry: dict[str, Any] = field(default_factory=dict)


_repos: dict[Path, _RepoCache] = {}
_repos_lock = threading.Lock()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _repo(here: Path) -> _RepoCache | None:
    """The repository around ``here`` (cached once found; looked up again while absent)."""
    with _repos_lock:
        cached = _repos.get(here)
    if cached is not None and cached.config.parent.exists():
        return cached
    out = run_git(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"], here)
    lines = os.fsdecode(out).splitlines() if out else []
    if len(lines) != 3:
        return None
    root = Path(lines[0]).resolve()
    common = Path(lines[2])
    common = (here / common if not common.is_absolute() else common).resolve()
    repo = _RepoCache(
        root=root,
        config=common / "config",
        dirs=git_state.GitDirs(root=root, git_dir=Path(lines[1]).resolve(), common_dir=common),
    )
    with _repos_lock:
        _repos[here] = repo
    return repo


def _git_info(
    repo: _RepoCache, status: bytes | None, info: dict[str, Any]
) -> tuple[Path, _RepoCache, bytes] | None:
    """Fill commit, branch and remote; (root, cache, status output), or None without a commit.

    One ``git status`` gives the commit, the branch and every change (its paths are relative
    to the repository root), so a run in a clean repository costs one git call.
    """
    if status is None:
        return None
    commit = branch = None
    for entry in status.split(b"\0"):
        if entry.startswith(b"# branch.oid "):
            commit = entry[len(b"# branch.oid ") :].decode("ascii", "replace")
        elif entry.startswith(b"# branch.head "):
            branch = entry[len(b"# branch.head ") :].decode("utf-8", "replace")
        elif not entry.startswith(b"#"):
            break
    if not commit or commit == "(initial)":  # no commit yet: nothing to reproduce from
        return None
    info["git_commit"] = commit
    info["git_branch"] = None if branch in (None, "(detached)") else branch
    stamp = _stamp(repo.config) or (-1, -1)
    if stamp != repo.config_stamp:
        repo.remote, repo.config_stamp = _remote(repo.root), stamp
    info["git_remote"] = repo.remote
    info["repo_root"] = str(repo.root)
    return repo.root, repo, status


def _remote(root: Path) -> str | None:
    out = run_git(["config", "--get-regexp", r"^remote\..*\.url$"], root)
    if not out:
        return None
    urls: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        key, _, url = line.partition(" ")
        name = key[len("remote.") : -len(".url")]
        urls.setdefault(name, url.strip())
    if not urls:
        return None
    url = urls.get("origin") or next(iter(urls.values()))
    return strip_credentials(url)


def _git_changes(
    root: Path, repo: _RepoCache, status: bytes, info: dict[str, Any]
) -> tuple[bytes | None, list[str]]:
    """The dirty flag, the diff against HEAD and the untracked files.

    The diff is reused when the status and the size and mtime of every changed file are the
    same as at the previous capture in this process (a sweep of runs over unchanged code).
    """
    changed, untracked = _parse_status(status)
    info["git_dirty"] = bool(changed or untracked)
    if not changed:
        return None, untracked
    stamps = tuple(_stamp(root / path) for path in changed)
    if status == repo.status and stamps == repo.stamps:
        return repo.diff, untracked
    diff = None
    if changed:
        diff = run_git(
            [
                "-c",
                "core.quotepath=off",
                "diff",
                "HEAD",
                "--binary",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--src-prefix=a/",
                "--dst-prefix=b/",
            ],
            root,
        )
    repo.status, repo.stamps, repo.diff = status, stamps, diff or None
    return (diff or None), untracked


def _parse_status(raw: bytes) -> tuple[list[str], list[str]]:
    """(changed tracked paths, untracked paths) from ``git status --porcelain=v2 -z``.

    Entries: ``1 XY sub mH mI mW hH hI path``, ``2 XY sub mH mI mW hH hI Xscore path`` followed
    by the original path, ``u XY sub m1 m2 m3 mW h1 h2 h3 path`` and ``? path``.
    """
    entries = raw.split(b"\0")
    changed: list[str] = []
    untracked: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        kind = entry[:2]
        if kind == b"? ":
            untracked.append(entry[2:].decode("utf-8", "replace"))
        elif kind == b"1 ":
            changed.append(entry.split(b" ", 8)[8].decode("utf-8", "replace"))
        elif kind == b"2 ":
            changed.append(entry.split(b" ", 9)[9].decode("utf-8", "replace"))
            i += 1  # a rename or copy is followed by its original path
        elif kind == b"u ":
            changed.append(entry.split(b" ", 10)[10].decode("utf-8", "replace"))
    return sorted(changed), sorted(untracked)


def _running_module() -> tuple[str | None, Path | None]:
    """The module this process runs with ``python -m``, and its file."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if not name or name == "__main__":
        return None, None
    origin = getattr(spec, "origin", None) or getattr(main, "__file__", None)
    return str(name), (Path(origin).resolve() if origin else None)


def _entry_point(
    here: Path,
    root: Path | None,
    argv: list[str],
    main_module: str | None,
    module_file: Path | None,
) -> dict[str, Any]:
    args = argv[1:]
    if main_module:
        found = module_file or _find_module_file(main_module, here)
        return _module_form(main_module, found, root or here, args)
    first = argv[0] if argv else ""
    if first in ("", "-", "-c", "-m"):  # interactive, stdin or python -c
        return {"kind": "command", "args": argv}
    script = Path(first)
    script = (script if script.is_absolute() else here / script).resolve()
    if script.is_file() and root is not None and _relative(script, root) is not None:
        return {"kind": "script", "path": _relative(script, root), "args": args}
    return {"kind": "command", "args": argv}


def _module_form(module: str, file: Path | None, root: Path, args: list[str]) -> dict[str, Any]:
    parts = module.split(".")
    module_root: str | None = None
    if file is not None:
        # pkg/mod.py for "pkg.mod"; pkg/__init__.py or pkg/__main__.py for "pkg".
        is_package = file.name in ("__init__.py", "__main__.py") and file.parent.name == parts[-1]
        depth = len(parts) if is_package else len(parts) - 1
        if depth < len(file.parents):
            module_root = _relative(file.parents[depth], root)
    if parts[-1] == "__main__" and len(parts) > 1:
        module = ".".join(parts[:-1])  # python -m pkg runs pkg.__main__
    return {"kind": "module", "module": module, "module_root": module_root, "args": list(args)}


def _find_module_file(module: str, here: Path) -> Path | None:
    """The file of ``module`` without importing it: sys.modules, then sys.path entries."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if file:
        return Path(file).resolve()
    relative = Path(*module.split("."))
    for entry in sys.path:
        base = (here / entry) if entry else here
        for candidate in (
            base / relative.with_suffix(".py"),
            base / relative / "__main__.py",
            base / relative / "__init__.py",
        ):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` in '/' form ("" for root itself), or None if outside."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else ""
