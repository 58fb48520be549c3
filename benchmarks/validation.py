"""Validation: plinth against Great Expectations, Pandera and a hand-written polars pass.

    .venv/bin/python benchmarks/validation.py [--quick] [--no-peers] [--reps N] [--json out.json]

One table of 1,000,000 rows x 20 columns (``--quick``: 20,000), made with numpy (seeded) and
written once as Parquet, and the same 72 checks in every tool: 20 dtype, 20 null checks (19
"no nulls", one "at most 15% nulls"), 13 ranges, 6 allowed sets, 1 uniqueness, 12 mean
bounds. Two versions of the table: a clean one (no check may fail) and a faulty one with five
injected faults (nulls in a non-null column, out-of-range values, duplicate ids, an unseen
category, a mean shift): each tool must fail exactly those five checks.

Every measurement is a fresh process in the tool's own environment (plinth's ``.venv``;
``benchmarks/.venv-gx`` and ``benchmarks/.venv-pandera``, created here on first use from
``requirements-gx.txt`` / ``requirements-pandera.txt``). The worker imports the tool, reads
the Parquet file (plinth: a pyarrow table; GX and Pandera: a pandas DataFrame, as their users
hold data; polars: a polars DataFrame) and builds the suite, none of it timed; then it runs the
checks twice, timing each call. It reports both times, the failed checks, the process's own
peak RSS (``VmHWM``, imports and the table included; not ``ru_maxrss``, which Linux carries
across exec from the parent that made the tables) and the RSS growth during the checks (peak
RSS reset through ``/proc/self/clear_refs`` just before the call). The headline is the first
call, median over ``--reps`` processes. A complete run (full size, with peers) rewrites its
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    TIMES,
    Stopwatch,
    Targets,
    clean_env,
    command_line,
    common_arguments,
    dispatch_worker,
    ensure_venv,
    human_seconds,
    machine_info,
    markdown_table,
    package_versions,
    peak_rss_mb,
    plinth_python,
    print_result,
    print_tables,
    report_head,
    run_worker,
    section_head,
    status_mb,
    write_json,
    write_section,
)

SECTION = "benchmarks/validation.py"
GX_VENV = BENCH_DIR / ".venv-gx"
GX_REQUIREMENTS = BENCH_DIR / "requirements-gx.txt"
PANDERA_VENV = BENCH_DIR / ".venv-pandera"
PANDERA_REQUIREMENTS = BENCH_DIR / "requirements-pandera.txt"
SIZES = {"full": 1_000_000, "quick": 20_000}
SEED = 20_240_601

#: Issue targets for plinth's checks on the full table.
TARGET_S = 0.15
TARGET_VS_GX = 20.0
TARGET_VS_PANDERA = 2.5

# ---- the data and the checks --------------------------------------------------------------

COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CN", "CA", "AU",
             "ES", "IT", "NL", "SE", "PL", "MX", "KR", "ZA", "NG", "AR"]  # fmt: skip
CATEGORIES = ["books", "music", "games", "garden", "toys", "food", "tools", "sports",
              "beauty", "baby", "office", "pets"]  # fmt: skip
STATUSES = ["new", "paid", "shipped", "returned"]
CHANNELS = ["web", "ios", "android", "store", "phone"]
DEVICES = ["desktop", "mobile", "tablet"]
T0, T1 = "2024-01-01T00:00:00", "2025-01-01T00:00:00"

#: column -> logical type, range, allowed set, mean bounds, null fraction allowed.
COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"type": "int64", "range": None, "unique": True},  # range set from the size
    "user_id": {"type": "int64", "range": (1, 100_000), "mean": (49_000, 51_000)},
    "age": {"type": "int64", "range": (18, 90), "mean": (53, 55)},
    "quantity": {"type": "int64", "range": (1, 50), "mean": (25, 26)},
    "rating": {"type": "int64", "values": [1, 2, 3, 4, 5], "mean": (2.9, 3.1)},
    "amount": {"type": "float64", "range": (0, 10_000), "mean": (80, 100)},
    "price": {"type": "float64", "range": (0.5, 500), "mean": (245, 255)},
    "score": {"type": "float64", "range": (0, 1), "mean": (0.27, 0.30)},
    "discount": {"type": "float64", "range": (0, 0.5), "mean": (0.24, 0.26), "nulls": 0.15},
    "lat": {"type": "float64", "range": (-90, 90), "mean": (-2, 2)},
    "lon": {"type": "float64", "range": (-180, 180), "mean": (-4, 4)},
    "temperature": {"type": "float64", "range": (-30, 50), "mean": (14, 16)},
    "session_s": {"type": "float64", "range": (0, 7200), "mean": (290, 310)},
    "country": {"type": "string", "values": COUNTRIES},
    "category": {"type": "string", "values": CATEGORIES},
    "status": {"type": "string", "values": STATUSES},
    "channel": {"type": "string", "values": CHANNELS},
    "device": {"type": "string", "values": DEVICES},
    "is_active": {"type": "bool"},
    "created_at": {"type": "timestamp", "range": (T0, T1)},
}

#: The five checks the faulty table must fail, and nothing else.
FAULTS = {
    "max_null_fraction:channel": "100 nulls in a column that allows none",
    "between:price": "50 prices of -5",
    "unique:id": "10 duplicate ids",
    "allowed_values:country": "30 rows of an unseen country 'XX'",
    "mean_between:temperature": "temperature shifted by +3 (0.4 sd)",
}


def check_spec(rows: int) -> list[dict[str, Any]]:
    """The 72 checks, tool-neutral: kind, column, arguments. Names are ``kind:column``."""
    spec: list[dict[str, Any]] = []
    for name, col in COLUMNS.items():
        spec.append({"kind": "dtype", "column": name, "type": col["type"]})
    for name, col in COLUMNS.items():
        spec.append({"kind": "max_null_fraction", "column": name, "value": col.get("nulls", 0)})
    for name, col in COLUMNS.items():
        low_high = (1_000_000, 1_000_000 + rows - 1) if name == "id" else col.get("range")
        if low_high:
            spec.append({"kind": "between", "column": name, "min": low_high[0],
                         "max": low_high[1]})  # fmt: skip
    for name, col in COLUMNS.items():
        if "values" in col:
            spec.append({"kind": "allowed_values", "column": name, "values": col["values"]})
    for name, col in COLUMNS.items():
        if col.get("unique"):
            spec.append({"kind": "unique", "column": name})
    for name, col in COLUMNS.items():
        if "mean" in col:
            spec.append({"kind": "mean_between", "column": name, "min": col["mean"][0],
                         "max": col["mean"][1]})  # fmt: skip
    assert len(spec) == 72, len(spec)
    return spec


def make_tables(rows: int, folder: Path) -> dict[str, Path]:
    """The clean and the faulty table as Parquet files (numpy, seeded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)

    def pick(values: list[str]) -> pa.Array:
        weights = 1 / np.arange(1, len(values) + 1)
        codes = rng.choice(len(values), size=rows, p=weights / weights.sum())
        return pa.array(np.array(values, dtype=object)[codes], pa.string())

    start = np.datetime64(T0, "us").astype(np.int64)
    stop = np.datetime64(T1, "us").astype(np.int64)
    discount = rng.uniform(0, 0.5, rows)
    data: dict[str, Any] = {
        "id": rng.permutation(rows).astype(np.int64) + 1_000_000,
        "user_id": rng.integers(1, 100_001, rows),
        "age": rng.integers(18, 91, rows),
        "quantity": rng.integers(1, 51, rows),
        "rating": rng.integers(1, 6, rows),
        "amount": rng.lognormal(4, 1, rows).clip(0, 10_000),
        "price": rng.uniform(0.5, 500, rows),
        "score": rng.beta(2, 5, rows),
        "discount": pa.array(discount, mask=rng.random(rows) < 0.10),
        "lat": rng.uniform(-90, 90, rows),
        "lon": rng.uniform(-180, 180, rows),
        "temperature": rng.normal(15, 8, rows).clip(-30, 50),
        "session_s": rng.exponential(300, rows).clip(0, 7200),
        "country": pick(COUNTRIES),
        "category": pick(CATEGORIES),
        "status": pick(STATUSES),
        "channel": pick(CHANNELS),
        "device": pick(DEVICES),
        "is_active": rng.random(rows) < 0.7,
        "created_at": pa.array(rng.integers(start, stop, rows), pa.timestamp("us")),
    }
    clean = pa.table(data)
    bad = dict(data)

    def rows_at(count: int) -> Any:
        return rng.choice(rows, size=count, replace=False)

    channel = np.array(clean["channel"].to_pylist(), dtype=object)
    channel[rows_at(100)] = None
    bad["channel"] = pa.array(channel, pa.string())
    price = data["price"].copy()
    price[rows_at(50)] = -5.0
    bad["price"] = price
    ids = data["id"].copy()
    dup = rows_at(20)
    ids[dup[:10]] = ids[dup[10:]]
    bad["id"] = ids
    country = np.array(clean["country"].to_pylist(), dtype=object)
    country[rows_at(30)] = "XX"
    bad["country"] = pa.array(country, pa.string())
    bad["temperature"] = (data["temperature"] + 3).clip(-30, 50)
    paths = {"clean": folder / "clean.parquet", "faulty": folder / "faulty.parquet"}
    pq.write_table(clean, paths["clean"])
    pq.write_table(pa.table(bad), paths["faulty"])
    return paths


