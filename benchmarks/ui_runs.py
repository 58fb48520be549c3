"""The web UI's runs pages at scale: the runs table over 100k runs, a chart over 1M points.

Targets (issue 16): the runs page with 100k runs answers in <= 300 ms of server time; a
metric chart over 1M points in <= 200 ms. A team server (``plinth.testing.server``, in a
thread) gets a project whose ledger is filled with bulk SQL inserts: ``--runs`` runs with
3 params, 3 metrics and a tag each, and one run with ``--points`` points of one metric.
Each page is fetched ``--repeat`` times over loopback with a read token and the median is
reported: an upper bound of the server time (it includes the HTTP round trip, ~1-2 ms).
The ledger calls behind them are also timed in process, without HTTP::

    .venv/bin/python benchmarks/ui_runs.py                 # 100k runs, 1M points (~1 min)
    .venv/bin/python benchmarks/ui_runs.py --quick         # 10k runs, 100k points
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from plinth.api.runs import RunsQuery, runs_table  # noqa: E402
from plinth.ids import new_id  # noqa: E402
from plinth.ledger import Ledger  # noqa: E402
from plinth.testing.server import start_server  # noqa: E402

PROJECT = "bench"
#: (label, query string of /projects/P/runs): what a user of a big project does.
PAGES = (
    ("newest first", ""),
    ("sort by a metric", "order=metrics.acc+DESC"),
    (
        "filter + sort by a param",
        "filter=metrics.acc+%3E+0.5+and+params.optimizer+%3D+'adam'&order=params.lr+ASC",
    ),
    ("numeric param filter", "filter=params.lr+%3D+0.01"),
    ("page 1000", "page=1000"),
    ("chosen columns, sort by tag", "columns=metrics.acc,params.lr,tags.team&order=tags.team"),
)
TARGET_PAGE_S = 0.300
TARGET_CHART_S = 0.200


def fill(db: Path, runs: int, points: int) -> str:
    """Bulk-insert the scene into the migrated ledger ``db``; the long run's id."""
    rng = random.Random(16)
    conn = sqlite3.connect(db)
    project_id = conn.execute("SELECT id FROM projects").fetchone()[0]
    experiment_id = new_id()
    now = int(time.time() * 1000)
    conn.execute(
        "INSERT INTO experiments (id, project_id, name, created_at, created_by) "
        "VALUES (?, ?, 'default', ?, 'bench')",
        (experiment_id, project_id, now),
    )
    ids = [new_id() for _ in range(runs + 1)]
    conn.executemany(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, source, "
        "created_at, created_by) VALUES (?, ?, ?, 'finished', ?, ?, '{}', ?, 'bench')",
        (
            (
                rid,
                experiment_id,
                f"run-{i}",
                now - (runs - i) * 1000,
                now - (runs - i) * 1000 + 60_000,
                now,
            )
            for i, rid in enumerate(ids)
        ),
    )
    params = []
    for rid in ids:
        params += [
            (rid, "lr", rng.choice(["0.1", "0.01", "0.001", "0.0001", "1e-5"]), now),
            (rid, "depth", str(rng.randint(1, 12)), now),
            (rid, "optimizer", rng.choice(["adam", "sgd", "rmsprop"]), now),
        ]
    conn.executemany(
        "INSERT INTO params (run_id, key, value, created_at, created_by) "
        "VALUES (?, ?, ?, ?, 'bench')",
        params,
    )
    conn.executemany(
        "INSERT INTO tags (run_id, key, value, created_at, created_by) "
        "VALUES (?, 'team', ?, ?, 'bench')",
        ((rid, rng.choice(["vision", "nlp", "tabular"]), now) for rid in ids),
    )
    latest = [(rid, key, rng.random(), now) for rid in ids for key in ("acc", "loss", "f1")]
    conn.executemany(
        "INSERT INTO latest_metrics (run_id, key, value, step, timestamp, seq) "
        "VALUES (?, ?, ?, 0, ?, 0)",
        latest,
    )
    conn.executemany(
        "INSERT INTO metrics (run_id, seq, key, step, timestamp, value) VALUES (?, ?, ?, 0, ?, ?)",
        ((rid, i % 3, key, now, value) for i, (rid, key, value, now) in enumerate(latest)),
    )
    long_run = ids[-1]
    conn.execute("DELETE FROM metrics WHERE run_id = ?", (long_run,))
    conn.executemany(
        "INSERT INTO metrics (run_id, seq, key, step, timestamp, value) "
        "VALUES (?, ?, 'loss', ?, ?, ?)",
        ((long_run, i, i, now + i, 1.0 / (1 + i) + rng.random() * 0.01) for i in range(points)),
    )
    conn.execute(
        "UPDATE latest_metrics SET step = ?, seq = ? WHERE run_id = ? AND key = 'loss'",
        (points - 1, points - 1, long_run),
    )
    conn.execute("DELETE FROM latest_metrics WHERE run_id = ? AND key != 'loss'", (long_run,))
    conn.commit()
    conn.close()
    return long_run


