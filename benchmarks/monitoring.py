"""Drift: plinth against Evidently and an exact numpy/scipy pass (the floor).

    .venv/bin/python benchmarks/monitoring.py [--quick] [--no-peers] [--reps N] [--json out.json]

A reference and a current table of 18 feature columns (10 float64 with NaNs in one, 5
categorical strings of 5-30 skewed categories, 3 int64 with more than 10 distinct values),
100,000 vs 100,000 and 1,000,000 vs 1,000,000 rows (``--quick``: 100,000 only; ``--sizes``
picks others), made with numpy (seeded) and written once as Parquet so that every tool reads
the same bytes. The current table comes from the same generator with another seed and four
columns drifted (``DRIFTS``): a mean shift of 0.25 sd, a standard deviation times 1.5, one
category's share from 10% to 30%, and 8% of rows taking unseen categories. Each drift is
well above Evidently's effect-size thresholds (0.1); the other 14 columns are not drifted.

Every measurement is a fresh process in the tool's own environment (plinth's ``.venv``;
``benchmarks/.venv-evidently``, created here on first use from ``requirements-evidently.txt``;
the floor runs with plinth's interpreter). After its imports the worker times reading both
Parquet files plus the drift computation (the headline), then the HTML report apart, and
reports the detected columns and the process's peak RSS (``VmHWM``, imports included).
Each tool on its defaults: plinth ``drift(reference, current)`` on pyarrow tables; Evidently
``Report([DataDriftPreset()]).run(current, reference)`` on pandas DataFrames and
``save_html``; the floor: a two-sample Kolmogorov-Smirnov test per numeric column (one sort
of both samples together, asymptotic p-value as ``scipy.stats.ks_2samp``) and a chi-square
test of homogeneity per string column, drift when p < 0.05.

plinth's stored-profile case: the reference is profiled once (``profile_table``, timed apart)
and saved with ``TableProfile.to_bytes``; a fresh worker then reads a new 100,000-row batch
(drawn with a third seed, the same four drifts) from Parquet, loads the profile
(``TableProfile.from_bytes``) and runs ``drift(profile, batch)``: that total is timed.

Headlines are medians over ``--reps`` processes per tool, run interleaved (default 3;
Evidently at 1,000,000 rows runs once unless ``--reps`` is given). A complete run (default
sizes, with Evidently) rewrites its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
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

SECTION = "benchmarks/monitoring.py"
EVIDENTLY_VENV = BENCH_DIR / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = BENCH_DIR / "requirements-evidently.txt"
SIZES = {"full": [100_000, 1_000_000], "quick": [100_000]}
BATCH_ROWS = 100_000
SEED = 20_240_606
#: Evidently takes minutes at this size: one process unless --reps says otherwise.
PEER_ONCE_FROM = 1_000_000

#: Issue 6's targets.
TARGET_S = {100_000: 0.35, 1_000_000: 4.5}
TARGET_VS_EVIDENTLY = 20.0
#: The issue states the memory target with the 1M vs 1M figures; elsewhere it is information.
TARGET_MEMORY_SHARE = 1 / 3
TARGET_MEMORY_AT = 1_000_000
TARGET_STORED_S = 0.3
TARGET_HTML_BYTES = 1_000_000

# ---- the data -----------------------------------------------------------------------------

FLOATS = ["price", "amount", "score", "temperature", "pressure", "latitude", "discount",
          "weight_kg", "session_s", "balance"]  # fmt: skip
INTS = ["items", "age", "visits"]
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CN", "CA", "AU", "ES", "IT", "NL",
             "SE", "PL", "MX", "KR", "ZA", "NG", "AR", "TR", "EG", "ID", "VN", "TH", "PH",
             "CO", "CL", "PT", "IE"]  # fmt: skip
DEVICES = ["mobile", "desktop", "tablet", "tv", "console"]
CHANNELS = ["web", "ios", "android", "email", "store", "phone", "partner", "social"]
CHANNEL_SHARES = [0.30, 0.22, 0.18, 0.10, 0.08, 0.06, 0.04, 0.02]
CATEGORIES = ["books", "music", "games", "garden", "toys", "food", "tools", "sports",
              "beauty", "baby", "office", "pets", "shoes", "jewelry", "auto", "health",
              "travel", "movies", "crafts", "outdoor"]  # fmt: skip
UNSEEN = ["drones", "vr", "pharmacy", "tickets"]
PLANS = ["free", "basic", "plus", "pro", "team", "business", "enterprise", "student",
         "family", "trial", "legacy", "partner"]  # fmt: skip
CATEGORICALS = {"country": COUNTRIES, "device": DEVICES, "channel": CHANNELS,
                "category": CATEGORIES, "plan": PLANS}  # fmt: skip
COLUMNS = FLOATS + list(CATEGORICALS) + INTS

#: The four drifted columns of the current tables: a tool should flag exactly these.
DRIFTS = {
    "temperature": "mean +0.25 sd: normal, sd 8, mean 15 to 17",
    "pressure": "sd times 1.5: normal, mean 1013, sd 10 to 15",
    "channel": "share of 'email' 10% to 30%, the other seven scaled down alike",
    "category": "8% of rows take one of 4 categories absent from the reference",
}


def _zipf(k: int, s: float) -> Any:
    import numpy as np

    w = 1 / np.arange(1, k + 1) ** s
    return w / w.sum()


def make_table(rows: int, seed: int, *, drifted: bool) -> Any:
    """One table of the workload (a pyarrow table); ``drifted`` applies ``DRIFTS``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)

    def pick(values: list[str], p: Any, extra: list[str] | None = None) -> pa.Array:
        codes = rng.choice(len(values), size=rows, p=p)
        if extra:
            new = rng.random(rows) < 0.08
            codes[new] = len(values) + rng.integers(0, len(extra), int(new.sum()))
            values = values + extra
        return pc.take(pa.array(values, pa.string()), pa.array(codes))

    channel = np.array(CHANNEL_SHARES)
    if drifted:
        email = CHANNELS.index("email")
        channel = channel * (0.70 / (1 - channel[email]))
        channel[email] = 0.30
    discount = rng.uniform(0, 0.5, rows)
    discount[rng.random(rows) < 0.02] = np.nan
    data: dict[str, Any] = {
        "price": rng.lognormal(3, 0.8, rows),
        "amount": rng.lognormal(5, 1.2, rows),
        "score": rng.beta(2, 5, rows),
        "temperature": rng.normal(17 if drifted else 15, 8, rows),
        "pressure": rng.normal(1013, 15 if drifted else 10, rows),
        "latitude": rng.uniform(-60, 70, rows),
        "discount": discount,
        "weight_kg": rng.normal(72, 13, rows),
        "session_s": rng.exponential(300, rows),
        "balance": rng.gamma(2, 500, rows),
        "country": pick(COUNTRIES, _zipf(len(COUNTRIES), 1.1)),
        "device": pick(DEVICES, _zipf(len(DEVICES), 1.3)),
        "channel": pick(CHANNELS, channel),
        "category": pick(CATEGORIES, _zipf(len(CATEGORIES), 0.9), UNSEEN if drifted else None),
        "plan": pick(PLANS, _zipf(len(PLANS), 1.0)),
        "items": rng.poisson(4, rows).astype(np.int64),
        "age": rng.integers(18, 81, rows),
        "visits": rng.negative_binomial(2, 0.15, rows).astype(np.int64),
    }
    return pa.table({name: data[name] for name in COLUMNS})


