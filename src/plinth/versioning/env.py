"""Environment capture: the Python, platform, hardware and packages a run executes with.

:func:`capture_environment` runs once per process and again only when an installation may
have changed it: the result is kept with the modification times of the ``sys.path`` entries
(installing, upgrading or removing a distribution adds or removes a ``.dist-info`` folder in
one of them) and recomputed when one changed or ``sys.path`` itself did. Its ``digest`` is
the BLAKE3 hex digest of the canonical JSON (sorted keys, no spaces) of the fields that decide
whether two environments run the same code the same way::

    {"implementation": "cpython", "machine": "x86_64", "packages": {name: version, ...},
     "python": "3.11.7"}

The kernel/libc string (``platform``), the CPU model, CPU count and GPU driver are recorded
in the environment but left out of the digest: they describe the machine, not the software,
and would give every host its own environment record.

Every field is checked against the packaging grammar (:mod:`plinth.guards.environments`)
when it is stored and again when it is exported: an installed distribution whose name or
version is not PEP 508/PEP 440 is left out of the capture, named in
``extra["skipped_packages"]`` and logged as a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from blake3 import blake3

from plinth._deprecation import renamed
from plinth._extras import optional
from plinth.context import resolve_context
from plinth.errors import UsageError
from plinth.guards.environments import (
    check_environment,
    check_package,
    comment_line,
    invalid_version_reason,
    python_major_minor,
    requirement_line,
)

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Environment

__all__ = [
    "EnvironmentCapture",
    "PackageDiff",
    "canonical_name",
    "capture_environment",
    "check_recorded_environment",
    "diff_environments",
    "environment_digest",
    "export_environment",
    "save_environment",
]

log = logging.getLogger("plinth.versioning")

ExportFormat = Literal["requirements", "dockerfile"]
EXPORT_FORMATS: tuple[str, ...] = ("requirements", "dockerfile")


@dataclass(frozen=True)
class EnvironmentCapture:
    """One Python environment, as :func:`capture_environment` found it."""

    digest: str
    python: str
    platform: str
    packages: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackageDiff:
    """One package that differs; ``recorded`` or ``current`` is None when it is absent there."""

    name: str
    recorded: str | None
    current: str | None

    @property
    def kind(self) -> str:
        """``added`` (only now), ``removed`` (only then) or ``changed`` (another version)."""
        if self.recorded is None:
            return "added"
        if self.current is None:
            return "removed"
        return "changed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "recorded": self.recorded,
            "current": self.current,
        }


_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: lower case, runs of ``-_.`` as ``-``."""
    return _SEPARATORS.sub("-", name).lower()


