"""Experiment tracking: plinth against MLflow, in the same run, on the same workloads.

    .venv/bin/python benchmarks/tracking.py [--quick] [--only W1,W2] [--no-peers] [--json out.json]

Workloads (issue 3, item 9; ``--quick`` shrinks each about tenfold for a smoke test):

- W1: 10,000 per-call ``log_metric``; the same 10,000 points through each batch API.
- W2: 200 runs x (10 params, 10 metrics, 3 tags); then the top-10 runs by a metric.
- W3: one 100 MB artifact; a folder of 1,000 x 4 KB files; ``cp`` / ``cp -r`` as the floor.
- W4: whole-process time of ``import`` and ``--help``.

Each tool runs on its embedded default: plinth's ``.plinth/`` (SQLite ledger + local blob
folder), MLflow's SQLite backend store (``sqlite:///mlflow.db``) with its local artifact
root. MLflow lives in ``benchmarks/.venv-mlflow`` (created here on first use from
``benchmarks/requirements-mlflow.txt``). Every measurement is a subprocess of its own in a
fresh git repository holding the worker script, see ``benchmarks/README.md``.
A complete run (all workloads, with peers, full size) rewrites its section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    TIMES,
    Stopwatch,
    clean_env,
    command_line,
    common_arguments,
    ensure_venv,
    git_repo,
    human_rate,
    human_seconds,
    machine_info,
    markdown_table,
    median,
    met_status,
    package_versions,
    plinth_python,
    print_tables,
    report_head,
    run_worker,
    section_head,
    time_command,
    write_json,
    write_section,
)

MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_REQUIREMENTS = BENCH_DIR / "requirements-mlflow.txt"
SECTION = "benchmarks/tracking.py"

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "points": 10_000,
        "runs": 200,
        "big_mb": 100,
        "files": 1_000,
        "file_kb": 4,
        "query_reps": 20,
        "w3_reps": 5,
        "w4_reps": 10,
    },
    "quick": {
        "points": 1_000,
        "runs": 20,
        "big_mb": 10,
        "files": 100,
        "file_kb": 4,
        "query_reps": 5,
        "w3_reps": 1,
        "w4_reps": 3,
    },
}

# --- worker scripts -------------------------------------------------------------------------
# Written into each fresh work folder and run there by the tool's own interpreter. Each prints
# one "RESULT {json}" line. Timed regions hold only the tool's calls (plus building the values
# they are given, identical for both tools); imports and store creation are timed apart.

WORKER_COMMON = '''
import json
import random
import statistics
import sys
import time
from time import perf_counter

BATCH = 1000  # MLflow's log_batch accepts at most 1,000 metrics per call


def w2_data(runs, seed=42):
    """Per run: 10 params, 10 metrics, 3 tags; the same values for every tool."""
    rng = random.Random(seed)
    out = []
    for r in range(runs):
        params = {f"p{k}": f"{rng.random():.6f}" for k in range(10)}
        metrics = {f"m{k}": rng.random() for k in range(10)}
        tags = {"team": "bench", "model": f"model-{r % 4}", "run_index": str(r)}
        out.append((params, metrics, tags))
    return out


def timed_query(query, reps):
    """One warm-up, then the median of ``reps`` timed calls, in ms."""
    top = query()
    times = []
    for _ in range(reps):
        t = perf_counter()
        top = query()
        times.append(perf_counter() - t)
    return statistics.median(times) * 1000, top


def main():
    workload, args = sys.argv[1], json.loads(sys.argv[2])
    result = globals()[workload](**args)
    print("RESULT " + json.dumps(result), flush=True)
'''

PLINTH_WORKER = (
    WORKER_COMMON
    + '''
import plinth


def w1_call(points):
    plinth.init(".")  # embedded default: .plinth/plinth.db + .plinth/artifacts
    run = plinth.start_run(experiment="w1")
    t = perf_counter()
    for i in range(points):
        run.log_metric("loss", i * 0.001, step=i)  # journaled: survives SIGKILL on return
    log_s = perf_counter() - t
    t = perf_counter()
    run.end()  # flushes the journal into the ledger
    end_s = perf_counter() - t
    t = perf_counter()
    got = len(plinth.metric_history(run.id, "loss"))
    query_s = perf_counter() - t
    assert got == points, (got, points)
    return {"log_s": log_s, "end_s": end_s, "query_s": query_s}


def w1_batch(points, keys=10):
    from plinth.entities import MetricPoint

    ctx = plinth.init(".")
    run = plinth.start_run(experiment="w1-batch")
    t = perf_counter()
    for s in range(points // keys):
        run.log_metrics({f"m{k}": s * 0.001 + k for k in range(keys)}, step=s)
    log_s = perf_counter() - t
    t = perf_counter()
    run.end()
    end_s = perf_counter() - t
    got = sum(len(plinth.metric_history(run.id, f"m{k}")) for k in range(keys))
    assert got == points, (got, points)

    # The ledger's own batch API, synchronous, in batches the size MLflow allows.
    run = plinth.start_run(experiment="w1-ledger")
    slot = 1 << 40  # seqs the run's journal (slot 0) never uses
    t = perf_counter()
    ts = time.time_ns() // 1_000_000
    for b in range(0, points, BATCH):
        batch = [
            MetricPoint(f"m{i % keys}", i * 0.001, i // keys, ts, slot | i)
            for i in range(b, min(points, b + BATCH))
        ]
        ctx.ledger.runs.log_metrics(run.id, batch)
    ledger_s = perf_counter() - t
    run.end()
    got = sum(len(plinth.metric_history(run.id, f"m{k}")) for k in range(keys))
    assert got == points, (got, points)
    return {"log_s": log_s, "end_s": end_s, "ledger_s": ledger_s}


def top10(ctx, experiment_id):
    """The top-10 runs by metrics.m0 DESC: (query function, which API it uses)."""
    search = getattr(ctx.ledger, "search", None)
    if search is not None:  # run search: one SQL query over latest_metrics

        def query():
            found = search.search_runs(
                experiment_ids=[experiment_id], order_by=["metrics.m0 DESC"], limit=10
            )
            return [row.metrics["m0"] for row in found]

        return query, "search_runs"

    # A ledger without run search: list the runs, read each run's latest metrics.
    def placeholder():
        runs = ctx.ledger.runs.list_runs(experiment_id=experiment_id, limit=1_000_000)
        m0 = [ctx.ledger.runs.latest_metrics(r.id).get("m0", float("-inf")) for r in runs]
        return sorted(m0, reverse=True)[:10]

    return placeholder, "placeholder: list_runs + latest_metrics per run"


def w2(runs, system_metrics, query_reps):
    data = w2_data(runs)
    t = perf_counter()
    ctx = plinth.init(".", system_metrics=system_metrics)
    ctx.ledger  # creates and migrates the database
    setup_s = perf_counter() - t
    t = perf_counter()
    for params, metrics, tags in data:
        with plinth.start_run(experiment="w2", tags=tags) as run:
            run.log_params(params)
            run.log_metrics(metrics)
    runs_s = perf_counter() - t
    query, kind = top10(ctx, run.info.experiment_id)
    query_ms, top = timed_query(query, query_reps)
    return {"setup_s": setup_s, "runs_s": runs_s, "query_ms": query_ms, "query_api": kind,
            "top": top}


def w3(path, files):
    """Log one file (files=0) or a folder of ``files`` files into a fresh project."""
    plinth.init(".")
    with plinth.start_run(experiment="w3") as run:
        t = perf_counter()
        if files:
            logged = run.log_artifacts(path, "files")
        else:
            logged = [run.log_artifact(path)]
        seconds = perf_counter() - t
    assert len(logged) == max(files, 1), (len(logged), files)
    return {"seconds": seconds}
'''
)

PLINTH_MAIN = """

