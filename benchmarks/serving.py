"""Model serving: ``plinth serve`` against ``mlflow models serve`` and BentoML, same model.

    .venv/bin/python benchmarks/serving.py [--quick] [--no-peers] [--json out.json]

A scikit-learn HistGradientBoostingClassifier on 20 numeric features is trained here
(seeded, on a DataFrame, as users fit it), logged with plinth (``run.log_model``) and
served by:

- ``plinth serve deployment.yaml`` with one worker, then with two;
- ``mlflow models serve --env-manager local`` (``benchmarks/.venv-mlflow``; the same fitted
  model saved with ``mlflow.sklearn``, ``predict_proba`` as its pyfunc), telemetry off;
- ``bentoml serve`` of a small service file written here (``benchmarks/.venv-bentoml``):
  ``predict_proba`` on a DataFrame of the posted records, as BentoML's examples do.

The load generator is this script itself (``--loadgen``): an asyncio client over raw
sockets (HTTP/1.1 keep-alive, N connections, a fixed duration, every request's latency,
non-2xx answers and broken connections counted as errors) in its own process pinned to the
second core; the server process (and everything it starts) is pinned to the first core
(two workers: both cores, the client sharing the second). Workloads, 10 s each after a 1 s
warm-up (``--quick``: 0.3 s, plinth with one worker only):

- 1 connection, single-row requests: p50 beside the in-process model call for the same row;
- 8 and 64 connections, single-row requests; 64 connections, 100-row requests;
- start-up (process start to the first successful prediction), server RSS (the whole
  process tree) after the runs, errors.

A complete run (full size, with peers) rewrites its section of ``benchmarks/RESULTS.md``.

``--features``: plinth only, one worker, without and with a 3-view online feature lookup
(``benchmarks/_serving_features.py``), and the ratio of their requests/second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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
    machine_info,
    markdown_table,
    met_status,
    package_versions,
    plinth_python,
    print_tables,
    report_head,
    run_worker,
    section_head,
    write_json,
    write_section,
)

SECTION = "benchmarks/serving.py"
SECTION_FEATURES = "benchmarks/serving.py --features"
FEATURES_WITHOUT = "plinth 1 worker"
FEATURES_WITH = "plinth 1 worker, 3-view lookup"
FEATURES = 20  # also written into the worker scripts below
SERVER_CPUS = {0}
CLIENT_CPUS = {1}
PEERS = {
    "mlflow": (BENCH_DIR / ".venv-mlflow", BENCH_DIR / "requirements-mlflow.txt"),
    "bentoml": (BENCH_DIR / ".venv-bentoml", BENCH_DIR / "requirements-bentoml.txt"),
}
#: (name, connections, rows per request)
WORKLOADS = (("c1", 1, 1), ("c8", 8, 1), ("c64", 64, 1), ("c64x100", 64, 100))
#: The issue's reference figures for MLflow on this machine kind (8 / 64 connections, 1 row).
ISSUE_MLFLOW = {"c8": 87.0, "c64": 69.0, "c64x100": 48.0, "p99_c64_ms": 220.0}

# --- worker scripts ---------------------------------------------------------------------------

TRAIN = """
import json, pickle, statistics, sys, time
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

FEATURES = 20


def data(seed=0, n=5000):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.5, size=n) > 0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    return frame, y.astype(int)


def call_p50(fn, arg, reps=300):
    for _ in range(20):
        fn(arg)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main():
    import os
    import warnings

    import plinth

    os.sched_setaffinity(0, {0} & os.sched_getaffinity(0) or os.sched_getaffinity(0))

    frame, y = data()
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, y)
    plinth.init(".")
    with plinth.start_run(experiment="serving-bench") as run:
        run.log_model(model, name="hgb", input_example=frame.head())
    plinth.models.set_alias("hgb", "champion", 1)
    with open("model.pkl", "wb") as f:
        pickle.dump(model, f)
    row = frame.iloc[:1]
    rows = frame.iloc[:100]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy input to a model fitted on a frame
        out = {
            "numpy_1_ms": call_p50(model.predict_proba, row.to_numpy()),
            "frame_1_ms": call_p50(model.predict_proba, row),
            "numpy_100_ms": call_p50(model.predict_proba, rows.to_numpy()),
            "frame_100_ms": call_p50(model.predict_proba, rows),
        }
    out["expected"] = model.predict_proba(row)[:, 1].tolist()
    print("RESULT " + json.dumps(out), flush=True)


