from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from plinth.context import Context


def test_demo_writes_and_reads_back_a_record_and_a_blob(project_dir: Path, cli: Callable) -> None:
    r = cli("demo", "--dir", "d", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    with Context.open(project_dir / "d") as ctx:
        run = ctx.ledger.runs.get_run(data["run_id"])
        assert run.status == "finished"
        assert ctx.blobs.exists(data["artifact_digest"])
    assert data["metrics"]["loss"] == 0.1
    # Running it again reuses the project and adds a second run.
    r2 = cli("demo", "--dir", "d", "--json")
    assert r2.code == 0, r2.err
    assert json.loads(r2.out)["run_id"] != data["run_id"]


def test_demo_human_output(project_dir: Path, cli: Callable) -> None:
    r = cli("demo", "--dir", "d")
    assert r.code == 0, r.err
    assert "blob verified" in r.out
