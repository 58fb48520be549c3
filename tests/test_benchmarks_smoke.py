"""Every benchmark still runs: plinth (and exact floors) only, tiny sizes, no peer environments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, script: str, *args: str, timeout: int) -> tuple[Any, dict[str, Any]]:
    """Run ``benchmarks/SCRIPT ARGS --json OUT --tmp TMP``; the process and its JSON report."""
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            *args,
            "--json",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return done, report


def test_tracking_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(
        tmp_path,
        "tracking.py",
        "--quick",
        "--only",
        "W1,W4",
        "--no-peers",
        "--no-results",
        timeout=120,
    )
    assert {row["workload"][:2] for row in report["rows"]} == {"W1", "W4"}
    per_call = report["raw"]["W1"]["per_call"]["plinth"]
    assert per_call["log_s"] > 0
    assert per_call["end_s"] > 0
    assert "| W1 log_metric" in done.stdout


def test_data_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(tmp_path, "data.py", "--quick", "--no-peers", "--no-results", timeout=180)
    assert {row["workload"][:2] for row in report["rows"]} == {f"D{i}" for i in range(1, 9)}
    assert all(row["plinth_s"] > 0 and row["dvc_s"] is None for row in report["rows"])
    assert "| D3 data status" in done.stdout


def test_validation_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(
        tmp_path, "validation.py", "--quick", "--no-peers", "--no-results", timeout=180
    )
    plinth = report["summary"]["plinth"]
    assert set(report["summary"]) == {"plinth"}
    assert plinth["clean_s"] > 0
    assert plinth["profile_s"] > 0
    assert plinth["missed"] == []
    assert plinth["false_alarms"] == []
    assert "| plinth" in done.stdout


def test_serving_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(tmp_path, "serving.py", "--quick", "--no-results", timeout=240)
    served = report["raw"]["plinth 1 worker"]
    assert set(report["raw"]) == {"model_call", "startup_floor_s", "plinth 1 worker"}
    assert served["startup_s"] > 0
    assert report["raw"]["startup_floor_s"] > 0
    for name in ("c1", "c8", "c64", "c64x100"):
        assert served[name]["requests"] > 0
        assert served[name]["errors"] == 0
    assert "| 8 conn, 1 row" in done.stdout


def test_monitoring_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(
        tmp_path,
        "monitoring.py",
        "--sizes",
        "20000",
        "--reps",
        "1",
        "--no-peers",
        "--no-results",
        timeout=240,
    )
    summary = report["summary"]
    assert set(summary) == {"plinth/20000", "floor/20000", "plinth-stored/20000"}
    for key in ("plinth/20000", "plinth-stored/20000"):
        plinth = summary[key]
        assert plinth["drift_s"] > 0
        assert 0 < plinth["html_bytes"] < 1_000_000
        assert plinth["missed"] == []
        assert plinth["false_alarms"] == []
    assert summary["plinth-stored/20000"]["profile_bytes"] > 0
    assert "| plinth" in done.stdout


def test_features_benchmark_quick(tmp_path: Path) -> None:
    """plinth's join equals the independent DuckDB ASOF reference row by row (peers are for
    the benchmark run, not the suite: Feast's environment takes minutes)."""
    args = ["--quick", "--reps", "1", "--no-results", "--no-peers"]
    done, report = _run(tmp_path, "features.py", *args, timeout=420)
    pit = report["checks"]["pit"]
    assert pit["plinth"]["identical"]
    assert pit["plinth"]["same_order"]
    assert pit["plinth"]["missing"] == pit["plinth"]["wrong"] == pit["plinth"]["extra"] == 0
    assert pit["kinds"]["on the TTL boundary"] > 0
    assert pit["kinds"]["duplicate"] > 0
    online = report["checks"]["online"]
    assert online["plinth-sqlite"] == {"keys": 500, "wrong": 0}
    assert online.get("plinth-redis", {"keys": 500, "wrong": 0}) == {"keys": 500, "wrong": 0}
    assert "feast-duckdb" not in pit
    assert "| plinth point_in_time_join" in done.stdout


def test_pipelines_benchmark_quick(tmp_path: Path) -> None:
    """Every plinth chain run is in its ledger (20 step runs with outputs), the rerun is 20
    cache hits, and the fits on the process executor score exactly as the plain loop's."""
    args = ["--quick", "--no-peers", "--no-ray", "--no-results"]
    done, report = _run(tmp_path, "pipelines.py", *args, timeout=300)
    first, rerun = report["checks"]["plinth"][0], report["checks"]["plinth-rerun"][0]
    assert first["ok"]
    assert rerun["ok"]
    assert first["step_runs"] == first["with_outputs"] == 20
    assert first["statuses"] == {"succeeded": 20}
    assert rerun["statuses"] == {"cached": 20}
    assert rerun["cache_hits"] == 20
    runs = report["raw"]["runs"]
    assert [r["value"] for r in runs["plinth"] + runs["plinth-rerun"]] == [190, 190]
    assert runs["plinth-rerun"][0]["cache_hits"] == 20
    assert report["overhead"]["statuses"] == {"succeeded": (1 + 20) * 3}
    loop = runs["fits/small/loop"][0]["scores"]
    assert runs["fits/small/plinth-process"][0]["scores"] == loop
    assert len(loop) == 16
    assert not any(key.startswith(("kedro", "metaflow", "prefect")) for key in runs)
    assert "| plinth, fresh project" in done.stdout