main()
"""

MLFLOW_SAVE = """
import json, pickle
import pandas as pd
import mlflow.sklearn

with open("model.pkl", "rb") as f:
    model = pickle.load(f)
example = pd.DataFrame([[0.0] * 20], columns=[f"f{i}" for i in range(20)])
mlflow.sklearn.save_model(
    model, "mlflow-model", input_example=example, pyfunc_predict_fn="predict_proba",
    pip_requirements=["scikit-learn", "pandas"],
    serialization_format="cloudpickle",  # 3.17's default (skops) refuses the fitted model
)
print("RESULT " + json.dumps({}), flush=True)
"""

BENTO_SERVICE = """
import pickle

import bentoml
import pandas as pd


@bentoml.service(workers=1)
class Model:
    def __init__(self) -> None:
        with open("model.pkl", "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, records: list[dict[str, float]]) -> list[float]:
        return self.model.predict_proba(pd.DataFrame(records))[:, 1].tolist()
"""

DEPLOYMENT = """name: bench
model: hgb@champion
"""


# --- the load generator (run as: serving.py --loadgen JSON) ------------------------------------


def _request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at != -1:
        end = lower.index(b"\r\n", at + 2)
        size = int(lower[at + 17 : end])
        return status, await reader.readexactly(size)
    if b"transfer-encoding: chunked" in lower:
        chunks: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(data[:-2])
    return status, b""


async def _connection(
    port: int, requests: list[bytes], offset: int, stop: float, record: float, out: dict[str, Any]
) -> None:
    lat: list[float] = out["lat"]
    i = offset
    reader = writer = None
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            req = requests[i % len(requests)]
            i += 1
            t = time.perf_counter()
            writer.write(req)
            status, _ = await _read_response(reader)
            done = time.perf_counter()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            if time.perf_counter() >= record:
                out["errors"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
            continue
        if t >= record:
            lat.append(done - t)
            if not 200 <= status < 300:
                out["errors"] += 1
    if writer is not None:
        writer.close()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [_request(spec["path"], body.encode()) for body in spec["bodies"]]
    out: dict[str, Any] = {"lat": [], "errors": 0}
    start = time.perf_counter()
    record = start + spec["warmup_s"]
    stop = record + spec["duration_s"]
    await asyncio.gather(
        *(
            _connection(spec["port"], requests, c * 7, stop, record, out)
            for c in range(spec["connections"])
        )
    )
    lat = sorted(out["lat"])
    n = len(lat)

    def pct(q: float) -> float:
        return lat[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "rps": n / spec["duration_s"],
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000 if n else float("nan"),
        "errors": out["errors"],
    }


def loadgen_main() -> int:
    spec = json.loads(sys.stdin.read())
    with_cpus(set(spec["cpus"]))
    print("RESULT " + json.dumps(asyncio.run(_load(spec))), flush=True)
    return 0


# --- servers -----------------------------------------------------------------------------------


def with_cpus(cpus: set[int]) -> None:
    available = os.sched_getaffinity(0)
    chosen = cpus & available or available
    os.sched_setaffinity(0, chosen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(port: int, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_request(path, body))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at == -1:
            return status, rest
        size = int(lower[at + 17 :].split(b"\r\n")[0])
        while len(rest) < size:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MB)."""
    pids = [pid]
    total = 0
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="utf-8") as f:
                    pids.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return total / 1024


