"""Client-side measurements of the server benchmark, one per process, against a running server.

    python bench_worker.py NAME '{json args}'

``benchmarks/server.py`` copies this file into a fresh git repository (both tools record the
git state of the script they run, as users' runs do) and runs it there with the tool's own
interpreter: MLflow's workers in MLflow's virtual environment, plinth's in plinth's. The
file imports only the standard library at module level, so either interpreter can load it;
each worker prints one ``RESULT {json}`` line. Timed regions hold only the tool's calls.

- ``mlflow_metrics``: ``mlflow.log_metric`` x n against ``--tracking-uri`` (its server),
  then ``end_run``; ``synchronous=False`` for MLflow's own asynchronous logging.
- ``mlflow_artifacts``: ``mlflow.log_artifacts`` of a folder, proxied by the server.
- ``plinth_metrics`` / ``plinth_artifacts``: the same through plinth with ``PLINTH_SERVER``
  and ``PLINTH_TOKEN`` set (the parent's environment): journaled, shipped in batches; timed
  until ``run.end()`` has flushed every point to the server.
- ``plinth_seed``: 100k finished runs (params, tags, latest metrics) and one run with 1M metric
  points, written straight into a server project's SQLite ledger (set-up, not measured).

Every worker reads its results back through the tool's client and fails on a missing value.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

RESULT_PREFIX = "RESULT "


def mlflow_metrics(args: dict[str, Any]) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    n, synchronous = args["n"], args.get("synchronous", True)
    mlflow.set_tracking_uri(args["uri"])
    mlflow.set_experiment("bench-metrics")
    run = mlflow.start_run()
    mlflow.log_metric("warmup", 0.0)  # the first request opens the connection
    started = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", i * 0.001, step=i, synchronous=synchronous)
    log_s = time.perf_counter() - started
    started = time.perf_counter()
    mlflow.end_run()  # waits for queued asynchronous points
    end_s = time.perf_counter() - started
    got = len(MlflowClient().get_metric_history(run.info.run_id, "loss"))
    if got != n:
        raise RuntimeError(f"MLflow stored {got} of {n} points")
    return {"n": n, "log_s": log_s, "end_s": end_s}


def mlflow_artifacts(args: dict[str, Any]) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(args["uri"])
    mlflow.set_experiment("bench-artifacts")
    with mlflow.start_run() as run:
        started = time.perf_counter()
        mlflow.log_artifacts(args["folder"], "files")
        seconds = time.perf_counter() - started
    client, folders, stored = MlflowClient(), ["files"], 0
    while folders:  # list_artifacts lists one folder level
        for info in client.list_artifacts(run.info.run_id, folders.pop()):
            if info.is_dir:
                folders.append(info.path)
            else:
                stored += 1
    if stored != args["files"]:
        raise RuntimeError(f"MLflow lists {stored} of {args['files']} artifacts")
    return {"files": args["files"], "seconds": seconds, "artifact_uri": run.info.artifact_uri}


def plinth_metrics(args: dict[str, Any]) -> dict[str, Any]:
    import plinth

    n = args["n"]
    run = plinth.start_run(experiment="bench-metrics")
    run.log_metric("warmup", 0.0)
    started = time.perf_counter()
    for i in range(n):
        run.log_metric("loss", i * 0.001, step=i)  # journaled locally, shipped in batches
    log_s = time.perf_counter() - started
    started = time.perf_counter()
    run.end()  # returns once every point is on the server
    end_s = time.perf_counter() - started
    got = len(plinth.metric_history(run.id, "loss"))
    if got != n:
        raise RuntimeError(f"the plinth server stored {got} of {n} points")
    return {"n": n, "log_s": log_s, "end_s": end_s, "run_id": run.id}


def plinth_artifacts(args: dict[str, Any]) -> dict[str, Any]:
    import plinth
    from plinth.entities import RecordRef

    with plinth.start_run(experiment="bench-artifacts") as run:
        started = time.perf_counter()
        logged = run.log_artifacts(args["folder"], "files")
        seconds = time.perf_counter() - started
    listed = run.context.ledger.artifacts.list(RecordRef("run", run.id))
    stored = sum(a.path.startswith("files/") for a in listed)
    if len(logged) != args["files"] or stored != args["files"]:
        raise RuntimeError(f"plinth logged {len(logged)}, lists {stored} of {args['files']}")
    return {"files": args["files"], "seconds": seconds, "run_id": run.id}


def plinth_seed(args: dict[str, Any]) -> dict[str, Any]:
    """``runs`` finished runs and one run of ``points`` points in the project's SQLite ledger.

    Bulk inserts through the ledger's own tables (what ``RunStore`` writes per run), in one
    transaction per 10,000 runs: the per-run API would take minutes for a set-up step.
    """
    import random

    import sqlalchemy as sa

    from plinth.entities import MetricPoint
    from plinth.ids import new_id, now_ms
    from plinth.ledger import tables as t
    from plinth.ledger.store import Ledger

    started = time.perf_counter()
    rng = random.Random(7)
    url = f"sqlite:///{Path(args['db']).resolve()}"
    with Ledger.open(url, user="bench") as ledger:
        project = ledger.projects.ensure_project(args["project"])
        experiment = ledger.projects.ensure_experiment(project.id, "bench-pages")
        engine = ledger._db.engine  # the set-up writes rows, it measures nothing
        stamp = {"created_at": now_ms(), "created_by": "bench"}
        for first in range(0, args["runs"], 10_000):
            ids = [new_id() for _ in range(first, min(args["runs"], first + 10_000))]
            run_rows, param_rows, tag_rows, metric_rows, latest_rows = [], [], [], [], []
            for k, run_id in enumerate(ids, start=first):
                start = stamp["created_at"] - (args["runs"] - k) * 1000
                run_rows.append(
                    {
                        "id": run_id,
                        "experiment_id": experiment.id,
                        "name": f"run-{k:06d}",
                        "status": "finished" if k % 10 else "failed",
                        "start_time": start,
                        "end_time": start + 500,
                        "parent_run_id": None,
                        "environment_id": None,
                        "source": {},
                        "error": None,
                        "host": "bench",
                        "pid": None,
                        "deleted_at": None,
                        **stamp,
                    }
                )
                params = {"lr": f"{rng.choice((0.1, 0.01, 0.001))}", "depth": str(k % 12)}
                params["model"] = ("gbm", "rf", "linear")[k % 3]
                param_rows += [
                    {"run_id": run_id, "key": a, "value": v, **stamp} for a, v in params.items()
                ]
                tag_rows.append({"run_id": run_id, "key": "team", "value": f"t{k % 7}", **stamp})
                for seq, (key, value) in enumerate((("loss", rng.random()), ("acc", rng.random()))):
                    row = {
                        "run_id": run_id,
                        "key": key,
                        "value": value,
                        "step": 0,
                        "timestamp": start,
                        "seq": seq,
                    }
                    latest_rows.append(row)
                    metric_rows.append(row)
            with engine.begin() as conn:
                for table, rows in (
                    (t.runs, run_rows),
                    (t.params, param_rows),
                    (t.tags, tag_rows),
                    (t.metrics, metric_rows),
                    (t.latest_metrics, latest_rows),
                ):
                    conn.execute(sa.insert(table), rows)
        runs_s = time.perf_counter() - started
        chart = ledger.runs.create_run(experiment.id, name="one-million-points")
        stamp_ms = now_ms()
        for first in range(0, args["points"], 100_000):
            ledger.runs.log_metrics(
                chart.id,
                [
                    MetricPoint("loss", 1.0 / (1 + i) + rng.random() * 0.01, i, stamp_ms + i, i)
                    for i in range(first, min(args["points"], first + 100_000))
                ],
            )
        ledger.runs.finish(chart.id, "finished")
    return {
        "runs": args["runs"],
        "points": args["points"],
        "chart_run_id": chart.id,
        "runs_s": runs_s,
        "seed_s": time.perf_counter() - started,
    }


WORKERS = {
    "mlflow_metrics": mlflow_metrics,
    "mlflow_artifacts": mlflow_artifacts,
    "plinth_metrics": plinth_metrics,
    "plinth_artifacts": plinth_artifacts,
    "plinth_seed": plinth_seed,
}


if __name__ == "__main__":
    result = WORKERS[sys.argv[1]](json.loads(sys.argv[2]))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
