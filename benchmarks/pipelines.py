"""Pipelines: plinth against Kedro, Metaflow, Prefect and a bare Python loop (issue 15).

    .venv/bin/python benchmarks/pipelines.py [--quick] [--no-peers] [--no-ray] [--reps N]

a. 20 trivial steps chained (step i returns prev + i), whole process from ``python
   script.py`` to exit: plinth in a fresh project (``plinth init`` first, not timed; every
   step run checked in its ledger afterwards), Kedro (its API: ``SequentialRunner`` on memory
   datasets; and ``kedro run`` in a minimal project made by ``kedro new``), Metaflow (a local
   flow of 20 steps), Prefect (a flow of 20 tasks, no server: its ephemeral API on SQLite
   under a scratch ``PREFECT_HOME``, created by one untimed run) and the 20 functions in a
   plain loop (the floor).
b. plinth's per-step overhead: a 1-step and a 20-step pipeline timed in one process after a
   warm-up, every step computing (a new input each time): (t20 - t1) / 19.
c. plinth's no-change rerun: the script of (a) again in the same project, every step a cache
   hit; reported over ``python -c pass`` (Python start-up) and over ``python -c 'import
   plinth'``.
d. 16 LogisticRegression fits (scikit-learn, each on its own ``make_classification`` data):
   plinth's ``process`` executor against the same function in a plain loop, whole
   processes, for small fits and for fits of about a second each.
e. The Ray executor's extra cost per step once the cluster is up (``--no-ray``: left out;
   left out anyway while ``plinth.pipelines.executors_ray`` or Ray is absent).

Each measurement is a fresh process with its tool's python: plinth's ``.venv``; the peers'
``benchmarks/.venv-kedro``, ``.venv-metaflow``, ``.venv-prefect`` (made here on first use
from ``requirements-*.txt``). Medians of ``--reps`` runs (default 3), tools interleaved. A
complete run (not ``--quick``, with the peers and Ray) rewrites its section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pipelines_flows as flows
from _common import (
    BENCH_DIR,
    RESULT_PREFIX,
    ROOT,
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
    write_json,
    write_section,
)
from _pipelines_report import render_section, tables

SECTION = "benchmarks/pipelines.py"
WORKERS = BENCH_DIR / "_pipelines_workers.py"
PEERS = ("kedro", "metaflow", "prefect")
#: Fits per size: (rows, features); "second" is calibrated to about 1 s per fit here.
FIT_SIZES = {"small": (2_000, 20), "second": (40_000, 40)}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.quick = args.quick
        self.reps = args.reps or (1 if args.quick else 3)
        self.work = work
        self.plinth = plinth_python()
        self.peers: dict[str, Path] = {}
        if not args.no_peers:
            for peer in PEERS:
                self.peers[peer] = ensure_venv(
                    BENCH_DIR / f".venv-{peer}", BENCH_DIR / f"requirements-{peer}.txt"
                )
        self.ray = not args.no_ray and _ray_available(self.plinth)
        base = {k: v for k, v in clean_env().items() if not k.startswith(("PREFECT_", "KEDRO_"))}
        base = {k: v for k, v in base.items() if not k.startswith("METAFLOW_")}
        self.env = {
            **base,
            "DO_NOT_TRACK": "1",
            "KEDRO_DISABLE_TELEMETRY": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "USERNAME": "bench",  # Metaflow wants a user name
        }
        self.raw: dict[str, Any] = {"reps": self.reps, "runs": {}, "checks": {}}

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def record(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        self.raw["runs"].setdefault(key, []).append(value)
        return value

    # -- whole processes --

    def timed(
        self,
        key: str,
        argv: list[str],
        cwd: Path,
        *,
        env: dict[str, str] | None = None,
        out_file: Path | None = None,
    ) -> dict[str, Any]:
        """Run ``argv`` in ``cwd``; its whole-process wall time and what it reported."""
        if out_file is not None:
            out_file.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=1800
        )
        wall = time.perf_counter() - started
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if done.returncode != 0 or not (lines or (out_file and out_file.exists())):
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise RuntimeError(f"{key} failed (exit {done.returncode}) in {cwd}:\n{tail}")
        result: dict[str, Any] = (
            json.loads(out_file.read_text())
            if out_file is not None
            else json.loads(lines[-1][len(RESULT_PREFIX) :])
        )
        result["wall_s"] = wall
        return self.record(key, result)

    def setup_peers(self) -> None:
        w = self.work
        (w / "floor").mkdir()
        (w / "floor" / "chain.py").write_text(flows.floor_chain())
        if "kedro" in self.peers:
            (w / "kedro-api").mkdir()
            (w / "kedro-api" / "chain.py").write_text(flows.kedro_api())
            kedro = self.peers["kedro"].parent / "kedro"
            self.say("kedro new (not timed) ...")
            subprocess.run(
                [str(kedro), "new", "--name", "chain", "--tools", "none", "--example", "n"],
                cwd=w,
                env=self.env,
                check=True,
                capture_output=True,
            )
            (w / "chain" / "src" / "chain" / "pipeline_registry.py").write_text(
                flows.kedro_project_pipeline()
            )
            (w / "chain" / "conf" / "base" / "parameters.yml").write_text("start: 0\n")
        if "metaflow" in self.peers:
            (w / "metaflow").mkdir()
            (w / "metaflow" / "chain.py").write_text(flows.metaflow_chain())
            self.metaflow_env = {
                **self.env,
                "METAFLOW_HOME": str(w / "metaflow" / "home"),
                "METAFLOW_DEFAULT_DATASTORE": "local",
                "METAFLOW_DEFAULT_METADATA": "local",
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(w / "metaflow" / "store"),
            }
            self.say("Metaflow: one run first, not timed ...")
            self.metaflow("metaflow/warm-up")
        if "prefect" in self.peers:
            (w / "prefect").mkdir()
            (w / "prefect" / "chain.py").write_text(flows.prefect_chain())
            self.prefect_env = {**self.env, "PREFECT_HOME": str(w / "prefect" / "home")}
            self.say("Prefect: one run first, not timed (creates its database) ...")
            self.timed(
                "prefect/warm-up",
                [str(self.peers["prefect"]), "chain.py"],
                w / "prefect",
                env=self.prefect_env,
            )

    def metaflow(self, key: str) -> dict[str, Any]:
        folder = self.work / "metaflow"
        argv = [str(self.peers["metaflow"]), "chain.py", "--no-pylint", "run"]
        return self.timed(key, argv, folder, env=self.metaflow_env, out_file=folder / "out.json")

    def plinth_project(self, name: str, script: str) -> Path:
        folder = self.work / name
        folder.mkdir()
        plinth = self.plinth.parent / "plinth"
        subprocess.run(
            [str(plinth), "init"], cwd=folder, env=self.env, check=True, capture_output=True
        )
        (folder / "flow.py").write_text(script)
        return folder

    def chains(self) -> None:
        """(a) and (c), interleaved; the Python start-up floors with them."""
        py = str(self.plinth)
        for rep in range(self.reps):
            self.say(f"20 trivial steps, round {rep + 1}/{self.reps} ...")
            self.timed("floor", [py, "chain.py"], self.work / "floor")
            self.timed("python -c pass", [py, "-c", "print('RESULT {}')"], self.work)
            self.timed(
                "python -c 'import plinth'",
                [py, "-c", "import plinth; print('RESULT {}')"],
                self.work,
            )
            folder = self.plinth_project(f"plinth-{rep}", flows.plinth_chain())
            first = self.timed("plinth", [py, "flow.py"], folder)
            self.check_ledger(folder, first, "plinth", cached=False)
            if "kedro" in self.peers:
                kedro = self.peers["kedro"]
                self.timed("kedro-api", [str(kedro), "chain.py"], self.work / "kedro-api")
                project = self.work / "chain"
                self.timed(
                    "kedro-run",
                    [str(kedro.parent / "kedro"), "run"],
                    project,
                    out_file=project / "out.json",
                )
            if "metaflow" in self.peers:
                self.metaflow("metaflow")
            if "prefect" in self.peers:
                self.timed(
                    "prefect",
                    [str(self.peers["prefect"]), "chain.py"],
                    self.work / "prefect",
                    env=self.prefect_env,
                )
            again = self.timed("plinth-rerun", [py, "flow.py"], folder)
            self.check_ledger(folder, again, "plinth-rerun", cached=True)
        for key, runs in self.raw["runs"].items():
            if key in ("floor", "plinth", "plinth-rerun") or key.startswith(PEERS):
                wrong = [r["value"] for r in runs if r["value"] != flows.EXPECTED]
                if wrong:
                    raise RuntimeError(f"{key} computed {wrong}, not {flows.EXPECTED}")

    def check_ledger(self, folder: Path, result: dict[str, Any], key: str, *, cached: bool) -> None:
        """What the ledger holds for the run (a separate, untimed process)."""
        got = run_worker(
            self.plinth,
            WORKERS,
            "worker:check",
            {"run_id": result["run_id"]},
            cwd=folder,
            env=self.env,
        )
        want = "cached" if cached else "succeeded"
        ok = (
            got["run_status"] == "succeeded"
            and got["step_runs"] == got["distinct_steps"] == flows.STEPS
            and got["statuses"] == {want: flows.STEPS}
            and got["cache_hits"] == (flows.STEPS if cached else 0)
            and got["with_outputs"] == flows.STEPS
            and result["cache_hits"] == got["cache_hits"]
        )
        got["ok"] = ok
        self.raw["checks"].setdefault(key, []).append(got)
        if not ok:
            raise RuntimeError(f"{key}: the ledger does not hold what ran: {got}")

    def overhead(self) -> None:
        self.say("per-step overhead (in-process) ...")
        folder = self.work / "plinth-0"
        reps = 3 if self.quick else 9
        res = run_worker(
            self.plinth, WORKERS, "worker:overhead", {"reps": reps}, cwd=folder, env=self.env
        )
        if set(res["statuses"]) != {"succeeded"}:
            raise RuntimeError(f"the overhead runs did not all compute: {res['statuses']}")
        self.raw["overhead"] = res

    def fits(self) -> None:
        py = str(self.plinth)
        sizes = ["small"] if self.quick else list(FIT_SIZES)
        for size in sizes:
            rows, features = FIT_SIZES[size]
            if self.quick:
                rows, features = 500, 10
            loop_dir = self.work / f"fits-{size}"
            loop_dir.mkdir()
            (loop_dir / "fits.py").write_text(flows.loop_fits())
            for rep in range(self.reps):
                self.say(f"16 fits ({size}), round {rep + 1}/{self.reps} ...")
                loop = self.timed(
                    f"fits/{size}/loop", [py, "fits.py", str(rows), str(features)], loop_dir
                )
                executors = ["process", "local"] if size == "small" else ["process"]
                for executor in executors:
                    folder = self.plinth_project(
                        f"fits-{size}-{executor}-{rep}", flows.plinth_fits()
                    )
                    got = self.timed(
                        f"fits/{size}/plinth-{executor}",
                        [py, "flow.py", str(rows), str(features), executor],
                        folder,
                    )
                    if got["status"] != "succeeded" or got["scores"] != loop["scores"]:
                        raise RuntimeError(f"plinth {executor} fits differ from the loop: {got}")

    def ray_overhead(self) -> None:
        self.say("Ray executor (the first run starts the cluster) ...")
        folder = self.plinth_project("plinth-ray", flows.plinth_chain())
        res = run_worker(
            self.plinth,
            WORKERS,
            "worker:ray",
            {"reps": 2 if self.quick else 7},
            cwd=folder,
            env=self.env,
            timeout=900,
        )
        if set(res["statuses"]) != {"succeeded"}:
            raise RuntimeError(f"the Ray runs did not all compute: {res['statuses']}")
        self.raw["ray"] = res

    def run_all(self) -> None:
        self.setup_peers()
        self.chains()
        self.overhead()
        self.fits()
        if self.ray:
            self.ray_overhead()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, runs in self.raw["runs"].items():
            if key.endswith("warm-up"):
                continue
            out[key] = {
                "wall_s": statistics.median(r["wall_s"] for r in runs),
                "processes": len(runs),
            }
            if runs and "run_s" in runs[0]:
                out[key]["run_s"] = statistics.median(r["run_s"] for r in runs)
            if runs and "cpu_s" in runs[0]:
                out[key]["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
        return out


def _ray_available(python: Path) -> bool:
    """Whether plinth's environment has Ray and ``plinth.pipelines.executors_ray``."""
    src = ROOT / "src" / "plinth" / "pipelines" / "executors_ray.py"
    if not src.exists():
        print("no src/plinth/pipelines/executors_ray.py yet: Ray left out", file=sys.stderr)
        return False
    code = "import ray, plinth.pipelines.executors_ray"
    done = subprocess.run([str(python), "-c", code], capture_output=True, env=clean_env())
    if done.returncode != 0:
        print("Ray or its executor does not import: Ray left out", file=sys.stderr)
    return done.returncode == 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="plinth and the floors only")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray executor")
    parser.add_argument("--reps", type=int, help="rounds, tools interleaved (default 3)")
    common_arguments(parser, complete="not --quick, with the peers and Ray", one_folder=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.environ.pop("PREFECT_API_URL", None)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-pipelines-", dir=args.tmp) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        machine = machine_info(work)
        versions = {
            "plinth": package_versions(
                bench.plinth, ["plinth", "scikit-learn", "ray", "sqlalchemy"]
            )
        }
        for peer, python in bench.peers.items():
            versions[peer] = package_versions(python, [peer])
        with Stopwatch() as clock:
            bench.run_all()
    summary = bench.summary()
    all_tables, met = tables(bench.raw, summary)
    print_tables(*all_tables)
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "reps": bench.reps,
        "elapsed_s": clock.elapsed_s,
        "summary": summary,
        "checks": bench.raw["checks"],
        "overhead": bench.raw["overhead"],
        "ray": bench.raw.get("ray"),
        "targets_met": met,
        "raw": bench.raw,
    }
    write_json(args.json, report)
    complete = not args.quick and len(bench.peers) == len(PEERS) and bench.ray
    write_section(args, SECTION, lambda: render_section(report, all_tables), complete=complete)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