def test_server_benchmark_quick(tmp_path: Path) -> None:
    """plinth's server starts, takes metrics and artifacts over HTTP with nothing lost (the
    workers read every value back), and serves the runs page and a chart of a seeded project."""
    args = ["--quick", "--no-peers", "--no-results"]
    done, report = _run(tmp_path, "server.py", *args, timeout=300)
    plinth = report["raw"]["plinth"]
    assert report["raw"]["mlflow"] == {}
    assert plinth["start_s"][0] > 0
    assert plinth["memory_ready"]["processes"] >= 1
    assert plinth["metrics"]["n"] == 50
    assert plinth["artifacts"]["files"] == 50
    assert plinth["seed"]["runs"] == 2_000
    pages = {**plinth["pages"], **plinth["chart"]}
    assert len(pages) == 5
    assert all(page["status"] == 200 and page["median_ms"] > 0 for page in pages.values())
    assert {row["workload"][:2] for row in report["rows"]} >= {"S1", "S2", "S3", "S4", "S5"}
    assert "| S1 start to a ready /health" in done.stdout


def test_ui_runs_benchmark_tiny(tmp_path: Path) -> None:
    done, report = _run(
        tmp_path,
        "ui_runs.py",
        "--runs",
        "300",
        "--points",
        "3000",
        "--repeat",
        "1",
        timeout=180,
    )
    workloads = [row["workload"] for row in report["rows"]]
    assert workloads[0] == "runs page: newest first"
    assert any(w.startswith("chart: 3000 points") for w in workloads)
    assert all(row["http_s"] > 0 for row in report["rows"])
    assert "| runs page: sort by a metric |" in done.stdout


def test_scale_benchmark_quick(tmp_path: Path) -> None:
    """Every family at two tiny sizes (the script runs each step in a fresh process: the
    sizes are not what is tested), each step measured at each (time and the process's own
    peak RSS), the correctness checks passed, and one PNG per family drawn."""
    plots = tmp_path / "plots"
    tiny = ["runs=5,10", "files=5,10", "rows=500,1000", "entities=50,100"]
    args = ["--quick", "--reps", "1", "--no-results", "--plots", str(plots)]
    args += [arg for size in tiny for arg in ("--sizes", size)]
    done, report = _run(tmp_path, "scale.py", *args, timeout=420)
    families = {"runs", "files", "rows", "entities"}
    assert set(report["sizes"]) == families
    steps = report["steps"]
    assert {s["family"] for s in steps} == families
    for step in steps:
        assert [p["n"] for p in step["points"]] == report["sizes"][step["family"]]
        assert all(p["time_s"] > 0 and p["peak_rss_mb"] > 0 for p in step["points"])
        assert step["time_growth"][0] is None
        assert all(isinstance(g, float) for g in step["time_growth"][1:])
    assert len([s for s in steps if s["family"] == "runs"]) == 5
    assert report["checks"]["files/10"] == {"clean": True, "files_read": 0}
    assert report["worse_than_linear"] == [
        f"{s['family']}: {s['label']}" for s in steps if s["worse_than_linear"]
    ]
    for family in families:
        assert (plots / f"{family}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| data status, nothing changed | 10 " in done.stdout


def test_scale_growth_exponent() -> None:
    """Growth is log(t2/t1) / log(N2/N1) between sizes; above 1.15 is worse than linear."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _scale_report import Step

    linear = Step("rows", "linear", "row")
    quadratic = Step("rows", "quadratic", "row")
    for n in (10, 100, 1000):
        linear.add(n, [n * 0.001, n * 0.003, n * 0.002], [100.0, None, 120.0], n)
        quadratic.add(n, [n * n * 1e-6], [50.0 * n], n)
    assert linear.points[1].time_s == 0.2  # the median of the samples
    assert linear.points[1].peak_rss_mb == 120.0  # the highest known peak
    assert [round(g, 6) if g else g for g in linear.time_growth()] == [None, 1.0, 1.0]
    assert not linear.worse_than_linear()
    assert [round(g, 6) if g else g for g in quadratic.time_growth()] == [None, 2.0, 2.0]
    assert [round(g, 6) if g else g for g in quadratic.rss_growth()] == [None, 1.0, 1.0]
    assert quadratic.worse_than_linear()


def test_commands_benchmark_quick(tmp_path: Path) -> None:
    done, report = _run(
        tmp_path,
        "commands.py",
        "--quick",
        "--runs",
        "20",
        "--repeat",
        "1",
        "--no-peers",
        "--no-results",
        timeout=180,
    )
    assert [row["command"] for row in report["rows"]] == [
        "runs list",
        "runs show RUN",
        "models show delays",
        "models show delays@champion",
        "data log flights",
        "lineage REQUEST",
        "monitor reports",
    ]
    assert all(row["plinth_s"] > 0 and row["mlflow_s"] is None for row in report["rows"])
    assert report["python_floor_s"] > 0
    assert "| `plinth runs list`" in done.stdout