if __name__ == "__main__":
    main()
"""

MLFLOW_WORKER = (
    WORKER_COMMON
    + """
import os
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric


def setup(experiment):
    t = perf_counter()
    mlflow.set_tracking_uri("sqlite:///mlflow.db")  # the SQLite backend store
    mlflow.set_experiment(experiment)  # creates and migrates the database
    return perf_counter() - t


def w1_call(points):
    setup("w1")
    run = mlflow.start_run()
    t = perf_counter()
    for i in range(points):
        mlflow.log_metric("loss", i * 0.001, step=i)
    log_s = perf_counter() - t
    t = perf_counter()
    mlflow.end_run()
    end_s = perf_counter() - t
    t = perf_counter()
    got = len(MlflowClient().get_metric_history(run.info.run_id, "loss"))
    query_s = perf_counter() - t
    assert got == points, (got, points)
    return {"log_s": log_s, "end_s": end_s, "query_s": query_s,
            "artifact_uri": run.info.artifact_uri}


def w1_batch(points, keys=10):
    setup("w1-batch")
    client = MlflowClient()
    with mlflow.start_run() as run:
        t = perf_counter()
        ts = time.time_ns() // 1_000_000
        for b in range(0, points, BATCH):
            batch = [
                Metric(f"m{i % keys}", i * 0.001, ts, i // keys)
                for i in range(b, min(points, b + BATCH))
            ]
            client.log_batch(run.info.run_id, metrics=batch)
        log_s = perf_counter() - t
    got = sum(len(client.get_metric_history(run.info.run_id, f"m{k}")) for k in range(keys))
    assert got == points, (got, points)
    return {"log_s": log_s}


def w2(runs, query_reps):
    data = w2_data(runs)
    setup_s = setup("w2")
    t = perf_counter()
    for params, metrics, tags in data:
        with mlflow.start_run(tags=tags):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
    runs_s = perf_counter() - t

    def query():
        found = mlflow.search_runs(
            experiment_names=["w2"], order_by=["metrics.m0 DESC"], max_results=10
        )
        return [float(v) for v in found["metrics.m0"]]

    query_ms, top = timed_query(query, query_reps)
    return {"setup_s": setup_s, "runs_s": runs_s, "query_ms": query_ms, "top": top}


def w3(path, files):
    # One file (files=0) or a folder of ``files`` files, into a new run.
    setup("w3")
    with mlflow.start_run() as run:
        t = perf_counter()
        if files:
            mlflow.log_artifacts(path, "files")
        else:
            mlflow.log_artifact(path)
        seconds = perf_counter() - t
    root = urlparse(run.info.artifact_uri).path
    logged = sum(len(names) for _, _, names in os.walk(root))
    assert logged == max(files, 1), (logged, files, root)
    return {"seconds": seconds, "artifact_uri": run.info.artifact_uri}


if __name__ == "__main__":
    main()
"""
)

GITIGNORE = ".plinth/\nmlflow.db\nmlruns/\nmlartifacts/\n"


@dataclass
class Tool:
    name: str
    python: Path
    script: str
    env: dict[str, str]
    bin: Path  # the console script's folder


@dataclass
class Row:
    workload: str
    plinth: str
    mlflow: str
    ratio: str
    target: str
    status: str


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.size = SIZES["quick" if args.quick else "full"]
        self.work = work
        self.raw: dict[str, Any] = {}
        self.rows: list[Row] = []
        self.calls = 0
        py = plinth_python()
        self.plinth = Tool("plinth", py, PLINTH_WORKER + PLINTH_MAIN, clean_env(), py.parent)
        self.mlflow: Tool | None = None
        if not args.no_peers:
            mpy = ensure_venv(MLFLOW_VENV, MLFLOW_REQUIREMENTS)
            # Telemetry would try to reach the internet; off, which can only help MLflow.
            env = clean_env(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
            self.mlflow = Tool("mlflow", mpy, MLFLOW_WORKER, env, mpy.parent)

    @property
    def tools(self) -> list[Tool]:
        return [t for t in (self.plinth, self.mlflow) if t is not None]

    def worker(self, tool: Tool, workload: str, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        folder = self.work / f"{tool.name}-{workload}-{self.calls}"
        git_repo(folder, {"bench_worker.py": tool.script, ".gitignore": GITIGNORE})
        label = f"{tool.name} {workload} {kwargs}"
        print(f"  {label[:100]} ...", file=sys.stderr, flush=True)
        # The folder stays until the end (see w3 on why deleting can disturb the numbers).
        out = run_worker(
            tool.python, folder / "bench_worker.py", workload, kwargs, cwd=folder, env=tool.env
        )
        out["folder"] = str(folder)
        return out

    def add(
        self,
        workload: str,
        plinth: str,
        mlflow: str | None,
        ratio: float | None,
        target: str,
        status: str,
    ) -> None:
        self.rows.append(
            Row(
                workload,
                plinth,
                mlflow if mlflow is not None else "—",
                f"{ratio:,.1f}{TIMES}" if ratio is not None else "—",
                target,
                status,
            )
        )

    # --- W1 ------------------------------------------------------------------------------
    def w1(self) -> None:
        n = self.size["points"]
        res = {t.name: self.worker(t, "w1_call", points=n) for t in self.tools}
        bat = {t.name: self.worker(t, "w1_batch", points=n) for t in self.tools}
        self.raw["W1"] = {"per_call": res, "batch": bat}
        p, m = res["plinth"], res.get("mlflow")
        rate_p = n / p["log_s"]
        rate_m = n / m["log_s"] if m else None
        ratio = rate_p / rate_m if rate_m else None
        ok = rate_p >= 200_000 and (ratio is None or ratio >= 1_000)
        self.add(
            f"W1 log_metric {TIMES} {n:,}, per call",
            human_rate(rate_p),
            human_rate(rate_m) if rate_m else None,
            ratio,
            f"≥ 200,000 points/s (SIGKILL-safe), ≥ 1,000{TIMES} MLflow",
            met_status(ok),
        )
        self.add(
            "W1 then end() (flush to the ledger)",
            human_seconds(p["end_s"]),
            human_seconds(m["end_s"]) if m else None,
            None,
            "bounded",
            "—",
        )
        total_p = p["log_s"] + p["end_s"] + p["query_s"]
        total_m = m["log_s"] + m["end_s"] + m["query_s"] if m else None
        self.add(
            "W1 total until queryable (log+end+read)",
            f"{human_seconds(total_p)} ({n / total_p:,.0f}/s)",
            f"{human_seconds(total_m)} ({n / total_m:,.0f}/s)" if total_m else None,
            total_m / total_p if total_m else None,
            "—",
            "—",
        )
        bp, bm = bat["plinth"], bat.get("mlflow")
        rate_bm = n / bm["log_s"] if bm else None
        for label, seconds in (
            ("run.log_metrics, 10 keys/step, + end()", bp["log_s"] + bp["end_s"]),
            ("ledger.runs.log_metrics, 1,000/call", bp["ledger_s"]),
        ):
            rate = n / seconds
            self.add(
                f"W1 batch: {label}",
                human_rate(rate),
                human_rate(rate_bm) if rate_bm else None,
                rate / rate_bm if rate_bm else None,
                "—",
                "—",
            )

    # --- W2 ------------------------------------------------------------------------------
    def w2(self) -> None:
        runs, reps = self.size["runs"], self.size["query_reps"]
        limit = 0.8 * runs / 200
        off = self.worker(self.plinth, "w2", runs=runs, system_metrics=False, query_reps=reps)
        on = self.worker(self.plinth, "w2", runs=runs, system_metrics=True, query_reps=reps)
        m = self.worker(self.mlflow, "w2", runs=runs, query_reps=reps) if self.mlflow else None
        self.raw["W2"] = {"plinth_system_metrics_off": off, "plinth_default": on, "mlflow": m}
        ratio = m["runs_s"] / off["runs_s"] if m else None
        ok = off["runs_s"] <= limit and (ratio is None or ratio >= 10)
        shape = f"{runs} runs {TIMES} (10 params, 10 metrics, 3 tags)"
        self.add(
            f"W2 {shape}, system_metrics=False",
            human_seconds(off["runs_s"]),
            human_seconds(m["runs_s"]) if m else None,
            ratio,
            f"≤ {limit:g} s, ≥ 10{TIMES} MLflow",
            met_status(ok),
        )
        self.add(
            f"W2 {shape}, plinth default",
            human_seconds(on["runs_s"]),
            human_seconds(m["runs_s"]) if m else None,
            m["runs_s"] / on["runs_s"] if m else None,
            "(for information)",
            "—",
        )
        pending = off["query_api"] != "search_runs"
        if m and _rounded(off["top"]) != _rounded(m["top"]):
            raise RuntimeError(f"top-10 differ: plinth {off['top']} vs MLflow {m['top']}")
        ratio = m["query_ms"] / off["query_ms"] if m else None
        self.add(
            f"W2 top-10 by metrics.m0 DESC, median of {reps}",
            f"{off['query_ms']:.2f} ms",
            f"{m['query_ms']:.2f} ms" if m else None,
            ratio,
            "≤ 5 ms",
            "pending (placeholder)" if pending else met_status(off["query_ms"] <= 5),
        )

    # --- W3 ------------------------------------------------------------------------------
    def w3(self) -> None:
        size, reps = self.size, self.size["w3_reps"]
        data = self.work / "w3-data"
        big, folder = make_w3_data(data, size["big_mb"], size["files"], size["file_kb"])
        # Interleaved (cp, plinth, MLflow; again), so that a disturbance from a neighbour on
        # this shared machine hits one repetition of each rather than all of one tool.
        # This VM returns freed memory to its host and its disk is mounted with online
        # discard: writing 100 MB into fresh memory costs ~10x writing it into memory just
        # freed, and deleting many files slows the next file creations. So each big-file
        # copy is deleted at once (every tool then writes into recycled page cache) and the
        # small-file copies are kept until the end.
        samples: dict[str, dict[str, list[float]]] = {"cp": {"big_s": [], "dir_s": []}}
        samples.update({t.name: {"big_s": [], "dir_s": []} for t in self.tools})
        for i in range(reps):
            dest = self.work / f"cp-big-{i}"
            samples["cp"]["big_s"].append(_cp(["cp", str(big)], dest))
            shutil.rmtree(dest)
            for tool in self.tools:
                out = self.worker(tool, "w3", path=str(big), files=0)
                samples[tool.name]["big_s"].append(out["seconds"])
                shutil.rmtree(out["folder"])
            samples["cp"]["dir_s"].append(_cp(["cp", "-r", str(folder)], self.work / f"cp-{i}"))
            for tool in self.tools:
                out = self.worker(tool, "w3", path=str(folder), files=size["files"])
                samples[tool.name]["dir_s"].append(out["seconds"])
        self.raw["W3"] = samples
        res = {name: {k: median(v) for k, v in got.items()} for name, got in samples.items()}
        cp_big, cp_dir = res["cp"]["big_s"], res["cp"]["dir_s"]

        def to_cp(tool: str, key: str) -> float:
            """The median over repetitions of the tool's time over cp's in the same one."""
            pairs = zip(samples[tool][key], samples["cp"][key], strict=True)
            return median([t / c for t, c in pairs])

        files = f"{size['files']:,} {TIMES} {size['file_kb']} KB files"
        for key, label in (
            ("big_s", f"W3 one {size['big_mb']} MB artifact (cp: {human_seconds(cp_big)})"),
            ("dir_s", f"W3 {files} (cp -r: {human_seconds(cp_dir)})"),
        ):
            p = res["plinth"][key]
            m = res["mlflow"][key] if "mlflow" in res else None
            p_cp = to_cp("plinth", key)
            self.add(
                label,
                f"{human_seconds(p)} ({p_cp:.2f}{TIMES} cp)",
                f"{human_seconds(m)} ({to_cp('mlflow', key):.2f}{TIMES} cp)" if m else None,
                m / p if m else None,
                f"≤ 1.5{TIMES} cp",
                met_status(p_cp <= 1.5),
            )

    # --- W4 ------------------------------------------------------------------------------
    def w4(self) -> None:
        reps = self.size["w4_reps"]
        cwd = self.work / "w4"
        cwd.mkdir()
        out: dict[str, float] = {}
        for tool in self.tools:
            env = tool.env
            out[f"{tool.name} python -c pass"] = time_command(
                [str(tool.python), "-c", "pass"], cwd=cwd, env=env, repeat=reps
            )
            out[f"{tool.name} import"] = time_command(
                [str(tool.python), "-c", f"import {tool.name}"], cwd=cwd, env=env, repeat=reps
            )
            out[f"{tool.name} --help"] = time_command(
                [str(tool.bin / tool.name), "--help"], cwd=cwd, env=env, repeat=reps
            )
        self.raw["W4"] = out
        floor = out["plinth python -c pass"]
        for what, limit, target in (
            ("import", 0.150, "≤ 150 ms"),
            ("--help", 0.200, "< 200 ms (PERFORMANCE.md)"),
        ):
            p, m = out[f"plinth {what}"], out.get(f"mlflow {what}")
            label = "python -c 'import X'" if what == "import" else "X --help"
            self.add(
                f"W4 {label}, median of {reps} (python -c pass: {human_seconds(floor)})",
                human_seconds(p),
                human_seconds(m) if m else None,
                m / p if m else None,
                target,
                met_status(p <= limit),
            )

    # --- report --------------------------------------------------------------------------
    def table(self) -> str:
        headers = ["Workload", "plinth", "MLflow", "plinth speed-up", "Target", "Status"]
        return markdown_table(headers, [list(asdict(r).values()) for r in self.rows])


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 9) for v in values]


def _cp(argv: list[str], dest: Path) -> float:
    """Seconds for ``cp`` (whole process) into a fresh folder on the same file system."""
    dest.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run([*argv, str(dest)], check=True)
    return time.perf_counter() - start


def make_w3_data(folder: Path, big_mb: int, files: int, file_kb: int) -> tuple[Path, Path]:
    """Random (incompressible) inputs; left in the page cache on purpose."""
    folder.mkdir(parents=True)
    big = folder / "model.bin"
    with big.open("wb") as f:
        for _ in range(big_mb):
            f.write(os.urandom(1 << 20))
    small = folder / "files"
    for i in range(files):
        sub = small / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(os.urandom(file_kb * 1024))
    return big, small


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "W1": Bench.w1,
    "W2": Bench.w2,
    "W3": Bench.w3,
    "W4": Bench.w4,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default=",".join(RUNNERS), help="workloads, e.g. W1,W4")
    parser.add_argument("--no-peers", action="store_true", help="measure plinth only")
    common_arguments(parser, complete="all workloads, full size, with MLflow")
    args = parser.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = set(args.only) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; known: W1,W2,W3,W4")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {"plinth": package_versions(bench.plinth.python, ["plinth", "SQLAlchemy"])}
        if bench.mlflow:
            versions["mlflow"] = package_versions(bench.mlflow.python, ["mlflow", "SQLAlchemy"])
        with Stopwatch() as clock:
            for name in args.only:
                print(f"{name} ...", file=sys.stderr, flush=True)
                RUNNERS[name](bench)

    table = bench.table()
    print_tables(table)
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "sizes": bench.size,
        "elapsed_s": clock.elapsed_s,
        "rows": [asdict(r) for r in bench.rows],
        "raw": bench.raw,
    }
    write_json(args.json, report)
    complete = not args.quick and not args.no_peers and set(args.only) == set(RUNNERS)
    write_section(args, SECTION, lambda: render_section(report, table), complete=complete)
    return 0


def render_section(report: dict[str, Any], table: str) -> str:
    v = report["versions"]
    tools = [
        f"plinth {v['plinth']['plinth']} (SQLAlchemy {v['plinth']['SQLAlchemy']}, "
        f"SQLite {v['plinth']['sqlite']})"
    ]
    if "mlflow" in v:
        tools.append(
            f"MLflow {v['mlflow']['mlflow']} (SQLAlchemy {v['mlflow']['SQLAlchemy']}, "
            f"SQLite {v['mlflow']['sqlite']})"
        )
    return "\n".join(
        [
            *section_head("Experiment tracking: plinth vs MLflow", report, tools, io_note=True),
            "- Each tool on its embedded default, each workload in a fresh subprocess and a fresh "
            "git repository holding the worker script (so both capture git state as users' runs "
            "do). MLflow: `sqlite:///mlflow.db` and its local artifact root; telemetry off.",
            "- W2's first row uses `system_metrics=False` for plinth (MLflow samples no system "
            "metrics by default); the second row is plinth's default. W3 inputs are random bytes "
            "in the page cache; `cp` copies them to a fresh folder on the same file system.",
            "- Speed-up: plinth's rate over MLflow's, or MLflow's time over plinth's.",
            "",
            table,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