def median_s(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches (SQLite pages, compiled statements, templates)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10k runs, 100k points")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--tmp", type=Path, help="work folder (default: a fresh temporary one)")
    parser.add_argument("--no-results", action="store_true", help="accepted; nothing is recorded")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.points = 10_000, 100_000
    work = Path(tempfile.mkdtemp(prefix="plinth-ui-bench-", dir=args.tmp))
    handle = start_server(work / "server")
    rows: list[dict[str, Any]] = []
    try:
        handle.create_project(PROJECT)
        token = handle.token("reader", PROJECT, "read")
        metadata = handle.config.project_metadata(PROJECT)
        started = time.perf_counter()
        long_run = fill(Path(metadata.removeprefix("sqlite:///")), args.runs, args.points)
        print(
            f"filled {args.runs} runs and {args.points} points in "
            f"{time.perf_counter() - started:.1f} s"
        )
        client = httpx.Client(base_url=handle.url, headers={"Authorization": f"Bearer {token}"})

        def get(path: str) -> Callable[[], object]:
            def fetch() -> object:
                response = client.get(path)
                response.raise_for_status()
                return response

            return fetch

        ledger = Ledger.open(metadata, user="bench")
        for label, query in PAGES:
            http_s = median_s(get(f"/projects/{PROJECT}/runs?{query}"), args.repeat)
            params = dict(httpx.QueryParams(query))
            sql_s = median_s(lambda p=params: runs_table(ledger, RunsQuery.of(p)), args.repeat)
            rows.append(
                {
                    "workload": f"runs page: {label}",
                    "http_s": http_s,
                    "ledger_s": sql_s,
                    "target_s": TARGET_PAGE_S,
                }
            )
        series_s = median_s(
            lambda: ledger.search.metric_series([long_run], "loss", 500), args.repeat
        )
        chart_http = median_s(
            get(f"/api/v1/projects/{PROJECT}/runs/{long_run}/metrics/loss?points=500"),
            args.repeat,
        )
        rows.append(
            {
                "workload": f"chart: {args.points} points -> 500 (JSON)",
                "http_s": chart_http,
                "ledger_s": series_s,
                "target_s": TARGET_CHART_S,
            }
        )
        page_s = median_s(get(f"/projects/{PROJECT}/runs/{quote(long_run)}"), args.repeat)
        rows.append(
            {
                "workload": f"run page with a {args.points}-point chart",
                "http_s": page_s,
                "ledger_s": None,
                "target_s": None,
            }
        )
        ledger.close()
        client.close()
    finally:
        handle.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.runs} runs, {args.points} points; median of {args.repeat}\n")
    print("| workload | server (HTTP) | ledger only | target |")
    print("|---|---:|---:|---:|")
    for row in rows:
        ledger_ms = "" if row["ledger_s"] is None else f"{row['ledger_s'] * 1000:.0f} ms"
        target = "" if row["target_s"] is None else f"<= {row['target_s'] * 1000:.0f} ms"
        print(f"| {row['workload']} | {row['http_s'] * 1000:.0f} ms | {ledger_ms} | {target} |")
    if args.json:
        args.json.write_text(
            json.dumps({"runs": args.runs, "points": args.points, "rows": rows}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