def suite_yaml(spec: list[dict[str, Any]]) -> str:
    """plinth's suite for the spec."""
    lines = ["suite: benchmark", "checks:"]
    for c in spec:
        args = {k: v for k, v in c.items() if k not in ("kind", "column")}
        if c["kind"] == "dtype":
            args["type"] = {"int64": "int64", "float64": "double", "string": "string",
                            "bool": "bool", "timestamp": "timestamp"}[c["type"]]  # fmt: skip
        fields = [f"check: {c['kind']}", f"column: {c['column']}"]
        fields += [f"{k}: {json.dumps(v)}" for k, v in args.items()]
        lines.append("  - {" + ", ".join(fields) + "}")
    return "\n".join(lines) + "\n"


# ---- the workers (run with each tool's own interpreter) -----------------------------------


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _measure(run: Callable[[], list[str]], calls: int, ready_s: float) -> dict[str, Any]:
    rss_ready = status_mb("VmRSS")
    peak = peak_rss_mb()  # so far: imports, the table, the suite
    out = []
    for _ in range(calls):
        gc.collect()
        before = status_mb("VmRSS")
        peak = max(peak, peak_rss_mb())  # the reset below forgets it
        reset = _reset_peak()
        start = time.perf_counter()
        failed = run()
        elapsed = time.perf_counter() - start
        high = peak_rss_mb()  # since the reset, when there was one
        peak = max(peak, high)
        out.append(
            {
                "s": elapsed,
                "failed": sorted(set(failed)),
                "delta_mb": high - before if reset and before is not None else None,
            }
        )
    return {
        "calls": out,
        "ready_s": ready_s,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak,
    }


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def worker_plinth(args: dict[str, Any]) -> Callable[[], list[str]]:
    import duckdb  # noqa: F401  (imports are not the checks' cost)
    import pyarrow.parquet as pq

    from plinth.validation import Suite, validate

    table = pq.read_table(args["parquet"])
    suite = Suite.load(args["suite"])
    if args.get("profile"):
        from plinth.profiles import profile_table

        def profile() -> list[str]:
            profile_table(table)
            return []

        return profile

    def run() -> list[str]:
        result = validate(table, suite)
        return [f"{r.check}:{r.column}" for r in result.results if not r.success]

    return run


