"""Scale curves: how plinth's time and memory grow when each workload grows 10x and 100x.

    .venv/bin/python benchmarks/scale.py [--quick] [--only runs,files,rows,entities]
                                         [--sizes FAMILY=N,N,N ...] [--reps N] [--plots DIR]

Four families, three sizes each (``--quick``: a hundredth):

- runs (1k, 10k, 100k runs in one project): the runs are inserted in bulk SQL (``ui_runs.fill``:
  3 params, 3 metrics, a tag each; timed, per run); then, at that size, 200 more runs through
  the API (start, 10 params, 10 metrics, 3 tags, end: the time per run as the ledger grows),
  and three ``plinth runs list`` queries as whole processes: the newest page, the top 10 by a
  metric, and a filter on a metric and a param sorted by a param.
- files (1k, 10k, 100k files of 1 KiB, 100 to a folder): ``plinth data add`` (once, in a fresh
  project) and ``plinth data status`` with nothing changed, as whole processes.
- rows (100k, 1M, 10M rows x 6 columns of ``monitoring.make_table``: 3 floats, an integer, 2
  strings): plinth's ``validate`` with a 19-check suite (``validation.py``'s worker; the
  drifted table must fail exactly its temperature mean check) and ``drift`` of the current
  table against the reference (``monitoring.py``'s worker, reading both Parquet files
  included; it must flag exactly the 3 drifted columns).
- entities (10k, 100k, 1M entities; ``_features_data``'s generators): ``materialize`` of 2
  views of 4 rows per entity into the SQLite online store and a ``point_in_time_join`` of as
  many entity rows against 10 feature rows per entity row (``_features_workers.py``'s workers).

Every measurement is a fresh process with plinth's interpreter; its peak RSS is its own
``VmHWM`` (a CLI command runs through ``_scale_cli.py``, which calls plinth's entry point
and reads it). Times are the median of up to ``--reps`` processes (default 3) for a step that
does not change state, stopping once a step has taken 20 s; adds and inserts run once.
For each step: time per unit (time / N), and the growth exponent between consecutive sizes,
log(t2 / t1) / log(N2 / N1): 1 is linear, 0 flat; above 1.15 is flagged as worse than
linear, as is peak RSS growing that way. A complete run (default sizes, every family)
draws one PNG per family into ``benchmarks/scale/`` and rewrites its section of
``benchmarks/RESULTS.md``; ``--plots DIR`` draws them elsewhere for any run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    RESULTS_FILE,
    Stopwatch,
    clean_env,
    command_line,
    common_arguments,
    machine_info,
    package_versions,
    plinth_python,
    print_tables,
    report_head,
    run_worker,
    write_json,
    write_section,
)
from _scale_report import Step, flagged, plot_family, render_section, tables
from _scale_workers import ROW_COLUMNS, ROW_DRIFTED

SECTION = "benchmarks/scale.py"
PLOTS_DIR = BENCH_DIR / "scale"
FAMILIES = ("runs", "files", "rows", "entities")
SIZES: dict[str, dict[str, list[int]]] = {
    "full": {
        "runs": [1_000, 10_000, 100_000],
        "files": [1_000, 10_000, 100_000],
        "rows": [100_000, 1_000_000, 10_000_000],
        "entities": [10_000, 100_000, 1_000_000],
    },
    "quick": {
        "runs": [10, 100, 1_000],
        "files": [10, 100, 1_000],
        "rows": [1_000, 10_000, 100_000],
        "entities": [100, 1_000, 10_000],
    },
}
CREATE_RUNS = {"full": 200, "quick": 20}
FILE_KB = 1
#: A step that does not change state is repeated until it has taken this long (or --reps).
REPEAT_BUDGET_S = 20.0
#: plinth rereads files modified within 0.1 s of an add (docs/data.md): let inputs settle.
SETTLE_S = 1.5
RUN_QUERIES: list[tuple[str, list[str]]] = [
    ("runs list: newest 50", ["runs", "list"]),
    ("runs list: top 10 by a metric", ["runs", "list", "--order-by", "metrics.acc DESC",
                                       "--limit", "10"]),
    ("runs list: metric + param filter, param sort",
     ["runs", "list", "--where", "metrics.acc > 0.5 and params.optimizer = 'adam'",
      "--order-by", "params.lr ASC", "--limit", "10"]),
]  # fmt: skip
#: The rows family's suite: the checks of ``validation.py``'s kinds over ``ROW_COLUMNS``.
ROW_SPEC: list[dict[str, Any]] = [
    *({"kind": "dtype", "column": c, "type": t} for c, t in (
        ("price", "float64"), ("temperature", "float64"), ("pressure", "float64"),
        ("country", "string"), ("channel", "string"), ("age", "int64"))),
    *({"kind": "max_null_fraction", "column": c, "value": 0} for c in ROW_COLUMNS),
    {"kind": "between", "column": "price", "min": 0, "max": 1_000_000},
    {"kind": "between", "column": "temperature", "min": -60, "max": 100},
    {"kind": "between", "column": "pressure", "min": 850, "max": 1_200},
    {"kind": "between", "column": "age", "min": 18, "max": 80},
    {"kind": "mean_between", "column": "temperature", "min": 14, "max": 16},
    {"kind": "mean_between", "column": "age", "min": 46, "max": 52},
    {"kind": "mean_between", "column": "pressure", "min": 1_010, "max": 1_016},
]  # fmt: skip
#: The current table's temperature mean is 17 (``monitoring.DRIFTS``): that check, alone.
ROW_EXPECTED_FAILURES = ["mean_between:temperature"]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        mode = "quick" if args.quick else "full"
        self.sizes = {f: list(SIZES[mode][f]) for f in args.only}
        self.sizes.update(args.sizes)
        self.create_k = CREATE_RUNS[mode]
        self.reps = args.reps
        self.work = work
        self.env = clean_env()
        self.python = plinth_python()
        self.plinth = self.python.parent / "plinth"
        self.steps: dict[tuple[str, str], Step] = {}
        self.checks: dict[str, Any] = {}
        self.elapsed: dict[str, float] = {}  # per family and size, inputs included

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def worker(self, script: str, name: str, args: dict[str, Any], cwd: Path) -> dict[str, Any]:
        return run_worker(self.python, BENCH_DIR / script, f"worker:{name}", args, cwd=cwd,
                          env=self.env, timeout=3600)  # fmt: skip

    def cli(self, argv: list[str], cwd: Path) -> dict[str, Any]:
        """``plinth ARGV`` as a whole process: its wall time and its peak RSS."""
        res = self.worker("_scale_cli.py", "cli", {"argv": argv}, cwd)
        return {"s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"]}

    def record(self, family: str, label: str, n: int, samples: list[dict[str, Any]], *,
               unit: int | None, per: str) -> None:  # fmt: skip
        step = self.steps.setdefault((family, label), Step(family, label, per))
        step.add(n, [s["s"] for s in samples], [s["peak_rss_mb"] for s in samples], unit)

    def repeat(self, measure: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
        """``measure()`` up to ``--reps`` times, stopping once they took ``REPEAT_BUDGET_S``."""
        samples = [measure()]
        while len(samples) < self.reps and sum(s["s"] for s in samples) < REPEAT_BUDGET_S:
            samples.append(measure())
        return samples

    # -- the families --

    def runs(self, n: int, folder: Path) -> None:
        fill = self.worker("_scale_workers.py", "runs-fill", {"n": n}, folder)
        self.record("runs", "insert N runs (bulk SQL, setup)", n,
                    [{"s": fill["fill_s"], "peak_rss_mb": fill["peak_rss_mb"]}],
                    unit=n, per="run")  # fmt: skip
        k = self.create_k
        made = self.worker("_scale_workers.py", "runs-create", {"k": k}, folder)
        self.record("runs", f"create {k} runs via the API", n,
                    [{"s": made["create_s"], "peak_rss_mb": made["peak_rss_mb"]}],
                    unit=k, per="run")  # fmt: skip
        for label, argv in RUN_QUERIES:
            self.cli(argv, folder)  # warm-up: page cache, journals ingested
            self.record("runs", label, n, self.repeat(lambda a=argv: self.cli(a, folder)),
                        unit=None, per="query")  # fmt: skip

    def files(self, n: int, folder: Path) -> None:
        self.worker("_scale_workers.py", "make-files",
                    {"folder": str(folder / "many"), "n": n, "kb": FILE_KB}, folder)  # fmt: skip
        self.cli(["init"], folder)
        time.sleep(SETTLE_S)
        add = self.cli(["data", "add", "many", "--name", "many"], folder)
        self.record("files", f"data add ({FILE_KB} KiB files)", n, [add], unit=n, per="file")
        status = ["data", "status", "many", "many"]
        self.cli(status, folder)  # warm-up
        self.record("files", "data status, nothing changed", n,
                    self.repeat(lambda: self.cli(status, folder)), unit=n, per="file")  # fmt: skip
        out = subprocess.run([str(self.plinth), *status, "--json"], cwd=folder, env=self.env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        result = json.loads(out)
        if not result["clean"]:
            raise AssertionError(f"data status of {n} unchanged files is not clean: {out[:500]}")
        self.checks[f"files/{n}"] = {"clean": True, "files_read": result["files_read"]}

    def rows(self, n: int, folder: Path) -> None:
        from validation import suite_yaml

        self.worker("_scale_workers.py", "make-rows", {"folder": str(folder), "rows": n}, folder)
        suite = folder / "suite.yaml"
        suite.write_text(suite_yaml(ROW_SPEC), encoding="utf-8")
        ref, cur = str(folder / "reference.parquet"), str(folder / "current.parquet")

        def validate() -> dict[str, Any]:
            args = {"parquet": cur, "suite": str(suite), "calls": 1}
            res = self.worker("validation.py", "plinth", args, folder)
            call = res["calls"][0]
            if call["failed"] != ROW_EXPECTED_FAILURES:
                raise AssertionError(f"validate at {n} rows failed {call['failed']}, "
                                     f"expected exactly {ROW_EXPECTED_FAILURES}")  # fmt: skip
            return {"s": call["s"], "peak_rss_mb": res["peak_rss_mb"]}

        def drift() -> dict[str, Any]:
            res = self.worker("monitoring.py", "plinth", {"reference": ref, "current": cur},
                              folder)  # fmt: skip
            if res["detected"] != ROW_DRIFTED:
                raise AssertionError(f"drift at {n} rows flagged {res['detected']}, "
                                     f"expected exactly {ROW_DRIFTED}")  # fmt: skip
            return {"s": res["drift_s"], "peak_rss_mb": res["peak_rss_mb"]}

        self.record("rows", f"validate ({len(ROW_SPEC)} checks)", n, self.repeat(validate),
                    unit=n, per="row")  # fmt: skip
        self.record("rows", "drift (read 2 tables + compare)", n, self.repeat(drift),
                    unit=n, per="row")  # fmt: skip

    def entities(self, n: int, folder: Path) -> None:
        data = self.worker("_scale_workers.py", "make-entities",
                           {"folder": str(folder), "n": n}, folder)  # fmt: skip
        views = data["mat"]["views"]

        def materialize() -> dict[str, Any]:
            args = {"uri": "sqlite:///online.db", "views": views}
            res = self.worker("_features_workers.py", "mat-plinth", args, folder)
            if res["written"] != n * len(views):
                raise AssertionError(f"materialize of {n} entities x {len(views)} views "
                                     f"wrote {res['written']} rows")  # fmt: skip
            return {"s": res["materialize_s"], "peak_rss_mb": res["peak_rss_mb"]}

        def join() -> dict[str, Any]:
            args = {**data["pit"], "out": str(folder / "pit-out.parquet")}
            res = self.worker("_features_workers.py", "pit-plinth", args, folder)
            if res["rows"] != n:
                raise AssertionError(f"point-in-time join of {n} entity rows gave {res['rows']}")
            return {"s": res["join_s"], "peak_rss_mb": res["peak_rss_mb"]}

        self.record("entities", f"materialize {len(views)} views (SQLite)", n,
                    self.repeat(materialize), unit=n, per="entity")  # fmt: skip
        self.record("entities", "point-in-time join (10 feature rows per entity row)", n,
                    self.repeat(join), unit=n, per="entity row")  # fmt: skip

    def run_all(self) -> None:
        for family, sizes in self.sizes.items():
            for n in sizes:
                self.say(f"{family} at {n:,} ...")
                folder = self.work / f"{family}-{n}"
                folder.mkdir()
                started = time.perf_counter()
                getattr(self, family)(n, folder)
                self.elapsed[f"{family}/{n}"] = time.perf_counter() - started
                shutil.rmtree(folder)  # inputs of 100k files or 10M rows: free the disk now


def _sizes(text: str) -> tuple[str, list[int]]:
    family, _, numbers = text.partition("=")
    if family not in FAMILIES or not numbers:
        raise argparse.ArgumentTypeError(
            f"--sizes takes FAMILY=N,N,N with FAMILY one of {', '.join(FAMILIES)}; got {text!r}"
        )
    try:
        sizes = [int(v.replace("_", "")) for v in numbers.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: sizes are integers") from None
    if len(sizes) < 2 or sizes != sorted(set(sizes)) or sizes[0] < 1:
        raise argparse.ArgumentTypeError(
            f"--sizes {text!r}: give at least two increasing positive sizes"
        )
    return family, sizes


def _families(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--only takes some of {', '.join(FAMILIES)}; got {', '.join(unknown) or 'nothing'}"
        )
    return [f for f in FAMILIES if f in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes / 100, for a smoke test")
    parser.add_argument(
        "--only",
        type=_families,
        default=list(FAMILIES),
        help="families to run, comma-separated (default: all)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        action="append",
        default=[],
        metavar="FAMILY=N,N,N",
        help="other sizes for a family (repeat)",
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="processes per repeatable step, at most (default 3)"
    )
    parser.add_argument(
        "--plots",
        type=Path,
        help="folder for the PNGs (default: benchmarks/scale/, complete runs only)",
    )
    common_arguments(parser, complete="default sizes, every family")
    args = parser.parse_args(argv)
    unknown = [f for f, _ in args.sizes if f not in args.only]
    if unknown:
        parser.error(f"--sizes for {', '.join(unknown)}, which --only leaves out")
    args.sizes = dict(args.sizes)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {"plinth": package_versions(
            bench.python, ["plinth", "pyarrow", "numpy", "duckdb", "blake3"])}  # fmt: skip
        with Stopwatch() as clock:
            bench.run_all()
    steps = list(bench.steps.values())
    complete = bench.sizes == SIZES["full"]
    plots_dir = args.plots or (PLOTS_DIR if complete and not args.no_results else None)
    plots: dict[str, str] = {}
    links: dict[str, str] = {}  # relative to the markdown file that shows them
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        markdown_dir = (args.results or RESULTS_FILE).resolve().parent
        for family in bench.sizes:
            path = plots_dir / f"{family}.png"
            plot_family(family, [s for s in steps if s.family == family], path)
            plots[family] = str(path)
            links[family] = os.path.relpath(path.resolve(), markdown_dir)
    rendered = tables(steps)
    print_tables(*rendered.values())
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "sizes": bench.sizes,
        "reps": bench.reps,
        "elapsed_s": clock.elapsed_s,
        "steps": [s.to_dict() for s in steps],
        "worse_than_linear": [f"{s.family}: {s.label}" for s in flagged(steps)],
        "checks": bench.checks,
        "elapsed_by_size_s": bench.elapsed,
        "plots": plots,
        "plot_links": links,
    }
    write_json(args.json, report)
    write_section(args, SECTION, lambda: render_section(report, rendered), complete=complete)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
