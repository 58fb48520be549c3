"""The drift benchmark still runs: plinth and the floor, tiny sizes, no Evidently environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_monitoring_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "monitoring.py"),
            "--sizes",
            "20000",
            "--reps",
            "1",
            "--no-peers",
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