def worker_polars(args: dict[str, Any]) -> Callable[[], list[str]]:
    """The floor: one fused polars query computing every check's aggregate."""
    import polars as pl

    df = pl.read_parquet(args["parquet"])
    types = {"int64": pl.Int64, "float64": pl.Float64, "string": pl.String,
             "bool": pl.Boolean, "timestamp": pl.Datetime("us")}  # fmt: skip

    def run() -> list[str]:
        exprs: list[Any] = [pl.len().alias("_n")]
        failed: list[str] = []
        for i, c in enumerate(args["spec"]):
            col, kind = pl.col(c["column"]), c["kind"]
            if kind == "dtype":
                if df.schema[c["column"]] != types[c["type"]]:
                    failed.append(f"dtype:{c['column']}")
                continue
            if kind == "max_null_fraction":
                e = col.null_count()
            elif kind == "between":
                low, high = c["min"], c["max"]
                if isinstance(low, str):
                    low, high = _ts(low), _ts(high)
                e = ((col < low) | (col > high)).sum()
            elif kind == "allowed_values":
                e = (~col.is_in(c["values"])).sum()
            elif kind == "unique":
                e = col.count() - col.drop_nulls().n_unique()
            else:
                e = col.mean()
            exprs.append(e.alias(f"c{i}"))
        row = df.select(exprs).row(0, named=True)
        rows = row["_n"]
        for i, c in enumerate(args["spec"]):
            kind, v = c["kind"], row.get(f"c{i}")
            if kind == "dtype":
                continue
            if kind == "max_null_fraction":
                ok = v / rows <= c["value"] if rows else True
            elif kind == "mean_between":
                ok = v is not None and c["min"] <= v <= c["max"]
            else:
                ok = not v
            if not ok:
                failed.append(f"{kind}:{c['column']}")
        return failed

    return run