class Served:
    """One server under test: its command, request shape and the process once started."""

    def __init__(
        self,
        label: str,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        path: str,
        key: str,
        cpus: set[int],
    ) -> None:
        self.label = label
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.path = path
        self.key = key  # the JSON key the records go under
        self.cpus = cpus
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = cwd / f"{label.replace(' ', '_')}.log"

    def body(self, records: list[dict[str, float]]) -> str:
        return json.dumps({self.key: records})

    def start(self, probe: list[dict[str, float]], timeout: float = 180) -> float:
        """Start the server; seconds until its first successful prediction."""
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        cpus = self.cpus
        log = self.log.open("wb")
        t0 = time.perf_counter()
        self.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: with_cpus(cpus),
        )
        body = self.body(probe).encode()
        while time.perf_counter() - t0 < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log.read_text()[-3000:]}")
            try:
                status, answer = post(self.port, self.path, body, timeout=10)
            except OSError:
                time.sleep(0.02)
                continue
            if status == 200:
                self.first_answer = answer
                return time.perf_counter() - t0
            time.sleep(0.02)
        raise RuntimeError(f"{self.label} gave no prediction in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        except ProcessLookupError:
            pass
        self.process = None


# --- the benchmark -----------------------------------------------------------------------------


def records(n: int, seed: int) -> list[dict[str, float]]:
    import random

    rng = random.Random(seed)
    return [{f"f{i}": round(rng.gauss(0, 1), 6) for i in range(FEATURES)} for _ in range(n)]


def load(
    server: Served,
    bodies: list[str],
    connections: int,
    size: dict[str, float],
    loadgen_cpus: set[int],
) -> dict[str, Any]:
    """One load run against a started server (the load generator in its own process)."""
    spec = {
        "port": server.port,
        "path": server.path,
        "bodies": bodies,
        "connections": connections,
        "duration_s": size["duration_s"],
        "warmup_s": size["warmup_s"],
        "cpus": sorted(loadgen_cpus),
    }
    done = subprocess.run(
        [str(plinth_python()), __file__, "--loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=size["duration_s"] + size["warmup_s"] + 120,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][7:])
    return result


#: The least any server of this model pays before its first answer: a fresh interpreter that
#: unpickles the fitted model (importing scikit-learn) and calls ``predict_proba`` once.
FLOOR = """
import pickle, numpy
with open("model.pkl", "rb") as f:
    model = pickle.load(f)
model.predict_proba(numpy.zeros((1, 20)))
"""


def startup_floor(python: Path, project: Path, reps: int) -> float:
    """Median wall time of :data:`FLOOR` in a fresh process on the server's CPU."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(
            [str(python), "-W", "ignore", "-c", FLOOR],
            cwd=project,
            env=clean_env(),
            check=True,
            preexec_fn=lambda: with_cpus(SERVER_CPUS),
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    server: Served,
    size: dict[str, float],
    loadgen_cpus: set[int],
    make_records: Any = records,
) -> dict[str, Any]:
    probe = make_records(1, 0)
    out: dict[str, Any] = {"startup_s": server.start(probe)}
    try:
        out["first_answer"] = server.first_answer.decode(errors="replace")[:300]
        single = [server.body(make_records(1, 1000 + i)) for i in range(256)]
        hundred = [server.body(make_records(100, 5000 + i)) for i in range(16)]
        served = 0
        #: [requests answered so far (measured ones), the tree's RSS then] after each run
        out["rss_steps"] = []
        for name, connections, rows in WORKLOADS:
            print(f"  {server.label}: {name} ...", file=sys.stderr, flush=True)
            bodies = single if rows == 1 else hundred
            out[name] = load(server, bodies, connections, size, loadgen_cpus)
            assert server.process is not None
            served += int(out[name]["requests"])
            out["rss_steps"].append([served, tree_rss_mb(server.process.pid)])
        out["rss_mb"] = out["rss_steps"][-1][1]
    finally:
        server.stop()
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.size = (
            {"duration_s": 0.3, "warmup_s": 0.1}
            if args.quick
            else {
                "duration_s": 10.0,
                "warmup_s": 1.0,
            }
        )
        self.raw: dict[str, Any] = {}
        self.versions: dict[str, dict[str, str]] = {}
        self.not_measured: dict[str, str] = {}

    def run(self) -> None:
        py = plinth_python()
        project = self.work / "project"
        project.mkdir()
        (project / "train.py").write_text(TRAIN, encoding="utf-8")
        (project / "deployment.yaml").write_text(DEPLOYMENT, encoding="utf-8")
        print("training and logging the model ...", file=sys.stderr, flush=True)
        self.raw["model_call"] = run_worker(
            py, project / "train.py", "-", {}, cwd=project, env=clean_env()
        )
        self.versions["plinth"] = package_versions(
            py, ["plinth", "scikit-learn", "starlette", "uvicorn", "uvloop", "httptools"]
        )
        plinth_bin = str(py.parent / "plinth")
        if self.args.features:
            self.run_features(py, project, plinth_bin)
            return
        self.raw["startup_floor_s"] = startup_floor(py, project, reps=1 if self.args.quick else 5)
        workers = [1] if self.args.quick else [1, 2]
        for n in workers:
            label = f"plinth {n} worker" + ("s" if n > 1 else "")
            argv = [plinth_bin, "serve", "deployment.yaml", "--port", "{port}"]
            cpus = SERVER_CPUS if n == 1 else SERVER_CPUS | CLIENT_CPUS
            if n > 1:
                argv += ["--workers", str(n)]
            server = Served(
                label,
                argv,
                cwd=project,
                env=clean_env(),
                path="/v1/predict",
                key="records",
                cpus=cpus,
            )
            self.raw[label] = measure(server, self.size, CLIENT_CPUS)
        if self.args.quick or self.args.no_peers:
            return
        for peer in ("mlflow", "bentoml"):
            try:
                self.peer(peer, project)
            except Exception as exc:  # reported as not measured, with the reason
                print(f"{peer}: not measured: {exc}", file=sys.stderr, flush=True)
                self.not_measured[peer] = f"{type(exc).__name__}: {str(exc)[:300]}"

    def run_features(self, py: Path, project: Path, plinth_bin: str) -> None:
        """plinth, one worker, without and with a 3-view online lookup (same model, load),
        both started, the runs interleaved so that both see the same machine."""
        import _serving_features as feats

        print("recording the feature service, filling the online store ...", file=sys.stderr)
        self.raw["features_setup"] = feats.setup(project, py, run_worker, clean_env())
        servers = {}
        for label, deployment in (
            (FEATURES_WITHOUT, "deployment.yaml"),
            (FEATURES_WITH, "deployment_features.yaml"),
        ):
            argv = [plinth_bin, "serve", deployment, "--port", "{port}"]
            servers[label] = Served(
                label,
                argv,
                cwd=project,
                env=clean_env(),
                path="/v1/predict",
                key="records",
                cpus=SERVER_CPUS,
            )
        rounds = 1 if self.args.quick else feats.ROUNDS
        self.raw.update(
            feats.interleaved(
                servers,
                (records, feats.keyed_records),
                WORKLOADS,
                rounds,
                self.size,
                load,
                CLIENT_CPUS,
            )
        )

    def peer(self, peer: str, project: Path) -> None:
        folder, requirements = PEERS[peer]
        python = ensure_venv(folder, requirements)
        self.versions[peer] = package_versions(python, [peer, "scikit-learn", "pandas"])
        env = clean_env(
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            BENTOML_DO_NOT_TRACK="true",
        )
        # As if the peer's environment were activated: `mlflow models serve` execs uvicorn
        # through a shell, by name.
        env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        if peer == "mlflow":
            (project / "mlflow_save.py").write_text(MLFLOW_SAVE, encoding="utf-8")
            run_worker(python, project / "mlflow_save.py", "-", {}, cwd=project, env=env)
            argv = [
                str(folder / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                "mlflow-model",
                "--env-manager",
                "local",
                "-w",
                "1",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
            ]
            server = Served(
                "MLflow",
                argv,
                cwd=project,
                env=env,
                path="/invocations",
                key="dataframe_records",
                cpus=SERVER_CPUS,
            )
        else:
            (project / "bento_service.py").write_text(BENTO_SERVICE, encoding="utf-8")
            argv = [
                str(folder / "bin" / "bentoml"),
                "serve",
                "bento_service:Model",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ]
            server = Served(
                "BentoML",
                argv,
                cwd=project,
                env=env,
                path="/predict",
                key="records",
                cpus=SERVER_CPUS,
            )
        self.raw[server.label] = measure(server, self.size, CLIENT_CPUS)

    # --- report ------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        names = [k for k in self.raw if k.startswith("plinth ")]
        return names + [k for k in ("MLflow", "BentoML") if k in self.raw or self._peer(k)]

    def _peer(self, label: str) -> bool:
        return label.lower() in self.not_measured

    def table(self) -> str:
        if self.args.features:
            import _serving_features as feats

            return feats.table(self.raw, FEATURES_WITHOUT, FEATURES_WITH, WORKLOADS, markdown_table)
        cols = self.columns()
        mlflow = self.raw.get("MLflow")
        base = self.raw.get("plinth 1 worker")
        call = self.raw["model_call"]

        def cell(label: str, fmt: Any) -> str:
            got = self.raw.get(label)
            if got is None:
                return "not measured"
            return str(fmt(got))

        def load(name: str) -> Any:
            def fmt(r: dict[str, Any]) -> str:
                w = r[name]
                return f"{w['rps']:,.0f}/s (p50 {w['p50_ms']:.1f}, p99 {w['p99_ms']:.1f} ms)"

            return fmt

        rows: list[list[str]] = []

        def ratio(name: str) -> str:
            if mlflow is None or base is None:
                return "—"
            return f"{base[name]['rps'] / mlflow[name]['rps']:.1f}{TIMES}"

        def p50(r: dict[str, Any]) -> str:
            return f"p50 {r['c1']['p50_ms']:.2f} ms ({r['c1']['rps']:,.0f}/s)"

        assert base is not None
        gap = base["c1"]["p50_ms"] - call["numpy_1_ms"]
        rows.append(
            [
                f"1 conn, 1 row (model call p50: {call['numpy_1_ms']:.2f} ms numpy, "
                f"{call['frame_1_ms']:.2f} ms DataFrame)",
                *[cell(c, p50) for c in cols],
                "—",
                "p50 ≤ model call + 1 ms",
                met_status(gap <= 1.0),
            ]
        )
        for name, label, need in (
            ("c8", "8 conn, 1 row", 3.0),
            ("c64", "64 conn, 1 row", 10.0),
            ("c64x100", "64 conn, 100 rows", None),
        ):
            if need is None:
                target, ok = "—", None
            elif mlflow is not None:
                target = f"≥ {need:g}{TIMES} MLflow"
                ok = base[name]["rps"] >= need * mlflow[name]["rps"]
            else:
                target = f"≥ {need:g}{TIMES} MLflow (issue: {need * ISSUE_MLFLOW[name]:,.0f}/s)"
                ok = base[name]["rps"] >= need * ISSUE_MLFLOW[name]
            rows.append(
                [
                    label,
                    *[cell(c, load(name)) for c in cols],
                    ratio(name),
                    target,
                    met_status(ok),
                ]
            )
        p99_limit = mlflow["c64"]["p99_ms"] if mlflow else ISSUE_MLFLOW["p99_c64_ms"]
        rows.append(
            [
                "p99, 64 conn, 1 row",
                *[cell(c, lambda r: f"{r['c64']['p99_ms']:.1f} ms") for c in cols],
                "—",
                f"≤ MLflow's ({p99_limit:.0f} ms)",
                met_status(base["c64"]["p99_ms"] <= p99_limit),
            ]
        )
        rows.append(
            [
                "start-up to first prediction (floor: python, unpickle, one predict_proba: "
                f"{self.raw['startup_floor_s']:.2f} s)",
                *[cell(c, lambda r: f"{r['startup_s']:.2f} s") for c in cols],
                "—",
                "≤ 1.5 s (issue 17)",
                met_status(base["startup_s"] <= 1.5),
            ]
        )

        def served(r: dict[str, Any]) -> int:
            return sum(int(r[name]["requests"]) for name, _, _ in WORKLOADS)

        def past_10k(r: dict[str, Any]) -> tuple[int, float] | None:
            """The first measurement after 10,000 requests: (requests, RSS MB)."""
            return next(((int(n), float(mb)) for n, mb in r["rss_steps"] if n >= 10_000), None)

        def rss_10k(r: dict[str, Any]) -> str:
            found = past_10k(r)
            return "—" if found is None else f"{found[1]:.0f} MB ({found[0]:,} requests)"

        first = past_10k(base)
        rows.append(
            [
                "server RSS, first reading past 10,000 requests (process tree)",
                *[cell(c, rss_10k) for c in cols],
                "—",
                "≤ 250 MB after ≥ 10k requests (issue 17)",
                met_status(first is not None and first[1] <= 250),
            ]
        )
        rows.append(
            [
                f"server RSS after all the runs (process tree; {served(base):,} requests)",
                *[cell(c, lambda r: f"{r['rss_mb']:.0f} MB") for c in cols],
                "—",
                "—",
                "—",
            ]
        )

        def errors(r: dict[str, Any]) -> str:
            return str(sum(r[name]["errors"] for name, _, _ in WORKLOADS))

        rows.append(
            [
                "errors (all runs)",
                *[cell(c, errors) for c in cols],
                "—",
                "0",
                met_status(errors(base) == "0"),
            ]
        )
        headers = ["Workload", *cols, "plinth 1 worker / MLflow", "Target", "Status"]
        return markdown_table(headers, rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s runs, plinth (1 worker) only")
    parser.add_argument("--no-peers", action="store_true", help="measure plinth only")
    parser.add_argument(
        "--features",
        action="store_true",
        help="plinth without and with a 3-view online feature lookup (no peers)",
    )
    common_arguments(parser, complete=None)
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.loadgen:
        return loadgen_main()
    with tempfile.TemporaryDirectory(prefix="plinth-serve-bench-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        with Stopwatch() as clock:
            bench.run()
    table = bench.table()
    print_tables(table)
    for peer, why in bench.not_measured.items():
        print(f"\n{peer}: not measured: {why}")
    report = {
        **report_head(command_line(__file__, argv), machine, clock, bench.versions),
        "size": bench.size,
        "elapsed_s": clock.elapsed_s,
        "not_measured": bench.not_measured,
        "raw": bench.raw,
        "table": table,
    }
    write_json(args.json, report)
    if args.features:
        write_section(
            args, SECTION_FEATURES, lambda: render_features(report, table), complete=False
        )
        return 0
    complete = not args.quick and not args.no_peers
    write_section(args, SECTION, lambda: render_section(report, table), complete=complete)
    return 0


def render_features(report: dict[str, Any], table: str) -> str:
    v = report["versions"]
    tools = [f"{name} " + ", ".join(f"{k} {x}" for k, x in got.items()) for name, got in v.items()]
    lines = [
        *section_head("Serving with online features", report, tools, folders=None),
        "- The model of the serving benchmark, served by one worker (CPU 0; load generator on "
        "CPU 1) without features (a request sends 20 values) and with `features: {service: "
        "bench}` (a request sends 3 entity keys and 2 values; 18 inputs are looked up in 3 "
        "views of 6 float64 features, 10,000 entities each, SQLite online store). "
        f"{report['size']['duration_s']:g} s per run after a {report['size']['warmup_s']:g} s "
        "warm-up.",
    ]
    return "\n".join([*lines, "", table])


def render_section(report: dict[str, Any], table: str) -> str:
    v = report["versions"]
    tools = [f"{name} " + ", ".join(f"{k} {x}" for k, x in got.items()) for name, got in v.items()]
    lines = [
        *section_head("Model serving: plinth vs MLflow and BentoML", report, tools, folders=None),
        "- Model: HistGradientBoostingClassifier (100 iterations) on 20 numeric features, "
        "fitted on a DataFrame (seeded); every server answers `predict_proba`'s positive "
        "column. Server pinned to CPU 0 (two workers: CPUs 0-1), the asyncio load generator "
        "to CPU 1; HTTP/1.1 keep-alive, "
        f"{report['size']['duration_s']:g} s per run after a {report['size']['warmup_s']:g} s "
        "warm-up; latencies in ms as the client sees them.",
    ]
    for peer, why in report["not_measured"].items():
        lines.append(f"- {peer}: not measured ({why}).")
    return "\n".join([*lines, "", table])


if __name__ == "__main__":
    raise SystemExit(main())
