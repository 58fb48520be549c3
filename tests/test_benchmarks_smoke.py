"""The tracking benchmark still runs: plinth only, tiny sizes, no MLflow environment needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tracking_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "tracking.py"),
            "--quick",
            "--only",
            "W1,W4",
            "--no-peers",
            "--no-results",
            "--json",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert {row["workload"][:2] for row in report["rows"]} == {"W1", "W4"}
    per_call = report["raw"]["W1"]["per_call"]["plinth"]
    assert per_call["log_s"] > 0
    assert per_call["end_s"] > 0
    assert "| W1 log_metric" in done.stdout


def test_data_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "data.py"),
            "--quick",
            "--no-peers",
            "--no-results",
            "--json",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert {row["workload"][:2] for row in report["rows"]} == {"D1", "D2", "D3", "D4", "D5"}
    assert all(row["plinth_s"] > 0 and row["dvc_s"] is None for row in report["rows"])
    assert "| D3 data status" in done.stdout


def test_validation_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "validation.py"),
            "--quick",
            "--no-peers",
            "--no-results",
            "--json",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    plinth = report["summary"]["plinth"]
    assert set(report["summary"]) == {"plinth"}
    assert plinth["clean_s"] > 0
    assert plinth["profile_s"] > 0
    assert plinth["missed"] == []
    assert plinth["false_alarms"] == []
    assert "| plinth" in done.stdout


def test_serving_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "serving.py"),
            "--quick",
            "--no-results",
            "--json",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    served = report["raw"]["plinth 1 worker"]
    assert set(report["raw"]) == {"model_call", "plinth 1 worker"}
    assert served["startup_s"] > 0
    for name in ("c1", "c8", "c64", "c64x100"):
        assert served[name]["requests"] > 0
        assert served[name]["errors"] == 0
    assert "| 8 conn, 1 row" in done.stdout
