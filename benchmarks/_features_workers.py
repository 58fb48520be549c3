"""The feature-store benchmark's workers: each runs in a fresh process with its tool's python.

``benchmarks/features.py`` runs ``python _features_workers.py worker:NAME JSON``: plinth and
the plain-DuckDB reference with plinth's interpreter, Feast with ``benchmarks/.venv-feast``.
Each prints one ``RESULT {json}`` line (timings, peak RSS) and writes what it computed to
Parquet or JSON in the work folder for the parent to check. Nothing here imports another
tool: this file is run by both interpreters.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import dispatch_worker, peak_rss_mb, print_result, status_mb
from _features_data import CREATED, FEATURES, KEY, ROW_ID, TS, TTL, VIEW

TTL_US = TTL // dt.timedelta(microseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _when(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _features_of(view: dict[str, Any]) -> dict[str, str]:
    return {**dict.fromkeys(view["floats"], "float64"), **dict.fromkeys(view["ints"], "int64")}


def _preload(*modules: str) -> None:
    """Import what reading Parquet (and a tool) loads on first use: imports are not timed."""
    import importlib

    for name in ("pyarrow.dataset", "pyarrow.parquet", *modules):
        importlib.import_module(name)


# ---- a. point-in-time join --------------------------------------------------------------


def pit_plinth(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from plinth.features import ViewData, point_in_time_join

    _preload("plinth.features.offline", "plinth.guards.sql", "duckdb")
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    entities = pq.read_table(args["entities"])
    features = pq.read_table(args["features"])
    read = time.perf_counter()
    view = ViewData(VIEW, (KEY,), TS, CREATED, TTL, tuple(FEATURES), features)
    out = point_in_time_join(entities, [view], entity_timestamp=TS)
    done = time.perf_counter()
    peak = peak_rss_mb()
    pq.write_table(out.select([ROW_ID, *FEATURES]), args["out"])
    return {"total_s": done - start, "read_s": read - start, "join_s": done - read,
            "rss_ready_mb": ready, "peak_mb": peak, "rows": out.num_rows}  # fmt: skip


_TTL_CASES = ", ".join(
    f"CASE WHEN epoch_us(e.{TS}) - epoch_us(v.{TS}) <= {TTL_US} THEN v.{f} END AS {f}"
    for f in FEATURES
)
#: The reference, written apart from plinth's engine: settle ties over the whole view first
#: (latest created per key and event time), then one ASOF join, then the TTL on integers.
REFERENCE_SQL = f"""
WITH v AS (
    SELECT * FROM ref_features
    QUALIFY row_number() OVER (PARTITION BY {KEY}, {TS} ORDER BY {CREATED} DESC) = 1
)
SELECT e.{ROW_ID}, {_TTL_CASES}
FROM ref_entities e ASOF LEFT JOIN v ON e.{KEY} = v.{KEY} AND e.{TS} >= v.{TS}
ORDER BY e.{ROW_ID}
"""  # noqa: S608 - the benchmark's own constants only


def pit_reference(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from plinth.guards.sql import cursor

    _preload("duckdb")
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    entities = pq.read_table(args["entities"])
    features = pq.read_table(args["features"])
    read = time.perf_counter()
    con = cursor()
    con.register("ref_entities", entities)
    con.register("ref_features", features)
    out = con.sql(REFERENCE_SQL).to_arrow_table()
    done = time.perf_counter()
    con.close()
    peak = peak_rss_mb()
    pq.write_table(out, args["out"])
    return {"total_s": done - start, "read_s": read - start, "join_s": done - read,
            "rss_ready_mb": ready, "peak_mb": peak, "rows": out.num_rows}  # fmt: skip


def pit_feast(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from feast import FeatureStore

    _preload()
    setup = time.perf_counter()
    store = FeatureStore(repo_path=args["repo"])
    refs = [f"{VIEW}:{f}" for f in FEATURES]
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    entity_df = pd.read_parquet(args["entities"])
    read = time.perf_counter()
    df = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    done = time.perf_counter()
    peak = peak_rss_mb()
    pq.write_table(pa.Table.from_pandas(df[[ROW_ID, *FEATURES]], preserve_index=False),
                   args["out"])  # fmt: skip
    return {"total_s": done - start, "read_s": read - start, "join_s": done - read,
            "setup_s": start - setup, "rss_ready_mb": ready, "peak_mb": peak,
            "rows": len(df)}  # fmt: skip


def feast_apply(args: dict[str, Any]) -> dict[str, Any]:
    """Write ``feature_store.yaml`` into ``repo`` and register the views (not timed)."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    repo = Path(args["repo"])
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nprovider: local\n"
        f"offline_store:\n  type: {args['offline']}\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
        "entity_key_serialization_version: 3\n",
        encoding="utf-8",
    )
    driver = Entity(name="driver", join_keys=[KEY], value_type=ValueType.INT64)
    views = []
    for name, view in args["views"].items():
        source = FileSource(name=f"{name}_source", path=view["path"], timestamp_field=TS,
                            created_timestamp_column=CREATED)  # fmt: skip
        schema = [Field(name=f, dtype=Float64) for f in view["floats"]]
        schema += [Field(name=f, dtype=Int64) for f in view["ints"]]
        views.append(FeatureView(name=name, entities=[driver], ttl=TTL, schema=schema,
                                 source=source, online=True))  # fmt: skip
    FeatureStore(repo_path=str(repo)).apply([driver, *views])
    return {}