def _pandas_type(logical: str) -> str:
    return {"int64": "int64", "float64": "float64", "string": "object", "bool": "bool",
            "timestamp": "datetime64[ns]"}[logical]  # fmt: skip


def _bounds(c: dict[str, Any]) -> tuple[Any, Any]:
    import pandas as pd

    low, high = c["min"], c["max"]
    if isinstance(low, str):
        return pd.Timestamp(low), pd.Timestamp(high)
    return low, high


def worker_pandera(args: dict[str, Any]) -> Callable[[], list[str]]:
    import pandas as pd
    import pandera.pandas as pa

    df = pd.read_parquet(args["parquet"])
    by_column: dict[str, dict[str, Any]] = {}
    for c in args["spec"]:
        col = by_column.setdefault(c["column"], {"checks": [], "nullable": True})
        kind = c["kind"]
        if kind == "dtype":
            col["dtype"] = _pandas_type(c["type"])
        elif kind == "max_null_fraction":
            if c["value"] == 0:
                col["nullable"] = False
            else:
                limit = c["value"]
                col["checks"].append(
                    pa.Check(
                        lambda s, limit=limit: s.isna().mean() <= limit,
                        ignore_na=False,
                        name="max_null_fraction",
                    )
                )
        elif kind == "between":
            low, high = _bounds(c)
            col["checks"].append(pa.Check.in_range(low, high))
        elif kind == "allowed_values":
            col["checks"].append(pa.Check.isin(c["values"]))
        elif kind == "unique":
            col["unique"] = True
        else:
            low, high = c["min"], c["max"]
            col["checks"].append(
                pa.Check(lambda s, low=low, high=high: low <= s.mean() <= high, name="mean_between")
            )
    schema = pa.DataFrameSchema({name: pa.Column(**kw) for name, kw in by_column.items()})
    names = {"dtype": "dtype", "not_nullable": "max_null_fraction", "in_range": "between",
             "isin": "allowed_values", "field_uniqueness": "unique"}  # fmt: skip

    def run() -> list[str]:
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as exc:
            cases = exc.failure_cases[["column", "check"]].drop_duplicates()
            failed = []
            for column, check in cases.itertuples(index=False):
                text = str(check).split("(", 1)[0]  # in_range(0.5, 500) -> in_range
                kind = names.get(text, text)
                failed.append(f"{kind}:{column}")
            return failed
        return []

    return run


