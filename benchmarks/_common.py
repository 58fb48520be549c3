"""Helpers shared by the benchmarks: peer virtual environments, worker processes, reporting.

Every measurement runs in a subprocess of its own (plinth with plinth's interpreter, a peer
with the interpreter of its own virtual environment), in a fresh folder, and reports its
timings as one ``RESULT {json}`` line on stdout. The parent only orchestrates and reports,
so no tool's imports or caches leak into another's numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "RESULTS.md"
RESULT_PREFIX = "RESULT "
WORKER_PREFIX = "worker:"
TIMES = "\N{MULTIPLICATION SIGN}"

#: Settings of the caller's shell must not change what a benchmark measures.
_SCRUB_PREFIXES = ("PLINTH_", "MLFLOW_", "PYTHON")


def plinth_python() -> Path:
    """The interpreter of plinth's own virtual environment (the one running this script)."""
    venv = ROOT / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a worker: the caller's, minus tool settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def ensure_venv(folder: Path, requirements: Path) -> Path:
    """Create ``folder`` as a virtual environment with ``requirements`` installed (once).

    A stamp file holds the digest of the requirements: editing them reinstalls.
    Returns the environment's python.
    """
    python = folder / "bin" / "python"
    stamp = folder / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"setting up {folder.relative_to(ROOT)} from {requirements.name} ...", file=sys.stderr)
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        check=True,
    )
    stamp.write_text(digest + "\n")
    return python