# ---- b. materialization -------------------------------------------------------------------


def _plinth_store(args: dict[str, Any]) -> Any:
    from plinth.storage.online import open_online_store

    return open_online_store(args["uri"], root=Path.cwd(), prefix=args.get("prefix"))


def _absolute(uri: str, prefix: str | None) -> str:
    """The online-store URI with a relative SQLite path made absolute from the work folder
    and the benchmark's Redis key prefix carried in the URI."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path.cwd() / uri[len("sqlite:///") :])
    if prefix and not uri.startswith("sqlite"):
        return uri + ("&" if "?" in uri else "?") + f"prefix={prefix}"
    return uri


def mat_plinth(args: dict[str, Any]) -> dict[str, Any]:
    """``plinth.features.materialize`` of the views, defined and applied in a fresh project
    (not timed), into the given online store; only the materialize call is timed."""
    import shutil
    import tempfile

    _preload("plinth.guards.sql", "duckdb", "plinth.features.materialize", "plinth.features.rows")
    from plinth.context import Context
    from plinth.features import Entity, FeatureView, apply, materialize, parquet

    root = Path(tempfile.mkdtemp(prefix="plinth-mat-", dir=Path.cwd()))
    ctx = Context.open(root, online_store=_absolute(args["uri"], args.get("prefix")))
    try:
        entity = Entity("bench_entity", [KEY])
        views = []
        for name, view in args["views"].items():
            shutil.copy(view["path"], root / f"{name}.parquet")
            views.append(
                FeatureView(
                    name,
                    [entity],
                    parquet(f"{name}.parquet"),
                    timestamp=TS,
                    created_timestamp=CREATED,
                    features=_features_of(view),
                )
            )
        apply([entity, *views], ctx=ctx)
        for name in args["views"]:
            ctx.online_store.delete_view(name)  # a fresh store for every repetition
        end = _when(max(v["end_us"] for v in args["views"].values()))
        start = time.perf_counter()
        done = materialize(end=end, ctx=ctx)
        stop = time.perf_counter()
    finally:
        ctx.close()
        shutil.rmtree(root, ignore_errors=True)
    written = sum(m.rows for m in done)
    return {"materialize_s": stop - start, "written": written, "peak_mb": peak_rss_mb()}


def mat_feast(args: dict[str, Any]) -> dict[str, Any]:
    from feast import FeatureStore

    store = FeatureStore(repo_path=args["repo"])
    views = args["views"]
    begin = _when(min(v["start_us"] for v in views.values()))
    end = _when(max(v["end_us"] for v in views.values()))
    start = time.perf_counter()
    store.materialize(start_date=begin, end_date=end, feature_views=list(views))
    done = time.perf_counter()
    return {"materialize_s": done - start, "peak_mb": peak_rss_mb()}


# ---- c. online reads ----------------------------------------------------------------------


def _percentiles(call: Callable[[int], object], calls: int, warm: int) -> dict[str, float]:
    """Milliseconds per ``call(i)``: p50 and p99 over ``calls`` timed one by one, after ``warm``."""
    for i in range(warm):
        call(i)
    times = []
    clock = time.perf_counter_ns
    for i in range(warm, warm + calls):  # other keys than the warm-up's
        t = clock()
        call(i)
        times.append(clock() - t)
    times.sort()
    return {"p50_ms": statistics.median(times) / 1e6,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] / 1e6}  # fmt: skip


def _key_batches(args: dict[str, Any], size: int, count: int) -> list[list[int]]:
    import random

    rng = random.Random(size)
    return [rng.sample(range(args["entities"]), size) for _ in range(count)]


def _measure(args: dict[str, Any], read: Callable[[list[int]], object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size, calls in ((1, args["calls_1"]), (100, args["calls_100"])):
        batches = _key_batches(args, size, calls + calls // 10)

        def call(i: int, batches: list[list[int]] = batches) -> object:
            return read(batches[i])

        out[f"read_{size}"] = _percentiles(call, calls, calls // 10)
    return out


def read_plinth(args: dict[str, Any]) -> dict[str, Any]:
    store = _plinth_store(args)
    view = args["view"]
    features = _features_of(args["views"][view])
    ttl = TTL
    result = _measure(args, lambda keys: store.read(view, keys, features, ttl=ttl))
    everything = store.read(view, list(range(args["entities"])), features, ttl=ttl)
    Path(args["out"]).write_text(json.dumps(everything), encoding="utf-8")
    store.close()
    return result


def read_sqlite_raw(args: dict[str, Any]) -> dict[str, Any]:
    """The floor under plinth's SQLite store: its own query with prepared keys, rows fetched."""
    import sqlite3

    conn = sqlite3.connect(args["path"], isolation_level=None)
    view = args["view"]
    one = "SELECT ts, vals FROM online_rows WHERE view = ? AND key = ?"
    many = ("SELECT key, ts, vals FROM online_rows WHERE view = ? AND key IN"  # noqa: S608
            f" ({', '.join('?' * 100)})")  # fmt: skip

    def read(keys: list[int]) -> object:
        texts = [f"[{k}]" for k in keys]
        if len(texts) == 1:
            return conn.execute(one, (view, texts[0])).fetchone()
        return conn.execute(many, (view, *texts)).fetchall()

    return _measure(args, read)


