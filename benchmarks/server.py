"""Team server: ``plinth server`` against MLflow's tracking server, in the same run.

    .venv/bin/python benchmarks/server.py [--quick] [--only S1,S2] [--no-peers] [--json out.json]

Workloads (issue 16, "Targets"; ``--quick`` shrinks each for a smoke test):

- S1: process start to the first ``200`` from ``GET /health`` (median of 3 starts of the same
  initialised server; the first start is in the raw numbers), and the resident memory of the
  server's whole process tree (psutil: RSS summed over the process and its descendants) once
  ready and again after S2 and S3.
- S2: ``log_metric`` x 1,000 over HTTP from each tool's Python client, timed until the run's
  end has flushed every point: MLflow ``mlflow.log_metric`` with its tracking URI on its
  server (and, for information, its ``synchronous=False`` mode); plinth ``run.log_metric``
  with ``PLINTH_SERVER``/``PLINTH_TOKEN`` set (journaled locally, shipped in batches).
- S3: 1,000 files of 1 KB: MLflow ``mlflow.log_artifacts`` through its server's artifact
  proxy (``--serve-artifacts``, its default); plinth ``run.log_artifacts`` of the same folder.
- S4 (plinth): the runs page of a project holding 100k runs (first page, newest first;
  sorted by a metric; the JSON twin), median over 20 requests after one warm-up.
- S5 (plinth): a metric chart over one run of 1M points (JSON series downsampled server
  side; the run page drawing it), median over 20 requests.

"Server time" in S4/S5 is the request's round trip on loopback over a kept-alive connection
(an upper bound: it includes the client's few tens of microseconds); a ``Server-Timing``
header, where the server sends one, is kept in the raw numbers.

MLflow runs its defaults (``mlflow server``: SQLite ``mlflow.db``, 4 uvicorn workers,
artifacts proxied into ``./mlartifacts``), telemetry off, from its own virtual environment
(``--mlflow-venv``, default ``benchmarks/.venv-mlflow``, created on first use from
``benchmarks/requirements-mlflow.txt``). plinth: ``plinth server init`` (SQLite + local
folder), ``plinth server projects create``, ``plinth server start``; its S4/S5 projects are
filled by bulk inserts into their ledger before the server starts (``_server_workers.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    Stopwatch,
    clean_env,
    command_line,
    common_arguments,
    ensure_venv,
    git_repo,
    machine_info,
    package_versions,
    plinth_python,
    print_tables,
    report_head,
    run_worker,
    write_json,
    write_section,
)
from _server_report import Report, render_section

SECTION = "benchmarks/server.py"
MLFLOW_REQUIREMENTS = BENCH_DIR / "requirements-mlflow.txt"
WORKERS = BENCH_DIR / "_server_workers.py"
TOKEN = re.compile(r"plt_[A-Za-z0-9_-]+")
#: The project S2/S3 log into, and the one S4/S5 read (seeded before the server starts).
PROJECT, PAGES = "bench", "pages"

SIZES: dict[str, dict[str, int]] = {
    "full": {"starts": 3, "points": 1_000, "files": 1_000, "file_kb": 1, "runs": 100_000,
             "chart_points": 1_000_000, "reps": 20},
    "quick": {"starts": 1, "points": 50, "files": 50, "file_kb": 1, "runs": 2_000,
              "chart_points": 20_000, "reps": 3},
}  # fmt: skip

#: The pages S4 and S5 time: (label, path); ``{project}`` and ``{run}`` are filled in.
PAGES_S4 = (
    ("runs page (HTML), newest first", "/projects/{project}/runs"),
    (
        "runs page (HTML), sorted by metrics.loss",
        "/projects/{project}/runs?order=metrics.loss+DESC",
    ),
    ("runs JSON API, first 50", "/api/v1/projects/{project}/runs?limit=50"),
)
PAGES_S5 = (
    ("metric series JSON, 500 points",
     "/api/v1/projects/{project}/runs/{run}/metrics/loss?points=500"),
    ("run page (HTML) with its chart", "/projects/{project}/runs/{run}"),
)  # fmt: skip


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(
    conn: http.client.HTTPConnection, path: str, token: str | None
) -> tuple[int, dict[str, str]]:
    """``GET path`` on a kept-alive connection; the status and the headers (body read, dropped)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    answer.read()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}