def worker_gx(args: dict[str, Any]) -> Callable[[], list[str]]:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    df = pd.read_parquet(args["parquet"])
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("bench").add_dataframe_asset("table")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": df}
    )
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    kinds: dict[str, str] = {}
    for c in args["spec"]:
        column, kind = c["column"], c["kind"]
        if kind == "dtype":
            e: Any = gxe.ExpectColumnValuesToBeOfType(column=column, type_=_pandas_type(c["type"]))
        elif kind == "max_null_fraction":
            e = gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1 - c["value"])
        elif kind == "between":
            low, high = _bounds(c)
            e = gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
        elif kind == "allowed_values":
            e = gxe.ExpectColumnValuesToBeInSet(column=column, value_set=c["values"])
        elif kind == "unique":
            e = gxe.ExpectColumnValuesToBeUnique(column=column)
        else:
            e = gxe.ExpectColumnMeanToBeBetween(column=column, min_value=c["min"],
                                                max_value=c["max"])  # fmt: skip
        kinds[e.expectation_type] = kind
        suite.add_expectation(e)

    def run() -> list[str]:
        result = batch.validate(suite)
        return [
            f"{kinds[r.expectation_config.type]}:{r.expectation_config.kwargs['column']}"
            for r in result.results
            if not r.success
        ]

    return run


WORKERS: dict[str, Callable[[dict[str, Any]], Callable[[], list[str]]]] = {
    "plinth": worker_plinth,
    "polars": worker_polars,
    "pandera": worker_pandera,
    "gx": worker_gx,
}


def worker_main(tool: str, args: dict[str, Any]) -> int:
    import warnings

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    run = WORKERS[tool](args)
    ready = time.perf_counter() - started
    result = _measure(run, int(args.get("calls", 2)), ready)
    print_result(result)
    return 0


# ---- orchestration ------------------------------------------------------------------------