def read_redis_raw(args: dict[str, Any]) -> dict[str, Any]:
    """The floor under plinth's Redis store: GET or MGET of its keys, nothing decoded."""
    import redis

    client = redis.Redis.from_url(args["uri"])
    prefix = f"{args['prefix']}{args['view']}:"

    def read(keys: list[int]) -> object:
        if len(keys) == 1:
            return client.get(f"{prefix}[{keys[0]}]")
        return client.mget([f"{prefix}[{k}]" for k in keys])

    return _measure(args, read)


def read_feast(args: dict[str, Any]) -> dict[str, Any]:
    from feast import FeatureStore

    store = FeatureStore(repo_path=args["repo"])
    view = args["view"]
    spec = args["views"][view]
    refs = [f"{view}:{f}" for f in [*spec["floats"], *spec["ints"]]]

    def read(keys: list[int]) -> object:
        rows = [{KEY: k} for k in keys]
        return store.get_online_features(features=refs, entity_rows=rows).to_dict()

    result = _measure(args, read)
    everything = read(list(range(args["entities"])))
    Path(args["out"]).write_text(json.dumps(everything, default=str), encoding="utf-8")
    return result


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "pit-plinth": pit_plinth,
    "pit-reference": pit_reference,
    "pit-feast": pit_feast,
    "feast-apply": feast_apply,
    "mat-plinth": mat_plinth,
    "mat-feast": mat_feast,
    "read-plinth": read_plinth,
    "read-sqlite-raw": read_sqlite_raw,
    "read-redis-raw": read_redis_raw,
    "read-feast": read_feast,
}


def worker_main(tool: str, args: dict[str, Any]) -> int:
    import warnings

    warnings.simplefilter("ignore")
    result = WORKERS[tool](args)
    result["peak_rss_mb"] = peak_rss_mb()
    print_result(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(dispatch_worker(sys.argv[1:], worker_main) or 0)