def make_files(sizes: list[int], folder: Path) -> dict[str, Path]:
    """Reference and current Parquet files per size, and the new batch; name -> path."""
    import pyarrow.parquet as pq

    paths: dict[str, Path] = {}
    for rows in sizes:
        for name, seed, drifted in (("reference", SEED, False), ("current", SEED + 1, True)):
            path = folder / f"{name}-{rows}.parquet"
            pq.write_table(make_table(rows, seed, drifted=drifted), path)
            paths[f"{name}-{rows}"] = path
    batch = min(BATCH_ROWS, max(sizes))
    paths["batch"] = folder / f"batch-{batch}.parquet"
    pq.write_table(make_table(batch, SEED + 2, drifted=True), paths["batch"])
    return paths


# ---- the workers (run with each tool's own interpreter) -----------------------------------


#: Libraries plinth loads on its first comparison (as Evidently does on import): loaded
#: before the clock starts, as every tool's imports are.
PLINTH_LIBRARIES = ("numpy", "pyarrow.compute", "scipy.special", "datasketches")


def _preload(args: dict[str, Any], *modules: str) -> float:
    """Import ``modules`` and what reading Parquet imports on first use (0.2-0.4 s here).

    Returns the seconds since the worker started: all its imports.
    """
    import importlib

    for name in ("pyarrow.dataset", "pyarrow.parquet", *modules):
        importlib.import_module(name)
    return time.perf_counter() - args["started"]


