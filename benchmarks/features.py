"""Feature store: plinth against Feast and a plain DuckDB reference (issue 14).

    .venv/bin/python benchmarks/features.py [--quick] [--no-peers] [--reps N] [--json out.json]

a. Point-in-time join, 7-day TTL: 100,000 entity rows (duplicates, keys without feature rows,
   times before any feature row, times exactly on a key's TTL boundary and 1 us past it) x
   1,000,000 feature rows of 8 features (float64 and int64, 3% nulls; ties of equal event
   time broken by the created timestamp). plinth ``point_in_time_join``; Feast 0.67 with its
   DuckDB offline store and with its default file (dask) offline store; and the reference, a
   plain DuckDB query written here (ties settled, ASOF join, TTL on integers). plinth must
   equal the reference row by row; Feast's wrong and missing rows are counted.
b. Materialize 10,000 entities x 2 views (10 rows per entity) into the online store: Feast
   ``materialize`` into its SQLite online store vs plinth into SQLite and Redis.
c. Online reads of 1 and 100 entities (p50 of single calls): Feast ``get_online_features``
   (SQLite) vs plinth ``OnlineStore.read`` (SQLite, Redis) vs raw ``sqlite3`` and raw
   ``GET``/``MGET`` on the same stored rows.

The data are made with numpy (seeded, ``_features_data.py``) and written once as Parquet.
Every measurement is a fresh process (``_features_workers.py``) with its tool's python:
plinth's ``.venv``, Feast's ``benchmarks/.venv-feast`` (created here on first use from
``requirements-feast.txt``). Imports are not timed (measured apart); times are medians over
``--reps`` processes (default 3), tools interleaved. Redis: ``--redis`` (default database 0
at 127.0.0.1:6379), keys under a ``bench:features:`` prefix of this run, deleted at the end.
A complete run (full size, with Feast) rewrites its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import uuid
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
    machine_info,
    package_versions,
    plinth_python,
    print_tables,
    report_head,
    run_worker,
    time_command,
    write_json,
    write_section,
)
from _features_data import KINDS, ROW_ID, VIEW, compare, latest_per_key
from _features_report import PIT_TOOLS, render_section, tables

SECTION = "benchmarks/features.py"
WORKERS = BENCH_DIR / "_features_workers.py"
FEAST_VENV = BENCH_DIR / ".venv-feast"
FEAST_REQUIREMENTS = BENCH_DIR / "requirements-feast.txt"
SIZES: dict[str, dict[str, int]] = {
    "full": {
        "entities": 100_000,
        "features": 1_000_000,
        "mat_entities": 10_000,
        "rows_per_entity": 10,
        "calls_1": 2_000,
        "calls_100": 500,
    },
    "quick": {
        "entities": 2_000,
        "features": 20_000,
        "mat_entities": 500,
        "rows_per_entity": 4,
        "calls_1": 200,
        "calls_100": 50,
    },
}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.size = SIZES["quick" if args.quick else "full"]
        self.reps = args.reps or 3
        self.work = work
        self.env = clean_env(DO_NOT_TRACK="1", FEAST_USAGE="False")
        self.plinth = plinth_python()
        self.feast = None if args.no_peers else ensure_venv(FEAST_VENV, FEAST_REQUIREMENTS)
        self.redis = args.redis if args.redis and _redis_up(args.redis) else None
        self.prefix = f"bench:features:{uuid.uuid4().hex[:8]}:"
        self.raw: dict[str, Any] = {
            "size": self.size,
            "reps": self.reps,
            "runs": {},
            "redis": self.redis,
        }

    def run(
        self,
        key: str,
        worker: str,
        args: dict[str, Any],
        *,
        feast: bool = False,
        cwd: Path | None = None,
    ) -> dict[str, Any]:
        python = self.feast if feast else self.plinth
        assert python is not None
        res = run_worker(
            python, WORKERS, f"worker:{worker}", args, cwd=cwd or self.work, env=self.env
        )
        self.raw["runs"].setdefault(key, []).append(res)
        return res

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # -- the workloads --

    def run_all(self) -> None:
        from _features_data import make_materialize, make_pit

        s, w = self.size, self.work
        self.say(f"making the data ({s['entities']:,} x {s['features']:,} rows) ...")
        self.pit = {k: str(v) for k, v in make_pit(w, s["entities"], s["features"]).items()}
        self.mat = make_materialize(w, s["mat_entities"], s["rows_per_entity"])
        if self.feast:
            self.say("registering Feast's views (feast apply, not timed) ...")
            pit_view = {VIEW: {"path": self.pit["features"], "floats": _floats(), "ints": _ints()}}
            for offline in ("duckdb", "file"):
                self.run(
                    "apply",
                    "feast-apply",
                    {"repo": str(w / f"feast-{offline}"), "offline": offline, "views": pit_view},
                    feast=True,
                )
            self.run(
                "apply",
                "feast-apply",
                {"repo": str(w / "feast-mat"), "offline": "file", "views": self.mat["views"]},
                feast=True,
            )
        self.point_in_time()
        self.materialize()
        self.reads()
        self.imports()

    def point_in_time(self) -> None:
        tools = [t for t in PIT_TOOLS if self.feast or not t.startswith("feast")]
        for rep in range(self.reps):
            for tool in tools:
                self.say(f"point-in-time join, round {rep + 1}/{self.reps}: {tool} ...")
                args = {
                    "entities": self.pit["entities"],
                    "features": self.pit["features"],
                    "out": str(self.work / f"pit-{tool}.out.parquet"),
                }
                if tool.startswith("feast"):
                    self.run(
                        f"pit/{tool}",
                        "pit-feast",
                        {**args, "repo": str(self.work / tool)},
                        feast=True,
                    )
                else:
                    self.run(f"pit/{tool}", f"pit-{tool}", args)
        self.raw["pit_checks"] = self.check_pit(tools)

    def check_pit(self, tools: list[str]) -> dict[str, Any]:
        import pyarrow.parquet as pq

        ref = pq.read_table(self.work / "pit-reference.out.parquet")
        kinds = pq.read_table(self.pit["kinds"])
        entities = pq.read_table(self.pit["entities"])
        checks: dict[str, Any] = {"kinds": _count(kinds["kind"].to_pylist())}
        for tool in tools[1:]:
            out = pq.read_table(self.work / f"pit-{tool}.out.parquet")
            checks[tool] = compare(ref, out, kinds)
        plinth = pq.read_table(self.work / "pit-plinth.out.parquet")
        # Row by row: plinth keeps the entity rows' order (the reference is sorted by row id,
        # which is the entity rows' order), duplicates included, and every value.
        checks["plinth"]["same_order"] = plinth[ROW_ID].equals(entities[ROW_ID])
        checks["plinth"]["identical"] = plinth.equals(ref)
        return checks

    def materialize(self) -> None:
        views = self.mat["views"]
        sqlite = self.work / "plinth-online.db"
        for rep in range(self.reps):
            self.say(f"materialize, round {rep + 1}/{self.reps} ...")
            sqlite.unlink(missing_ok=True)
            self.run(
                "mat/plinth-sqlite", "mat-plinth", {"uri": f"sqlite:///{sqlite}", "views": views}
            )
            if self.redis:
                self.run(
                    "mat/plinth-redis",
                    "mat-plinth",
                    {"uri": self.redis, "prefix": self.prefix, "views": views},
                )
            if self.feast:
                repo = self.work / f"feast-mat-{rep}"
                shutil.copytree(self.work / "feast-mat", repo)  # a fresh online store
                self.feast_repo = repo
                self.run("mat/feast", "mat-feast", {"repo": str(repo), "views": views}, feast=True)

    def reads(self) -> None:
        s, views = self.size, self.mat["views"]
        common = {
            "views": views,
            "view": VIEW,
            "entities": self.mat["entities"],
            "calls_1": s["calls_1"],
            "calls_100": s["calls_100"],
        }
        sqlite = self.work / "plinth-online.db"
        for rep in range(self.reps):
            self.say(f"online reads, round {rep + 1}/{self.reps} ...")
            self.run(
                "read/plinth-sqlite",
                "read-plinth",
                {
                    **common,
                    "uri": f"sqlite:///{sqlite}",
                    "out": str(self.work / "read-plinth-sqlite.json"),
                },
            )
            self.run("read/sqlite-raw", "read-sqlite-raw", {**common, "path": str(sqlite)})
            if self.redis:
                self.run(
                    "read/plinth-redis",
                    "read-plinth",
                    {
                        **common,
                        "uri": self.redis,
                        "prefix": self.prefix,
                        "out": str(self.work / "read-plinth-redis.json"),
                    },
                )
                self.run(
                    "read/redis-raw",
                    "read-redis-raw",
                    {**common, "uri": self.redis, "prefix": self.prefix},
                )
            if self.feast:
                self.run(
                    "read/feast",
                    "read-feast",
                    {
                        **common,
                        "repo": str(self.feast_repo),
                        "out": str(self.work / "read-feast.json"),
                    },
                    feast=True,
                )
        self.raw["online_checks"] = self.check_online()

    def check_online(self) -> dict[str, Any]:
        """Per store: how many of the view's keys read back other than their latest row."""
        view = self.mat["views"][VIEW]
        names = [*view["floats"], *view["ints"]]
        expected = latest_per_key(view["path"], view["floats"], view["ints"])
        out: dict[str, Any] = {}
        for store in ("plinth-sqlite", "plinth-redis", "feast"):
            path = self.work / f"read-{store}.json"
            if path.exists():
                got = json.loads(path.read_text())
                rows = [[got[n][k] for n in names] for k in range(self.mat["entities"])]
                wrong = sum(1 for k, row in enumerate(rows) if row != expected.get(k))
                out[store] = {"keys": len(rows), "wrong": wrong}
        return out

    def imports(self) -> None:
        self.say("import times ...")
        repeat = 1 if self.size is SIZES["quick"] else 5
        cases = [("plinth", self.plinth, "import plinth.features, plinth.storage.online")]
        if self.feast:
            cases.append(("feast", self.feast, "import feast"))
        out: dict[str, Any] = {}
        for name, python, code in cases:
            out[name] = {
                "code": code,
                "import_s": time_command(
                    [str(python), "-c", code], cwd=self.work, env=self.env, repeat=repeat
                ),
                "pass_s": time_command(
                    [str(python), "-c", "pass"], cwd=self.work, env=self.env, repeat=repeat
                ),
            }
        self.raw["imports"] = out

    def cleanup(self) -> None:
        if self.redis:
            import redis

            client = redis.Redis.from_url(self.redis)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.unlink(*keys)

    # -- the summary --

    def median(self, key: str, field: str) -> float | None:
        values = [r[field] for r in self.raw["runs"].get(key, []) if r.get(field) is not None]
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.raw["runs"]:
            if key == "apply":
                continue
            out[key] = {
                f: self.median(key, f)
                for f in ("total_s", "read_s", "join_s", "materialize_s", "peak_rss_mb", "written")
            }
            for size in (1, 100):
                for q in ("p50_ms", "p99_ms"):
                    values = [
                        r[f"read_{size}"][q] for r in self.raw["runs"][key] if f"read_{size}" in r
                    ]
                    if values:
                        out[key][f"read_{size}_{q}"] = statistics.median(values)
            out[key]["processes"] = len(self.raw["runs"][key])
        return out


