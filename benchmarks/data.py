"""Data versioning: plinth against DVC, in the same run, on the same files.

    .venv/bin/python benchmarks/data.py [--quick] [--no-peers] [--json out.json] [--tmp DIR]

Workloads (issue 4, "Targets"; ``--quick`` shrinks the data for a smoke test):

- D1: ``data add`` of one 1 GiB file (``dvc add``); ``cp`` of it as the floor.
- D2: ``data add`` of a folder of 10,000 x 100 KiB files in 100 sub-folders; ``cp -r`` floor.
- D3: ``data status`` with nothing changed on those files (``dvc status``), median of 5.
- D4: re-add after one file changed (``dvc add``).
- D5: ``data diff`` of the two versions (``dvc diff HEAD~1 HEAD``), median of 5.
- D6: profiling the 1M-row x 20-column table of ``benchmarks/validation.py`` (``--quick``:
  20,000 rows): ``plinth.profiles.profile_table`` on the pyarrow table, the first call in a
  fresh process (the profile ``data add`` stores for a table version), median over the
  repetitions' processes. Beside it (the Floor column), DuckDB's ``SUMMARIZE`` of the same
  Arrow table in the same kind of process: per column min, max, approximate distinct count,
  mean, std, approximate quartiles and null share, multi-threaded (plinth adds histograms,
  top values, string lengths and mergeable sketches). No DVC figure: DVC does not profile.
- D7, D8: D1 and D2 with links, both tools opted in: ``plinth data add --link hardlink``
  beside DVC with ``cache.type hardlink`` (each on fresh copies of the inputs). Both make the
  linked files read-only.

Every number but D6 is the wall time of a whole process (``plinth ...`` / ``dvc ...``,
start-up included), data in the page cache. Each tool works on its own copy of the files (DVC
replaces the files it adds with copies from its cache, which would change their inodes
under plinth's stat cache), made with ``cp -r`` (timed: the floor). DVC lives in
``benchmarks/.venv-dvc`` (created here on first use from ``benchmarks/requirements-dvc.txt``)
and runs in a git repository, as its users run it; its analytics are off. A complete run
(full size, with DVC) rewrites its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    ROOT,
    TIMES,
    Stopwatch,
    clean_env,
    command_line,
    common_arguments,
    dispatch_worker,
    ensure_venv,
    human_seconds,
    machine_info,
    markdown_table,
    met_status,
    package_versions,
    plinth_python,
    print_result,
    print_tables,
    report_head,
    run_worker,
    section_head,
    write_json,
    write_section,
)

DVC_VENV = BENCH_DIR / ".venv-dvc"
DVC_REQUIREMENTS = BENCH_DIR / "requirements-dvc.txt"
SECTION = "benchmarks/data.py"
#: plinth does not trust the stat of a file modified this recently (docs/data.md): wait
#: this long after writing the inputs, as a user's data is rarely seconds old.
SETTLE_S = 1.5

SIZES: dict[str, dict[str, int]] = {
    "full": {"big_mb": 1024, "files": 10_000, "file_kb": 100, "reps": 5, "rows": 1_000_000},
    "quick": {"big_mb": 32, "files": 300, "file_kb": 100, "reps": 2, "rows": 20_000},
}
TARGETS = {
    "D1": (1.0, None),
    "D2": (2.0, 5.0),
    "D3": (0.2, None),
    "D4": (0.3, None),
    "D5": (0.2, None),
    "D6": (0.6, None),
    "D7": (1.0, None),
    "D8": (2.0, 5.0),
}


@dataclass
class Row:
    workload: str
    plinth_s: float
    dvc_s: float | None
    floor: str
    target: str
    met: bool


def timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    """Whole-process wall time of ``argv``; its output is checked, then dropped."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def quiesce() -> None:
    """Write the dirty pages back before a timed write: each add and each ``cp`` floor starts
    with no writeback of earlier inputs pending (after gigabytes of fresh inputs, the kernel
    throttles whichever process writes next: the first add paid for the setup's copies)."""
    os.sync()
    time.sleep(0.5)


def median_of(argv: list[str], reps: int, *, cwd: Path, env: dict[str, str]) -> float:
    timed(argv, cwd=cwd, env=env)  # warm-up
    return statistics.median(timed(argv, cwd=cwd, env=env) for _ in range(reps))


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            f.write(chunk)
            left -= len(chunk)