LABELS = {
    "plinth": "plinth",
    "gx": "Great Expectations",
    "pandera": "Pandera",
    "polars": "polars, hand-written (floor)",
}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.rows = SIZES["quick" if args.quick else "full"]
        self.reps = args.reps or (1 if args.quick else 3)
        self.work = work
        self.env = clean_env(GX_ANALYTICS_ENABLED="false", POLARS_SKIP_CPU_CHECK="1")
        self.pythons: dict[str, Path] = {"plinth": plinth_python()}
        if not args.no_peers:
            gx_python = ensure_venv(GX_VENV, GX_REQUIREMENTS)
            pandera_python = ensure_venv(PANDERA_VENV, PANDERA_REQUIREMENTS)
            self.pythons.update({"gx": gx_python, "pandera": pandera_python,
                                 "polars": pandera_python})  # fmt: skip
        self.raw: dict[str, Any] = {"rows": self.rows, "reps": self.reps, "runs": {}}

    def run_all(self) -> None:
        print(f"making the tables ({self.rows:,} rows) ...", file=sys.stderr, flush=True)
        paths = make_tables(self.rows, self.work)
        spec = check_spec(self.rows)
        suite = self.work / "suite.yaml"
        suite.write_text(suite_yaml(spec), encoding="utf-8")
        me = Path(__file__).resolve()
        for rep in range(self.reps):
            # Interleaved: every tool once per round, so a noisy moment hits all of them.
            for tool, python in self.pythons.items():
                for table, path in paths.items():
                    print(f"round {rep + 1}/{self.reps}: {tool} on {table} ...",
                          file=sys.stderr, flush=True)  # fmt: skip
                    args = {"parquet": str(path), "suite": str(suite), "spec": spec}
                    res = run_worker(python, me, f"worker:{tool}", args, cwd=self.work,
                                     env=self.env)  # fmt: skip
                    self.raw["runs"].setdefault(f"{tool}/{table}", []).append(res)
            args = {"parquet": str(paths["clean"]), "suite": str(suite), "profile": True}
            res = run_worker(self.pythons["plinth"], me, "worker:plinth", args, cwd=self.work,
                             env=self.env)  # fmt: skip
            self.raw["runs"].setdefault("plinth-profile/clean", []).append(res)

    # -- summary --

    def stat(self, key: str, what: Callable[[dict[str, Any]], float | None]) -> float | None:
        values = [v for r in self.raw["runs"].get(key, []) if (v := what(r)) is not None]
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for tool in self.pythons:
            s: dict[str, Any] = {}
            for table in ("clean", "faulty"):
                key = f"{tool}/{table}"
                s[f"{table}_s"] = self.stat(key, lambda r: r["calls"][0]["s"])
                s[f"{table}_again_s"] = self.stat(key, lambda r: r["calls"][-1]["s"])
                s[f"{table}_peak_mb"] = self.stat(key, lambda r: r["peak_rss_mb"])
                s[f"{table}_ready_mb"] = self.stat(key, lambda r: r["rss_ready_mb"])
                s[f"{table}_delta_mb"] = self.stat(key, lambda r: r["calls"][0]["delta_mb"])
                s[f"{table}_failed"] = sorted(
                    {f for r in self.raw["runs"][key] for c in r["calls"] for f in c["failed"]}
                )
            missed = sorted(set(FAULTS) - set(s["faulty_failed"]))
            false = sorted(set(s["clean_failed"]) | (set(s["faulty_failed"]) - set(FAULTS)))
            s["missed"], s["false_alarms"] = missed, false
            out[tool] = s
        profile = self.stat("plinth-profile/clean", lambda r: r["calls"][0]["s"])
        out["plinth"]["profile_s"] = profile
        out["plinth"]["profile_again_s"] = self.stat(
            "plinth-profile/clean", lambda r: r["calls"][-1]["s"]
        )
        return out

    def tables(self, summary: dict[str, dict[str, Any]]) -> tuple[str, str, bool]:
        p = summary["plinth"]
        rows = []
        for tool, s in summary.items():
            ratio = "—" if tool == "plinth" else f"{s['clean_s'] / p['clean_s']:.1f}{TIMES}"
            faults = f"{len(FAULTS) - len(s['missed'])}/{len(FAULTS)}"
            if s["missed"]:
                faults += " (missed " + ", ".join(s["missed"]) + ")"
            false = ", ".join(s["false_alarms"]) or "none"
            rows.append(
                [
                    LABELS[tool],
                    human_seconds(s["clean_s"]),
                    human_seconds(s["clean_again_s"]),
                    human_seconds(s["faulty_s"]),
                    ratio,
                    f"{s['clean_peak_mb']:.0f} MB",
                    "—" if s["clean_ready_mb"] is None else f"{s['clean_ready_mb']:.0f} MB",
                    "—" if s["clean_delta_mb"] is None else f"{s['clean_delta_mb']:.0f} MB",
                    faults,
                    false,
                ]
            )
        headers = [
            "Tool",
            "72 checks, clean table",
            "again, same process",
            "faulty table",
            "time vs plinth",
            "peak RSS",
            "RSS after read",
            "RSS growth in checks",
            "faults caught",
            "false alarms",
        ]
        tools_table = markdown_table(headers, rows)
        targets = Targets()
        target = targets.add
        target("plinth checks, clean table", human_seconds(p["clean_s"]), f"≤ {TARGET_S} s",
               p["clean_s"] <= TARGET_S)  # fmt: skip
        if "gx" in summary:
            r = summary["gx"]["clean_s"] / p["clean_s"]
            target("speed-up vs Great Expectations", f"{r:.1f}{TIMES}",
                   f"≥ {TARGET_VS_GX:g}{TIMES}", r >= TARGET_VS_GX)  # fmt: skip
        if "pandera" in summary:
            r = summary["pandera"]["clean_s"] / p["clean_s"]
            target("speed-up vs Pandera", f"{r:.1f}{TIMES}", f"≥ {TARGET_VS_PANDERA:g}{TIMES}",
                   r >= TARGET_VS_PANDERA)  # fmt: skip
            pm, qm = p["clean_peak_mb"], summary["pandera"]["clean_peak_mb"]
            target("plinth peak RSS vs Pandera's", f"{pm:.0f} MB vs {qm:.0f} MB",
                   "no higher", pm <= qm)  # fmt: skip
        target("faults caught, false alarms",
               f"{len(FAULTS) - len(p['missed'])}/{len(FAULTS)}, "
               f"{len(p['false_alarms'])} false", f"{len(FAULTS)}/{len(FAULTS)}, 0 false",
               not p["missed"] and not p["false_alarms"])  # fmt: skip
        target("plinth profile_table, clean table (information)",
               human_seconds(p["profile_s"]), "—", None)  # fmt: skip
        return tools_table, targets.table(), targets.met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, for a smoke test")
    parser.add_argument("--no-peers", action="store_true", help="measure plinth only")
    parser.add_argument("--reps", type=int, help="processes per tool and table (default 3)")
    common_arguments(parser, complete="full size, with peers", one_folder=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (code := dispatch_worker(argv, worker_main)) is not None:
        return code
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-validation-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {
            "plinth": package_versions(
                bench.pythons["plinth"], ["plinth", "duckdb", "pyarrow", "numpy"]
            )
        }
        if "gx" in bench.pythons:
            versions["gx"] = package_versions(
                bench.pythons["gx"], ["great_expectations", "pandas", "pyarrow"]
            )
            versions["pandera"] = package_versions(
                bench.pythons["pandera"], ["pandera", "pandas", "polars"]
            )
        with Stopwatch() as clock:
            bench.run_all()
    summary = bench.summary()
    *tables, met = bench.tables(summary)
    print_tables(*tables)
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "rows": bench.rows,
        "reps": bench.reps,
        "elapsed_s": clock.elapsed_s,
        "summary": summary,
        "targets_met": met,
        "raw": bench.raw,
    }
    write_json(args.json, report)
    complete = not args.quick and not args.no_peers
    write_section(args, SECTION, lambda: render_section(report, *tables), complete=complete)
    return 0