def environment_digest(
    python: str, packages: Mapping[str, str], machine: str, implementation: str
) -> str:
    """The BLAKE3 digest of the canonical JSON of an environment's identifying fields."""
    payload = {
        "implementation": implementation,
        "machine": machine,
        "packages": dict(packages),
        "python": python,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return blake3(text.encode("ascii")).hexdigest()


#: Modification times this close to now are not trusted to show the next change.
_RACY_NS = 50_000_000
_captured: tuple[tuple[tuple[str, int | None], ...], EnvironmentCapture] | None = None


def _path_stamps() -> tuple[tuple[str, int | None], ...]:
    """Each ``sys.path`` entry with its modification time (None when it is not there)."""
    stamps: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            stamps.append((entry, None))
    return tuple(stamps)


def capture_environment() -> EnvironmentCapture:
    """This process's environment: computed on the first call, then reused until a
    ``sys.path`` entry (a site-packages folder) changed or ``sys.path`` did."""
    global _captured
    started = time.time_ns()
    stamps = _path_stamps()
    found = _captured
    if found is not None and found[0] == stamps:
        return found[1]
    capture = _capture_environment()
    # A folder changed within a clock tick of now could change again with the same time
    # stamp: such a capture is used, not kept.
    newest = max((mtime for _, mtime in stamps if mtime is not None), default=0)
    _captured = (stamps, capture) if newest < started - _RACY_NS else None
    return capture


def _clear_environment_cache() -> None:
    """Forget the cached capture (tests)."""
    global _captured
    _captured = None


capture_environment.cache_clear = _clear_environment_cache  # type: ignore[attr-defined]


def _capture_environment() -> EnvironmentCapture:
    packages, editable, skipped = _installed()
    python = platform.python_version()
    machine = platform.machine()
    implementation = sys.implementation.name
    extra: dict[str, Any] = {
        "implementation": implementation,
        "machine": machine,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    if editable:
        extra["editable"] = editable
    if skipped:
        extra["skipped_packages"] = skipped
    extra.update(_nvidia())
    return EnvironmentCapture(
        digest=environment_digest(python, packages, machine, implementation),
        python=python,
        platform=_printable(platform.platform()),
        packages=packages,
        extra=extra,
    )


@renamed(positional_ctx=True)
def save_environment(
    capture: EnvironmentCapture | None = None, *, ctx: Context | None = None
) -> Environment:
    """The ledger's environment record for ``capture`` (default: this process), stored once."""
    ctx = resolve_context(ctx)
    env = capture or capture_environment()
    return ctx.ledger.environments.put(
        env.digest,
        python=env.python,
        platform=env.platform,
        packages=env.packages,
        extra=env.extra,
    )


def diff_environments(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[PackageDiff]:
    """Packages added, removed or at another version, by name."""
    old = {canonical_name(k): v for k, v in recorded.items()}
    new = {canonical_name(k): v for k, v in current.items()}
    return [
        PackageDiff(name, old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


def export_environment(env: Environment | EnvironmentCapture, format: str) -> str:
    """The environment as a pinned ``requirements`` file or a ``dockerfile`` that installs it.

    The Dockerfile copies ``requirements.txt`` from its build folder; write it with
    ``plinth env export RUN_ID --format requirements -o requirements.txt``. A record whose
    fields break the packaging grammar (one altered in the ledger) is a UsageError naming
    the field, raised before anything is returned.
    """
    check_recorded_environment(env)
    if format == "requirements":
        return _requirements(env)
    if format == "dockerfile":
        return _dockerfile(env)
    raise UsageError(
        f"unknown environment export format {format!r}",
        hint="use one of: " + ", ".join(EXPORT_FORMATS),
        field="format",
    )


def check_recorded_environment(env: Environment | EnvironmentCapture) -> None:
    """Refuse a record (or capture) that is not safe to write into a generated file."""
    check_environment(
        digest=env.digest,
        python=env.python,
        platform=env.platform,
        packages=env.packages,
        extra=env.extra,
        where=_where(env),
    )


def _where(env: Environment | EnvironmentCapture) -> str:
    record_id = getattr(env, "id", None)
    # repr(): the id comes from the ledger too and is printed in the error.
    return "this environment" if record_id is None else f"environment {record_id!r:.40}"


def _requirements(env: Environment | EnvironmentCapture) -> str:
    where = _where(env)
    editable = {canonical_name(str(n)) for n in env.extra.get("editable") or ()}
    lines = [
        comment_line(f"plinth environment {env.digest}", where=where, field="digest"),
        comment_line(f"Python {env.python} on {env.platform}", where=where, field="platform"),
    ]
    for name in sorted(env.packages, key=canonical_name):
        line = requirement_line(name, env.packages[name], where=where)
        if canonical_name(name) in editable:
            line += "  # installed from a local folder: this version may not be on an index"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _dockerfile(env: Environment | EnvironmentCapture) -> str:
    where = _where(env)
    major_minor = python_major_minor(env.python, where=where)
    return "\n".join(
        [
            comment_line(f"plinth environment {env.digest}", where=where, field="digest"),
            comment_line(
                f"Recorded with Python {env.python} on {env.platform}.",
                where=where,
                field="platform",
            ),
            "# Build next to requirements.txt, written by:",
            "#   plinth env export RUN_ID --format requirements -o requirements.txt",
            f"FROM python:{major_minor}-slim",
            "WORKDIR /app",
            "COPY requirements.txt /app/requirements.txt",
            "RUN pip install --no-cache-dir -r /app/requirements.txt",
            "COPY . /app",
            "",
        ]
    )


def _installed() -> tuple[dict[str, str], list[str], list[str]]:
    """Every installed distribution (the first found wins, as for imports), the editable ones
    and those left out because their metadata is not PEP 508/PEP 440 (each with why)."""
    packages: dict[str, str] = {}
    editable: list[str] = []
    skipped: list[str] = []
    for dist in metadata.distributions():
        try:
            raw_name, version = _name_version(dist)
        except Exception:  # noqa: S112 - a broken .dist-info folder; pip skips these too
            continue
        if not raw_name or version is None:
            continue
        name = canonical_name(str(raw_name))
        if name in packages:
            continue
        problem = _unpinnable(name, str(version))
        if problem is not None:
            # A legacy or broken version cannot be pinned in a requirements file: record
            # that it was there rather than refuse the whole environment (and every run).
            log.warning("environment capture: left out %s", problem)
            skipped.append(problem)
            continue
        packages[name] = str(version)
        if _is_local(dist):
            editable.append(name)
    return dict(sorted(packages.items())), sorted(editable), sorted(skipped)


def _name_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` headers of a distribution's metadata.

    Read from the header block of METADATA (PKG-INFO for eggs) directly: ``dist.metadata``
    parses the whole file, long description included, with the email parser, ten times
    slower over a few hundred distributions. Anything unusual (folded or encoded headers,
    no such file) goes to ``dist.metadata``.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if text:
        name = version = key = None
        for line in text.split("\n"):
            if not line.strip():
                break  # the end of the headers
            if line[:1].isspace():  # continues the header before it
                if key in ("name", "version"):
                    name = version = None  # folded: leave it to the email parser
                    break
                continue
            key, sep, value = line.partition(":")
            if not sep:
                name = version = None
                break
            key = key.strip().lower()
            if key == "name" and name is None:
                name = value.strip()
            elif key == "version" and version is None:
                version = value.strip()
        if name and version and "=?" not in name + version:
            return name, version
    return dist.metadata["Name"], dist.version


def _unpinnable(name: str, version: str) -> str | None:
    """Why this distribution cannot be recorded (as printable text), or None when it can."""
    try:
        check_package(name, version, where="installed distribution")
    except UsageError:
        reason = invalid_version_reason(version)
        if reason is None:
            return f"a distribution named {name!r:.80}: not a PEP 508 name"
        return f"{name}: its version {reason}"
    return None


def _printable(text: str) -> str:
    """Machine descriptions (kernel, CPU, GPU names) as one printable line."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text).strip()[:255]
    return cleaned or "unknown"


def _is_local(dist: metadata.Distribution) -> bool:
    """Installed from a local folder (``pip install -e .`` or ``pip install ./pkg``)."""
    try:
        text = dist.read_text("direct_url.json")
        data = json.loads(text) if text else None
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    dir_info = data.get("dir_info")
    return isinstance(dir_info, dict) or str(data.get("url", "")).startswith("file:")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Hardware", "cpu model", "Model"):
            return _printable(value.strip())
    return _printable(platform.processor() or platform.machine() or "unknown")


def _nvidia() -> dict[str, Any]:
    """CUDA driver version, driver version and GPU names through NVML, when present."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old 'pynvml' wheels warn on import
            nvml: Any = optional("pynvml")  # the 'gpu' extra
    except Exception:  # a broken NVML binding: no GPU facts, not a failed run
        return {}
    if nvml is None:
        return {}
    try:
        nvml.nvmlInit()
    except Exception:  # no driver or no GPU: not an error
        return {}
    found: dict[str, Any] = {}
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        if re.fullmatch(r"[0-9]{1,5}(?:\.[0-9]{1,5}){0,3}", driver):
            found["driver"] = driver
        cuda = int(nvml.nvmlSystemGetCudaDriverVersion())
        found["cuda"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        count = int(nvml.nvmlDeviceGetCount())
        found["gpus"] = [
            _text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)
        ]
    except Exception:  # noqa: S110 - keep whatever was read before the failing call
        pass
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return found


def _text(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return _printable(text)