class Server:
    """One server process (and whatever it starts), from ``argv`` with ``{port}`` filled in."""

    def __init__(self, label: str, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.label, self.argv, self.cwd, self.env = label, argv, cwd, env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = cwd.parent / f"{cwd.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240) -> float:
        """Start the server; seconds until ``GET /health`` answers 200."""
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        with self.log.open("ab") as log:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                status, _ = get(conn, "/health", None)
                conn.close()
            except OSError:
                status = 0
            if status == 200:
                return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(f"{self.label} did not answer /health in {timeout} s")

    def memory(self) -> dict[str, float]:
        """RSS summed over the server's process tree (MB) and how many processes it has."""
        import psutil

        assert self.process is not None
        root = psutil.Process(self.process.pid)
        rss = processes = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                rss += p.memory_info().rss
                processes += 1
            except psutil.NoSuchProcess:
                continue
        return {"rss_mb": rss / 1e6, "processes": processes}

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        self.process = None


def time_pages(
    server: Server, token: str, pages: tuple[tuple[str, str], ...], reps: int, **fill: str
) -> dict[str, Any]:
    """Per page: the median (and each) round trip in ms after one warm-up; 404s recorded."""
    out: dict[str, Any] = {}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    for label, template in pages:
        path = template.format(**fill)
        status, headers = get(conn, path, token)  # warm-up: caches, the project's engine
        if status != 200:
            out[label] = {"path": path, "status": status}
            continue
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            status, headers = get(conn, path, token)
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"{path} answered {status} after a 200")
        out[label] = {
            "path": path,
            "status": status,
            "median_ms": statistics.median(times),
            "ms": [round(t, 3) for t in times],
            "server_timing": headers.get("server-timing"),
        }
    conn.close()
    return out


# --- the two tools ------------------------------------------------------------------------------


class Bench:
    """Runs the workloads for each tool in turn: one server at a time on the machine."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.size = SIZES["quick" if args.quick else "full"]
        self.raw: dict[str, Any] = {"plinth": {}, "mlflow": {}}
        self.calls = 0
        self.plinth_py = plinth_python()
        self.mlflow_py = (
            None if args.no_peers else ensure_venv(args.mlflow_venv, MLFLOW_REQUIREMENTS)
        )
        self.files = make_files(work / "inputs", self.size["files"], self.size["file_kb"])

    def worker(self, python: Path, name: str, env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        """``name`` of ``_server_workers.py`` in a fresh git repository, with ``python``."""
        self.calls += 1
        folder = self.work / f"worker-{self.calls}-{name}"
        files = {"bench_worker.py": WORKERS.read_text(encoding="utf-8"), ".gitignore": ".plinth/\n"}
        if name.startswith("plinth"):
            files["plinth.yaml"] = f"project: {kwargs.get('project', PROJECT)}\n"
        git_repo(folder, files)
        print(f"  {name} {kwargs}"[:100], file=sys.stderr, flush=True)
        return run_worker(python, folder / "bench_worker.py", name, kwargs, cwd=folder, env=env)

    def starts(self, server: Server, raw: dict[str, Any]) -> None:
        """S1: ``starts`` starts of the same server; the last one stays up."""
        raw["start_s"] = []
        for i in range(self.size["starts"]):
            if i:
                server.stop()
            raw["start_s"].append(server.start())
        raw["memory_ready"] = server.memory()

    # --- MLflow -----------------------------------------------------------------------------
    def mlflow(self) -> None:
        assert self.mlflow_py is not None
        raw, only = self.raw["mlflow"], self.args.only
        venv_bin = self.mlflow_py.parent
        env = clean_env(
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        folder = self.work / "mlflow-server"
        folder.mkdir()
        argv = [str(venv_bin / "mlflow"), "server", "--backend-store-uri", "sqlite:///mlflow.db",
                "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
        server = Server("mlflow server", argv, cwd=folder, env=env)
        try:
            print("MLflow: S1 ...", file=sys.stderr, flush=True)
            self.starts(server, raw)
            if "S2" in only:
                n = self.size["points"]
                raw["metrics"] = self.worker(
                    self.mlflow_py, "mlflow_metrics", env, uri=server.url, n=n
                )
                raw["metrics_async"] = self.worker(
                    self.mlflow_py, "mlflow_metrics", env, uri=server.url, n=n, synchronous=False
                )
            if "S3" in only:
                raw["artifacts"] = self.worker(
                    self.mlflow_py, "mlflow_artifacts", env, uri=server.url,
                    folder=str(self.files), files=self.size["files"],
                )  # fmt: skip
            raw["memory_after"] = server.memory()
        finally:
            server.stop()
        if "S1" in only and not self.args.quick:  # one worker, as PERFORMANCE.md measured it
            one = Server(
                "mlflow server --workers 1", [*argv, "--workers", "1"], cwd=folder, env=env
            )
            try:
                raw["one_worker"] = {"start_s": one.start()}
                raw["one_worker"]["memory_ready"] = one.memory()
            finally:
                one.stop()

    # --- plinth -----------------------------------------------------------------------------
    def plinth_cli(self, *argv: str) -> str:
        done = subprocess.run(
            [str(self.plinth_py.parent / "plinth"), "server", *argv, "--root", str(self.root)],
            capture_output=True, text=True, env=clean_env(), cwd=self.work, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"plinth server {' '.join(argv)} failed:\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def plinth(self) -> None:
        raw, only, py = self.raw["plinth"], self.args.only, self.plinth_py
        self.root = self.work / "plinth-server"
        self.root.mkdir()
        found = TOKEN.search(self.plinth_cli("init", "--admin", "bench"))
        if found is None:
            raise RuntimeError("plinth server init printed no token")
        token = found.group(0)
        for name in (PROJECT, PAGES):
            self.plinth_cli("projects", "create", name)
        if only & {"S4", "S5"}:
            db = self.root / "projects" / PAGES / "plinth.db"
            raw["seed"] = self.worker(
                py, "plinth_seed", clean_env(), db=str(db), project=PAGES,
                runs=self.size["runs"], points=self.size["chart_points"],
            )  # fmt: skip
        argv = [str(py.parent / "plinth"), "server", "start", "--root", str(self.root),
                "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
        server = Server("plinth server", argv, cwd=self.root, env=clean_env())
        try:
            print("plinth: S1 ...", file=sys.stderr, flush=True)
            self.starts(server, raw)
            env = clean_env(PLINTH_SERVER=server.url, PLINTH_TOKEN=token)
            if "S2" in only:
                raw["metrics"] = self.worker(py, "plinth_metrics", env, n=self.size["points"])
            if "S3" in only:
                raw["artifacts"] = self.worker(
                    py, "plinth_artifacts", env, folder=str(self.files), files=self.size["files"]
                )
            reps = self.size["reps"]
            if "S4" in only:
                raw["pages"] = time_pages(server, token, PAGES_S4, reps, project=PAGES)
            if "S5" in only:
                run = raw["seed"]["chart_run_id"]
                raw["chart"] = time_pages(server, token, PAGES_S5, reps, project=PAGES, run=run)
            raw["memory_after"] = server.memory()
        finally:
            server.stop()
        self.check_on_server(raw)

    def check_on_server(self, raw: dict[str, Any]) -> None:
        """The server's own ledger holds every point and file the clients sent (not a local one)."""
        import sqlite3

        db = self.root / "projects" / PROJECT / "plinth.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            for key, query, want in (
                ("metrics", "SELECT count(*) FROM metrics WHERE run_id = ? AND key = 'loss'", "n"),
                (
                    "artifacts",
                    "SELECT count(*) FROM artifacts WHERE owner_id = ? AND path LIKE 'files/%'",
                    "files",
                ),
            ):
                if key in raw:
                    (stored,) = conn.execute(query, (raw[key]["run_id"],)).fetchone()
                    if stored != raw[key][want]:
                        raise RuntimeError(
                            f"the server's ledger holds {stored} {key}, not {raw[key][want]}"
                        )