def make_inputs(src: Path, size: dict[str, int]) -> None:
    write_random(src / "big.bin", size["big_mb"] << 20)
    for i in range(size["files"]):
        write_random(src / "many" / f"d{i // 100:03d}" / f"f{i:05d}.bin", size["file_kb"] << 10)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.size = SIZES["quick" if args.quick else "full"]
        self.work = work
        self.plinth = ROOT / ".venv" / "bin" / "plinth"
        if not self.plinth.exists():
            self.plinth = Path(plinth_python()).parent / "plinth"
        self.dvc: Path | None = None
        if not args.no_peers:
            self.dvc = ensure_venv(DVC_VENV, DVC_REQUIREMENTS).parent / "dvc"
        self.env = clean_env(DVC_NO_ANALYTICS="1", GIT_CONFIG_NOSYSTEM="1")
        self.raw: dict[str, Any] = {}
        self.rows: list[Row] = []

    def git(self, *args: str, cwd: Path) -> None:
        ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(["git", *ident, *args], cwd=cwd, env=self.env, check=True,
                       capture_output=True)  # fmt: skip

    def setup(self) -> None:
        src = self.work / "src"
        make_inputs(src, self.size)
        self.p = self.work / "plinth"
        self.d = self.work / "dvc"
        self.pl = self.work / "plinth-link"
        self.dl = self.work / "dvc-link"
        for folder in (self.p, self.d, self.pl, self.dl):
            folder.mkdir()
        # Copies for each tool; the first copies are the floor (cp of data in page cache).
        quiesce()
        self.raw["cp_big_s"] = timed(["cp", str(src / "big.bin"), str(self.p)], cwd=self.work,
                                     env=self.env)  # fmt: skip
        quiesce()
        self.raw["cp_many_s"] = timed(["cp", "-r", str(src / "many"), str(self.p)],
                                      cwd=self.work, env=self.env)  # fmt: skip
        timed(["cp", "-r", str(src / "big.bin"), str(src / "many"), str(self.d)], cwd=self.work,
              env=self.env)  # fmt: skip
        timed([str(self.plinth), "init"], cwd=self.p, env=self.env)
        if self.dvc is not None:
            self.dvc_init(self.d, hardlink=False)
        time.sleep(SETTLE_S)

    def setup_links(self) -> None:
        """Fresh copies for D7, D8, made only now: D1-D5 run after as many writes as before."""
        src = self.work / "src"
        folders = [self.pl] + ([self.dl] if self.dvc is not None else [])
        for folder in folders:
            timed(["cp", "-r", str(src / "big.bin"), str(src / "many"), str(folder)],
                  cwd=self.work, env=self.env)  # fmt: skip
        timed([str(self.plinth), "init"], cwd=self.pl, env=self.env)
        if self.dvc is not None:
            self.dvc_init(self.dl, hardlink=True)
        time.sleep(SETTLE_S)

    def dvc_init(self, folder: Path, *, hardlink: bool) -> None:
        assert self.dvc is not None
        self.git("init", "-q", "-b", "main", cwd=folder)
        timed([str(self.dvc), "init", "-q"], cwd=folder, env=self.env)
        timed([str(self.dvc), "config", "core.autostage", "false"], cwd=folder, env=self.env)
        if hardlink:  # DVC's opt-in equivalent of --link hardlink
            timed([str(self.dvc), "config", "cache.type", "hardlink"], cwd=folder, env=self.env)
        self.git("add", ".dvc", ".dvcignore", cwd=folder)  # not the data: DVC adds it
        self.git("commit", "-q", "-m", "init", cwd=folder)

    def both(self, key: str, plinth_argv: list[str], dvc_argv: list[str] | None,
             reps: int = 0, *, linked: bool = False) -> None:  # fmt: skip
        def run(argv: list[str], cwd: Path) -> float:
            if reps:
                return median_of(argv, reps, cwd=cwd, env=self.env)
            quiesce()  # an add writes: no earlier writeback pending
            return timed(argv, cwd=cwd, env=self.env)

        p, d = (self.pl, self.dl) if linked else (self.p, self.d)
        self.raw[key] = {"plinth": run([str(self.plinth), *plinth_argv], p)}
        if self.dvc is not None and dvc_argv is not None:
            self.raw[key]["dvc"] = run([str(self.dvc), *dvc_argv], d)

    def floor_now(self, argv: list[str], made: str) -> float:
        """``cp`` of the input in plinth's folder just before its add, under the same memory
        and writeback state (the setup's floor comes before gigabytes of copies); removed."""
        quiesce()
        seconds = timed(argv, cwd=self.p, env=self.env)
        target = self.p / made
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return seconds

    def profiling(self) -> None:
        """D6: profile_table's first call per process, and DuckDB's SUMMARIZE, medians."""
        table = self.raw["table"]
        runs: dict[str, list[dict[str, Any]]] = {"plinth": [], "duckdb": []}
        for _ in range(self.size["reps"]):
            for tool, found in runs.items():
                found.append(run_worker(plinth_python(), Path(__file__), f"worker:{tool}",
                                        {"table": table}, cwd=self.work, env=self.env))  # fmt: skip
        self.raw["D6"] = {
            tool: statistics.median(r["first_s"] for r in found) for tool, found in runs.items()
        }
        self.raw["D6_runs"] = runs

    def commit_dvc(self, message: str) -> None:
        if self.dvc is not None:
            self.git("add", "-A", cwd=self.d)
            self.git("commit", "-q", "-m", message, cwd=self.d)

    def run_all(self) -> None:
        reps = self.size["reps"]
        print("setup ...", file=sys.stderr, flush=True)
        self.setup()
        print("D1, D2 ...", file=sys.stderr, flush=True)
        self.raw["cp_big_now_s"] = self.floor_now(["cp", "big.bin", "floor.bin"], "floor.bin")
        self.both("D1", ["data", "add", "big.bin", "--name", "big"], ["add", "-q", "big.bin"])
        self.raw["cp_many_now_s"] = self.floor_now(["cp", "-r", "many", "floor"], "floor")
        self.both("D2", ["data", "add", "many", "--name", "many"], ["add", "-q", "many"])
        self.commit_dvc("v1")
        print("D3 ...", file=sys.stderr, flush=True)
        self.both("D3", ["data", "status", "many", "many"], ["status", "-q"], reps)
        changed = f"many/d000/f{0:05d}.bin"
        payload = os.urandom(self.size["file_kb"] << 10)
        for folder in (self.p, self.d):
            (folder / changed).write_bytes(payload)
        time.sleep(SETTLE_S)
        print("D4, D5 ...", file=sys.stderr, flush=True)
        self.both("D4", ["data", "add", "many", "--name", "many"], ["add", "-q", "many"])
        self.commit_dvc("v2")
        self.both("D5", ["data", "diff", "many@1", "many@2"], ["diff", "HEAD~1", "HEAD"], reps)
        print("D6 ...", file=sys.stderr, flush=True)
        self.raw["table"] = str(make_table(self.work / "table", self.size["rows"]))
        self.profiling()
        print("D7, D8 ...", file=sys.stderr, flush=True)
        self.setup_links()
        link = ["--link", "hardlink"]
        self.both("D7", ["data", "add", "big.bin", "--name", "big", *link],
                  ["add", "-q", "big.bin"], linked=True)  # fmt: skip
        self.both("D8", ["data", "add", "many", "--name", "many", *link],
                  ["add", "-q", "many"], linked=True)  # fmt: skip
        self.check()

    def check(self) -> None:
        """The numbers only count if both tools saw the same change."""
        out = subprocess.run(
            [str(self.plinth), "data", "diff", "many@1", "many@2", "--json"],
            cwd=self.p, env=self.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        diff = json.loads(out)
        assert [c["path"] for c in diff["changed"]] == ["d000/f00000.bin"], diff
        assert not diff["added"], diff
        assert not diff["removed"], diff
        # D7, D8 count only if both tools linked rather than copied
        sample = Path("many") / "d000" / "f00000.bin"
        folders = [self.pl] + ([self.dl] if self.dvc is not None else [])
        for folder in folders:
            for rel in (Path("big.bin"), sample):
                links = (folder / rel).stat().st_nlink
                assert links >= 2, f"{folder / rel} has {links} link(s): it was copied"

    def table(self) -> str:
        size = self.size
        labels = {
            "D1": f"D1 data add: one {size['big_mb']:,} MiB file",
            "D2": f"D2 data add: {size['files']:,} {TIMES} {size['file_kb']} KiB files",
            "D3": f"D3 data status, nothing changed, median of {size['reps']}",
            "D4": "D4 re-add, one file changed",
            "D5": f"D5 data diff of that change, median of {size['reps']}",
            "D6": f"D6 profile {size['rows']:,} rows {TIMES} 20 columns, median of {size['reps']}",
            "D7": "D7 D1 with --link hardlink (DVC: cache.type hardlink)",
            "D8": "D8 D2 with --link hardlink (DVC: cache.type hardlink)",
        }
        floors = {
            "D1": f"cp {human_seconds(self.raw['cp_big_s'])}; just before: "
            f"{human_seconds(self.raw['cp_big_now_s'])}",
            "D2": f"cp -r {human_seconds(self.raw['cp_many_s'])}; just before: "
            f"{human_seconds(self.raw['cp_many_now_s'])}",
            "D3": "—",
            "D4": "—",
            "D5": "—",
            "D6": f"peer: DuckDB SUMMARIZE {human_seconds(self.raw['D6']['duckdb'])}",
            "D7": "—",
            "D8": "—",
        }
        rows = []
        for key, label in labels.items():
            p = self.raw[key]["plinth"]
            d = self.raw[key].get("dvc")
            limit, ratio = TARGETS[key]
            met = p <= limit and (ratio is None or d is None or d / p >= ratio)
            target = f"≤ {limit:g} s" + (f", ≥ {ratio:g}{TIMES} DVC" if ratio else "")
            self.rows.append(Row(label, p, d, floors[key], target, met))
            rows.append(
                [
                    label,
                    human_seconds(p),
                    "—" if d is None else human_seconds(d),
                    "—" if d is None else f"{d / p:.1f}{TIMES}",
                    floors[key],
                    target,
                    met_status(met),
                ]
            )
        headers = ["Workload", "plinth", "DVC", "plinth speed-up", "Floor", "Target", "Status"]
        return markdown_table(headers, rows)


def make_table(folder: Path, rows: int) -> Path:
    """The validation benchmark's clean table (1M x 20 in full) as Parquet."""
    from validation import make_tables

    folder.mkdir(parents=True, exist_ok=True)
    return make_tables(rows, folder)["clean"]


def worker_main(tool: str, args: dict[str, Any]) -> int:
    """D6 in a fresh process: read the table (not timed), then time two calls."""
    import pyarrow.parquet as pq

    table = pq.read_table(args["table"])
    if tool == "plinth":
        from plinth.profiles import profile_table

        def call() -> int:
            return len(profile_table(table).columns)
    else:
        import duckdb

        conn = duckdb.connect()
        conn.register("t", table)

        def call() -> int:
            return len(conn.execute("SUMMARIZE SELECT * FROM t").fetchall())

    times = []
    for _ in range(2):
        start = time.perf_counter()
        columns = call()
        times.append(time.perf_counter() - start)
    assert columns == table.num_columns, (tool, columns)
    print_result({"first_s": times[0], "again_s": times[1], "columns": columns})
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--no-peers", action="store_true", help="measure plinth only")
    common_arguments(parser, complete="full size, with DVC")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (code := dispatch_worker(argv, worker_main)) is not None:
        return code
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-data-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {"plinth": package_versions(plinth_python(), ["plinth", "blake3", "duckdb"])}
        if bench.dvc is not None:
            versions["dvc"] = package_versions(bench.dvc.parent / "python", ["dvc"])
        with Stopwatch() as clock:
            bench.run_all()
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
    complete = not args.quick and not args.no_peers
    write_section(args, SECTION, lambda: render_section(report, table), complete=complete)
    return 0


def render_section(report: dict[str, Any], table: str) -> str:
    v = report["versions"]
    tools = [
        f"plinth {v['plinth']['plinth']} (blake3 {v['plinth']['blake3']}; "
        f"D6 floor: DuckDB {v['plinth']['duckdb']})"
    ]
    if "dvc" in v:
        tools.append(f"DVC {v['dvc']['dvc']}")
    return "\n".join(
        [
            *section_head("Data versioning: plinth vs DVC", report, tools, io_note=True),
            "- Whole-process wall times (start-up included), inputs random bytes in the page "
            "cache, each tool on its own `cp -r` copy, inputs left 1.5 s to settle (plinth "
            "rereads files modified within 0.1 s of an add); dirty pages written back "
            "(`sync`) before each add and each `cp` floor. plinth: embedded default "
            "(`.plinth/`, SQLite ledger, local blob folder); DVC: a git repository with "
            "`dvc init`, default cache, analytics off; D5 compares two git commits.",
            "- Speed-up: DVC's time over plinth's. Adds are measured once (they change state); "
            "status and diff are medians after a warm-up.",
            "- D6 is in-process: `profile_table` of the pyarrow table (the validation "
            "benchmark's 20 columns), first call in a fresh process, median over processes; "
            "beside it, DuckDB's `SUMMARIZE` of the same table, first call, same kind of "
            "process (min, max, approximate distinct count and quartiles, mean, std, nulls).",
            "- D7, D8: both tools opted in to hard links (`--link hardlink`; DVC "
            "`cache.type hardlink`), on fresh copies; the run checks the files are linked.",
            "",
            table,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
