"""``benchmarks/serving.py --features``: serving with a 3-view online lookup against without.

The same HistGradientBoosting model (20 inputs ``f0``..``f19``) is served twice by
``plinth serve`` with one worker, under the same load: once as usual (a request sends the
20 values), once with ``features: {service: bench}`` where a request sends three entity keys
and two values, and the server looks up the other 18 inputs in three views (6 features each,
10,000 entities per view, in the project's SQLite online store). The issue's target: the
lookup keeps >= 70 % of the requests/second.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENTITIES = 10_000
#: (view, join key, its inputs)
VIEWS = (
    ("va", "a", [f"f{i}" for i in range(6)]),
    ("vb", "b", [f"f{i}" for i in range(6, 12)]),
    ("vc", "c", [f"f{i}" for i in range(12, 18)]),
)
DIRECT = ["f18", "f19"]
TARGET = 0.70

SETUP = """
import json, random, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from plinth.context import Context
from plinth.features.definitions import Entity, FeatureService, FeatureView, parquet
from plinth.features.materialize import materialize
from plinth.features.registry import apply
from plinth.tables import write_parquet

args = json.loads(sys.argv[2])
ctx = Context.open()
rng = random.Random(0)
now = datetime.now(UTC)
Path("data").mkdir(exist_ok=True)
defs, views = [], []
for view, key, names in args["views"]:
    rows = [
        {key: f"{key}{i}", "ts": now - timedelta(hours=1),
         **{n: round(rng.gauss(0, 1), 6) for n in names}}
        for i in range(args["entities"])
    ]
    write_parquet(pa.Table.from_pylist(rows), Path("data") / f"{view}.parquet")
    defs.append(Entity(key, join_keys=[key]))
    views.append(FeatureView(view, entities=[key], source=parquet(f"data/{view}.parquet"),
                             timestamp="ts", ttl="7d", features={n: "float64" for n in names}))
apply([*defs, *views, FeatureService("bench", views)], ctx=ctx)
done = materialize(end=now, ctx=ctx)
ctx.close()
print("RESULT " + json.dumps({"materialized_rows": sum(m.rows for m in done)}), flush=True)
"""

DEPLOYMENT = """name: bench-features
model: hgb@champion
features: {service: bench}
"""


def keyed_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Request rows for the lookup deployment: three entity keys and the two direct inputs."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        row: dict[str, Any] = {key: f"{key}{rng.randrange(ENTITIES)}" for _, key, _ in VIEWS}
        row.update({name: round(rng.gauss(0, 1), 6) for name in DIRECT})
        out.append(row)
    return out


def setup(project: Path, python: Path, run_worker: Callable[..., Any], env: dict[str, str]) -> Any:
    """Record the definitions and fill the online store (after the model is logged)."""
    (project / "features_setup.py").write_text(SETUP, encoding="utf-8")
    (project / "deployment_features.yaml").write_text(DEPLOYMENT, encoding="utf-8")
    args = {"views": [list(v) for v in VIEWS], "entities": ENTITIES}
    return run_worker(python, project / "features_setup.py", "-", args, cwd=project, env=env)


def table(raw: dict[str, Any], without: str, with_: str, workloads: Any, fmt: Any) -> str:
    """Without, with, the ratio and the target per workload."""
    base, looked = raw[without], raw[with_]
    rows = []
    for name, connections, rows_per in workloads:
        ratio = looked[name]["rps"] / base[name]["rps"]
        ok = "met" if ratio >= TARGET else "NOT MET"
        rows.append(
            [
                f"{connections} conn, {rows_per} row{'s' if rows_per > 1 else ''}",
                _cell(base[name]),
                _cell(looked[name]),
                f"{ratio:.1%}",
                f"≥ {TARGET:.0%}",
                ok,
            ]
        )
    head = ["Workload", without, with_, "with / without", "Target", "Status"]
    return str(fmt(head, rows))


def _cell(w: dict[str, Any]) -> str:
    return f"{w['rps']:,.0f}/s (p50 {w['p50_ms']:.2f}, p99 {w['p99_ms']:.1f} ms)"


#: Rounds per workload in a full run (alternating the two servers).
ROUNDS = 3


def interleaved(
    servers: dict[str, Any],
    makers: tuple[Callable[[int, int], list[dict[str, Any]]], ...],
    workloads: Any,
    rounds: int,
    size: dict[str, float],
    load: Callable[..., dict[str, Any]],
    cpus: set[int],
) -> dict[str, Any]:
    """Both servers started; each workload run ``rounds`` times, alternating servers, so
    that both see the same machine (other load on it shifts both). Per server and workload:
    the requests/s of the whole (all rounds), the latencies of the median round."""
    labels = list(servers)
    out: dict[str, Any] = {label: {} for label in labels}
    bodies: dict[str, tuple[list[str], list[str]]] = {}
    try:
        for (label, server), make in zip(servers.items(), makers, strict=True):
            out[label]["startup_s"] = server.start(make(1, 0))
            single = [server.body(make(1, 1000 + i)) for i in range(256)]
            hundred = [server.body(make(100, 5000 + i)) for i in range(16)]
            bodies[label] = (single, hundred)
        for name, connections, rows in workloads:
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
            for r in range(rounds):
                for label in labels if r % 2 == 0 else reversed(labels):
                    print(f"  {label}: {name} round {r + 1} ...", flush=True, file=sys.stderr)
                    got = bodies[label][0 if rows == 1 else 1]
                    runs[label].append(load(servers[label], got, connections, size, cpus))
            for label in labels:
                done = runs[label]
                median = sorted(done, key=lambda w: w["rps"])[len(done) // 2]
                out[label][name] = {
                    **median,
                    "rps": sum(w["requests"] for w in done) / (size["duration_s"] * len(done)),
                    "errors": sum(w["errors"] for w in done),
                    "rounds_rps": [w["rps"] for w in done],
                }
    finally:
        for server in servers.values():
            server.stop()
    return out