def make_files(folder: Path, files: int, file_kb: int) -> Path:
    """``files`` distinct random files of ``file_kb`` KB, 100 to a sub-folder."""
    for i in range(files):
        sub = folder / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(os.urandom(file_kb * 1024))
    return folder


RUNNERS = ("S1", "S2", "S3", "S4", "S5")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default=",".join(RUNNERS), help="workloads, e.g. S1,S2")
    parser.add_argument("--no-peers", action="store_true", help="measure plinth only")
    parser.add_argument("--no-plinth", action="store_true", help="measure MLflow only")
    parser.add_argument(
        "--mlflow-venv",
        type=Path,
        default=BENCH_DIR / ".venv-mlflow",
        help="MLflow's virtual environment (created there on first use)",
    )
    common_arguments(parser, complete="all workloads, full size, with MLflow", one_folder=True)
    args = parser.parse_args(argv)
    args.only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    unknown = args.only - set(RUNNERS)
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(sorted(unknown))}; known: {','.join(RUNNERS)}"
        )
    if args.no_peers and args.no_plinth:
        parser.error("--no-peers and --no-plinth leave nothing to measure")
    args.only.add("S1")  # every other workload needs a started server
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="plinth-server-bench-", dir=args.tmp))
    try:
        bench = Bench(args, work)
        machine = machine_info(work)
        versions: dict[str, Any] = {}
        runners: list[tuple[str, Callable[[], None]]] = []
        if not args.no_plinth:
            versions["plinth"] = package_versions(
                bench.plinth_py, ["plinth", "starlette", "uvicorn"]
            )
            runners.append(("plinth", bench.plinth))
        if bench.mlflow_py is not None:
            versions["mlflow"] = package_versions(bench.mlflow_py, ["mlflow", "uvicorn"])
            runners.append(("mlflow", bench.mlflow))
        with Stopwatch() as clock:
            for name, run in runners:
                print(f"{name} ...", file=sys.stderr, flush=True)
                run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = Report(bench.raw, bench.size)
    table = report.table()
    print_tables(table)
    out = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "sizes": bench.size,
        "elapsed_s": clock.elapsed_s,
        "rows": report.rows,
        "raw": bench.raw,
    }
    write_json(args.json, out)
    complete = not (args.quick or args.no_peers or args.no_plinth) and args.only == set(RUNNERS)
    write_section(args, SECTION, lambda: render_section(out, table), complete=complete)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