def worker_plinth(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from plinth.monitoring import drift

    imports_s = _preload(args, *PLINTH_LIBRARIES)
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    reference = pq.read_table(args["reference"])
    current = pq.read_table(args["current"])
    read = time.perf_counter()
    report = drift(reference, current)
    done = time.perf_counter()
    peak = peak_rss_mb()
    html = report.to_html()
    html_s = time.perf_counter() - done
    return {
        "drift_s": done - start,
        "read_s": read - start,
        "html_s": html_s,
        "html_bytes": len(html.encode("utf-8")),
        "imports_s": imports_s,
        "rss_ready_mb": ready,
        "drift_peak_mb": peak,
        "columns": [_plinth_column(c) for c in report.columns],
        "skipped": dict(getattr(report, "skipped", {})),
        "detected": sorted(c.column for c in report.columns if c.drifted),
    }


def _plinth_column(c: Any) -> dict[str, Any]:
    return {
        "column": c.column,
        "kind": c.kind,
        "method": c.method,
        "statistic": c.statistic,
        "threshold": c.threshold,
        "p_value": c.p_value,
        "drifted": c.drifted,
    }


def worker_plinth_profile(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from plinth.profiles import profile_table

    imports_s = _preload(args, *PLINTH_LIBRARIES)
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    reference = pq.read_table(args["reference"])
    read = time.perf_counter()
    profile = profile_table(reference)
    done = time.perf_counter()
    data = profile.to_bytes()
    Path(args["profile"]).write_bytes(data)
    return {
        "profile_s": done - read,
        "read_s": read - start,
        "to_bytes_s": time.perf_counter() - done,
        "profile_bytes": len(data),
        "imports_s": imports_s,
        "rss_ready_mb": ready,
    }


def worker_plinth_stored(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from plinth.monitoring import drift
    from plinth.profiles import TableProfile

    imports_s = _preload(args, *PLINTH_LIBRARIES)
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    batch = pq.read_table(args["current"])
    profile = TableProfile.from_bytes(Path(args["profile"]).read_bytes())
    read = time.perf_counter()
    report = drift(profile, batch)
    done = time.perf_counter()
    peak = peak_rss_mb()
    html = report.to_html()
    return {
        "drift_s": done - start,
        "read_s": read - start,
        "html_s": time.perf_counter() - done,
        "html_bytes": len(html.encode("utf-8")),
        "imports_s": imports_s,
        "rss_ready_mb": ready,
        "drift_peak_mb": peak,
        "columns": [_plinth_column(c) for c in report.columns],
        "skipped": dict(getattr(report, "skipped", {})),
        "detected": sorted(c.column for c in report.columns if c.drifted),
    }


def worker_evidently(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    imports_s = _preload(args)
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    reference = pd.read_parquet(args["reference"])
    current = pd.read_parquet(args["current"])
    read = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    done = time.perf_counter()
    peak = peak_rss_mb()
    html = Path(args["html"])
    snapshot.save_html(str(html))
    html_s = time.perf_counter() - done
    columns, count = [], None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            count = int(metric["value"]["count"])
        elif config["type"].endswith(":ValueDrift"):
            method, threshold, score = config["method"], config["threshold"], metric["value"]
            # Evidently's rule: a p-value test drifts below its threshold, a distance at or above.
            is_p = "p_value" in method
            drifted = score < threshold if is_p else score >= threshold
            columns.append({"column": config["column"], "method": method, "statistic": score,
                            "threshold": threshold, "drifted": drifted})  # fmt: skip
    detected = sorted(c["column"] for c in columns if c["drifted"])
    if count != len(detected):
        raise RuntimeError(f"DriftedColumnsCount says {count}, the columns say {detected}")
    return {
        "drift_s": done - start,
        "read_s": read - start,
        "html_s": html_s,
        "html_bytes": html.stat().st_size,
        "imports_s": imports_s,
        "rss_ready_mb": ready,
        "drift_peak_mb": peak,
        "columns": columns,
        "detected": detected,
    }


def worker_floor(args: dict[str, Any]) -> dict[str, Any]:
    """Exact tests with numpy and scipy: KS per numeric column, chi-square per string column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from scipy import stats

    imports_s = _preload(args)
    ready = status_mb("VmRSS")
    start = time.perf_counter()
    reference = pq.read_table(args["reference"])
    current = pq.read_table(args["current"])
    read = time.perf_counter()
    columns = []
    for name in reference.column_names:
        ref, cur = reference[name], current[name]
        if pa.types.is_string(ref.type):
            counts: dict[str, list[int]] = {}
            for i, side in enumerate((ref, cur)):
                for row in pc.value_counts(side.drop_null()).to_pylist():
                    counts.setdefault(row["values"], [0, 0])[i] = row["counts"]
            table = np.array(list(counts.values())).T
            statistic, p = stats.chi2_contingency(table)[:2]
            test = "chi-square"
        else:
            a = ref.to_numpy().astype(np.float64)
            b = cur.to_numpy().astype(np.float64)
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            values = np.concatenate([a, b])
            order = np.argsort(values)  # the one sort
            steps = np.where(order < len(a), 1 / len(a), -1 / len(b))
            gap = np.cumsum(steps)
            # The gap at the last of each run of ties, where it does not depend on their order.
            ends = np.append(values[order][1:] != values[order][:-1], True)
            statistic = float(np.abs(gap[ends]).max())
            en = len(a) * len(b) / (len(a) + len(b))
            p = float(stats.kstwo.sf(statistic, np.round(en)))
            test = "KS"
        columns.append({"column": name, "method": test, "statistic": float(statistic),
                        "p_value": float(p), "drifted": bool(p < 0.05)})  # fmt: skip
    done = time.perf_counter()
    return {
        "drift_s": done - start,
        "read_s": read - start,
        "html_s": None,
        "html_bytes": None,
        "imports_s": imports_s,
        "rss_ready_mb": ready,
        "drift_peak_mb": peak_rss_mb(),
        "columns": columns,
        "detected": sorted(c["column"] for c in columns if c["drifted"]),
    }


def _plain(value: Any) -> Any:
    """numpy scalars (a tool's statistics and flags) as JSON numbers and booleans."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "plinth": worker_plinth,
    "plinth-profile": worker_plinth_profile,
    "plinth-stored": worker_plinth_stored,
    "evidently": worker_evidently,
    "floor": worker_floor,
}


def worker_main(tool: str, args: dict[str, Any]) -> int:
    import warnings

    warnings.simplefilter("ignore")
    result = WORKERS[tool]({**args, "started": time.perf_counter()})
    result["peak_rss_mb"] = peak_rss_mb()
    print_result(result, default=_plain)
    return 0


# ---- orchestration ------------------------------------------------------------------------

LABELS = {
    "plinth": "plinth",
    "evidently": "Evidently",
    "floor": "numpy/scipy exact tests (floor)",
}


def score(detected: list[str]) -> dict[str, Any]:
    """Precision and recall of ``detected`` against ``DRIFTS``."""
    hits = set(detected) & set(DRIFTS)
    return {
        "precision": len(hits) / len(detected) if detected else None,
        "recall": len(hits) / len(DRIFTS),
        "missed": sorted(set(DRIFTS) - hits),
        "false_alarms": sorted(set(detected) - set(DRIFTS)),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        if args.sizes:
            self.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
        else:
            self.sizes = SIZES["quick" if args.quick else "full"]
        self.reps = args.reps or 3
        self.peer_reps_given = bool(args.reps)
        self.work = work
        self.env = clean_env(DO_NOT_TRACK="1")
        self.pythons: dict[str, Path] = {"plinth": plinth_python()}
        if not args.no_peers:
            self.pythons["evidently"] = ensure_venv(EVIDENTLY_VENV, EVIDENTLY_REQUIREMENTS)
        self.pythons["floor"] = plinth_python()
        self.raw: dict[str, Any] = {"sizes": self.sizes, "reps": self.reps, "runs": {}}

    def run(self, tool: str, key: str, args: dict[str, Any]) -> dict[str, Any]:
        python = self.pythons["evidently" if tool == "evidently" else "plinth"]
        res = run_worker(python, Path(__file__).resolve(), f"worker:{tool}", args,
                         cwd=self.work, env=self.env)  # fmt: skip
        self.raw["runs"].setdefault(key, []).append(res)
        return res

    def run_all(self) -> None:
        print(f"making the tables ({', '.join(f'{n:,}' for n in self.sizes)} rows) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        paths = make_files(self.sizes, self.work)
        self.raw["batch_rows"] = min(BATCH_ROWS, max(self.sizes))
        for rows in self.sizes:
            files = {"reference": str(paths[f"reference-{rows}"]),
                     "current": str(paths[f"current-{rows}"])}  # fmt: skip
            peer_reps = self.reps
            if rows >= PEER_ONCE_FROM and not self.peer_reps_given:
                peer_reps = 1
            for rep in range(self.reps):
                # Interleaved: every tool once per round, so a noisy moment hits all of them.
                for tool in self.pythons:
                    if tool == "evidently" and rep >= peer_reps:
                        continue
                    print(f"{rows:,} rows, round {rep + 1}/{self.reps}: {tool} ...",
                          file=sys.stderr, flush=True)  # fmt: skip
                    html = str(self.work / f"{tool}-{rows}.html")
                    self.run(tool, f"{tool}/{rows}", {**files, "html": html})
                profile = str(self.work / f"reference-{rows}.profile")
                print(f"{rows:,} rows, round {rep + 1}/{self.reps}: plinth stored profile ...",
                      file=sys.stderr, flush=True)  # fmt: skip
                self.run("plinth-profile", f"plinth-profile/{rows}",
                         {"reference": files["reference"], "profile": profile})  # fmt: skip
                self.run("plinth-stored", f"plinth-stored/{rows}",
                         {"current": str(paths["batch"]), "profile": profile})  # fmt: skip

    # -- summary --

    def stat(self, key: str, field: str) -> float | None:
        values = [r[field] for r in self.raw["runs"].get(key, []) if r.get(field) is not None]
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rows in self.sizes:
            for tool in [*self.pythons, "plinth-stored"]:
                key = f"{tool}/{rows}"
                runs = self.raw["runs"].get(key)
                if not runs:
                    continue
                s = {f: self.stat(key, f) for f in ("drift_s", "read_s", "html_s", "html_bytes",
                                                    "peak_rss_mb", "rss_ready_mb", "imports_s",
                                                    "wall_s")}  # fmt: skip
                s["processes"] = len(runs)
                s["detected"] = runs[0]["detected"]
                s["detected_varies"] = any(r["detected"] != runs[0]["detected"] for r in runs)
                s.update(score(s["detected"]))
                if tool == "plinth-stored":
                    prof = f"plinth-profile/{rows}"
                    s["profile_s"] = self.stat(prof, "profile_s")
                    s["profile_read_s"] = self.stat(prof, "read_s")
                    s["profile_bytes"] = self.stat(prof, "profile_bytes")
                out[key] = s
        return out

    def tables(self, summary: dict[str, dict[str, Any]]) -> tuple[str, str, str, bool]:
        rows = []
        for size in self.sizes:
            p = summary[f"plinth/{size}"]
            for tool in self.pythons:
                s = summary.get(f"{tool}/{size}")
                if s is None:
                    continue
                mine = tool == "plinth"
                rows.append(
                    [
                        f"{size:,} vs {size:,}",
                        LABELS[tool],
                        human_seconds(s["drift_s"]),
                        human_seconds(s["read_s"]),
                        human_seconds(s["imports_s"]),
                        "—" if mine else f"{s['drift_s'] / p['drift_s']:.1f}{TIMES}",
                        f"{s['peak_rss_mb']:.0f} MB",
                        "—" if mine else f"{s['peak_rss_mb'] / p['peak_rss_mb']:.1f}{TIMES}",
                        _found(s),
                        _ratio(s["precision"]),
                        _ratio(s["recall"]),
                        _html(s),
                        str(s["processes"]),
                    ]
                )
        headers = ["Reference vs current rows", "Tool", "read both + drift", "of which read",
                   "imports (not timed)", "time vs plinth", "peak RSS", "RSS vs plinth",
                   "drifted columns found", "precision", "recall", "HTML report",
                   "processes"]  # fmt: skip
        tools_table = markdown_table(headers, rows)

        stored_rows = []
        for size in self.sizes:
            s = summary[f"plinth-stored/{size}"]
            stored_rows.append(
                [
                    f"{size:,} rows",
                    human_seconds(s["profile_s"]),
                    f"{s['profile_bytes'] / 1024:.0f} KB",
                    human_seconds(s["drift_s"]),
                    human_seconds(s["read_s"]),
                    f"{s['peak_rss_mb']:.0f} MB",
                    _found(s),
                    _ratio(s["precision"]),
                    _ratio(s["recall"]),
                    _html(s),
                ]
            )
        batch = f"{self.raw['batch_rows']:,}"
        stored_headers = ["Reference profiled", "profile_table", "profile bytes",
                          f"read {batch}-row batch + profile, drift", "of which read + load",
                          "peak RSS", "drifted columns found", "precision", "recall",
                          "HTML report"]  # fmt: skip
        stored_table = markdown_table(stored_headers, stored_rows)

        targets = Targets()
        target = targets.add
        for size in self.sizes:
            p = summary[f"plinth/{size}"]
            n = f"{size:,} vs {size:,}"
            if size in TARGET_S:
                target(f"plinth, {n}", human_seconds(p["drift_s"]), f"≤ {TARGET_S[size]} s",
                       p["drift_s"] <= TARGET_S[size])  # fmt: skip
            e = summary.get(f"evidently/{size}")
            if e is not None:
                r = e["drift_s"] / p["drift_s"]
                target(f"speed-up vs Evidently, {n}", f"{r:.1f}{TIMES}",
                       f"≥ {TARGET_VS_EVIDENTLY:g}{TIMES}", r >= TARGET_VS_EVIDENTLY)  # fmt: skip
                share = p["peak_rss_mb"] / e["peak_rss_mb"]
                binding = size == TARGET_MEMORY_AT
                note = "" if binding else " (information)"
                target(f"plinth peak RSS vs Evidently's, {n}{note}",
                       f"{p['peak_rss_mb']:.0f} MB vs {e['peak_rss_mb']:.0f} MB ({share:.2f})",
                       "≤ 1/3" if binding else "—",
                       share <= TARGET_MEMORY_SHARE if binding else None)  # fmt: skip
            ok = p["precision"] == 1.0 and p["recall"] == 1.0
            target(f"plinth precision, recall, {n}",
                   f"{_ratio(p['precision'])}, {_ratio(p['recall'])}", "1.0, 1.0", ok)  # fmt: skip
        for size in self.sizes:
            s = summary[f"plinth-stored/{size}"]
            target(f"new {batch}-row batch vs stored profile of {size:,} rows",
                   human_seconds(s["drift_s"]), f"≤ {TARGET_STORED_S} s",
                   s["drift_s"] <= TARGET_STORED_S)  # fmt: skip
        sizes = [s["html_bytes"] for k, s in summary.items()
                 if k.startswith("plinth") and s["html_bytes"] is not None]  # fmt: skip
        target("plinth HTML report, largest", f"{max(sizes) / 1024:.0f} KB", "< 1 MB",
               max(sizes) < TARGET_HTML_BYTES)  # fmt: skip
        return tools_table, stored_table, targets.table(), targets.met


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _found(s: dict[str, Any]) -> str:
    text = f"{len(DRIFTS) - len(s['missed'])}/{len(DRIFTS)}"
    if s["missed"]:
        text += " (missed " + ", ".join(s["missed"]) + ")"
    if s["false_alarms"]:
        text += " + " + ", ".join(s["false_alarms"])
    if s["detected_varies"]:
        text += " (varies across processes)"
    return text


def _html(s: dict[str, Any]) -> str:
    if s["html_bytes"] is None:
        return "—"
    return f"{s['html_bytes'] / 1024:,.0f} KB in {human_seconds(s['html_s'])}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--sizes", help="comma-separated row counts (e.g. 20000, for a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="plinth and the floor only")
    parser.add_argument("--reps", type=int, help="processes per tool and size (default 3)")
    common_arguments(parser, complete="default sizes, with Evidently", one_folder=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (code := dispatch_worker(argv, worker_main)) is not None:
        return code
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-monitoring-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {
            "plinth": package_versions(
                bench.pythons["plinth"], ["plinth", "pyarrow", "numpy", "scipy"]
            )
        }
        if "evidently" in bench.pythons:
            versions["evidently"] = package_versions(
                bench.pythons["evidently"], ["evidently", "pandas", "pyarrow", "numpy", "scipy"]
            )
        with Stopwatch() as clock:
            bench.run_all()
    summary = bench.summary()
    *tables, met = bench.tables(summary)
    print_tables(*tables)
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "sizes": bench.sizes,
        "batch_rows": bench.raw["batch_rows"],
        "reps": bench.reps,
        "elapsed_s": clock.elapsed_s,
        "summary": summary,
        "targets_met": met,
        "raw": bench.raw,
    }
    write_json(args.json, report)
    complete = bench.sizes == SIZES["full"] and not args.no_peers
    write_section(args, SECTION, lambda: render_section(report, *tables), complete=complete)
    return 0


def render_section(report: dict[str, Any], tools: str, stored: str, targets: str) -> str:
    v = report["versions"]
    p = v["plinth"]
    names = [f"plinth {p['plinth']} (pyarrow {p['pyarrow']}, numpy {p['numpy']}); floor: "
             f"numpy {p['numpy']}, scipy {p['scipy']}"]  # fmt: skip
    if "evidently" in v:
        e = v["evidently"]
        names.append(f"Evidently {e['evidently']} (pandas {e['pandas']}, scipy {e['scipy']})")
    drifts = "; ".join(f"`{k}` ({d})" for k, d in DRIFTS.items())
    title = "Drift: plinth vs Evidently and an exact numpy/scipy pass"
    return "\n".join(
        [
            *section_head(title, report, names, folders="work folder"),
            "- Data: reference vs current, 18 feature columns (10 float64, NaNs in `discount`; "
            "5 strings of 5-30 skewed categories; 3 int64 with > 10 distinct values), numpy, "
            "seeded, written once as Parquet and read by every tool. The current table has "
            f"exactly four drifted columns: {drifts}.",
            "- Each time: reading both Parquet files plus the drift computation (imports and "
            "the HTML report outside), fresh process, median over the processes counted "
            "(run interleaved). plinth: `drift(reference, current)` on pyarrow tables, "
            "`report.to_html()`; Evidently: `Report([DataDriftPreset()]).run(current, "
            "reference)` on pandas DataFrames, `save_html`; floor: two-sample KS (one sort "
            "per column, asymptotic p-value as `scipy.stats.ks_2samp`) per numeric column, "
            "chi-square of homogeneity per string column, drift when p < 0.05 (no correction "
            "across columns). Each tool on its defaults.",
            "- Imports, not timed: everything a worker imports before its clock starts, "
            "including what reading Parquet loads on first use; for plinth also numpy, "
            "`pyarrow.compute`, `scipy.special` and datasketches, which `plinth.monitoring` "
            "loads on its first comparison (Evidently loads its libraries on import).",
            "- Peak RSS: `VmHWM` of the worker process (imports and both tables included; for "
            "the tools with a report, after writing it). Not `ru_maxrss`: Linux carries it "
            "across exec, so a worker would report at least its parent's peak.",
            "",
            tools,
            "",
            f"plinth with a stored reference profile: `profile_table(reference)` once (timed "
            f"alone), `to_bytes()` to a file; then a fresh process reads a new "
            f"{report['batch_rows']:,}-row batch (third seed, the same four drifts) from "
            "Parquet, loads the profile with `TableProfile.from_bytes` and runs "
            "`drift(profile, batch)`, all timed.",
            "",
            stored,
            "",
            targets,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
