"""Command latency: everyday read-only commands, whole process, on a project of 1,000 runs.

Target (issue 17, item 4): ``plinth runs list``, ``runs show``, ``models show``, ``data
log``, ``lineage`` and ``monitor reports`` each answer in <= 300 ms of wall time, start-up
included, on the embedded default. Beside them, MLflow's CLI on the same scene in its own
virtual environment (``benchmarks/.venv-mlflow``): ``mlflow runs list``, ``mlflow runs
describe``; MLflow has no command that shows a registered model, so its Python client in a
fresh process (``python -c``) stands in for ``models show``.

The scene, built by a worker process of each tool in a fresh folder: ``--runs`` runs with
10 params, 10 metrics and 3 tags each; model ``delays`` with 3 versions (run-linked) and
alias ``champion``; for plinth also dataset ``flights`` with 3 versions, 5 monitor reports
and one logged prediction (for ``lineage``). Each command runs once to warm the page cache
and write bytecode, then ``--repeat`` times; the median is reported::

    .venv/bin/python benchmarks/commands.py                     # 1,000 runs, with MLflow (~6 min)
    .venv/bin/python benchmarks/commands.py --quick --no-peers  # smoke test: 100 runs, plinth
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    machine_info,
    markdown_table,
    package_versions,
    plinth_python,
    print_result,
    print_tables,
    report_head,
    run_worker,
    section_head,
    time_command,
    write_json,
    write_section,
)

SECTION = "commands"
TARGET_S = 0.300
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_REQUIREMENTS = BENCH_DIR / "requirements-mlflow.txt"
MLFLOW_DB = "sqlite:///mlflow.db"

#: MLflow's client standing in for ``plinth models show`` (MLflow has no such command).
MLFLOW_VERSIONS = (
    "from mlflow import MlflowClient\n"
    "for v in MlflowClient().search_model_versions(\"name='delays'\"):\n"
    "    print(v.name, v.version, v.run_id, v.aliases)"
)
MLFLOW_BY_ALIAS = (
    "from mlflow import MlflowClient\n"
    "v = MlflowClient().get_model_version_by_alias('delays', 'champion')\n"
    "print(v.name, v.version, v.run_id, v.aliases)"
)


def _values(i: int) -> tuple[dict[str, object], dict[str, float], dict[str, str]]:
    params: dict[str, object] = {f"p{k}": round(0.001 * (i + k), 6) for k in range(10)}
    metrics = {f"m{k}": (i * 7 + k) % 97 / 97 for k in range(10)}
    tags = {"team": "ml", "stage": "dev" if i % 2 else "prod", "seed": str(i)}
    return params, metrics, tags


# --- workers: each builds its tool's scene in the current folder ------------------------------


def seed_plinth(runs: int) -> dict[str, Any]:
    from plinth.context import Context
    from plinth.entities import MetricPoint
    from plinth.ids import new_id, now_ms
    from plinth.serving.predlog import PredictionLog

    started = time.perf_counter()
    Path("plinth.yaml").write_text("project: commands\n", encoding="utf-8")
    with Context.open(".") as ctx:
        ledger, project = ctx.ledger, ctx.project
        experiment = ledger.projects.ensure_experiment(project.id, "sweep")
        ids = []
        for i in range(runs):
            params, metrics, tags = _values(i)
            run = ledger.runs.create_run(experiment.id, name=f"r{i}", params=params, tags=tags)
            stamp = now_ms()
            points = [MetricPoint(k, v, 0, stamp, n) for n, (k, v) in enumerate(metrics.items())]
            ledger.runs.finish(run.id, "finished", points=points)
            ids.append(run.id)
        model = ledger.models.ensure(project.id, "delays")
        for n in (1, 2, 3):
            ledger.models.register(
                model, flavor="sklearn", manifest_digest=f"{n:064x}", run_id=ids[-n]
            )
        ledger.models.set_alias(model, "champion", 2)
        dataset = ledger.datasets.ensure(project.id, "flights")
        for n in (1, 2, 3):
            ledger.datasets.add_version(
                dataset, kind="file", manifest_digest=f"{n:064x}", size=n, file_count=1
            )
        for n in range(5):
            ledger.monitoring.record_report(
                project.id,
                kind="drift",
                monitor="web",
                status="alert" if n % 2 else "ok",
                rows=1000,
                results={"checks": [{"check": "drift", "status": "ok"}]},
            )
        digest = ctx.blobs.put_bytes(b"name: web\n").digest
        deployment = ledger.deployments.save(project.id, "web", digest, {"model": "delays@2"})
        log = PredictionLog(ctx, deployment)
        request = new_id()
        log.append(request, now_ms(), "delays@2", {"x": [2.5]}, [1])
        log.close()
    return {"run": ids[runs // 2], "request": request, "seed_s": time.perf_counter() - started}


def seed_mlflow(runs: int) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    started = time.perf_counter()
    mlflow.set_tracking_uri(MLFLOW_DB)
    client = MlflowClient()
    ids = []
    for i in range(runs):
        params, metrics, tags = _values(i)
        run = client.create_run("0", run_name=f"r{i}")
        stamp = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(run.info.run_id)
        ids.append((run.info.run_id, run.info.artifact_uri))
    client.create_registered_model("delays")
    for n in (1, 2, 3):
        run_id, artifacts = ids[-n]
        client.create_model_version("delays", f"{artifacts}/model", run_id=run_id)
    client.set_registered_model_alias("delays", "champion", "2")
    return {"run": ids[runs // 2][0], "seed_s": time.perf_counter() - started}


def worker_main(tool: str, args: dict[str, Any]) -> int:
    seed = {"plinth": seed_plinth, "mlflow": seed_mlflow}[tool]
    print_result(seed(int(args["runs"])))
    return 0


# --- the parent: build, time, report -----------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs in the scene (1000; --quick: 100)")
    parser.add_argument("--repeat", type=int, help="timed calls per command (5; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="100 runs, 3 calls per command")
    parser.add_argument("--no-peers", action="store_true", help="plinth only (no MLflow)")
    common_arguments(parser, complete="1,000 runs with MLflow", one_folder=True)
    args = parser.parse_args(argv)
    args.runs = args.runs or (100 if args.quick else 1000)
    args.repeat = args.repeat or (3 if args.quick else 5)
    if args.runs < 2 or args.repeat < 1:
        parser.error("--runs must be at least 2 and --repeat at least 1")
    return args


def plinth_commands(seeded: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [
        ("runs list", ["runs", "list"]),
        ("runs show RUN", ["runs", "show", seeded["run"]]),
        ("models show delays", ["models", "show", "delays"]),
        ("models show delays@champion", ["models", "show", "delays@champion"]),
        ("data log flights", ["data", "log", "flights"]),
        ("lineage REQUEST", ["lineage", seeded["request"]]),
        ("monitor reports", ["monitor", "reports"]),
    ]


def mlflow_commands(python: Path, seeded: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """plinth's command -> (what MLflow runs, its argv)."""
    cli = str(python.parent / "mlflow")
    run = seeded["run"]
    return {
        "runs list": (
            "mlflow runs list --experiment-id 0",
            [cli, "runs", "list", "--experiment-id", "0"],
        ),
        "runs show RUN": (
            "mlflow runs describe --run-id RUN",
            [cli, "runs", "describe", "--run-id", run],
        ),
        "models show delays": (
            "python -c search_model_versions (no CLI)",
            [str(python), "-c", MLFLOW_VERSIONS],
        ),
        "models show delays@champion": (
            "python -c get_model_version_by_alias (no CLI)",
            [str(python), "-c", MLFLOW_BY_ALIAS],
        ),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    worker = dispatch_worker(argv, worker_main)
    if worker is not None:
        return worker
    args = parse_args(argv)
    script = Path(__file__).resolve()
    mlflow = None if args.no_peers else ensure_venv(MLFLOW_VENV, MLFLOW_REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="plinth-bench-commands-", dir=args.tmp) as tmp:
        work = Path(tmp)
        machine = machine_info(work)
        versions = {"plinth": package_versions(plinth_python(), ["plinth", "click"])}
        if mlflow is not None:
            versions["mlflow"] = package_versions(mlflow, ["mlflow"])
        rows: list[dict[str, Any]] = []
        with Stopwatch() as clock:
            folder = work / "plinth"
            folder.mkdir()
            env = clean_env()
            seeded = run_worker(
                plinth_python(), script, "worker:plinth", {"runs": args.runs}, cwd=folder, env=env
            )
            print(f"plinth scene: {args.runs} runs in {seeded['seed_s']:.1f} s", file=sys.stderr)
            floor_s = time_command(
                [str(plinth_python()), "-c", "pass"], cwd=folder, env=env, repeat=args.repeat
            )
            for label, cmd in plinth_commands(seeded):
                argv_ = [str(plinth_python()), "-m", "plinth", *cmd]
                seconds = time_command(argv_, cwd=folder, env=env, repeat=args.repeat)
                rows.append({"command": label, "plinth_s": seconds, "mlflow_s": None})
            if mlflow is not None:
                peer = work / "mlflow"
                peer.mkdir()
                mlflow_env = clean_env(MLFLOW_TRACKING_URI=MLFLOW_DB)
                mlseeded = run_worker(
                    mlflow, script, "worker:mlflow", {"runs": args.runs}, cwd=peer, env=mlflow_env
                )
                print(f"MLflow scene: {mlseeded['seed_s']:.1f} s", file=sys.stderr)
                peers = mlflow_commands(mlflow, mlseeded)
                for row in rows:
                    if row["command"] in peers:
                        shown, cmd = peers[row["command"]]
                        row["mlflow_command"] = shown
                        row["mlflow_s"] = time_command(
                            cmd, cwd=peer, env=mlflow_env, repeat=args.repeat
                        )
    targets = Targets()
    for row in rows:
        targets.add(
            f"`plinth {row['command']}`",
            f"{row['plinth_s'] * 1000:.0f} ms",
            f"<= {TARGET_S * 1000:.0f} ms",
            row["plinth_s"] <= TARGET_S,
        )
    table = results_table(rows, floor_s)
    print_tables(table, targets.table())
    report = {
        **report_head(command_line(__file__, argv), machine, clock, versions),
        "runs": args.runs,
        "repeat": args.repeat,
        "elapsed_s": clock.elapsed_s,
        "python_floor_s": floor_s,
        "rows": rows,
        "targets_met": targets.met,
    }
    write_json(args.json, report)
    complete = not args.quick and not args.no_peers and args.runs >= 1000 and args.repeat >= 5
    write_section(
        args, SECTION, lambda: render_section(report, table, targets.table()), complete=complete
    )
    return 0


def results_table(rows: list[dict[str, Any]], floor_s: float) -> str:
    cells = []
    for row in rows:
        mlflow_s = row["mlflow_s"]
        cells.append(
            [
                f"`plinth {row['command']}`",
                f"{row['plinth_s'] * 1000:.0f} ms",
                "—" if mlflow_s is None else f"{mlflow_s * 1000:.0f} ms",
                "—" if mlflow_s is None else f"{mlflow_s / row['plinth_s']:.1f}{TIMES}",
                f"`{row['mlflow_command']}`" if row.get("mlflow_command") else "—",
            ]
        )
    cells.append(["`python -c pass` (floor)", f"{floor_s * 1000:.0f} ms", "", "", ""])
    return markdown_table(["Command", "plinth", "MLflow", "Speed-up", "MLflow's command"], cells)


def render_section(report: dict[str, Any], table: str, targets: str) -> str:
    v = report["versions"]
    tools = [f"plinth {v['plinth']['plinth']} (click {v['plinth']['click']})"]
    if "mlflow" in v:
        tools.append(f"MLflow {v['mlflow']['mlflow']} (SQLite backend store)")
    return "\n".join(
        [
            *section_head("Command latency: plinth vs MLflow's CLI", report, tools),
            f"- A project of {report['runs']:,} runs (10 params, 10 metrics, 3 tags each), a "
            "model with 3 versions and an alias; plinth also a dataset with 3 versions, 5 "
            "monitor reports and a logged prediction. Whole-process wall time, start-up "
            f"included, median of {report['repeat']} after a warm-up. plinth lists 50 runs "
            "by default; `mlflow runs list` prints every run (it has no limit option). MLflow "
            "has no command that shows a registered model: its client in a fresh process "
            "stands in.",
            "",
            table,
            "",
            targets,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