def _redis_up(uri: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(uri, socket_connect_timeout=2).ping())
    except Exception:  # any failure means: no Redis rows
        print(f"Redis at {uri} is not reachable: its rows are left out", file=sys.stderr)
        return False


def _floats() -> list[str]:
    from _features_data import FLOATS

    return FLOATS


def _ints() -> list[str]:
    from _features_data import INTS

    return INTS


def _count(values: list[str]) -> dict[str, int]:
    return {k: values.count(k) for k in KINDS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="plinth and the floors only")
    parser.add_argument("--reps", type=int, help="processes per tool and workload (default 3)")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="Redis for the Redis rows ('' leaves them out)",
    )
    common_arguments(parser, complete="full size, with Feast", one_folder=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-features-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {
            "plinth": package_versions(bench.plinth, ["plinth", "pyarrow", "duckdb", "redis"])
        }
        if bench.feast:
            versions["feast"] = package_versions(
                bench.feast, ["feast", "pandas", "pyarrow", "duckdb", "dask", "ibis-framework"]
            )
        try:
            with Stopwatch() as clock:
                bench.run_all()
        finally:
            bench.cleanup()
    summary = bench.summary()
    all_tables, met = tables(bench.raw, summary, full=bench.size is SIZES["full"])
    print_tables(*all_tables)
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "size": bench.size,
        "reps": bench.reps,
        "elapsed_s": clock.elapsed_s,
        "summary": summary,
        "checks": {"pit": bench.raw["pit_checks"], "online": bench.raw["online_checks"]},
        "imports": bench.raw["imports"],
        "targets_met": met,
        "raw": bench.raw,
    }
    write_json(args.json, report)
    complete = not args.quick and bench.feast is not None and bench.redis is not None
    write_section(args, SECTION, lambda: render_section(report, all_tables), complete=complete)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