def package_versions(python: Path, names: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``names`` (and SQLite's) as seen by ``python``."""
    code = (
        "import json, sqlite3, sys\n"
        "from importlib import metadata\n"
        "out = {'python': sys.version.split()[0], 'sqlite': sqlite3.sqlite_version}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        out[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n"
        "        out[name] = 'absent'\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, json.dumps(list(names))],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    return dict(json.loads(done.stdout))


def machine_info(where: Path) -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    fs = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError, IndexError):
        out = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", str(where)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        fs = f"{out[0]} [{out[1]}]"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "filesystem": f"{fs} ({where})",
    }


def load_now() -> str:
    """The machine's load and I/O pressure right now: neighbours on a shared box show here."""
    parts = []
    with contextlib.suppress(OSError), open("/proc/loadavg", encoding="utf-8") as f:
        parts.append("load " + " ".join(f.read().split()[:3]))
    with contextlib.suppress(OSError), open("/proc/pressure/io", encoding="utf-8") as f:
        some = f.readline().split()  # some avg10=.. avg60=.. avg300=.. total=..
        parts.append("I/O pressure " + " ".join(some[1:3]))
    return ", ".join(parts) or "unknown"


def git_repo(folder: Path, files: dict[str, str]) -> Path:
    """Make ``folder`` a git repository whose one commit holds ``files`` (name -> text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    quiet = {"capture_output": True, "check": True, "cwd": folder}
    subprocess.run(["git", "init", "-q", "-b", "main"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["git", "add", "-A"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["git", *ident, "commit", "-q", "-m", "benchmark"], **quiet)  # type: ignore[call-overload]
    return folder


def run_worker(
    python: Path,
    script: Path,
    workload: str,
    args: dict[str, Any],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run ``python script workload json(args)`` in ``cwd``; its ``RESULT`` line as a dict.

    ``wall_s`` (the whole process, start-up included) is added to the result.
    """
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), str(script), workload, json.dumps(args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(
            f"{script.name} {workload} failed (exit {done.returncode}) in {cwd}:\n{tail}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["wall_s"] = wall
    return result


def dispatch_worker(
    argv: Sequence[str], worker_main: Callable[[str, dict[str, Any]], int]
) -> int | None:
    """``worker_main(tool, args)``'s exit code where ``argv`` is a worker call, else ``None``.

    A worker call is what a script passes ``run_worker`` to run itself as a worker:
    ``worker:TOOL`` and the JSON of its arguments.
    """
    if argv and argv[0].startswith(WORKER_PREFIX):
        return worker_main(argv[0].split(":", 1)[1], json.loads(argv[1]))
    return None


def print_result(result: dict[str, Any], default: Callable[[Any], Any] | None = None) -> None:
    """A worker's measurements as the one ``RESULT {json}`` line ``run_worker`` reads."""
    print(RESULT_PREFIX + json.dumps(result, default=default), flush=True)


def time_command(argv: Sequence[str], *, cwd: Path, env: dict[str, str], repeat: int) -> float:
    """Median whole-process wall time of ``argv`` over ``repeat`` runs, after one warm-up."""
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, columns padded so it also reads well in a terminal."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def replace_section(path: Path, name: str, body: str) -> None:
    """Write ``body`` between the ``name`` markers of ``path`` (appended when absent).

    Text outside the markers (hand-written analysis) is kept.
    """
    begin = f"<!-- BEGIN {name} (generated: edit the benchmark, not this section) -->"
    end = f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start = text.find(begin.split(" (")[0])
    stop = text.find(end)
    if start != -1 and stop != -1:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def met_status(met: bool | None) -> str:
    """A table's Status cell: ``met``, ``**MISSED**``, or ``—`` where there is no target."""
    if met is None:
        return "—"
    return "met" if met else "**MISSED**"


class Targets:
    """The rows of a targets table (Target, plinth, Goal, Status) and whether all were met."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.met = True

    def add(self, label: str, value: str, goal: str, met: bool | None) -> None:
        """One target; ``met=None``: a figure for information, which cannot be missed."""
        self.met = self.met and met is not False
        self.rows.append([label, value, goal, met_status(met)])

    def table(self) -> str:
        return markdown_table(["Target", "plinth", "Goal", "Status"], self.rows)


def print_tables(*tables: str) -> None:
    """The run's tables on stdout, a blank line between them."""
    print("\n\n".join(tables))


# --- what every script's command line and report share ------------------------------------


def common_arguments(
    parser: argparse.ArgumentParser, *, complete: str | None, one_folder: bool = False
) -> None:
    """``--json``, ``--results``, ``--no-results`` and ``--tmp``: where a run's output goes.

    ``complete`` says which runs rewrite RESULTS.md by default (shown in ``--results``'s
    help); ``one_folder``: the run makes one work folder under ``--tmp``, not several.
    """
    parser.add_argument("--json", type=Path, help="also write every raw number here")
    results_help = "markdown file whose section to rewrite"
    if complete is not None:
        results_help += (
            f" (default: benchmarks/RESULTS.md, and only for a complete run: {complete})"
        )
    parser.add_argument("--results", type=Path, help=results_help)
    parser.add_argument("--no-results", action="store_true", help="write no markdown")
    folders = "work folder goes" if one_folder else "work folders go"
    parser.add_argument("--tmp", type=Path, help=f"where the {folders} (default: $TMPDIR)")


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command that repeats this run, as its RESULTS.md section shows it."""
    return shlex.join([".venv/bin/python", f"benchmarks/{Path(script).name}", *argv])


class Stopwatch:
    """``with Stopwatch() as clock:`` the whole benchmark's wall time and the load around it.

    ``clock.elapsed_s`` and ``clock.load`` (``before`` and ``after``, from ``load_now``).
    """

    def __enter__(self) -> Stopwatch:
        self.load = {"before": load_now()}
        self.elapsed_s = 0.0
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed_s = time.perf_counter() - self._started
        self.load["after"] = load_now()


def report_head(
    command: str, machine: dict[str, str], clock: Stopwatch, versions: dict[str, Any]
) -> dict[str, Any]:
    """The keys every JSON report starts with: command, date, machine, load, versions."""
    return {
        "command": command,
        "date": today(),
        "machine": machine,
        "load": clock.load,
        "versions": versions,
    }


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    """The report, every raw number in it, where ``--json`` asks for it."""
    if path:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def write_section(
    args: argparse.Namespace, section: str, render: Callable[[], str], *, complete: bool
) -> None:
    """Rewrite ``section`` of ``--results`` (default RESULTS.md, after a ``complete`` run only).

    ``render`` makes the section's markdown; ``--no-results``: nothing is written or said.
    """
    if args.no_results:
        return
    target = args.results or (RESULTS_FILE if complete else None)
    if target:
        replace_section(target, section, render())
        print(f"\nwrote the {section} section of {target}", file=sys.stderr)
    else:
        print("\n(partial run: RESULTS.md left alone; --results FILE writes one)", file=sys.stderr)


def section_head(
    title: str,
    report: dict[str, Any],
    tools: Sequence[str],
    *,
    folders: str | None = "work folders",
    io_note: bool = False,
) -> list[str]:
    """The lines a RESULTS.md section opens with: title, command, date, machine, versions, load.

    ``folders``: what the machine line says lay on the measured file system (``None``: no
    file system); ``io_note``: explain I/O pressure after the machine state.
    """
    m, load = report["machine"], report["load"]
    machine = (
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, "
        f"Python {m['python']}"
    )
    machine += f", {folders} on {m['filesystem']}." if folders else "."
    state = f"- Machine state: before {load['before']}; after {load['after']}"
    state += " (I/O pressure: % of time tasks waited on I/O)." if io_note else "."
    return [
        f"## {title}",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"- Date: {report['date']}; whole benchmark {report['elapsed_s']:.0f} s.",
        machine,
        f"- Versions: {'; '.join(tools)}.",
        state,
    ]


def status_mb(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ...) in MB.

    ``None`` where the file or the field is absent (not Linux).
    """
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return None


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB since its exec: ``VmHWM`` of ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries that across exec (the old memory map's high-water mark
    is folded into it), so a worker would report at least the peak of the parent that
    spawned it: the parent that generated the benchmark's tables, hundreds of MB. Only
    where ``/proc`` is absent (not Linux: macOS, say) does this fall back to ``ru_maxrss``,
    with no guarantee there that it excludes a parent's peak.

    A worker that resets ``VmHWM`` (``/proc/self/clear_refs``) must keep the maximum of the
    values read before each reset itself.
    """
    hwm = status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource  # not on Windows; only needed here

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024 / 1024 if sys.platform == "darwin" else maxrss / 1024  # bytes : kB


def human_rate(points_per_s: float) -> str:
    return f"{points_per_s:,.0f} points/s"


def human_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"