def render_section(report: dict[str, Any], tools_table: str, targets_table: str) -> str:
    v = report["versions"]
    p = v["plinth"]
    tools = [f"plinth {p['plinth']} (DuckDB {p['duckdb']}, pyarrow {p['pyarrow']})"]
    if "gx" in v:
        tools.append(
            f"Great Expectations {v['gx']['great_expectations']} (pandas {v['gx']['pandas']})"
        )
        tools.append(
            f"Pandera {v['pandera']['pandera']} (pandas {v['pandera']['pandas']}); "
            f"polars {v['pandera']['polars']}"
        )
    faults = "; ".join(f"`{k}` ({d})" for k, d in FAULTS.items())
    title = "Validation: plinth vs Great Expectations, Pandera and a polars floor"
    return "\n".join(
        [
            *section_head(title, report, tools, folders="work folder"),
            f"- Data: {report['rows']:,} rows {TIMES} 20 columns (5 int64, 8 float64, 5 string, "
            "1 bool, 1 timestamp; numpy, seeded), Parquet. The same 72 checks in every tool: "
            "20 dtype, 20 null checks, 13 ranges, 6 allowed sets, 1 uniqueness, 12 mean bounds. "
            f"The faulty table must fail exactly: {faults}.",
            "- Each number: the checks alone (reading the Parquet file, imports and building "
            "the suite are outside), first call in a fresh process, median of "
            f"{report['reps']} processes per tool and table, run interleaved. plinth: "
            "`plinth.validation.validate(table, suite)` on a pyarrow table; GX: "
            "`batch.validate(suite)` on a pandas DataFrame (ephemeral context, default result "
            "format); Pandera: `schema.validate(df, lazy=True)` (pandas back-end); polars: one "
            "fused `df.select(...)` of every check's aggregate.",
            "- Peak RSS: `VmHWM` of the worker process (imports and the table included; the "
            "highest of its values around the calls, as the growth measure resets it). Not "
            "`ru_maxrss`: Linux carries it across exec, so a worker would report at least its "
            "parent's peak. RSS growth: peak RSS during the first call minus RSS before it.",
            "",
            tools_table,
            "",
            targets_table,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
